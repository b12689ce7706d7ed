//! Output: one line per case, a summary per runtime, a side-by-side table,
//! and the gate against a reference runtime.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cases::Outcome;

pub struct RuntimeResults {
    pub name: String,
    pub path: String,
    pub results: Vec<(String, Outcome)>,
}

pub fn line(case: &str, o: &Outcome) -> String {
    match o {
        Outcome::Pass => format!("PASS {case}"),
        Outcome::Fail(why) => format!("FAIL {case}: {why}"),
        Outcome::Skip(why) => format!("SKIP {case}: {why}"),
    }
}

pub fn summary(r: &RuntimeResults) -> String {
    let count = |f: fn(&Outcome) -> bool| r.results.iter().filter(|(_, o)| f(o)).count();
    format!(
        "conformance: {} passed, {} failed, {} skipped",
        count(|o| *o == Outcome::Pass),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::Skip(_))),
    )
}

fn cell(o: Option<&Outcome>) -> &'static str {
    match o {
        Some(Outcome::Pass) => "PASS",
        Some(Outcome::Fail(_)) => "FAIL",
        Some(Outcome::Skip(_)) => "SKIP",
        None => "-",
    }
}

/// Case × runtime, in the order the first runtime ran the cases.
pub fn table(all: &[RuntimeResults]) -> String {
    let Some(first) = all.first() else {
        return String::new();
    };
    let width = first
        .results
        .iter()
        .map(|(c, _)| c.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:width$}", "case");
    for r in all {
        out.push_str(&format!("  {:>8}", r.name));
    }
    out.push('\n');
    for (case, _) in &first.results {
        out.push_str(&format!("{case:width$}"));
        for r in all {
            let o = r.results.iter().find(|(c, _)| c == case).map(|(_, o)| o);
            out.push_str(&format!("  {:>8}", cell(o)));
        }
        out.push('\n');
    }
    out
}

/// Case names from a known-gaps file: one per line, `#` starts a comment.
pub fn read_known_gaps(path: &Path) -> Result<BTreeSet<String>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading known gaps {}", path.display()))?;
    Ok(parse_known_gaps(&text))
}

pub fn parse_known_gaps(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// What the gate found for the non-reference runtimes.
#[derive(Debug, Default)]
pub struct Gate {
    /// (runtime, case, why): passes on the reference, fails here, not known.
    pub regressions: Vec<(String, String, String)>,
    /// Known gaps that fail as expected.
    pub known: Vec<(String, String)>,
    /// Known gaps that pass now: the list should shrink.
    pub fixed: Vec<(String, String)>,
}

pub fn gate(
    reference: &RuntimeResults,
    others: &[&RuntimeResults],
    known: &BTreeSet<String>,
) -> Gate {
    let mut g = Gate::default();
    for other in others {
        for (case, o) in &other.results {
            let ref_o = reference
                .results
                .iter()
                .find(|(c, _)| c == case)
                .map(|(_, o)| o);
            let ref_pass = ref_o == Some(&Outcome::Pass);
            match o {
                Outcome::Fail(why) if ref_pass => {
                    if known.contains(case) {
                        g.known.push((other.name.clone(), case.clone()));
                    } else {
                        g.regressions
                            .push((other.name.clone(), case.clone(), why.clone()));
                    }
                }
                Outcome::Pass if known.contains(case) => {
                    g.fixed.push((other.name.clone(), case.clone()));
                }
                _ => {}
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, results: &[(&str, Outcome)]) -> RuntimeResults {
        RuntimeResults {
            name: name.into(),
            path: name.into(),
            results: results
                .iter()
                .map(|(c, o)| (c.to_string(), o.clone()))
                .collect(),
        }
    }

    #[test]
    fn gate_flags_only_unknown_regressions() {
        let fail = || Outcome::Fail("x".into());
        let reference = rr(
            "runc",
            &[
                ("a", Outcome::Pass),
                ("b", Outcome::Pass),
                ("c", fail()),
                ("d", Outcome::Pass),
            ],
        );
        let other = rr(
            "pinc",
            &[
                ("a", fail()),
                ("b", fail()),
                ("c", fail()),
                ("d", Outcome::Pass),
            ],
        );
        let known = parse_known_gaps("b  # being fixed\n# comment only\n\nd # fixed already\n");
        let g = gate(&reference, &[&other], &known);
        assert_eq!(g.regressions.len(), 1);
        assert_eq!(g.regressions[0].1, "a");
        assert_eq!(g.known, vec![("pinc".to_string(), "b".to_string())]);
        assert_eq!(g.fixed, vec![("pinc".to_string(), "d".to_string())]);
    }

    #[test]
    fn summary_counts_each_outcome() {
        let r = rr(
            "x",
            &[
                ("a", Outcome::Pass),
                ("b", Outcome::Skip("s".into())),
                ("c", Outcome::Fail("f".into())),
            ],
        );
        assert_eq!(summary(&r), "conformance: 1 passed, 1 failed, 1 skipped");
    }

    #[test]
    fn table_has_a_column_per_runtime() {
        let a = rr("runc", &[("case-one", Outcome::Pass)]);
        let b = rr("pinc", &[("case-one", Outcome::Fail("f".into()))]);
        let t = table(&[a, b]);
        let row = t.lines().nth(1).expect("a row");
        assert!(
            row.starts_with("case-one") && row.contains("PASS") && row.contains("FAIL"),
            "{t}"
        );
    }
}

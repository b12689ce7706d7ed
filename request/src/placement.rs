//! Placement requests: what CPUs, memory and hugepages a container asks
//! for, and how each value is spelt. The crate root reads the keys from a
//! spec (annotations, env) and hands them here; `pinc plan` gives them as
//! `key=value` words; the planner (`pinc_topology::planner`) takes the
//! result. Bad values fail with one line naming the key and
//! what is accepted.

use std::collections::HashMap;

/// Keys this module reads.
pub const PLACEMENT_KEYS: &[&str] = &[
    "cpus",
    "cores",
    "smt",
    "policy",
    "near",
    "mem",
    "hbm",
    "hugepages",
];

/// A request that cannot be honoured as written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlacementRequestError {
    #[error("{source_name}: invalid value {value:?}: {expected}")]
    Value {
        source_name: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{0}: unknown key (placement keys: cpus, cores, smt, policy, near, mem, hbm, hugepages)"
    )]
    UnknownKey(String),
    #[error("give either cpus or cores, not both")]
    CpusAndCores,
    #[error("{0} given without cpus or cores: say how much to place")]
    NothingToPlace(String),
}

/// How many CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Amount {
    /// Logical CPUs (PUs); whole cores are reserved around them.
    Cpus(usize),
    /// Whole physical cores.
    Cores(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Fewest NUMA nodes, best fit, nearest spill by distance.
    #[default]
    Compact,
    /// Evenly across NUMA nodes (bandwidth-bound codes).
    Spread,
    /// One NUMA node or fail.
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemMode {
    Bind,
    Interleave,
    Preferred,
}

/// Hugepages of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Hugepages {
    pub size_kb: u64,
    pub count: u64,
}

/// A placement request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlacementRequest {
    /// None: hugepages only, no CPU placement.
    pub amount: Option<Amount>,
    /// false: one PU per core used, the siblings still reserved.
    pub smt: bool,
    pub policy: Policy,
    /// Device selectors the CPUs must be local to.
    pub near: Vec<String>,
    pub mem: Option<MemMode>,
    /// Use high-bandwidth memory nodes.
    pub hbm: bool,
    pub hugepages: Vec<Hugepages>,
}

fn bad(source_name: &str, value: &str, expected: &'static str) -> PlacementRequestError {
    PlacementRequestError::Value {
        source_name: source_name.to_string(),
        value: value.to_string(),
        expected,
    }
}

/// pinc's one boolean parser, for every on/off key (`name` is the key as
/// given, for the message).
pub fn parse_bool(name: &str, v: &str) -> Result<bool, PlacementRequestError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(name, v, "on or off")),
    }
}

fn parse_count(name: &str, v: &str) -> Result<usize, PlacementRequestError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 && n <= 65536 => Ok(n),
        _ => Err(bad(name, v, "a whole number from 1")),
    }
}

/// "2M", "2MB", "1G", "2048k" -> KiB.
fn parse_size_kb(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_uppercase();
    let v = v
        .strip_suffix("IB")
        .or_else(|| v.strip_suffix('B'))
        .unwrap_or(&v);
    let (number, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = number.parse().ok()?;
    // Checked: a huge number is a bad value, not an overflow.
    let kb = match unit {
        "K" => n,
        "M" => n.checked_mul(1024)?,
        "G" => n.checked_mul(1024 * 1024)?,
        _ => return None,
    };
    (kb > 0).then_some(kb)
}

/// "2M:512" or "2M:512,1G:4".
fn parse_hugepages(name: &str, v: &str) -> Result<Vec<Hugepages>, PlacementRequestError> {
    const EXPECTED: &str = "SIZE:COUNT[,SIZE:COUNT], e.g. 2M:512 or 1G:4";
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (size, count) = item.split_once(':').ok_or_else(|| bad(name, v, EXPECTED))?;
            let size_kb = parse_size_kb(size).ok_or_else(|| bad(name, v, EXPECTED))?;
            let count = count
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(|| bad(name, v, EXPECTED))?;
            Ok(Hugepages { size_kb, count })
        })
        .collect()
}

/// The request from `key=value` words (`pinc plan cores=2 near=mlx5_0`).
pub fn from_words<'a>(
    words: impl IntoIterator<Item = &'a str>,
) -> Result<Option<PlacementRequest>, PlacementRequestError> {
    let mut found = HashMap::new();
    for word in words {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| bad(word, word, "KEY=VALUE"))?;
        if !PLACEMENT_KEYS.contains(&k) {
            return Err(PlacementRequestError::UnknownKey(k.to_string()));
        }
        found.insert(k.to_string(), (k.to_string(), v.to_string()));
    }
    from_given(found)
}

/// The request from placement keys found (key -> the name it was given
/// under, and its value); `None` when nothing is asked for.
pub fn from_given(
    found: HashMap<String, (String, String)>,
) -> Result<Option<PlacementRequest>, PlacementRequestError> {
    let get = |k: &str| found.get(k).map(|(n, v)| (n.as_str(), v.as_str()));
    let amount = match (get("cpus"), get("cores")) {
        (Some(_), Some(_)) => return Err(PlacementRequestError::CpusAndCores),
        (Some((n, v)), None) => Some(Amount::Cpus(parse_count(n, v)?)),
        (None, Some((n, v))) => Some(Amount::Cores(parse_count(n, v)?)),
        (None, None) => None,
    };
    let smt = get("smt").map(|(n, v)| parse_bool(n, v)).transpose()?;
    let policy = get("policy")
        .map(|(n, v)| match v.trim().to_ascii_lowercase().as_str() {
            "compact" => Ok(Policy::Compact),
            "spread" => Ok(Policy::Spread),
            "strict" => Ok(Policy::Strict),
            _ => Err(bad(n, v, "compact, spread or strict")),
        })
        .transpose()?;
    let near: Vec<String> = get("near")
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mem = get("mem")
        .map(|(n, v)| match v.trim().to_ascii_lowercase().as_str() {
            "bind" => Ok(MemMode::Bind),
            "interleave" => Ok(MemMode::Interleave),
            "preferred" => Ok(MemMode::Preferred),
            _ => Err(bad(n, v, "bind, interleave or preferred")),
        })
        .transpose()?;
    let hbm = get("hbm").map(|(n, v)| parse_bool(n, v)).transpose()?;
    let hugepages = get("hugepages")
        .map(|(n, v)| parse_hugepages(n, v))
        .transpose()?
        .unwrap_or_default();
    if amount.is_none() {
        if let Some(key) = found.keys().find(|k| *k != "hugepages") {
            return Err(PlacementRequestError::NothingToPlace(found[key].0.clone()));
        }
        // An empty hugepages value asks for nothing, like no value.
        if hugepages.is_empty() {
            return Ok(None);
        }
    }
    Ok(Some(PlacementRequest {
        amount,
        smt: smt.unwrap_or(true),
        policy: policy.unwrap_or_default(),
        near,
        mem,
        hbm: hbm.unwrap_or(false),
        hugepages,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, &str, &str)]) -> HashMap<String, (String, String)> {
        pairs
            .iter()
            .map(|(k, n, v)| (k.to_string(), (n.to_string(), v.to_string())))
            .collect()
    }

    #[test]
    fn one_boolean_parser() {
        for yes in ["1", "true", "Yes", " ON "] {
            assert_eq!(parse_bool("k", yes), Ok(true), "{yes}");
        }
        for no in ["0", "FALSE", "no", "off"] {
            assert_eq!(parse_bool("k", no), Ok(false), "{no}");
        }
        for bad in ["treu", "", "2", "enabled"] {
            let err = parse_bool("PINC_HPC", bad).expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!("PINC_HPC: invalid value {bad:?}: on or off")
            );
        }
    }

    #[test]
    fn full_vocabulary() {
        let r = from_words([
            "cores=8",
            "near=mlx4_0,0000:b7:00.0",
            "policy=strict",
            "smt=off",
            "mem=interleave",
            "hbm=on",
            "hugepages=2M:512,1G:4",
        ])
        .expect("ok")
        .expect("some");
        assert_eq!(r.amount, Some(Amount::Cores(8)));
        assert_eq!(r.near, vec!["mlx4_0", "0000:b7:00.0"]);
        assert_eq!(r.policy, Policy::Strict);
        assert!(!r.smt && r.hbm);
        assert_eq!(r.mem, Some(MemMode::Interleave));
        assert_eq!(
            r.hugepages,
            vec![
                Hugepages {
                    size_kb: 2048,
                    count: 512
                },
                Hugepages {
                    size_kb: 1048576,
                    count: 4
                }
            ]
        );
    }

    #[test]
    fn nothing_requested_is_none() {
        assert_eq!(from_given(HashMap::new()), Ok(None));
        assert_eq!(from_words([]), Ok(None));
    }

    #[test]
    fn bad_values_name_key_and_expectation() {
        let err = from_given(given(&[("cpus", "pinc.io/cpus", "two")])).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "pinc.io/cpus: invalid value \"two\": a whole number from 1"
        );
        let err = from_given(given(&[
            ("policy", "PINC_POLICY", "tight"),
            ("cpus", "PINC_CPUS", "1"),
        ]))
        .expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("PINC_POLICY: invalid value \"tight\""),
            "{err}"
        );
        assert!(matches!(
            from_words(["cpus=0"]),
            Err(PlacementRequestError::Value { .. })
        ));
        assert_eq!(
            from_words(["cpus=1", "cores=1"]),
            Err(PlacementRequestError::CpusAndCores)
        );
        assert!(matches!(
            from_words(["hugepages=2M"]),
            Err(PlacementRequestError::Value { .. })
        ));
        assert!(matches!(
            from_words(["hugepages=3X:1"]),
            Err(PlacementRequestError::Value { .. })
        ));
        let err = from_words(["cpu=1"]).expect_err("typo");
        assert!(err.to_string().starts_with("cpu: unknown key"), "{err}");
        assert!(matches!(
            from_words(["policy=spread"]),
            Err(PlacementRequestError::NothingToPlace(_))
        ));
    }

    #[test]
    fn hugepage_sizes_too_large_are_refused() {
        // Found by fuzzing (fuzz/ target `requests`): overflowed in the G
        // and M multiplications.
        for v in [
            "18446744073709551615G:1",
            "2M:4,111111111111111G:1",
            "18014398509481984M:1",
        ] {
            let err = from_words([format!("hugepages={v}").as_str()]).expect_err(v);
            assert!(err.to_string().contains("SIZE:COUNT"), "{v}: {err}");
        }
    }

    #[test]
    fn empty_hugepages_alone_is_no_request() {
        // Found by fuzzing (fuzz/ target `requests`): gave a request with
        // no CPUs and no pages instead of none.
        let empty = given(&[("hugepages", "PINC_HUGEPAGES", "")]);
        assert_eq!(from_given(empty), Ok(None));
        assert_eq!(from_words(["hugepages= , "]), Ok(None));
        assert_eq!(
            from_words(["hugepages=", "smt=on"]),
            Err(PlacementRequestError::NothingToPlace("smt".into()))
        );
    }

    #[test]
    fn hugepages_alone_is_not_a_cpu_request() {
        let r = from_words(["hugepages=2M:4"]).expect("ok").expect("some");
        assert_eq!(r.amount, None);
        assert_eq!(
            r.hugepages,
            vec![Hugepages {
                size_kb: 2048,
                count: 4
            }]
        );
    }
}

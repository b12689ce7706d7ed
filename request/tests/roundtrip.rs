//! Round trips of placement requests: a random [`PlacementRequest`] rendered as a
//! container would write it (`pinc.io/*` annotations, `PINC_*` env, or a
//! mix, in any of the accepted spellings: case, whitespace, size units,
//! boolean words) and read by pinc's one request module, and as `pinc plan`
//! words, parses back to the same request.
//! The fuzz target `requests` (fuzz/) feeds the same parser arbitrary text;
//! this checks that every valid request is read as meant.

use std::collections::HashMap;

use pinc_request::placement::{from_words, Amount, Hugepages, MemMode, PlacementRequest, Policy};
use pinc_request::RequestError;
use proptest::prelude::*;

/// One spelling choice per rendered value, drawn by proptest.
#[derive(Debug, Clone)]
struct Spelling {
    upper: bool,
    pad: bool,
    word: usize,
    unit: usize,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (any::<bool>(), any::<bool>(), 0..4usize, 0..4usize).prop_map(|(upper, pad, word, unit)| {
        Spelling {
            upper,
            pad,
            word,
            unit,
        }
    })
}

impl Spelling {
    fn case(&self, s: &str) -> String {
        let s = if self.upper {
            s.to_ascii_uppercase()
        } else {
            s.to_string()
        };
        if self.pad {
            format!(" {s}\t")
        } else {
            s
        }
    }

    fn bool(&self, b: bool) -> String {
        let words = if b {
            ["on", "true", "yes", "1"]
        } else {
            ["off", "false", "no", "0"]
        };
        self.case(words[self.word])
    }

    /// A size in KiB with the largest unit that divides it, in one of the
    /// accepted suffix forms.
    fn size(&self, kb: u64) -> String {
        let (n, unit) = if kb % (1024 * 1024) == 0 {
            (kb / (1024 * 1024), "G")
        } else if kb % 1024 == 0 {
            (kb / 1024, "M")
        } else {
            (kb, "K")
        };
        let suffix = ["", "B", "iB", "IB"][self.unit];
        let unit = format!("{unit}{suffix}");
        let unit = if self.upper {
            unit.to_ascii_uppercase()
        } else {
            unit.to_ascii_lowercase()
        };
        format!("{n}{unit}")
    }
}

fn hugepages() -> impl Strategy<Value = Hugepages> {
    // 4K..16G pages in the three units, counts that fit any real node.
    (
        prop_oneof![
            1u64..=4096,
            (1u64..=1024).prop_map(|m| m * 1024),
            (1u64..=16).prop_map(|g| g << 20)
        ],
        1u64..=1_000_000,
    )
        .prop_map(|(size_kb, count)| Hugepages { size_kb, count })
}

fn selector() -> impl Strategy<Value = String> {
    // What `near=` holds: device names, bus ids, indexes (no commas, no
    // surrounding blanks: the list syntax takes those).
    "[a-z0-9_:.]{1,12}"
}

fn request() -> impl Strategy<Value = PlacementRequest> {
    let placed = (
        prop_oneof![
            (1usize..=65536).prop_map(Amount::Cpus),
            (1usize..=65536).prop_map(Amount::Cores)
        ],
        any::<bool>(),
        prop_oneof![
            Just(Policy::Compact),
            Just(Policy::Spread),
            Just(Policy::Strict)
        ],
        prop::collection::vec(selector(), 0..4),
        prop::option::of(prop_oneof![
            Just(MemMode::Bind),
            Just(MemMode::Interleave),
            Just(MemMode::Preferred)
        ]),
        any::<bool>(),
        prop::collection::vec(hugepages(), 0..3),
    )
        .prop_map(
            |(amount, smt, policy, near, mem, hbm, hugepages)| PlacementRequest {
                amount: Some(amount),
                smt,
                policy,
                near,
                mem,
                hbm,
                hugepages,
            },
        );
    // Hugepages alone: no CPU placement, every other field at its default.
    let hugepages_only =
        prop::collection::vec(hugepages(), 1..3).prop_map(|hugepages| PlacementRequest {
            amount: None,
            smt: true,
            policy: Policy::Compact,
            near: Vec::new(),
            mem: None,
            hbm: false,
            hugepages,
        });
    prop_oneof![3 => placed, 1 => hugepages_only]
}

/// The request's keys and values; defaults are left out when `sparse`.
fn render(r: &PlacementRequest, s: &[Spelling], sparse: bool) -> Vec<(&'static str, String)> {
    let mut kv = Vec::new();
    match r.amount {
        Some(Amount::Cpus(n)) => kv.push(("cpus", s[0].case(&n.to_string()))),
        Some(Amount::Cores(n)) => kv.push(("cores", s[0].case(&n.to_string()))),
        None => {}
    }
    if r.amount.is_some() {
        if !(sparse && r.smt) {
            kv.push(("smt", s[1].bool(r.smt)));
        }
        if !(sparse && r.policy == Policy::Compact) {
            let p = match r.policy {
                Policy::Compact => "compact",
                Policy::Spread => "spread",
                Policy::Strict => "strict",
            };
            kv.push(("policy", s[2].case(p)));
        }
        if !r.near.is_empty() {
            let sep = if s[3].pad { " , " } else { "," };
            kv.push(("near", r.near.join(sep)));
        }
        if let Some(m) = r.mem {
            let m = match m {
                MemMode::Bind => "bind",
                MemMode::Interleave => "interleave",
                MemMode::Preferred => "preferred",
            };
            kv.push(("mem", s[4].case(m)));
        }
        if !sparse || r.hbm {
            kv.push(("hbm", s[5].bool(r.hbm)));
        }
    }
    if !r.hugepages.is_empty() {
        let items: Vec<String> = r
            .hugepages
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let sp = &s[i % s.len()];
                format!("{}:{}", sp.size(h.size_kb), h.count)
            })
            .collect();
        kv.push(("hugepages", items.join(",")));
    }
    kv
}

fn env_name(key: &str) -> String {
    format!("PINC_{}", key.to_ascii_uppercase().replace('-', "_"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Annotations only, env only, or each key from either, with decoy env
    /// entries under annotated keys (annotations win) and unrelated env.
    #[test]
    fn spec_round_trip(
        r in request(),
        s in prop::collection::vec(spelling(), 6),
        sparse in any::<bool>(),
        sources in prop::collection::vec(0..3u8, 8),
    ) {
        let mut annotations = HashMap::new();
        let mut env = vec!["PATH=/bin".to_string(), "PINC_UNRELATED=1".to_string()];
        for (i, (key, value)) in render(&r, &s, sparse).into_iter().enumerate() {
            match sources[i % sources.len()] {
                0 => {
                    annotations.insert(format!("pinc.io/{key}"), value);
                }
                1 => env.push(format!("{}={value}", env_name(key))),
                _ => {
                    // A bad env value the annotation must hide.
                    env.push(format!("{}=not-a-value", env_name(key)));
                    annotations.insert(format!("pinc.io/{key}"), value);
                }
            }
        }
        annotations.insert("pinc.io/gpus".to_string(), "0".to_string());
        annotations.insert("io.kubernetes.cri.container-type".to_string(), "container".to_string());
        let parsed = pinc_request::Request::from_parts(&annotations, &env)
            .map(|r| r.placement)
            .map_err(|e| e.to_string());
        prop_assert_eq!(parsed, Ok(Some(r)), "annotations {:?} env {:?}", annotations, env);
    }

    /// The same request as `pinc plan` words.
    #[test]
    fn words_round_trip(
        r in request(),
        s in prop::collection::vec(spelling(), 6),
        sparse in any::<bool>(),
    ) {
        let words: Vec<String> = render(&r, &s, sparse)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let parsed = from_words(words.iter().map(String::as_str));
        prop_assert_eq!(parsed, Ok(Some(r)), "words {:?}", words);
    }

    /// Any other `pinc.io/` key is refused by name, whatever else is there.
    #[test]
    fn unknown_keys_are_named(r in request(), key in "[a-z]{1,10}") {
        prop_assume!(!pinc_request::placement::PLACEMENT_KEYS.contains(&key.as_str()));
        prop_assume!(!["hpc", "gpus", "rdma", "require-cgroups", "placement", "device-locality"]
            .contains(&key.as_str()));
        let spelling = Spelling { upper: false, pad: false, word: 0, unit: 0 };
        let mut annotations: HashMap<String, String> = render(&r, &[spelling.clone(), spelling.clone(), spelling.clone(), spelling.clone(), spelling.clone(), spelling], true)
            .into_iter()
            .map(|(k, v)| (format!("pinc.io/{k}"), v))
            .collect();
        let bad = format!("pinc.io/{key}");
        annotations.insert(bad.clone(), "1".to_string());
        let err = pinc_request::Request::from_parts(&annotations, &[]).expect_err("unknown");
        prop_assert!(matches!(&err, RequestError::UnknownKey { key, .. } if *key == bad), "{}", err);
    }
}

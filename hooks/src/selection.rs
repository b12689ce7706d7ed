//! Which discovered devices a request (`pinc_request::devices`) names:
//! GPUs by index, UUID or PCI bus id; HCAs by name, index or bus id.

pub use pinc_request::devices::DeviceSelection;

use crate::gpu::Gpu;
use crate::rdma::Hca;

/// A selector that names no device this node has.
#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error("unknown {kind} {selector:?}; available: {available}")]
    Unknown {
        kind: &'static str,
        selector: String,
        available: String,
    },
}

/// Normalizes a PCI address to `dddd:bb:dd.f` (lowercase, 4-digit domain).
/// Accepts `bb:dd.f` (domain 0) and long domains as printed by nvidia-smi
/// (`00000000:06:00.0`). Returns `None` if it is not a PCI address.
pub fn normalize_bus_id(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let (domain, bus, devfn) = match parts.as_slice() {
        [bus, devfn] => ("0", *bus, *devfn),
        [domain, bus, devfn] => (*domain, *bus, *devfn),
        _ => return None,
    };
    let (dev, func) = devfn.split_once('.')?;
    let hex = |t: &str, max_len: usize| {
        if t.is_empty() || t.len() > max_len || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            None
        } else {
            u32::from_str_radix(t, 16).ok()
        }
    };
    let domain = hex(domain, 8)?;
    let bus = hex(bus, 2)?;
    let dev = hex(dev, 2).filter(|d| *d < 32)?;
    let func = hex(func, 1).filter(|f| *f < 8)?;
    if domain > 0xffff {
        return None;
    }
    Some(format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}"))
}

/// Selects GPUs by index, UUID (`GPU-...`, case-insensitive) or PCI bus id.
/// `All` gives every GPU in index order; a list keeps request order and drops
/// duplicates.
pub fn select_gpus<'a>(
    gpus: &'a [Gpu],
    request: &DeviceSelection,
) -> Result<Vec<&'a Gpu>, SelectionError> {
    select(gpus, request, "GPU", gpu_matches, |g| {
        format!("{} ({}, {})", g.index, g.uuid, g.bus_id)
    })
}

/// Selects HCAs by name, index (position in name order) or PCI bus id.
pub fn select_hcas<'a>(
    hcas: &'a [Hca],
    request: &DeviceSelection,
) -> Result<Vec<&'a Hca>, SelectionError> {
    select(hcas, request, "HCA", hca_matches, |h| match &h.bus_id {
        Some(bus) => format!("{} ({bus})", h.name),
        None => h.name.clone(),
    })
}

fn gpu_matches(gpu: &Gpu, _position: usize, selector: &str) -> bool {
    if selector.bytes().all(|b| b.is_ascii_digit()) {
        return selector.parse::<usize>().is_ok_and(|i| i == gpu.index);
    }
    if selector
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("GPU-"))
    {
        return selector.eq_ignore_ascii_case(&gpu.uuid);
    }
    normalize_bus_id(selector).is_some_and(|bus| bus == gpu.bus_id)
}

fn hca_matches(hca: &Hca, position: usize, selector: &str) -> bool {
    if selector == hca.name {
        return true;
    }
    if selector.bytes().all(|b| b.is_ascii_digit()) {
        return selector.parse::<usize>().is_ok_and(|i| i == position);
    }
    match (normalize_bus_id(selector), &hca.bus_id) {
        (Some(want), Some(have)) => want == *have,
        _ => false,
    }
}

fn select<'a, T>(
    items: &'a [T],
    request: &DeviceSelection,
    kind: &'static str,
    matches: fn(&T, usize, &str) -> bool,
    describe: fn(&T) -> String,
) -> Result<Vec<&'a T>, SelectionError> {
    let selectors = match request {
        DeviceSelection::All => return Ok(items.iter().collect()),
        DeviceSelection::Nothing => return Ok(Vec::new()),
        DeviceSelection::List(selectors) => selectors,
    };
    let mut chosen: Vec<usize> = Vec::new();
    for selector in selectors {
        let Some(i) = (0..items.len()).find(|&i| matches(&items[i], i, selector)) else {
            let available = if items.is_empty() {
                format!("no {kind}s found")
            } else {
                items.iter().map(describe).collect::<Vec<_>>().join(", ")
            };
            return Err(SelectionError::Unknown {
                kind,
                selector: selector.clone(),
                available,
            });
        };
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    Ok(chosen.into_iter().map(|i| &items[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::tests::{two_gpu_fixture, UUID0, UUID1};
    use crate::rdma::tests::two_hca_fixture;
    use crate::testutil::require_root;

    fn list(items: &[&str]) -> DeviceSelection {
        DeviceSelection::List(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn normalizes_bus_ids() {
        assert_eq!(
            normalize_bus_id("0000:06:00.0").as_deref(),
            Some("0000:06:00.0")
        );
        assert_eq!(normalize_bus_id("06:00.0").as_deref(), Some("0000:06:00.0"));
        assert_eq!(
            normalize_bus_id("00000000:AF:00.1").as_deref(),
            Some("0000:af:00.1")
        );
        for bad in [
            "",
            "mlx5_0",
            "GPU-1",
            "06:00",
            "0000:06:20.0",
            "0000:06:00.8",
            "1:2:3:4.0",
        ] {
            assert_eq!(normalize_bus_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn selects_gpus() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_gpu_fixture(dir.path());
        let gpus = crate::gpu::discover_gpus(dir.path())
            .expect("discover")
            .gpus;
        let minors = |r: &DeviceSelection| -> Vec<u32> {
            select_gpus(&gpus, r)
                .expect("select")
                .iter()
                .map(|g| g.minor)
                .collect()
        };
        assert_eq!(minors(&DeviceSelection::All), [0, 1]);
        assert_eq!(minors(&DeviceSelection::Nothing), Vec::<u32>::new());
        assert_eq!(
            minors(&DeviceSelection::parse("void").expect("parse")),
            Vec::<u32>::new()
        );
        assert_eq!(minors(&list(&["1"])), [1]);
        assert_eq!(minors(&list(&[UUID1])), [1]);
        assert_eq!(minors(&list(&[&UUID0.to_uppercase()])), [0]);
        // The GPU at 0000:06:00.0 has minor 1; with and without domain, and nvidia-smi style.
        assert_eq!(minors(&list(&["0000:06:00.0"])), [1]);
        assert_eq!(minors(&list(&["06:00.0"])), [1]);
        assert_eq!(minors(&list(&["00000000:86:00.0"])), [0]);
        // Request order, duplicates dropped.
        assert_eq!(minors(&list(&["1", UUID0, "0", "0000:06:00.0"])), [1, 0]);

        let err = select_gpus(&gpus, &list(&["0", "GPU-nope"])).expect_err("unknown");
        let msg = err.to_string();
        assert!(msg.contains("\"GPU-nope\""), "{msg}");
        assert!(msg.contains(UUID0) && msg.contains(UUID1), "{msg}");
        assert!(msg.contains("0000:86:00.0"), "{msg}");
        assert!(select_gpus(&gpus, &list(&["2"])).is_err());
        assert!(select_gpus(&gpus, &list(&["mlx5_0"])).is_err());
        assert!(select_gpus(&gpus, &list(&["Gé-1"])).is_err());
        let err = select_gpus(&[], &list(&["0"])).expect_err("no GPUs");
        assert!(err.to_string().contains("no GPUs found"), "{err}");
        assert!(select_gpus(&[], &DeviceSelection::All)
            .expect("all of none")
            .is_empty());
    }

    #[test]
    fn selects_hcas() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_hca_fixture(dir.path());
        let hcas = crate::rdma::discover_hcas(dir.path())
            .expect("discover")
            .hcas;
        let names = |r: &DeviceSelection| -> Vec<String> {
            select_hcas(&hcas, r)
                .expect("select")
                .iter()
                .map(|h| h.name.clone())
                .collect()
        };
        assert_eq!(names(&DeviceSelection::All), ["mlx5_0", "mlx5_1"]);
        assert!(names(&DeviceSelection::Nothing).is_empty());
        assert_eq!(names(&list(&["mlx5_1"])), ["mlx5_1"]);
        assert_eq!(names(&list(&["0000:af:00.0"])), ["mlx5_1"]);
        assert_eq!(names(&list(&["05:00.0"])), ["mlx5_0"]);
        assert_eq!(names(&list(&["1", "mlx5_0"])), ["mlx5_1", "mlx5_0"]);
        let err = select_hcas(&hcas, &list(&["mlx5_7"])).expect_err("unknown");
        let msg = err.to_string();
        assert!(msg.contains("unknown HCA \"mlx5_7\""), "{msg}");
        assert!(
            msg.contains("mlx5_0 (0000:05:00.0), mlx5_1 (0000:af:00.0)"),
            "{msg}"
        );
    }
}

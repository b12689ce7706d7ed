//! RDMA HCA discovery from `/sys/class/infiniband*` and `/dev/infiniband`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::device::{DeviceError, DeviceNode};

/// Errors discovering RDMA HCAs.
#[derive(Debug, thiserror::Error)]
pub enum HcaError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid value {value:?}", path.display())]
    Invalid { path: PathBuf, value: String },
    #[error("HCA {hca}: device node")]
    HcaNode {
        hca: String,
        #[source]
        source: DeviceError,
    },
    #[error("RDMA connection manager device")]
    RdmaCm {
        #[source]
        source: DeviceError,
    },
}

/// One RDMA HCA (e.g. `mlx5_0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hca {
    pub name: String,
    /// PCI address from the `device` symlink, e.g. `0000:05:00.0`; `None` for
    /// HCAs without a PCI parent (e.g. soft-RoCE `rxe0`).
    pub bus_id: Option<String>,
    /// `device/numa_node`; `None` if -1 or absent.
    pub numa_node: Option<u32>,
    /// `/dev/infiniband/uverbs<N>`, then `umad<N>`, then `issm<N>` nodes of this HCA.
    pub devices: Vec<DeviceNode>,
}

/// All HCAs on this host plus the shared connection-manager device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdmaDevices {
    /// Ordered by name, numerically (`mlx5_2` before `mlx5_10`).
    pub hcas: Vec<Hca>,
    /// `/dev/infiniband/rdma_cm` (misc device), shared by all HCAs; `None` if
    /// absent (`rdma_ucm` not loaded).
    pub rdma_cm: Option<DeviceNode>,
}

/// Discovers RDMA HCAs below `root` (normally `/`). No
/// `<root>/sys/class/infiniband` means no HCAs and is not an error.
pub fn discover_hcas(root: &Path) -> Result<RdmaDevices, HcaError> {
    let class = root.join("sys/class/infiniband");
    let names = match list_dir(&class)? {
        Some(names) => names,
        None => return Ok(RdmaDevices::default()),
    };
    let mut hcas: BTreeMap<(String, u64, String), Hca> = BTreeMap::new();
    for name in names {
        let dir = class.join(&name);
        let bus_id = bus_id(&dir)?;
        let numa_node = numa_node(&dir.join("device/numa_node"))?;
        hcas.insert(
            natural_key(&name),
            Hca {
                name,
                bus_id,
                numa_node,
                devices: Vec::new(),
            },
        );
    }
    if hcas.is_empty() {
        return Ok(RdmaDevices::default());
    }
    // (class dir, prefix) in the order devices are listed per HCA.
    let kinds = [
        ("sys/class/infiniband_verbs", "uverbs"),
        ("sys/class/infiniband_mad", "umad"),
        ("sys/class/infiniband_mad", "issm"),
    ];
    for (class_dir, prefix) in kinds {
        let dir = root.join(class_dir);
        let mut found: Vec<(u64, String)> = Vec::new();
        for entry in list_dir(&dir)?.unwrap_or_default() {
            // Skip e.g. `abi_version`.
            let Some(n) = entry
                .strip_prefix(prefix)
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let ibdev = dir.join(&entry).join("ibdev");
            let hca = std::fs::read_to_string(&ibdev)
                .map_err(|source| HcaError::Io {
                    path: ibdev.clone(),
                    source,
                })?
                .trim()
                .to_owned();
            found.push((n, hca));
        }
        found.sort();
        for (n, hca_name) in found {
            // A char device for an HCA not in /sys/class/infiniband is ignored.
            let Some(hca) = hcas.values_mut().find(|h| h.name == hca_name) else {
                continue;
            };
            let node = DeviceNode::read(root, &format!("/dev/infiniband/{prefix}{n}")).map_err(
                |source| HcaError::HcaNode {
                    hca: hca_name.clone(),
                    source,
                },
            )?;
            hca.devices.push(node);
        }
    }
    let rdma_cm = DeviceNode::read_optional(root, "/dev/infiniband/rdma_cm")
        .map_err(|source| HcaError::RdmaCm { source })?;
    Ok(RdmaDevices {
        hcas: hcas.into_values().collect(),
        rdma_cm,
    })
}

/// Entry names of `dir`, or `None` if it does not exist.
fn list_dir(dir: &Path) -> Result<Option<Vec<String>>, HcaError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HcaError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| HcaError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(Some(names))
}

/// The basename of the `device` symlink's target, normalized.
fn bus_id(hca_dir: &Path) -> Result<Option<String>, HcaError> {
    let link = hca_dir.join("device");
    let target = match std::fs::read_link(&link) {
        Ok(target) => target,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(HcaError::Io { path: link, source }),
    };
    let base = target
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::selection::normalize_bus_id(&base)
        .map(Some)
        .ok_or(HcaError::Invalid {
            path: link,
            value: target.display().to_string(),
        })
}

fn numa_node(path: &Path) -> Result<Option<u32>, HcaError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HcaError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let value: i64 = text.trim().parse().map_err(|_| HcaError::Invalid {
        path: path.to_path_buf(),
        value: text.trim().to_owned(),
    })?;
    Ok(u32::try_from(value).ok())
}

/// Sort key: name without trailing digits, then the trailing number;
/// the full name breaks ties (`mlx5_0` vs `mlx5_00`).
fn natural_key(name: &str) -> (String, u64, String) {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let number = name[stem.len()..].parse().unwrap_or(u64::MAX);
    (stem.to_owned(), number, name.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::{chardev, require_root, symlink, write};

    /// mlx5_0 at 0000:05:00.0 on NUMA node 0, mlx5_1 at 0000:af:00.0 on node 1,
    /// with uverbs/umad/issm nodes and rdma_cm.
    pub fn two_hca_fixture(root: &Path) {
        for (i, (name, bus, numa)) in [
            ("mlx5_0", "0000:05:00.0", "0"),
            ("mlx5_1", "0000:af:00.0", "1"),
        ]
        .into_iter()
        .enumerate()
        {
            let pci = format!("sys/devices/pci0000:00/0000:00:02.0/{bus}");
            write(root, &format!("{pci}/numa_node"), &format!("{numa}\n"));
            write(
                root,
                &format!("sys/class/infiniband/{name}/node_type"),
                "1: CA\n",
            );
            symlink(
                root,
                &format!("sys/class/infiniband/{name}/device"),
                &format!("../../../devices/pci0000:00/0000:00:02.0/{bus}"),
            );
            let n = i as u64;
            write(
                root,
                &format!("sys/class/infiniband_verbs/uverbs{n}/ibdev"),
                &format!("{name}\n"),
            );
            write(
                root,
                &format!("sys/class/infiniband_mad/umad{n}/ibdev"),
                &format!("{name}\n"),
            );
            write(
                root,
                &format!("sys/class/infiniband_mad/issm{n}/ibdev"),
                &format!("{name}\n"),
            );
            chardev(root, &format!("dev/infiniband/uverbs{n}"), 231, 192 + n);
            chardev(root, &format!("dev/infiniband/umad{n}"), 231, n);
            chardev(root, &format!("dev/infiniband/issm{n}"), 231, 64 + n);
        }
        write(root, "sys/class/infiniband_verbs/abi_version", "6\n");
        write(root, "sys/class/infiniband_mad/abi_version", "5\n");
        chardev(root, "dev/infiniband/rdma_cm", 10, 58);
    }

    fn summary(hca: &Hca) -> Vec<(String, u64, u64)> {
        hca.devices
            .iter()
            .map(|d| (d.path.display().to_string(), d.major, d.minor))
            .collect()
    }

    #[test]
    fn discovers_two_hcas() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_hca_fixture(dir.path());
        let found = discover_hcas(dir.path()).expect("discover");
        assert_eq!(found.hcas.len(), 2);
        let h0 = &found.hcas[0];
        assert_eq!(h0.name, "mlx5_0");
        assert_eq!(h0.bus_id.as_deref(), Some("0000:05:00.0"));
        assert_eq!(h0.numa_node, Some(0));
        assert_eq!(
            summary(h0),
            [
                ("/dev/infiniband/uverbs0".to_owned(), 231, 192),
                ("/dev/infiniband/umad0".to_owned(), 231, 0),
                ("/dev/infiniband/issm0".to_owned(), 231, 64),
            ]
        );
        let h1 = &found.hcas[1];
        assert_eq!(h1.name, "mlx5_1");
        assert_eq!(h1.bus_id.as_deref(), Some("0000:af:00.0"));
        assert_eq!(h1.numa_node, Some(1));
        assert_eq!(
            summary(h1),
            [
                ("/dev/infiniband/uverbs1".to_owned(), 231, 193),
                ("/dev/infiniband/umad1".to_owned(), 231, 1),
                ("/dev/infiniband/issm1".to_owned(), 231, 65),
            ]
        );
        let cm = found.rdma_cm.expect("rdma_cm");
        assert_eq!((cm.major, cm.minor), (10, 58));
        assert_eq!(cm.host_path, dir.path().join("dev/infiniband/rdma_cm"));
    }

    #[test]
    fn unknown_numa_node_and_missing_rdma_cm() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_hca_fixture(dir.path());
        write(
            dir.path(),
            "sys/devices/pci0000:00/0000:00:02.0/0000:af:00.0/numa_node",
            "-1\n",
        );
        std::fs::remove_file(dir.path().join("dev/infiniband/rdma_cm")).expect("rm");
        let found = discover_hcas(dir.path()).expect("discover");
        assert_eq!(found.hcas[1].numa_node, None);
        assert_eq!(found.rdma_cm, None);
    }

    #[test]
    fn no_infiniband_class_means_no_hcas() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            discover_hcas(dir.path()).expect("discover"),
            RdmaDevices::default()
        );
        std::fs::create_dir_all(dir.path().join("sys/class/infiniband")).expect("mkdir");
        assert_eq!(
            discover_hcas(dir.path()).expect("discover"),
            RdmaDevices::default()
        );
    }

    #[test]
    fn symlinked_uverbs_node_is_refused() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_hca_fixture(dir.path());
        std::fs::remove_file(dir.path().join("dev/infiniband/uverbs1")).expect("rm");
        symlink(dir.path(), "dev/infiniband/uverbs1", "uverbs0");
        let err = discover_hcas(dir.path()).expect_err("symlink refused");
        assert!(
            matches!(&err, HcaError::HcaNode { hca, source: DeviceError::Symlink { .. } } if hca == "mlx5_1"),
            "{err:?}"
        );
    }

    #[test]
    fn natural_order() {
        let mut names = ["mlx5_10", "mlx5_2", "hfi1_0", "mlx5_0"];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(names, ["hfi1_0", "mlx5_0", "mlx5_2", "mlx5_10"]);
    }
}

//! Hugepage pools per NUMA node, from sysfs.
//!
//! The kernel keeps one directory per page size and node:
//! `<root>/sys/devices/system/node/node<N>/hugepages/hugepages-<size>kB/`
//! with `nr_hugepages` (the pool) and `free_hugepages`. On kernels built
//! without NUMA there is no `node<N>` directory; a single-node topology then
//! reads the global pools in `<root>/sys/kernel/mm/hugepages/`.
//!
//! `root` is "/" on a live machine and a directory tree in tests.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::TopologyError;
use crate::model::{HugepagePool, Topology};

/// Replaces the hugepage pools of every NUMA node that sysfs describes.
/// Nodes without a sysfs directory keep what they had (e.g. what hwloc read
/// from an XML file).
pub fn read(root: &Path, topology: &mut Topology) -> Result<(), TopologyError> {
    let single = topology.numa_nodes.len() == 1;
    for node in &mut topology.numa_nodes {
        let dir = root.join(format!(
            "sys/devices/system/node/node{}/hugepages",
            node.os_index
        ));
        if let Some(pools) = read_dir(&dir)? {
            node.hugepages = pools;
        } else if single {
            if let Some(pools) = read_dir(&root.join("sys/kernel/mm/hugepages"))? {
                node.hugepages = pools;
            }
        }
    }
    Ok(())
}

/// The pools in one `hugepages` directory, smallest page first; `None` when
/// the directory does not exist.
pub fn read_dir(dir: &Path) -> Result<Option<Vec<HugepagePool>>, TopologyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TopologyError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut pools = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| TopologyError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(size_kb) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hugepages-"))
            .and_then(|n| n.strip_suffix("kB"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let pool_dir = entry.path();
        pools.push(HugepagePool {
            size_kb,
            total: number(pool_dir.join("nr_hugepages"))?,
            free: number(pool_dir.join("free_hugepages"))?,
        });
    }
    pools.sort_by_key(|p| p.size_kb);
    Ok(Some(pools))
}

fn number(path: PathBuf) -> Result<u64, TopologyError> {
    let text = std::fs::read_to_string(&path).map_err(|source| TopologyError::Read {
        path: path.clone(),
        source,
    })?;
    text.trim().parse().map_err(|source| TopologyError::Number {
        value: text.trim().to_string(),
        path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MemoryKind, NumaNode};
    use pinc_cpulist::CpuList;
    use std::fs;

    fn node(os_index: u32) -> NumaNode {
        NumaNode {
            os_index,
            memory: 0,
            kind: MemoryKind::Dram,
            cpus: CpuList::new(),
            near_cpus: CpuList::new(),
            hugepages: vec![HugepagePool {
                size_kb: 2048,
                total: 7,
                free: 7,
            }],
        }
    }

    fn pool(root: &Path, rel: &str, size_kb: u64, total: &str, free: &str) {
        let dir = root.join(rel).join(format!("hugepages-{size_kb}kB"));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("nr_hugepages"), total).expect("write nr");
        fs::write(dir.join("free_hugepages"), free).expect("write free");
        fs::write(dir.join("surplus_hugepages"), "0\n").expect("write surplus");
    }

    #[test]
    fn reads_per_node_pools() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let n0 = "sys/devices/system/node/node0/hugepages";
        let n4 = "sys/devices/system/node/node4/hugepages";
        pool(root, n0, 2048, "2048\n", "2000\n");
        pool(root, n0, 1048576, "4\n", "1\n");
        pool(root, n4, 2048, "16\n", "16\n");
        pool(root, n4, 1048576, "0\n", "0\n");
        fs::write(root.join(n0).join("README"), "not a pool").expect("write");

        let mut t = Topology {
            numa_nodes: vec![node(0), node(4), node(5)],
            ..Topology::default()
        };
        read(root, &mut t).expect("read");
        let n0 = &t.numa_nodes[0].hugepages;
        assert_eq!(
            n0,
            &vec![
                HugepagePool {
                    size_kb: 2048,
                    total: 2048,
                    free: 2000
                },
                HugepagePool {
                    size_kb: 1048576,
                    total: 4,
                    free: 1
                },
            ]
        );
        assert_eq!(t.numa_nodes[1].hugepages[0].total, 16);
        assert_eq!(t.numa_nodes[1].hugepages[1].total, 0);
        // No sysfs directory for node 5: left alone.
        assert_eq!(t.numa_nodes[2].hugepages, node(5).hugepages);
    }

    #[test]
    fn single_node_without_numa_uses_global_pools() {
        let tmp = tempfile::tempdir().expect("tempdir");
        pool(tmp.path(), "sys/kernel/mm/hugepages", 2048, "8", "3");
        let mut t = Topology {
            numa_nodes: vec![node(0)],
            ..Topology::default()
        };
        read(tmp.path(), &mut t).expect("read");
        assert_eq!(
            t.numa_nodes[0].hugepages,
            vec![HugepagePool {
                size_kb: 2048,
                total: 8,
                free: 3
            }]
        );
    }

    #[test]
    fn garbage_names_the_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        pool(
            tmp.path(),
            "sys/devices/system/node/node0/hugepages",
            2048,
            "lots\n",
            "0\n",
        );
        let mut t = Topology {
            numa_nodes: vec![node(0)],
            ..Topology::default()
        };
        let err = read(tmp.path(), &mut t).expect_err("garbage");
        let msg = err.to_string();
        assert!(
            msg.contains("nr_hugepages") && msg.contains("lots"),
            "{msg}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}

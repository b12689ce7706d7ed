//! All CDI devices defined in a list of spec directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::spec::{read_spec, CdiDevice, CdiSpec};
use super::CdiError;

/// The standard CDI directories, lowest priority first: static specs in
/// `/etc/cdi`, then generated ones in `/var/run/cdi` which override them.
pub fn default_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")]
}

/// A spec file and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadedSpec {
    pub(crate) path: PathBuf,
    pub(crate) spec: CdiSpec,
}

/// Where a fully qualified device is defined: indexes into `Registry::specs`
/// and that spec's `devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) spec: usize,
    pub(crate) device: usize,
}

/// Every CDI device found in a list of directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    pub(crate) specs: Vec<LoadedSpec>,
    /// Fully qualified name (`vendor.com/class=name`) to its definition.
    pub(crate) devices: BTreeMap<String, Entry>,
}

impl Registry {
    /// Reads every `*.json`, `*.yaml` and `*.yml` file of each directory
    /// (files in name order; a missing directory is skipped).
    ///
    /// A device defined in a later directory replaces the one of an earlier
    /// directory (CDI's priority rule), but two files of one directory
    /// defining the same device is an error, as is any unreadable or invalid
    /// file: a broken spec should be fixed, not half used.
    pub fn load(dirs: &[PathBuf]) -> Result<Registry, CdiError> {
        let mut registry = Registry::default();
        for dir in dirs {
            let mut in_dir: BTreeMap<String, usize> = BTreeMap::new();
            for path in spec_files(dir)? {
                let spec = read_spec(&path)?;
                let index = registry.specs.len();
                for (device, d) in spec.devices.iter().enumerate() {
                    let name = format!("{}={}", spec.kind, d.name);
                    if let Some(&first) = in_dir.get(&name) {
                        return Err(CdiError::Duplicate {
                            device: name,
                            first: registry.specs[first].path.clone(),
                            second: path,
                        });
                    }
                    in_dir.insert(name.clone(), index);
                    registry.devices.insert(
                        name,
                        Entry {
                            spec: index,
                            device,
                        },
                    );
                }
                registry.specs.push(LoadedSpec { path, spec });
            }
        }
        Ok(registry)
    }

    /// The fully qualified names of all devices, sorted.
    pub fn device_names(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// A device by fully qualified name, with its spec and the spec's file.
    pub fn device(&self, qualified: &str) -> Option<(&Path, &CdiSpec, &CdiDevice)> {
        let entry = self.devices.get(qualified)?;
        let loaded = self.specs.get(entry.spec)?;
        let device = loaded.spec.devices.get(entry.device)?;
        Some((&loaded.path, &loaded.spec, device))
    }

    /// Fully qualified names of the devices of `kind` (`vendor.com/class`).
    pub(crate) fn names_of_kind(&self, kind: &str) -> Vec<String> {
        self.devices
            .keys()
            .filter(|name| name.split_once('=').is_some_and(|(k, _)| k == kind))
            .cloned()
            .collect()
    }
}

/// The spec files of `dir` in name order; none if `dir` does not exist.
fn spec_files(dir: &Path) -> Result<Vec<PathBuf>, CdiError> {
    let io = |source| CdiError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        let wanted = path
            .extension()
            .is_some_and(|e| e == "json" || e == "yaml" || e == "yml");
        if !wanted {
            continue;
        }
        // Follows symlinks: a link to a spec file is a spec file; a
        // directory named like one is not.
        let meta = std::fs::metadata(&path).map_err(|source| CdiError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::write;

    fn spec(kind: &str, names: &[&str], value: &str) -> String {
        let devices: Vec<String> = names
            .iter()
            .map(|n| format!(r#"{{"name": "{n}", "containerEdits": {{"env": ["FROM={value}"]}}}}"#))
            .collect();
        format!(
            r#"{{"cdiVersion": "0.6.0", "kind": "{kind}", "devices": [{}]}}"#,
            devices.join(",")
        )
    }

    fn env_of(registry: &Registry, name: &str) -> String {
        let (_, _, device) = registry.device(name).expect(name);
        device.container_edits.env[0].clone()
    }

    #[test]
    fn loads_json_and_yaml_and_skips_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "etc/a.json",
            &spec("nvidia.com/gpu", &["0", "1"], "a"),
        );
        write(
            dir.path(),
            "etc/b.yaml",
            "cdiVersion: 0.5.0\nkind: vendor.com/nic\ndevices:\n  - name: eth0\n    containerEdits:\n      env: [NIC=1]\n",
        );
        write(
            dir.path(),
            "etc/c.yml",
            &spec("vendor.com/fpga", &["f0"], "c"),
        );
        write(dir.path(), "etc/README", "not a spec");
        write(dir.path(), "etc/old.json.bak", "{");
        std::fs::create_dir(dir.path().join("etc/dir.json")).expect("mkdir");
        let registry =
            Registry::load(&[dir.path().join("missing"), dir.path().join("etc")]).expect("load");
        assert_eq!(
            registry.device_names(),
            [
                "nvidia.com/gpu=0",
                "nvidia.com/gpu=1",
                "vendor.com/fpga=f0",
                "vendor.com/nic=eth0"
            ]
        );
        let (path, spec, _) = registry.device("vendor.com/nic=eth0").expect("nic");
        assert_eq!(path, dir.path().join("etc/b.yaml"));
        assert_eq!(spec.kind, "vendor.com/nic");
        assert!(registry.device("vendor.com/nic=eth1").is_none());
        assert_eq!(
            registry.names_of_kind("nvidia.com/gpu"),
            ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
        );
        assert!(Registry::load(&[]).expect("no dirs").is_empty());
    }

    #[test]
    fn later_dirs_have_priority() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "etc/cdi/gpu.json",
            &spec("nvidia.com/gpu", &["0", "1"], "etc"),
        );
        write(
            dir.path(),
            "run/cdi/gpu.yaml",
            &spec("nvidia.com/gpu", &["1", "2"], "run"),
        );
        let dirs = [dir.path().join("etc/cdi"), dir.path().join("run/cdi")];
        let registry = Registry::load(&dirs).expect("load");
        assert_eq!(env_of(&registry, "nvidia.com/gpu=0"), "FROM=etc");
        assert_eq!(env_of(&registry, "nvidia.com/gpu=1"), "FROM=run");
        assert_eq!(env_of(&registry, "nvidia.com/gpu=2"), "FROM=run");
        // Reversed, the other directory wins.
        let reversed = [dirs[1].clone(), dirs[0].clone()];
        let registry = Registry::load(&reversed).expect("load");
        assert_eq!(env_of(&registry, "nvidia.com/gpu=1"), "FROM=etc");
    }

    #[test]
    fn same_device_twice_in_one_dir_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = write(dir.path(), "a.json", &spec("nvidia.com/gpu", &["0"], "a"));
        let b = write(
            dir.path(),
            "b.json",
            &spec("nvidia.com/gpu", &["1", "0"], "b"),
        );
        let err = Registry::load(&[dir.path().to_path_buf()]).expect_err("duplicate");
        assert!(matches!(err, CdiError::Duplicate { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "CDI device nvidia.com/gpu=0 is defined by both {} and {} (same directory)",
                a.display(),
                b.display()
            )
        );
    }

    #[test]
    fn bad_file_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.json", &spec("nvidia.com/gpu", &["0"], "a"));
        let bad = write(
            dir.path(),
            "bad.yaml",
            "cdiVersion: 0.6.0\nkind: vendor.com/x\ndevices:\n  - name: x y\n    containerEdits: {env: [A=1]}\n",
        );
        let err = Registry::load(&[dir.path().to_path_buf()]).expect_err("invalid name");
        assert_eq!(
            err.to_string(),
            format!(
                "CDI spec {}: devices[0].name: device name \"x y\" contains ' ' (allowed: A-Z a-z 0-9 . - _ :)",
                bad.display()
            )
        );
        write(
            dir.path(),
            "bad.yaml",
            "cdiVersion: 0.6.0\nkind: vendor.com/x\ndevices:\n  - nme: x\n",
        );
        let err = Registry::load(&[dir.path().to_path_buf()]).expect_err("unknown field");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("CDI spec {}: ", bad.display())),
            "{text}"
        );
        assert!(text.contains("nme") && text.contains("line 4"), "{text}");
        assert!(!text.contains('\n'), "{text}");

        // A regular file where a directory is expected is not "missing".
        let file = write(dir.path(), "plain", "");
        let err = Registry::load(std::slice::from_ref(&file)).expect_err("not a dir");
        assert!(
            matches!(err, CdiError::Io { ref path, .. } if *path == file),
            "{err:?}"
        );
    }
}

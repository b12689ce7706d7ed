//! The shim's own configuration.
//!
//! containerd sends every runtime type other than `io.containerd.runc.v2` a
//! `runtimeoptions.v1.Options{type_url, config_path, config_body}` in Create's
//! options; `config_path` names a JSON file:
//!
//! ```json
//! {"binary": "/usr/local/bin/pinc", "root": "/run/containerd/pinc",
//!  "systemd_cgroup": false, "debug": false}
//! ```
//!
//! Every key is optional. Without `binary`, pinc is looked up beside the shim
//! binary, then on PATH. Without `root`, the state root is
//! `/run/containerd/pinc/<namespace>` (as runc's shim uses `/run/containerd/runc/<ns>`).

use std::path::{Path, PathBuf};

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::CodedInputStream;
use serde::{Deserialize, Serialize};

use crate::errors::{Error, Result};

/// Where the shim keeps runtime state by default (one folder per namespace).
pub const DEFAULT_ROOT: &str = "/run/containerd/pinc";

/// The file in the bundle holding the config Create used.
const SAVED: &str = "pinc-shim.json";

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ShimConfig {
    /// Path of the pinc binary.
    pub binary: Option<PathBuf>,
    /// State root passed as `pinc --root`; the namespace is appended.
    pub root: Option<PathBuf>,
    /// Pass `--systemd-cgroup` to pinc.
    pub systemd_cgroup: bool,
    /// Pass `--debug` to pinc.
    pub debug: bool,
}

impl ShimConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(Error::io("failed to read shim config", path))?;
        serde_json::from_slice(&text).map_err(|source| Error::Json {
            what: "the shim config",
            source,
        })
    }

    /// Kept in the bundle for `containerd-shim-pinc-v2 delete`, which runs
    /// after the shim died and gets no options. Written whole or not at all
    /// (a shim killed mid-write must not leave a torn file that sends the
    /// cleanup to the default root).
    pub fn save(&self, bundle: &Path) -> Result<()> {
        let path = bundle.join(SAVED);
        let tmp = bundle.join(format!("{SAVED}.tmp"));
        let text = serde_json::to_vec(self).map_err(|source| Error::Json {
            what: "the shim config",
            source,
        })?;
        std::fs::write(&tmp, text).map_err(Error::io("failed to write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io("failed to rename to", &path))
    }

    /// The config saved by [`ShimConfig::save`], or the default.
    pub fn saved(bundle: &Path) -> Self {
        Self::load(&bundle.join(SAVED)).unwrap_or_default()
    }

    /// The config named by Create's options, if any.
    pub fn from_options(options: Option<&Any>) -> Result<Self> {
        let Some(any) = options else {
            return Ok(Self::default());
        };
        if !any.type_url.ends_with("runtimeoptions.v1.Options") {
            // runc's options (io.containerd.runc.v1.Options) are not ours.
            return Ok(Self::default());
        }
        let opts = RuntimeOptions::decode(&any.value)?;
        if !opts.config_body.is_empty() {
            return serde_json::from_slice(&opts.config_body).map_err(|source| Error::Json {
                what: "the shim config body",
                source,
            });
        }
        if opts.config_path.is_empty() {
            return Ok(Self::default());
        }
        Self::load(Path::new(&opts.config_path))
    }

    /// `pinc`: configured, else beside the shim binary, else on PATH.
    pub fn pinc_binary(&self) -> PathBuf {
        if let Some(b) = &self.binary {
            return b.clone();
        }
        let beside = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("pinc")));
        if let Some(p) = beside.filter(|p| p.is_file()) {
            return p;
        }
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("pinc"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("pinc"))
    }

    pub fn state_root(&self, namespace: &str) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
            .join(namespace)
    }
}

/// `runtimeoptions.v1.Options` (github.com/containerd/containerd/pkg/runtimeoptions/v1):
/// 1 = type_url, 2 = config_path, 3 = config_body. Not among the crate's protos.
/// `pub(crate)` for the fuzz target that compiles this module in.
#[derive(Debug, Default)]
pub(crate) struct RuntimeOptions {
    pub(crate) config_path: String,
    pub(crate) config_body: Vec<u8>,
}

impl RuntimeOptions {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let err = |source| Error::Protobuf {
            what: "runtimeoptions.v1.Options",
            source,
        };
        let mut input = CodedInputStream::from_bytes(bytes);
        let mut out = Self::default();
        while let Some(tag) = input.read_raw_tag_or_eof().map_err(err)? {
            match tag {
                // field 2, wire type 2 (length-delimited)
                0x12 => out.config_path = input.read_string().map_err(err)?,
                0x1a => out.config_body = input.read_bytes().map_err(err)?,
                _ => input
                    .skip_field(
                        containerd_shim::protos::protobuf::rt::WireType::new(tag & 7).ok_or_else(
                            || {
                                Error::InvalidArgument(format!(
                                    "bad wire type in runtime options tag {tag}"
                                ))
                            },
                        )?,
                    )
                    .map_err(err)?,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_runtime_options() {
        // type_url "t", config_path "/etc/p.json"
        let mut bytes = vec![0x0a, 1, b't', 0x12, 11];
        bytes.extend_from_slice(b"/etc/p.json");
        let o = RuntimeOptions::decode(&bytes).expect("decode");
        assert_eq!(o.config_path, "/etc/p.json");
    }

    #[test]
    fn saved_config_round_trips_and_a_torn_one_is_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ShimConfig {
            root: Some(PathBuf::from("/x/root")),
            ..Default::default()
        };
        c.save(dir.path()).expect("save");
        assert_eq!(ShimConfig::saved(dir.path()), c);
        assert!(!dir.path().join(format!("{SAVED}.tmp")).exists());
        std::fs::write(dir.path().join(SAVED), b"{\"root\": \"/x").expect("write");
        assert_eq!(ShimConfig::saved(dir.path()), ShimConfig::default());
    }

    #[test]
    fn parses_config() {
        let c: ShimConfig =
            serde_json::from_str(r#"{"binary":"/x/pinc","systemd_cgroup":true}"#).expect("json");
        assert_eq!(c.binary, Some(PathBuf::from("/x/pinc")));
        assert!(c.systemd_cgroup);
        assert_eq!(
            c.state_root("k8s.io"),
            PathBuf::from("/run/containerd/pinc/k8s.io")
        );
    }
}

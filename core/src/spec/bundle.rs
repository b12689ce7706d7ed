//! Loading a bundle's config.json with errors a person can act on.

use std::fs;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;

/// What is wrong with a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {path} does not exist")]
    Missing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle {path} has no config.json")]
    NoConfig { path: PathBuf },
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {field}")]
    Field {
        path: PathBuf,
        /// The JSON path of the bad value, e.g. `process.rlimits[0].type`.
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: unsupported ociVersion {version:?} (pinc runs runtime-spec 1.x)")]
    Version { path: PathBuf, version: String },
    #[error("{path}: the spec has no \"root\"")]
    NoRoot { path: PathBuf },
    #[error("{path}: the spec has no \"process\"")]
    NoProcess { path: PathBuf },
    #[error("{path}: the spec has no \"linux\" section")]
    NoLinux { path: PathBuf },
    #[error("rootfs {path} does not exist or is not a directory")]
    Rootfs { path: PathBuf },
}

/// A bundle with its parsed spec. `root.path` is made absolute.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The caller's bundle directory, canonical.
    pub path: PathBuf,
    pub spec: Spec,
}

/// Parses and checks a spec file (no rootfs checks).
pub fn parse(config: &Path, bytes: &[u8]) -> Result<Spec, BundleError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|source| BundleError::Parse {
            path: config.to_path_buf(),
            source,
        })?;
    if let Some(version) = value["ociVersion"].as_str() {
        if !version.starts_with("1.") {
            return Err(BundleError::Version {
                path: config.to_path_buf(),
                version: version.to_string(),
            });
        }
    }
    crate::spec::normalize::raw(&mut value);
    // Through serde_path_to_error: the error names the field, not a column.
    let spec: Spec = serde_path_to_error::deserialize(value).map_err(|e| BundleError::Field {
        path: config.to_path_buf(),
        field: e.path().to_string(),
        source: e.into_inner(),
    })?;
    if !spec.version().starts_with("1.") {
        return Err(BundleError::Version {
            path: config.to_path_buf(),
            version: spec.version().clone(),
        });
    }
    Ok(spec)
}

/// Loads `<bundle>/config.json` for `create`/`run`.
pub fn load(bundle: &Path) -> Result<Bundle, BundleError> {
    let path = fs::canonicalize(bundle).map_err(|source| BundleError::Missing {
        path: bundle.to_path_buf(),
        source,
    })?;
    let config = path.join("config.json");
    let bytes = match fs::read(&config) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::NoConfig { path })
        }
        Err(source) => {
            return Err(BundleError::Read {
                path: config,
                source,
            })
        }
    };
    let mut spec = parse(&config, &bytes)?;
    if spec.process().is_none() {
        return Err(BundleError::NoProcess { path: config });
    }
    if spec.linux().is_none() {
        return Err(BundleError::NoLinux { path: config });
    }
    let root = spec.root().clone().ok_or_else(|| BundleError::NoRoot {
        path: config.clone(),
    })?;
    let rootfs = path.join(root.path());
    if !rootfs.is_dir() {
        return Err(BundleError::Rootfs { path: rootfs });
    }
    let mut root = root;
    root.set_path(rootfs);
    spec.set_root(Some(root));
    Ok(Bundle { path, spec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("rootfs")).expect("rootfs");
        fs::write(dir.path().join("config.json"), config).expect("config");
        dir
    }

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0}},"linux":{}}"#;

    #[test]
    fn loads_and_absolutises_root() {
        let dir = bundle_with(MINIMAL);
        let bundle = load(dir.path()).expect("load");
        let root = bundle.spec.root().as_ref().expect("root");
        assert!(root.path().is_absolute());
        assert!(root.path().ends_with("rootfs"));
    }

    #[test]
    fn errors_name_the_problem() {
        let missing = load(Path::new("/nonexistent/bundle")).expect_err("missing");
        assert!(
            missing.to_string().contains("/nonexistent/bundle"),
            "{missing}"
        );

        let dir = bundle_with("{ not json");
        let err = load(dir.path()).expect_err("malformed");
        assert!(err.to_string().contains("malformed"), "{err}");
        // The parser's position is the source, named once (by the printer).
        let cause = std::error::Error::source(&err).expect("cause").to_string();
        assert!(cause.contains("line 1"), "{cause}");
        assert!(!err.to_string().contains("line 1"), "{err}");

        let dir = bundle_with(&MINIMAL.replace("1.0.2", "0.9.0"));
        let err = load(dir.path()).expect_err("version");
        assert!(err.to_string().contains("0.9.0"), "{err}");

        let dir = bundle_with(&MINIMAL.replace("\"rootfs\"", "\"nope\""));
        let err = load(dir.path()).expect_err("rootfs");
        assert!(err.to_string().contains("nope"), "{err}");

        let dir = bundle_with(&MINIMAL.replace(
            r#""user""#,
            r#""rlimits":[{"type":"RLIMIT_FOO","hard":1,"soft":1}],"user""#,
        ));
        let err = load(dir.path()).expect_err("bad enum");
        assert!(
            err.to_string()
                .ends_with("config.json: process.rlimits[0].type"),
            "{err}"
        );
        let cause = std::error::Error::source(&err).expect("cause").to_string();
        assert!(cause.starts_with("unknown variant"), "{cause}");

        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(dir.path()).expect_err("no config");
        assert!(err.to_string().contains("no config.json"), "{err}");
    }
}

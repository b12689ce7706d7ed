//! The CDI spec file model, cdiVersion 0.5.0 to 0.8.0, with validation.
//!
//! Unknown fields are rejected rather than ignored: a misspelt or newer field
//! silently dropped would leave a device half set up in the container.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use pinc_request::cdi::{check_device_name, check_kind};

use super::CdiError;

/// Oldest and newest minor versions (of 0.x.y) pinc reads.
const MIN_MINOR: u64 = 5;
const MAX_MINOR: u64 = 8;

/// Hook names a CDI spec may use (the OCI hook lists).
pub const HOOK_NAMES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// One CDI spec file: a kind of device and the devices of that kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CdiSpec {
    pub cdi_version: String,
    /// `vendor.com/class`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub devices: Vec<CdiDevice>,
    /// Applied once when any device of this spec is requested.
    #[serde(default, skip_serializing_if = "ContainerEdits::is_empty")]
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CdiDevice {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

/// Edits to the OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerEdits {
    /// `KEY=VALUE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<CdiDeviceNode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<CdiHook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<CdiMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<CdiIntelRdt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

impl ContainerEdits {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.device_nodes.is_empty()
            && self.hooks.is_empty()
            && self.mounts.is_empty()
            && self.intel_rdt.is_none()
            && self.additional_gids.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CdiDeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host; `path` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// `c`, `b`, `u` or `p`; read from the host node when absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    /// Device-cgroup access, a combination of `r`, `w`, `m`; `rwm` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CdiHook {
    /// One of [`HOOK_NAMES`].
    pub hook_name: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Seconds; must be positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CdiMount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

impl CdiMount {
    /// A bind mount: no type (CDI producers leave it out for binds), type
    /// `bind`, or a `bind`/`rbind` option.
    pub fn is_bind(&self) -> bool {
        matches!(self.typ.as_deref(), None | Some("bind"))
            || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdiIntelRdt {
    #[serde(default, rename = "closID", skip_serializing_if = "Option::is_none")]
    pub clos_id: Option<String>,
    #[serde(
        default,
        rename = "l3CacheSchema",
        skip_serializing_if = "Option::is_none"
    )]
    pub l3_cache_schema: Option<String>,
    #[serde(
        default,
        rename = "memBwSchema",
        skip_serializing_if = "Option::is_none"
    )]
    pub mem_bw_schema: Option<String>,
    #[serde(default, rename = "enableCMT", skip_serializing_if = "Option::is_none")]
    pub enable_cmt: Option<bool>,
    #[serde(default, rename = "enableMBM", skip_serializing_if = "Option::is_none")]
    pub enable_mbm: Option<bool>,
}

/// Reads and validates one spec file; `.json` is parsed as JSON (for its
/// better messages), anything else as YAML.
pub fn read_spec(path: &Path) -> Result<CdiSpec, CdiError> {
    let text = std::fs::read_to_string(path).map_err(|source| CdiError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_spec(path, &text)
}

/// Parses and validates spec `text`; `path` picks the format by extension
/// and names the file in errors.
pub fn parse_spec(path: &Path, text: &str) -> Result<CdiSpec, CdiError> {
    let spec: CdiSpec = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|source| CdiError::Json {
            path: path.to_path_buf(),
            source,
        })?
    } else {
        serde_norway::from_str(text).map_err(|source| CdiError::Yaml {
            path: path.to_path_buf(),
            source,
        })?
    };
    spec.validate(path)?;
    Ok(spec)
}

/// A validation failure before the file name is attached.
struct Violation {
    field: String,
    reason: String,
}

fn violation(field: impl Into<String>, reason: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        reason: reason.into(),
    }
}

impl CdiSpec {
    /// The `(vendor, class)` of `kind`, which [`CdiSpec::validate`] checked.
    pub fn vendor_class(&self) -> (&str, &str) {
        self.kind.split_once('/').unwrap_or((&self.kind, ""))
    }

    /// Checks the version, names and edits; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), CdiError> {
        let minor =
            supported_minor(&self.cdi_version).ok_or_else(|| CdiError::UnsupportedVersion {
                path: path.to_path_buf(),
                version: self.cdi_version.clone(),
            })?;
        self.check(minor).map_err(|v| CdiError::Invalid {
            path: path.to_path_buf(),
            field: v.field,
            reason: v.reason,
        })
    }

    fn check(&self, minor: u64) -> Result<(), Violation> {
        let (_, class) = check_kind(&self.kind).map_err(|r| violation("kind", r))?;
        // Features newer than the declared version mean a confused producer;
        // the reference implementation refuses these files too.
        let needs = |feature: &str, needed: u64| -> Result<(), Violation> {
            if minor < needed {
                return Err(violation(
                    "cdiVersion",
                    format!(
                        "{} does not have {feature} (needs 0.{needed}.0 or later)",
                        self.cdi_version
                    ),
                ));
            }
            Ok(())
        };
        if class.contains('.') {
            needs("dots in the class name", 6)?;
        }
        if !self.annotations.is_empty() {
            needs("annotations", 6)?;
        }
        if self.devices.is_empty() {
            return Err(violation(
                "devices",
                "a spec must define at least one device",
            ));
        }
        check_edits("containerEdits", &self.container_edits)?;
        edit_versions(&self.container_edits, &needs)?;
        for (i, device) in self.devices.iter().enumerate() {
            let field = format!("devices[{i}]");
            check_device_name(&device.name).map_err(|r| violation(format!("{field}.name"), r))?;
            if let Some(j) = self.devices[..i].iter().position(|d| d.name == device.name) {
                return Err(violation(
                    format!("{field}.name"),
                    format!("device {:?} is also devices[{j}]", device.name),
                ));
            }
            if !device.annotations.is_empty() {
                needs("annotations", 6)?;
            }
            if device.container_edits.is_empty() {
                return Err(violation(
                    format!("{field}.containerEdits"),
                    "a device must have at least one edit",
                ));
            }
            check_edits(&format!("{field}.containerEdits"), &device.container_edits)?;
            edit_versions(&device.container_edits, &needs)?;
        }
        Ok(())
    }
}

fn edit_versions(
    edits: &ContainerEdits,
    needs: &dyn Fn(&str, u64) -> Result<(), Violation>,
) -> Result<(), Violation> {
    if edits.intel_rdt.is_some() {
        needs("intelRdt", 7)?;
    }
    if !edits.additional_gids.is_empty() {
        needs("additionalGids", 7)?;
    }
    Ok(())
}

/// The minor version if `version` is 0.5.x to 0.8.x.
fn supported_minor(version: &str) -> Option<u64> {
    let mut parts = version.split('.');
    let mut number = || -> Option<u64> {
        let p = parts.next()?;
        // Plain decimal digits only: no signs, pre-release or build suffixes.
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (major, minor, _patch) = (number()?, number()?, number()?);
    if parts.next().is_some() || major != 0 || !(MIN_MINOR..=MAX_MINOR).contains(&minor) {
        return None;
    }
    Some(minor)
}

fn check_env(field: &str, env: &[String]) -> Result<(), Violation> {
    for (i, entry) in env.iter().enumerate() {
        if entry.find('=').is_none_or(|at| at == 0) {
            return Err(violation(
                format!("{field}[{i}]"),
                format!("{entry:?} is not KEY=VALUE"),
            ));
        }
    }
    Ok(())
}

fn check_absolute(field: &str, path: &str) -> Result<(), Violation> {
    if !path.starts_with('/') {
        return Err(violation(
            field,
            format!("{path:?} is not an absolute path"),
        ));
    }
    Ok(())
}

fn check_edits(field: &str, edits: &ContainerEdits) -> Result<(), Violation> {
    check_env(&format!("{field}.env"), &edits.env)?;
    for (i, node) in edits.device_nodes.iter().enumerate() {
        let field = format!("{field}.deviceNodes[{i}]");
        check_absolute(&format!("{field}.path"), &node.path)?;
        if let Some(host) = &node.host_path {
            check_absolute(&format!("{field}.hostPath"), host)?;
        }
        if let Some(typ) = &node.typ {
            if !matches!(typ.as_str(), "c" | "b" | "u" | "p") {
                return Err(violation(
                    format!("{field}.type"),
                    format!("{typ:?} is not one of c, b, u, p"),
                ));
            }
        }
        for (name, number) in [("major", node.major), ("minor", node.minor)] {
            if number.is_some_and(|n| n < 0) {
                return Err(violation(format!("{field}.{name}"), "must not be negative"));
            }
        }
        if let Some(perms) = &node.permissions {
            if perms.is_empty() || !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(violation(
                    format!("{field}.permissions"),
                    format!("{perms:?} is not a combination of r, w and m"),
                ));
            }
        }
    }
    for (i, hook) in edits.hooks.iter().enumerate() {
        let field = format!("{field}.hooks[{i}]");
        if !HOOK_NAMES.contains(&hook.hook_name.as_str()) {
            return Err(violation(
                format!("{field}.hookName"),
                format!(
                    "{:?} is not one of {}",
                    hook.hook_name,
                    HOOK_NAMES.join(", ")
                ),
            ));
        }
        check_absolute(&format!("{field}.path"), &hook.path)?;
        check_env(&format!("{field}.env"), &hook.env)?;
        if hook.timeout.is_some_and(|t| t <= 0) {
            return Err(violation(format!("{field}.timeout"), "must be positive"));
        }
    }
    for (i, mount) in edits.mounts.iter().enumerate() {
        let field = format!("{field}.mounts[{i}]");
        check_absolute(&format!("{field}.containerPath"), &mount.container_path)?;
        if mount.host_path.is_empty() {
            return Err(violation(format!("{field}.hostPath"), "is empty"));
        }
        // Other mount types (tmpfs, ...) name a source that is not a path.
        if mount.is_bind() {
            check_absolute(&format!("{field}.hostPath"), &mount.host_path)?;
        }
    }
    if let Some(rdt) = &edits.intel_rdt {
        if let Some(clos) = &rdt.clos_id {
            // A resctrl group directory name, or "/" for the root group.
            let bad = clos != "/"
                && (clos.is_empty()
                    || clos == "."
                    || clos == ".."
                    || clos.len() >= 4096
                    || clos.contains(['/', '\n']));
            if bad {
                return Err(violation(
                    format!("{field}.intelRdt.closID"),
                    format!("{clos:?} is not a valid resctrl group name"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<CdiSpec, CdiError> {
        parse_spec(Path::new("/etc/cdi/test.json"), text)
    }

    fn yaml(text: &str) -> Result<CdiSpec, CdiError> {
        parse_spec(Path::new("/etc/cdi/test.yaml"), text)
    }

    const V05_JSON: &str = r#"{
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [
            {"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0", "hostPath": "/dev/nvidia0"}]}},
            {"name": "GPU-1234", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia1", "type": "c", "major": 195, "minor": 1, "permissions": "rw"}]}}
        ],
        "containerEdits": {
            "env": ["NVIDIA_VISIBLE_DEVICES=void"],
            "deviceNodes": [{"path": "/dev/nvidiactl"}],
            "hooks": [{"hookName": "createContainer", "path": "/usr/bin/nvidia-ctk", "args": ["nvidia-ctk", "hook", "update-ldcache"], "timeout": 10}],
            "mounts": [{"hostPath": "/usr/lib/libcuda.so.1", "containerPath": "/usr/lib/libcuda.so.1", "options": ["ro", "nosuid", "nodev", "bind"]}]
        }
    }"#;

    const V06_YAML: &str = "
cdiVersion: 0.6.0
kind: vendor.com/fpga.v2
annotations:
  owner: lab
devices:
  - name: card0
    annotations: {slot: '3'}
    containerEdits:
      deviceNodes:
        - path: /dev/fpga0
          type: c
          major: 240
          minor: 0
          fileMode: 0o660
          uid: 0
          gid: 44
      mounts:
        - hostPath: tmpfs
          containerPath: /run/fpga
          type: tmpfs
          options: [size=1m]
";

    const V07_YAML: &str = "
cdiVersion: 0.7.0
kind: example.com/rdt
devices:
  - name: low-latency
    containerEdits:
      intelRdt:
        closID: lowlat
        l3CacheSchema: 'L3:0=ff'
        memBwSchema: 'MB:0=50'
        enableCMT: true
        enableMBM: false
      additionalGids: [44, 0]
";

    const V08_JSON: &str = r#"{"cdiVersion": "0.8.0", "kind": "example.com/net",
        "devices": [{"name": "a:b.c_d-1", "containerEdits": {"env": ["A=1"], "additionalGids": [5]}}],
        "containerEdits": {"hooks": [{"hookName": "poststop", "path": "/bin/cleanup", "env": ["X=y"]}]}}"#;

    #[test]
    fn parses_each_version() {
        let v5 = json(V05_JSON).expect("0.5.0");
        assert_eq!(v5.vendor_class(), ("nvidia.com", "gpu"));
        assert_eq!(v5.devices.len(), 2);
        let gpu1 = &v5.devices[1].container_edits.device_nodes[0];
        assert_eq!(gpu1.typ.as_deref(), Some("c"));
        assert_eq!((gpu1.major, gpu1.minor), (Some(195), Some(1)));
        assert_eq!(gpu1.permissions.as_deref(), Some("rw"));
        assert_eq!(v5.container_edits.hooks[0].timeout, Some(10));
        assert!(v5.container_edits.mounts[0].is_bind());

        let v6 = yaml(V06_YAML).expect("0.6.0");
        assert_eq!(v6.annotations["owner"], "lab");
        assert_eq!(v6.devices[0].annotations["slot"], "3");
        let node = &v6.devices[0].container_edits.device_nodes[0];
        assert_eq!(
            (node.file_mode, node.uid, node.gid),
            (Some(0o660), Some(0), Some(44))
        );
        assert!(!v6.devices[0].container_edits.mounts[0].is_bind());

        let v7 = yaml(V07_YAML).expect("0.7.0");
        let edits = &v7.devices[0].container_edits;
        let rdt = edits.intel_rdt.as_ref().expect("intelRdt");
        assert_eq!(rdt.clos_id.as_deref(), Some("lowlat"));
        assert_eq!((rdt.enable_cmt, rdt.enable_mbm), (Some(true), Some(false)));
        assert_eq!(edits.additional_gids, [44, 0]);

        let v8 = json(V08_JSON).expect("0.8.0");
        assert_eq!(v8.devices[0].name, "a:b.c_d-1");
        assert_eq!(v8.container_edits.hooks[0].hook_name, "poststop");
    }

    #[test]
    fn json_is_read_as_yaml_too_and_round_trips() {
        let from_json = json(V05_JSON).expect("json");
        let from_yaml = yaml(V05_JSON).expect("json text is yaml");
        assert_eq!(from_json, from_yaml);
        for spec in [
            from_json,
            yaml(V06_YAML).expect("v6"),
            yaml(V07_YAML).expect("v7"),
        ] {
            let text = serde_json::to_string(&spec).expect("serialize");
            assert_eq!(json(&text).expect("reparse"), spec);
            let text = serde_norway::to_string(&spec).expect("serialize yaml");
            assert_eq!(yaml(&text).expect("reparse yaml"), spec);
        }
        let text = serde_json::to_string(&json(V08_JSON).expect("v8")).expect("serialize");
        assert!(text.contains(r#""cdiVersion":"0.8.0""#), "{text}");
        assert!(text.contains(r#""additionalGids":[5]"#), "{text}");
        assert!(
            !text.contains("annotations"),
            "empty maps are left out: {text}"
        );
    }

    #[test]
    fn rejects_unsupported_versions() {
        for version in [
            "0.2.0",
            "0.4.0",
            "0.9.0",
            "1.0.0",
            "0.5",
            "0.5.0-rc1",
            "v0.5.0",
            "",
        ] {
            let text = V08_JSON.replace("0.8.0", version);
            let err = json(&text).expect_err(version);
            assert!(
                matches!(err, CdiError::UnsupportedVersion { .. }),
                "{err:?}"
            );
        }
        let err = json(&V08_JSON.replace("0.8.0", "0.2.0")).expect_err("old");
        assert_eq!(
            err.to_string(),
            "CDI spec /etc/cdi/test.json: unsupported cdiVersion 0.2.0 (pinc reads 0.5.0 to 0.8.0)"
        );
        json(&V08_JSON.replace("0.8.0", "0.8.1")).expect("patch releases are fine");
    }

    #[test]
    fn rejects_features_newer_than_the_version() {
        let err = yaml(&V07_YAML.replace("0.7.0", "0.6.0")).expect_err("intelRdt in 0.6");
        assert!(
            err.to_string()
                .contains("cdiVersion: 0.6.0 does not have intelRdt"),
            "{err}"
        );
        let err = yaml(&V06_YAML.replace("0.6.0", "0.5.0")).expect_err("dotted class in 0.5");
        assert!(err.to_string().contains("needs 0.6.0"), "{err}");
    }

    #[test]
    fn rejects_invalid_kind_and_names() {
        for (kind, why) in [
            ("gpu", "is not vendor/class"),
            ("vendor.com/foo/bar", "contains '/'"),
            ("vendor.com/", "class \"\" is empty"),
            ("-vendor.com/gpu", "must start with a letter"),
            ("vendor..com/gpu", "empty or over-long"),
            ("vendor.com/gpu-", "must end with a letter or digit"),
        ] {
            let err = json(&V08_JSON.replace("example.com/net", kind)).expect_err(kind);
            let text = err.to_string();
            assert!(
                text.starts_with("CDI spec /etc/cdi/test.json: kind: "),
                "{text}"
            );
            assert!(text.contains(why), "{kind}: {text}");
        }
        let err = json(&V08_JSON.replace("a:b.c_d-1", "x y")).expect_err("space");
        assert_eq!(
            err.to_string(),
            "CDI spec /etc/cdi/test.json: devices[0].name: device name \"x y\" contains ' ' (allowed: A-Z a-z 0-9 . - _ :)"
        );
        for name in ["", "-a", "a-", "a/b", "a=b"] {
            json(&V08_JSON.replace("a:b.c_d-1", name)).expect_err(name);
        }
    }

    #[test]
    fn rejects_invalid_edits() {
        let base = r#"{"cdiVersion": "0.8.0", "kind": "v.com/c", "devices": [{"name": "d", "containerEdits": EDITS}]}"#;
        for (edits, field) in [
            (r#"{}"#, "devices[0].containerEdits: a device must have"),
            (r#"{"env": ["=x"]}"#, "devices[0].containerEdits.env[0]"),
            (
                r#"{"env": ["NOEQUALS"]}"#,
                "env[0]: \"NOEQUALS\" is not KEY=VALUE",
            ),
            (
                r#"{"deviceNodes": [{"path": "dev/x"}]}"#,
                "deviceNodes[0].path: \"dev/x\" is not an absolute path",
            ),
            (
                r#"{"deviceNodes": [{"path": "/dev/x", "hostPath": "x"}]}"#,
                "deviceNodes[0].hostPath",
            ),
            (
                r#"{"deviceNodes": [{"path": "/dev/x", "type": "block"}]}"#,
                "deviceNodes[0].type",
            ),
            (
                r#"{"deviceNodes": [{"path": "/dev/x", "major": -1}]}"#,
                "deviceNodes[0].major",
            ),
            (
                r#"{"deviceNodes": [{"path": "/dev/x", "permissions": "rwx"}]}"#,
                "\"rwx\" is not a combination of r, w and m",
            ),
            (
                r#"{"hooks": [{"hookName": "prestop", "path": "/x"}]}"#,
                "hooks[0].hookName: \"prestop\" is not one of prestart",
            ),
            (
                r#"{"hooks": [{"hookName": "poststop", "path": "x"}]}"#,
                "hooks[0].path",
            ),
            (
                r#"{"hooks": [{"hookName": "poststop", "path": "/x", "timeout": 0}]}"#,
                "hooks[0].timeout: must be positive",
            ),
            (
                r#"{"mounts": [{"hostPath": "lib", "containerPath": "/lib"}]}"#,
                "mounts[0].hostPath",
            ),
            (
                r#"{"mounts": [{"hostPath": "/lib", "containerPath": "lib"}]}"#,
                "mounts[0].containerPath",
            ),
            (r#"{"intelRdt": {"closID": "a/b"}}"#, "intelRdt.closID"),
        ] {
            let err = json(&base.replace("EDITS", edits)).expect_err(edits);
            assert!(matches!(err, CdiError::Invalid { .. }), "{edits}: {err:?}");
            assert!(err.to_string().contains(field), "{edits}: {err}");
        }
        let err = json(&V08_JSON.replace(r#""env": ["A=1"], "#, r#""bogus": 1, "#))
            .expect_err("unknown field");
        assert!(matches!(err, CdiError::Json { .. }), "{err:?}");
        assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
        let err = json(r#"{"cdiVersion": "0.8.0", "kind": "v.com/c"}"#).expect_err("no devices");
        assert!(
            err.to_string().contains("devices: a spec must define"),
            "{err}"
        );
        let dup = V08_JSON.replace(
            r#"[{"name": "a:b.c_d-1", "containerEdits": {"env": ["A=1"], "additionalGids": [5]}}]"#,
            r#"[{"name": "x", "containerEdits": {"env": ["A=1"]}}, {"name": "x", "containerEdits": {"env": ["A=2"]}}]"#,
        );
        let err = json(&dup).expect_err("duplicate name");
        assert!(
            err.to_string()
                .contains("devices[1].name: device \"x\" is also devices[0]"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_file_and_position() {
        let err = yaml("cdiVersion: 0.6.0\nkind: [unclosed\n").expect_err("bad yaml");
        let text = err.to_string();
        assert!(text.starts_with("CDI spec /etc/cdi/test.yaml: "), "{text}");
        assert!(text.contains("line"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        let err = json("{\"cdiVersion\": \"0.6.0\",\n \"kind\": 3}").expect_err("bad json");
        assert!(err.to_string().contains("line 2 column"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}

//! CDI device names (`vendor.com/class=name`) and how a container asks
//! for them: comma lists in `cdi.k8s.io/*` annotations. The spec files that
//! define the devices are read by `pinc_devices::cdi`.

use std::collections::HashMap;

/// Annotation key prefix under which CDI devices are requested.
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

/// A CDI device name that is not well formed.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("invalid CDI device name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("annotation {key}: invalid CDI device name {entry:?}: {reason}")]
    BadRequest {
        key: String,
        entry: String,
        reason: String,
    },
}

/// Checks `vendor.com/class`; the reason is for messages.
pub fn check_kind(kind: &str) -> Result<(&str, &str), String> {
    let Some((vendor, class)) = kind.split_once('/') else {
        return Err(format!("kind {kind:?} is not vendor/class"));
    };
    check_vendor(vendor)?;
    check_class(class)?;
    Ok((vendor, class))
}

fn check_vendor(vendor: &str) -> Result<(), String> {
    // A DNS-subdomain-like prefix, as loose as the reference implementation
    // about case and '_' (vendors use both), but without empty labels.
    let bad = |why: &str| Err(format!("vendor {vendor:?} {why}"));
    if vendor.is_empty() {
        return bad("is empty");
    }
    if vendor.len() > 253 {
        return bad("is longer than 253 characters");
    }
    if !vendor.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad("must start with a letter");
    }
    if !vendor.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must end with a letter or digit");
    }
    if let Some(c) = vendor
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return bad(&format!("contains {c:?} (allowed: A-Z a-z 0-9 . - _)"));
    }
    if vendor
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return bad("has an empty or over-long (> 63) DNS label");
    }
    Ok(())
}

fn check_class(class: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("class {class:?} {why}"));
    if class.is_empty() {
        return bad("is empty");
    }
    if class.len() > 63 {
        return bad("is longer than 63 characters");
    }
    if !class.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad("must start with a letter");
    }
    if !class.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must end with a letter or digit");
    }
    if let Some(c) = class
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return bad(&format!("contains {c:?} (allowed: A-Z a-z 0-9 . - _)"));
    }
    Ok(())
}

/// Checks a device name (the part after `=`); the reason is for messages.
pub fn check_device_name(name: &str) -> Result<(), String> {
    // The CDI spec also requires the last character to be alphanumeric.
    let bad = |why: &str| Err(format!("device name {name:?} {why}"));
    if name.is_empty() {
        return bad("is empty");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or digit");
    }
    if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must end with a letter or digit");
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')))
    {
        return bad(&format!("contains {c:?} (allowed: A-Z a-z 0-9 . - _ :)"));
    }
    Ok(())
}

fn split_qualified(device: &str) -> Result<(&str, &str, &str), String> {
    let Some((kind, name)) = device.split_once('=') else {
        return Err("expected vendor.com/class=name".to_owned());
    };
    let (vendor, class) = check_kind(kind)?;
    check_device_name(name)?;
    Ok((vendor, class, name))
}

/// Splits a fully qualified device name, `nvidia.com/gpu=0`, into vendor
/// (`nvidia.com`), class (`gpu`) and name (`0`), validating each part.
pub fn parse_qualified_name(device: &str) -> Result<(&str, &str, &str), NameError> {
    split_qualified(device).map_err(|reason| NameError::BadName {
        name: device.to_owned(),
        reason,
    })
}

/// The CDI devices requested through `cdi.k8s.io/*` annotations, whose
/// values are comma-separated fully qualified names.
///
/// The order is deterministic: annotations sorted by key, then the order in
/// each value; repeated names are kept once.
pub fn requested_devices(annotations: &HashMap<String, String>) -> Result<Vec<String>, NameError> {
    let mut requests: Vec<(&String, &String)> = annotations
        .iter()
        .filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    requests.sort();
    let mut devices: Vec<String> = Vec::new();
    for (key, value) in requests {
        for entry in value.split(',') {
            let entry = entry.trim();
            split_qualified(entry).map_err(|reason| NameError::BadRequest {
                key: key.clone(),
                entry: entry.to_owned(),
                reason,
            })?;
            if !devices.iter().any(|d| d == entry) {
                devices.push(entry.to_owned());
            }
        }
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qualified_names() {
        assert_eq!(
            parse_qualified_name("nvidia.com/gpu=0").expect("valid"),
            ("nvidia.com", "gpu", "0")
        );
        assert_eq!(
            parse_qualified_name("vendor.com/foo-bar123.B_az=GPU-1a2b:0").expect("valid"),
            ("vendor.com", "foo-bar123.B_az", "GPU-1a2b:0")
        );
        for bad in [
            "nvidia.com/gpu",
            "gpu=0",
            "nvidia.com/gpu/x=0",
            "nvidia.com/=0",
            "/gpu=0",
            "nvidia..com/gpu=0",
            "1vendor.com/gpu=0",
            "nvidia.com/gpu=",
            "nvidia.com/gpu=x y",
            "nvidia.com/gpu=-0",
            "nvidia.com/gpu=0-",
            "nvidia.com/gpu=a/b",
        ] {
            let err = parse_qualified_name(bad).expect_err(bad);
            assert!(matches!(err, NameError::BadName { .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn requested_devices_from_annotations() {
        let annotations: HashMap<String, String> = [
            ("cdi.k8s.io/b_plugin", "nvidia.com/gpu=1, nvidia.com/gpu=0"),
            (
                "cdi.k8s.io/a_plugin",
                "vendor.com/nic=eth0,nvidia.com/gpu=1",
            ),
            ("other.io/x", "not a device"),
            ("cdi.k8s.io.evil/x", "also ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            requested_devices(&annotations).expect("valid"),
            [
                "vendor.com/nic=eth0",
                "nvidia.com/gpu=1",
                "nvidia.com/gpu=0"
            ]
        );
        assert!(requested_devices(&HashMap::new()).expect("none").is_empty());
    }

    #[test]
    fn requested_devices_rejects_bad_values() {
        for value in [
            "gpu0",
            "nvidia.com/gpu=0,",
            "nvidia.com/gpu=0,,nvidia.com/gpu=1",
            "",
        ] {
            let annotations: HashMap<String, String> =
                [("cdi.k8s.io/plugin".to_owned(), value.to_owned())].into();
            let err = requested_devices(&annotations).expect_err(value);
            assert!(matches!(err, NameError::BadRequest { .. }), "{err:?}");
            assert!(err.to_string().contains("cdi.k8s.io/plugin"), "{err}");
        }
    }
}

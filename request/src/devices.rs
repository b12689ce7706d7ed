//! Device requests like `NVIDIA_VISIBLE_DEVICES`: `all`, `none`, `void`, or
//! a comma list of indexes, UUIDs, PCI bus ids and HCA names. Which devices
//! a list names is decided by discovery (`pinc_devices::selection`).

/// A device list that is not well formed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceListError {
    #[error("empty entry in device list {request:?}")]
    EmptyEntry { request: String },
}

/// A parsed device request: which GPUs or HCAs a container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelection {
    /// `all`
    All,
    /// `none`, `void`, or an empty value.
    Nothing,
    /// Comma-separated selectors, trimmed, in request order.
    List(Vec<String>),
}

impl DeviceSelection {
    /// Parses a request value with `NVIDIA_VISIBLE_DEVICES` semantics:
    /// `all`; `none`, `void` or empty = nothing; otherwise a comma list.
    /// An unset variable also means nothing; callers map `None` to
    /// [`DeviceSelection::Nothing`] (see [`DeviceSelection::from_env_value`]).
    pub fn parse(value: &str) -> Result<DeviceSelection, DeviceListError> {
        let trimmed = value.trim();
        match trimmed {
            "all" => return Ok(DeviceSelection::All),
            "" | "none" | "void" => return Ok(DeviceSelection::Nothing),
            _ => {}
        }
        let mut list = Vec::new();
        for selector in trimmed.split(',').map(str::trim) {
            if selector.is_empty() {
                return Err(DeviceListError::EmptyEntry {
                    request: value.to_owned(),
                });
            }
            list.push(selector.to_owned());
        }
        Ok(DeviceSelection::List(list))
    }

    /// `None` (variable unset) is [`DeviceSelection::Nothing`].
    pub fn from_env_value(value: Option<&str>) -> Result<DeviceSelection, DeviceListError> {
        value.map_or(Ok(DeviceSelection::Nothing), DeviceSelection::parse)
    }
}

/// A device request and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAsk {
    /// The annotation or variable that carried it.
    pub from: String,
    pub selection: DeviceSelection,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> DeviceSelection {
        DeviceSelection::List(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn parses_requests() {
        assert_eq!(
            DeviceSelection::parse("all").expect("all"),
            DeviceSelection::All
        );
        assert_eq!(
            DeviceSelection::parse(" all ").expect("all"),
            DeviceSelection::All
        );
        for nothing in ["", "  ", "none", "void"] {
            assert_eq!(
                DeviceSelection::parse(nothing).expect("nothing"),
                DeviceSelection::Nothing
            );
        }
        assert_eq!(
            DeviceSelection::from_env_value(None).expect("unset"),
            DeviceSelection::Nothing
        );
        assert_eq!(
            DeviceSelection::parse("0, GPU-abc ,0000:06:00.0").expect("list"),
            list(&["0", "GPU-abc", "0000:06:00.0"])
        );
        let err = DeviceSelection::parse("0,,1").expect_err("empty entry");
        assert!(err.to_string().contains("\"0,,1\""), "{err}");
        assert!(DeviceSelection::parse("0,").is_err());
    }
}

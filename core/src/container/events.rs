//! `events`: cgroup statistics as runc reports them, once (`--stats`) or every
//! interval until the container stops.

use std::time::Duration;

use libcgroups::common::CgroupManager;
use libcontainer::container::ContainerStatus;

use super::{load, ps};
use crate::error::{Error, Result};
use crate::RuntimeRoot;

/// An `events --interval` that is not a positive duration.
#[derive(Debug, thiserror::Error)]
pub enum IntervalError {
    #[error("invalid interval {0:?}")]
    Invalid(String),
    #[error("the interval must be positive")]
    NotPositive,
}

/// Parses runc's interval ("5s", "500ms", "1m") or plain seconds.
pub fn parse_interval(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let invalid = || IntervalError::Invalid(text.to_string());
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(invalid)?),
        _ => return Err(invalid().into()),
    };
    if d.is_zero() {
        return Err(IntervalError::NotPositive.into());
    }
    Ok(d)
}

/// Each event goes to `emit` (the CLI prints it as one JSON line).
pub fn events(
    root: &RuntimeRoot,
    id: &str,
    interval: Duration,
    once: bool,
    mut emit: impl FnMut(&serde_json::Value) -> std::io::Result<()>,
) -> Result<()> {
    let container = load::load(root, id)?;
    load::require_cgroups(&container, "read stats of")?;
    let manager = ps::cgroup_manager(&container)?;
    loop {
        let stats = manager.stats().map_err(Box::new)?;
        let event = serde_json::json!({"type": "stats", "id": id, "data": stats});
        emit(&event).map_err(Error::io("failed to write", "stdout"))?;
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
        let status = load::load(root, id).map(|c| c.status());
        if !matches!(
            status,
            Ok(ContainerStatus::Running | ContainerStatus::Paused)
        ) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").expect("5s"), Duration::from_secs(5));
        assert_eq!(
            parse_interval("250ms").expect("ms"),
            Duration::from_millis(250)
        );
        assert_eq!(parse_interval("2").expect("2"), Duration::from_secs(2));
        let err = |text| match parse_interval(text) {
            Err(Error::Interval(e)) => e,
            other => panic!("{text}: {other:?}"),
        };
        assert!(matches!(err("0s"), IntervalError::NotPositive));
        assert!(matches!(err("5h"), IntervalError::Invalid(t) if t == "5h"));
        assert!(matches!(err("x"), IntervalError::Invalid(_)));
        assert!(matches!(
            err("18446744073709551615m"),
            IntervalError::Invalid(_)
        ));
    }
}

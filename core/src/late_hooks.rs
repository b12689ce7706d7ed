//! poststart and poststop hooks, which pinc runs itself: the runtime-spec
//! says a failure of either "MUST log a warning, but the remaining hooks and
//! lifecycle continue as if the hook had succeeded". libcontainer instead
//! stops at the first failing hook and fails `start` (leaving the container
//! running) or `delete` (before it removes the state dir, so the container
//! could never be deleted).
//!
//! pinc takes the hooks out of libcontainer's saved config before calling
//! it, puts them back if the call fails (so a retry still runs them), and
//! runs them one by one once the call succeeded.

use std::path::Path;

use libcontainer::config::YoukiConfig;
use libcontainer::container::State;
use libcontainer::oci_spec::runtime::Hook;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Poststart,
    Poststop,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

/// Hooks taken out of a container's libcontainer config.
#[derive(Debug)]
pub struct Taken {
    kind: Kind,
    hooks: Vec<Hook>,
}

/// Removes the `kind` hooks from the config saved in `container_dir`.
/// A dir without a config (a create that died early) has no hooks.
pub fn take(container_dir: &Path, kind: Kind) -> Result<Taken> {
    let none = Taken {
        kind,
        hooks: Vec::new(),
    };
    let Ok(mut config) = YoukiConfig::load(container_dir) else {
        return Ok(none);
    };
    let Some(mut hooks) = config.hooks.clone() else {
        return Ok(none);
    };
    let list = match kind {
        Kind::Poststart => hooks.poststart().clone(),
        Kind::Poststop => hooks.poststop().clone(),
    }
    .unwrap_or_default();
    if list.is_empty() {
        return Ok(none);
    }
    match kind {
        Kind::Poststart => hooks.set_poststart(None),
        Kind::Poststop => hooks.set_poststop(None),
    };
    config.hooks = Some(hooks);
    save(&config, container_dir)?;
    Ok(Taken { kind, hooks: list })
}

fn save(config: &YoukiConfig, container_dir: &Path) -> Result<()> {
    config.save(container_dir).map_err(|e| {
        Error::lib("failed to update the container's hooks")(
            libcontainer::error::LibcontainerError::Config(e),
        )
    })
}

impl Taken {
    /// Puts the hooks back, after the lifecycle call they belong to failed.
    pub fn restore(self, container_dir: &Path) {
        if self.hooks.is_empty() {
            return;
        }
        let Ok(mut config) = YoukiConfig::load(container_dir) else {
            return; // The container dir is gone: nothing will run them.
        };
        let mut hooks = config.hooks.clone().unwrap_or_default();
        match self.kind {
            Kind::Poststart => hooks.set_poststart(Some(self.hooks)),
            Kind::Poststop => hooks.set_poststop(Some(self.hooks)),
        };
        config.hooks = Some(hooks);
        if let Err(e) = save(&config, container_dir) {
            tracing::warn!(target: "pinc", "{e}: {}", container_dir.display());
        }
    }

    /// Runs every hook with `state` on its stdin; a failure is one warning.
    /// Returns how many failed.
    pub fn run(&self, state: &State, cwd: Option<&Path>) -> usize {
        let mut failed = 0;
        for (i, hook) in self.hooks.iter().enumerate() {
            let one = vec![hook.clone()];
            if let Err(e) = libcontainer::hooks::run_hooks(Some(&one), Some(state), cwd, None, None)
            {
                failed += 1;
                let cause = std::error::Error::source(&e)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                tracing::warn!(
                    target: "pinc",
                    "{} hook #{i} ({}) of container {:?} failed: {e}{cause}; continuing",
                    self.kind.name(),
                    hook.path().display(),
                    state.id,
                );
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(dir: &Path, hooks: serde_json::Value) {
        let json = serde_json::json!({"hooks": hooks, "cgroup_path": "/pinc/x"});
        std::fs::write(
            dir.join("youki_config.json"),
            serde_json::to_vec(&json).expect("json"),
        )
        .expect("write");
    }

    #[test]
    fn take_removes_one_kind_and_restore_puts_it_back() {
        let dir = tempfile::tempdir().expect("tmp");
        config_with(
            dir.path(),
            serde_json::json!({"poststart": [{"path": "/a"}], "poststop": [{"path": "/b"}, {"path": "/c"}]}),
        );
        let taken = take(dir.path(), Kind::Poststop).expect("take");
        assert_eq!(taken.hooks.len(), 2);
        let config = YoukiConfig::load(dir.path()).expect("load");
        let hooks = config.hooks.expect("hooks");
        assert!(hooks.poststop().is_none());
        assert_eq!(hooks.poststart().as_ref().map(Vec::len), Some(1));
        taken.restore(dir.path());
        let config = YoukiConfig::load(dir.path()).expect("load");
        let hooks = config.hooks.expect("hooks");
        assert_eq!(hooks.poststop().as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn no_config_means_no_hooks() {
        let dir = tempfile::tempdir().expect("tmp");
        let taken = take(dir.path(), Kind::Poststart).expect("take");
        assert!(taken.hooks.is_empty());
        assert_eq!(taken.run(&State::default(), None), 0);
    }

    #[test]
    fn every_hook_runs_and_failures_are_counted() {
        let dir = tempfile::tempdir().expect("tmp");
        let marker = dir.path().join("ran");
        config_with(
            dir.path(),
            serde_json::json!({"poststop": [
                {"path": "/bin/false"},
                {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", marker.display())]},
            ]}),
        );
        let taken = take(dir.path(), Kind::Poststop).expect("take");
        let state = State {
            id: "c1".into(),
            ..State::default()
        };
        assert_eq!(taken.run(&state, None), 1);
        let got = std::fs::read_to_string(&marker).expect("second hook ran");
        assert!(got.contains("\"c1\""), "{got}");
    }
}

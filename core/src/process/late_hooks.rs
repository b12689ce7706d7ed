//! poststart and poststop hooks, which pinc runs itself: the runtime-spec
//! says a failure of either "MUST log a warning, but the remaining hooks and
//! lifecycle continue as if the hook had succeeded". libcontainer instead
//! stops at the first failing hook and fails `start` (leaving the container
//! running) or `delete` (before it removes the state dir, so the container
//! could never be deleted).
//!
//! pinc takes the hooks out of libcontainer's saved config before calling
//! it, puts them back if the call fails (so a retry still runs them), and
//! runs them one by one once the call succeeded. Taken hooks are first
//! written to `pinc-<kind>-hooks.json` in the container dir, and that file
//! goes only once they ran or went back: a pinc killed in between leaves
//! them to the next start or delete instead of losing them.

use std::path::{Path, PathBuf};

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
    pending: PathBuf,
}

fn pending_path(container_dir: &Path, kind: Kind) -> PathBuf {
    container_dir.join(format!("pinc-{}-hooks.json", kind.name()))
}

/// Hooks an earlier, interrupted pinc had taken.
fn load_pending(path: &Path) -> Vec<Hook> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Removes the `kind` hooks from the config saved in `container_dir`.
/// A dir without a config (a create that died early) has no hooks.
pub fn take(container_dir: &Path, kind: Kind) -> Result<Taken> {
    let pending = pending_path(container_dir, kind);
    let mut taken = Taken {
        kind,
        hooks: load_pending(&pending),
        pending,
    };
    let Ok(mut config) = YoukiConfig::load(container_dir) else {
        return Ok(taken);
    };
    let Some(mut hooks) = config.hooks.clone() else {
        return Ok(taken);
    };
    let list = match kind {
        Kind::Poststart => hooks.poststart().clone(),
        Kind::Poststop => hooks.poststop().clone(),
    }
    .unwrap_or_default();
    if list.is_empty() {
        return Ok(taken);
    }
    let json = serde_json::to_vec(&list).map_err(|source| Error::Json {
        what: format!("{} hooks", kind.name()),
        source,
    })?;
    std::fs::write(&taken.pending, json)
        .map_err(Error::io("failed to keep the hooks", &taken.pending))?;
    match kind {
        Kind::Poststart => hooks.set_poststart(None),
        Kind::Poststop => hooks.set_poststop(None),
    };
    config.hooks = Some(hooks);
    save(&config, container_dir)?;
    taken.hooks = list;
    Ok(taken)
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
        let pending = self.pending.clone();
        let Ok(mut config) = YoukiConfig::load(container_dir) else {
            return; // The container dir is gone: nothing will run them.
        };
        let mut hooks = config.hooks.clone().unwrap_or_default();
        match self.kind {
            Kind::Poststart => hooks.set_poststart(Some(self.hooks)),
            Kind::Poststop => hooks.set_poststop(Some(self.hooks)),
        };
        config.hooks = Some(hooks);
        match save(&config, container_dir) {
            Ok(()) => {
                let _ = std::fs::remove_file(&pending);
            }
            Err(e) => tracing::warn!(target: "pinc", "{e}: {}", container_dir.display()),
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
        // They ran: an interrupted pinc's copy is no longer needed.
        let _ = std::fs::remove_file(&self.pending);
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
    fn hooks_taken_by_an_interrupted_pinc_are_found_again() {
        let dir = tempfile::tempdir().expect("tmp");
        config_with(
            dir.path(),
            serde_json::json!({"poststop": [{"path": "/b"}, {"path": "/c"}]}),
        );
        // Taken, then pinc dies before the delete: nothing restores them.
        std::mem::forget(take(dir.path(), Kind::Poststop).expect("take"));
        let again = take(dir.path(), Kind::Poststop).expect("take again");
        assert_eq!(again.hooks.len(), 2);
        assert_eq!(
            again.run(&State::default(), None),
            2,
            "/b and /c do not exist"
        );
        let third = take(dir.path(), Kind::Poststop).expect("take after run");
        assert!(third.hooks.is_empty(), "they ran once");
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

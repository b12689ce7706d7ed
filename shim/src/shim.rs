//! The shim binary's life: `start` (spawn or reuse the shim serving the
//! pod), serving the task service, and `delete` (clean up after a dead shim).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, Shim, StartOpts};

use crate::config::ShimConfig;
use crate::errors::Error;
use crate::reaper::Exits;
use crate::runtime::Pinc;
use crate::service::Service;

/// The annotation CRI puts on every container of a pod.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub struct PincShim {
    namespace: String,
    id: String,
    bundle: PathBuf,
    exit: Arc<ExitSignal>,
}

fn shim_error(e: Error) -> containerd_shim::Error {
    containerd_shim::Error::Other(e.one_line())
}

/// containerd-shim catches SIGPIPE only to log it (at debug level). Once
/// containerd stops reading the shim's log fifo (it lives in the bundle of
/// the pod's first container, and goes when that container is deleted
/// while the shim serves the others), each log write raises SIGPIPE and
/// logging it raises the next: the signal thread spins and never reaps a
/// child again, so every later pinc call waits forever. Ignored, a write to
/// the closed fifo fails with EPIPE, which the logger drops. Children start
/// with the default disposition (std resets SIGPIPE on spawn).
fn ignore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler code, and nothing in the shim
    // relies on receiving SIGPIPE.
    if let Err(e) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) } {
        tracing::warn!("cannot ignore SIGPIPE: {e}");
    }
}

/// One shim per pod: containers of a sandbox share the shim (and socket)
/// the sandbox's id names; a standalone container gets its own.
fn grouping(bundle: &Path, id: &str) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|spec| spec["annotations"][SANDBOX_ID].as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_string())
}

impl Shim for PincShim {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        // Runs after containerd-shim installed its signal handlers.
        ignore_sigpipe();
        let bundle = if args.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&args.bundle)
        };
        Self {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle,
            exit: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let group = grouping(&self.bundle, &opts.id);
        // spawn() starts `<self> -socket <address of group>`; when a shim already
        // serves that address, the new one exits and the address is reused.
        let (_pid, address) = containerd_shim::spawn(opts, &group, Vec::new())?;
        containerd_shim::util::write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let config = ShimConfig::saved(&self.bundle);
        let exits = Arc::new(Exits::default());
        crate::reaper::start(exits.clone(), |_, _| {}).map_err(shim_error)?;
        let pinc = Pinc::for_cleanup(&config, &self.namespace, exits);
        // containerd runs this action after the shim died and, with no log
        // fifo, logs its stderr ("cleanup warnings"): say there what failed.
        // A container pinc does not know (state gone, or never created) is
        // not a failure of the cleanup; the response stays valid either way.
        if let Err(e) = pinc.simple(&self.bundle, &["delete", "--force", &self.id]) {
            if !crate::service::gone(&e) {
                eprintln!(
                    "cleanup of {} in {}: {}",
                    self.id,
                    pinc.root.display(),
                    e.one_line()
                );
            }
        }
        crate::mounts::unmount_rootfs(&self.bundle);
        let mut resp = DeleteResponse::new();
        resp.exit_status = 128 + 9;
        resp.exited_at = Some(crate::process::now()).into();
        Ok(resp)
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        match Service::new(self.namespace.clone(), publisher, self.exit.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot start the task service: {}", e.one_line());
                std::process::exit(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_start_with_the_default_sigpipe() {
        ignore_sigpipe();
        let out = std::process::Command::new("grep")
            .args(["^SigIgn:", "/proc/self/status"])
            .output()
            .expect("grep");
        let text = String::from_utf8_lossy(&out.stdout);
        let mask = u64::from_str_radix(text.trim().trim_start_matches("SigIgn:").trim(), 16)
            .expect("SigIgn mask");
        assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{text}");
    }

    #[test]
    fn groups_by_sandbox() {
        let dir = std::env::temp_dir().join(format!("pinc-shim-grp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(grouping(&dir, "c1"), "c1");
        std::fs::write(
            dir.join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .expect("write");
        assert_eq!(grouping(&dir, "c2"), "pod1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

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
    containerd_shim::Error::Other(e.to_string())
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
                eprintln!("cleanup of {} in {}: {e}", self.id, pinc.root.display());
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
                tracing::error!("cannot start the task service: {e}");
                std::process::exit(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

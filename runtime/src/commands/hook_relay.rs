use pinc_core::process::hook_relay;

use crate::cli::HookRelay;

/// Becomes the hook (exec); returns only when that failed.
pub fn run(args: &HookRelay) -> anyhow::Result<i32> {
    let Some((path, argv)) = args.hook.split_first() else {
        anyhow::bail!("hook-relay: no hook to run");
    };
    Err(hook_relay::relay(&args.bundle, path, argv).into())
}

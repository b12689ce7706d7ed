//! Hooks must see the caller's bundle in the OCI state on their stdin.
//!
//! When the pipeline changed the spec, create hands libcontainer a staging
//! dir holding only the final config.json, and libcontainer names that dir as
//! `bundle` in the state it pipes to the hooks it runs during create. pinc
//! therefore wraps each such hook in its own binary (`pinc hook-relay`): the
//! relay reads the state, puts the caller's bundle in it, and execs the real
//! hook with the corrected state on a fresh stdin. The exec keeps the pid, so
//! libcontainer's timeout still applies to the hook itself; the hook's env
//! and args are its own.
//!
//! Wrapped: prestart and createRuntime (runtime namespaces) and
//! createContainer (container namespaces, but before pivot_root, so pinc's
//! binary is still reachable on the host's filesystem). startContainer runs
//! after pivot_root, where no pinc binary exists: pinc takes those hooks
//! out of the spec and its executor runs them itself, with the caller's
//! bundle in the state ([`take_start_container`]). poststart and poststop
//! are run from the saved state, which already names the caller's bundle.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{Hook, Spec};

/// The hidden subcommand of the `pinc` binary that relays a hook.
pub const SUBCOMMAND: &str = "hook-relay";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot find the pinc binary to relay hooks through ({path}): set PINC_EXE")]
    NoExe { path: PathBuf },
    #[error("hook relay: failed to read the container state from stdin")]
    ReadState(#[source] std::io::Error),
    #[error("hook relay: failed to pass the container state on")]
    Pipe(#[source] std::io::Error),
    #[error("hook relay: failed to run hook {path:?}")]
    Exec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The installed pinc binary: PINC_EXE when pinc re-executed itself from a
/// sealed view (its /proc/self/exe then names no usable file), else
/// /proc/self/exe.
fn pinc_exe() -> Result<PathBuf, RelayError> {
    let exe = std::env::var_os("PINC_EXE")
        .map(PathBuf::from)
        .or_else(|| std::fs::read_link("/proc/self/exe").ok())
        .unwrap_or_default();
    if exe.is_absolute() && exe.is_file() {
        Ok(exe)
    } else {
        Err(RelayError::NoExe { path: exe })
    }
}

/// The relay hook that runs `hook` with `bundle` in its state.
fn relayed(hook: &Hook, exe: &Path, bundle: &Path) -> Hook {
    let original: Vec<String> = match hook.args() {
        Some(args) if !args.is_empty() => args.clone(),
        _ => vec![hook.path().to_string_lossy().into_owned()],
    };
    let mut args = vec![
        "pinc".to_string(),
        SUBCOMMAND.to_string(),
        "--bundle".to_string(),
        bundle.to_string_lossy().into_owned(),
        "--".to_string(),
        hook.path().to_string_lossy().into_owned(),
    ];
    args.extend(original);
    let mut out = hook.clone();
    out.set_path(exe.to_path_buf());
    out.set_args(Some(args));
    out
}

/// Routes the hooks libcontainer runs with a staged bundle through the relay.
pub fn wrap(spec: &mut Spec, bundle: &Path) -> Result<(), RelayError> {
    let Some(mut hooks) = spec.hooks().clone() else {
        return Ok(());
    };
    let any = [
        hooks.prestart(),
        hooks.create_runtime(),
        hooks.create_container(),
    ]
    .iter()
    .any(|h| h.as_ref().is_some_and(|h| !h.is_empty()));
    if !any {
        return Ok(());
    }
    let exe = pinc_exe()?;
    let wrap_all = |list: &Option<Vec<Hook>>| -> Option<Vec<Hook>> {
        list.as_ref()
            .map(|l| l.iter().map(|h| relayed(h, &exe, bundle)).collect())
    };
    #[allow(deprecated)] // prestart is deprecated in the spec, still run by runtimes
    let prestart = wrap_all(hooks.prestart());
    hooks.set_prestart(prestart);
    let create_runtime = wrap_all(hooks.create_runtime());
    hooks.set_create_runtime(create_runtime);
    let create_container = wrap_all(hooks.create_container());
    hooks.set_create_container(create_container);
    spec.set_hooks(Some(hooks));
    Ok(())
}

/// Takes the startContainer hooks out of the spec, for the executor to run
/// with a state naming the caller's bundle (see `executor::StartHooks`).
pub fn take_start_container(
    spec: &mut Spec,
    id: &str,
    bundle: &Path,
) -> Option<crate::process::executor::StartHooks> {
    let mut hooks = spec.hooks().clone()?;
    let list = hooks.start_container().clone().filter(|l| !l.is_empty())?;
    hooks.set_start_container(None);
    spec.set_hooks(Some(hooks));
    let mut state = libcontainer::container::State::new(
        id,
        libcontainer::container::ContainerStatus::Created,
        None,
        bundle.to_path_buf(),
    );
    state.annotations = Some(spec.annotations().clone().unwrap_or_default());
    Some(crate::process::executor::StartHooks { hooks: list, state })
}

/// The state with `bundle` put in; input that is not a JSON object passes
/// unchanged (the hook then sees what libcontainer sent).
fn rewrite_state(input: &[u8], bundle: &Path) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut state)) = serde_json::from_slice(input) else {
        return input.to_vec();
    };
    state.insert(
        "bundle".to_string(),
        serde_json::Value::String(bundle.to_string_lossy().into_owned()),
    );
    serde_json::to_vec(&state).unwrap_or_else(|_| input.to_vec())
}

/// A readable descriptor holding `bytes`: a pipe as runtimes give hooks,
/// grown when the state exceeds its default capacity.
fn state_pipe(bytes: &[u8]) -> Result<std::os::fd::OwnedFd, RelayError> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RelayError::Pipe(e.into()))?;
    if bytes.len() > 65536 {
        // Fails past /proc/sys/fs/pipe-max-size; the write then reports it.
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&write),
            nix::fcntl::FcntlArg::F_SETPIPE_SZ(bytes.len() as i32),
        );
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&write),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    let mut file = std::fs::File::from(write);
    file.write_all(bytes).map_err(RelayError::Pipe)?;
    Ok(read)
}

/// Runs as `pinc hook-relay --bundle B -- PATH ARG0 ARGS...`: replaces this
/// process with the hook, its stdin the state naming `bundle`. Returns only
/// on failure.
pub fn relay(bundle: &Path, path: &OsStr, argv: &[OsString]) -> RelayError {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        return RelayError::ReadState(e);
    }
    let stdin = match state_pipe(&rewrite_state(&input, bundle)) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut cmd = std::process::Command::new(path);
    if let Some((arg0, rest)) = argv.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    let source = cmd.stdin(stdin).exec();
    RelayError::Exec {
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_hooks() -> Spec {
        let hooks = serde_json::json!({
            "prestart": [{"path": "/bin/a"}],
            "createRuntime": [{"path": "/bin/b", "args": ["b", "-x"], "env": ["K=V"], "timeout": 3}],
            "createContainer": [{"path": "/bin/c"}],
            "startContainer": [{"path": "/bin/d"}],
            "poststart": [{"path": "/bin/e"}],
            "poststop": [{"path": "/bin/f"}],
        });
        let mut spec = Spec::default();
        spec.set_hooks(Some(serde_json::from_value(hooks).expect("hooks")));
        spec
    }

    #[test]
    fn wraps_the_hooks_run_before_pivot_root_only() {
        let mut spec = spec_with_hooks();
        let exe = Path::new("/opt/pinc");
        let bundle = Path::new("/b");
        let mut hooks = spec.hooks().clone().expect("hooks");
        let wrapped = hooks
            .create_runtime()
            .as_ref()
            .map(|l| l.iter().map(|h| relayed(h, exe, bundle)).collect());
        hooks.set_create_runtime(wrapped);
        spec.set_hooks(Some(hooks));
        let hooks = spec.hooks().clone().expect("hooks");
        let h = &hooks.create_runtime().as_ref().expect("createRuntime")[0];
        assert_eq!(h.path(), exe);
        assert_eq!(
            h.args().as_deref().expect("args"),
            [
                "pinc",
                "hook-relay",
                "--bundle",
                "/b",
                "--",
                "/bin/b",
                "b",
                "-x"
            ]
        );
        assert_eq!(h.env().as_deref(), Some(&["K=V".to_string()][..]));
        assert_eq!(h.timeout(), Some(3));

        // wrap() itself: the pinc test binary stands in for pinc.
        let mut spec = spec_with_hooks();
        wrap(&mut spec, bundle).expect("wrap");
        let hooks = spec.hooks().clone().expect("hooks");
        #[allow(deprecated)]
        let prestart = hooks.prestart().clone().expect("prestart");
        let args = prestart[0].args().clone().expect("args");
        assert_eq!(args[5..], ["/bin/a".to_string(), "/bin/a".to_string()]);
        let cc = &hooks.create_container().as_ref().expect("cc")[0];
        assert_ne!(cc.path(), Path::new("/bin/c"));
        for kept in [hooks.start_container(), hooks.poststart(), hooks.poststop()] {
            let path = kept.as_ref().expect("kept")[0].path().clone();
            assert!(path.starts_with("/bin"), "{path:?} left alone");
        }
    }

    #[test]
    fn a_spec_without_hooks_is_left_alone() {
        let mut spec = Spec::default();
        wrap(&mut spec, Path::new("/b")).expect("wrap");
        assert_eq!(spec, Spec::default());
    }

    #[test]
    fn rewrites_only_the_bundle() {
        let input = br#"{"ociVersion":"1.0.2","id":"c","status":"creating","pid":7,"bundle":"/staging/c","annotations":{"a":"b"}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&rewrite_state(input, Path::new("/my/bundle"))).expect("json");
        assert_eq!(out["bundle"], "/my/bundle");
        assert_eq!(out["pid"], 7);
        assert_eq!(out["annotations"]["a"], "b");
        assert_eq!(rewrite_state(b"not json", Path::new("/b")), b"not json");
    }

    #[test]
    fn the_state_pipe_holds_large_states() {
        let big = vec![b'x'; 200_000];
        // Small enough for a default pipe; the large one may exceed
        // pipe-max-size, which must be an error, not a hang.
        let fd = state_pipe(b"{}").expect("small");
        let mut read = String::new();
        std::fs::File::from(fd)
            .read_to_string(&mut read)
            .expect("read");
        assert_eq!(read, "{}");
        match state_pipe(&big) {
            Ok(fd) => {
                let mut got = Vec::new();
                std::fs::File::from(fd).read_to_end(&mut got).expect("read");
                assert_eq!(got.len(), big.len());
            }
            Err(RelayError::Pipe(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}")
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

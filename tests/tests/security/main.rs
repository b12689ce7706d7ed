//! Regression tests for the container-escape classes that hit runc, crun
//! and youki: each scenario is what an attacker's image or spec would do,
//! run through the real pinc binary as root, and each test fails on a
//! runtime that has the hole. Where pinc refuses the scenario, the refusal
//! is accepted only if nothing on the host changed.
//!
//! Modules, by CVE class:
//! - exe: the runtime binary reached through /proc/<pid>/exe (CVE-2019-5736)
//! - fds: leaked descriptors as cwd, fds visible inside (CVE-2024-21626)
//! - mounts: /proc as a symlink (CVE-2019-16884), masking through a
//!   symlinked /dev/null (CVE-2025-31133), mount destinations through
//!   symlinks (CVE-2021-30465), /dev/console as a symlink (CVE-2025-52565)
//! - races: a mount target swapped for a symlink while pinc mounts
//! - caps: inheritable capabilities on exec (CVE-2022-29162)
//! - hooks: pinc's own hooks and the image's environment (CVE-2025-23266)

mod caps;
mod exe;
mod fds;
mod hooks;
mod mounts;
mod races;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use pinc_tests::Bundle;
use serde_json::Value;

/// A bundle with a writable rootfs (the scenarios leave markers in it).
fn writable_bundle(args: &[&str]) -> Bundle {
    let bundle = Bundle::new(args);
    bundle.edit(|c| c["root"]["readonly"] = Value::Bool(false));
    bundle
}

fn rootfs(bundle: &Bundle) -> PathBuf {
    bundle.path().join("rootfs")
}

/// A host directory an attack would aim at, with one file in it; compare
/// [`snapshot`]s before and after.
fn decoy(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("decoy dir");
    fs::write(dir.path().join("keep"), "host file\n").expect("decoy file");
    dir
}

/// Every path under `dir` with its contents (dirs and symlinks by kind).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read decoy").flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let what = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!("link {:?}", fs::read_link(&path).expect("readlink"))
            } else {
                String::from_utf8_lossy(&fs::read(&path).expect("read")).into_owned()
            };
            out.insert(path, what);
        }
    }
    out
}

/// Host mount points at or under `dir` (the test's own mount namespace).
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| m == dir || m.starts_with(&format!("{dir}/")))
        })
        .map(str::to_string)
        .collect()
}

/// Drops the spec's /dev mounts, so the image's own /dev is used (as when
/// /dev is a volume shared with another container the attacker controls).
fn use_image_dev(bundle: &Bundle, keep_devpts: bool) {
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| {
            let dest = m["destination"].as_str().unwrap_or("");
            !(dest == "/dev" || dest.starts_with("/dev/")) || (keep_devpts && dest == "/dev/pts")
        });
    });
}

/// A refusal must name a cause on one line; anything else is a crash.
fn assert_clean_refusal(what: &str, out: &std::process::Output) {
    let err = pinc_tests::stderr(out);
    assert!(
        err.trim_end().lines().count() == 1 && err.starts_with("pinc: error:"),
        "{what}: pinc refused, but not with one error line: {err}"
    );
}

//! The container's filesystem: default mounts, masked and read-only paths,
//! configured mounts, devices and root propagation.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use super::process::case;
use super::{at, ensure, no_setup, Ctx, ProcCase, ALL};

const EROFS: i64 = 30;

fn mount_at<'a>(r: &'a Value, dest: &str) -> Option<&'a Value> {
    // The last entry for a mount point is the one on top.
    at(r, "/mounts")
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["mount_point"] == dest)
}

fn has_opt(m: &Value, opt: &str) -> bool {
    m["options"]
        .as_array()
        .is_some_and(|o| o.iter().any(|x| x == opt))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn path_args(c: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["/linux/maskedPaths", "/linux/readonlyPaths"] {
        for p in strings(at(c, key)) {
            out.push("--path".to_string());
            out.push(p);
        }
    }
    for p in ["/", "/mnt/conformance-tmpfs", "/mnt/conformance-bind/hello"] {
        out.push("--path".to_string());
        out.push(p.to_string());
    }
    out
}

fn set_extra_masked(c: &mut Value, _: &Path) {
    if let Some(m) = c["linux"]["maskedPaths"].as_array_mut() {
        m.push(json!("/proc/cmdline"));
        m.push(json!("/sys/kernel"));
        m.push(json!("/root"));
    }
}

fn check_masked(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for p in strings(at(ctx.config, "/linux/maskedPaths")) {
        // Runtimes mask what exists; a path the host lacks proves nothing.
        if !Path::new(&p).exists() {
            continue;
        }
        let info = at(r, "/paths").get(&p).unwrap_or(&Value::Null);
        if info["exists"] != true {
            continue;
        }
        if info["kind"] == "dir" {
            ensure(info["entries"] == 0, || {
                format!("masked dir {p} is not empty: {info}")
            })?;
            ensure(info["access_w"] == EROFS, || {
                format!("masked dir {p} is writable: {info}")
            })?;
        } else {
            ensure(info["read_len"] == 0, || {
                format!("masked {p} still has content: {info}")
            })?;
        }
    }
    Ok(())
}

fn check_readonly(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for p in strings(at(ctx.config, "/linux/readonlyPaths")) {
        let info = at(r, "/paths").get(&p).unwrap_or(&Value::Null);
        if info["exists"] != true {
            continue;
        }
        // access(2) checks permissions before the mount flag (proc's own
        // dirs answer EACCES), so also accept a read-only mount covering p.
        let covered_ro = covering_mount(r, &p).is_some_and(|m| has_opt(m, "ro"));
        ensure(info["access_w"] == EROFS || covered_ro, || {
            format!("read-only path {p} is writable: {info}")
        })?;
    }
    Ok(())
}

/// The topmost mount whose mount point is `p` or an ancestor of it.
fn covering_mount<'a>(r: &'a Value, p: &str) -> Option<&'a Value> {
    let within = |mp: &str| mp == "/" || p == mp || p.starts_with(&format!("{mp}/"));
    let mounts = at(r, "/mounts").as_array()?;
    let best = mounts
        .iter()
        .filter_map(|m| m["mount_point"].as_str().map(|mp| (mp, m)))
        .filter(|(mp, _)| within(mp))
        .map(|(mp, _)| mp.len())
        .max()?;
    mounts.iter().rev().find(|m| {
        m["mount_point"]
            .as_str()
            .is_some_and(|mp| mp.len() == best && within(mp))
    })
}

fn set_extra_readonly(c: &mut Value, _: &Path) {
    if let Some(m) = c["linux"]["readonlyPaths"].as_array_mut() {
        m.push(json!("/etc"));
    }
}

fn set_root_ro(c: &mut Value, _: &Path) {
    c["root"]["readonly"] = json!(true);
}

fn check_root_ro(r: &Value, _: &Ctx) -> Result<(), String> {
    let m = mount_at(r, "/").ok_or("no / in mountinfo")?;
    ensure(has_opt(m, "ro"), || {
        format!("/ is mounted {}", m["options"])
    })?;
    let w = at(r, "/paths/~1");
    ensure(w["access_w"] == EROFS, || format!("/ is writable: {w}"))
}

fn check_base_mounts(r: &Value, _: &Ctx) -> Result<(), String> {
    for (dest, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        let m = mount_at(r, dest).ok_or_else(|| format!("{dest} is not mounted"))?;
        ensure(m["fstype"] == fstype, || {
            format!("{dest} is {}, want {fstype}", m["fstype"])
        })?;
    }
    let sys = mount_at(r, "/sys").ok_or("no /sys")?;
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        ensure(has_opt(sys, o), || {
            format!("/sys lacks {o}: {}", sys["options"])
        })?;
    }
    let cg = at(r, "/mounts").as_array().into_iter().flatten().any(|m| {
        m["mount_point"]
            .as_str()
            .is_some_and(|p| p.starts_with("/sys/fs/cgroup"))
    });
    ensure(cg, || "nothing is mounted at /sys/fs/cgroup".into())
}

fn set_tmpfs(c: &mut Value, _: &Path) {
    if let Some(m) = c["mounts"].as_array_mut() {
        m.push(
            json!({"destination": "/mnt/conformance-tmpfs", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "mode=1770", "size=1m"]}),
        );
    }
}

fn check_tmpfs(r: &Value, _: &Ctx) -> Result<(), String> {
    let dest = "/mnt/conformance-tmpfs";
    let m = mount_at(r, dest).ok_or("the tmpfs mount is missing")?;
    ensure(m["fstype"] == "tmpfs", || {
        format!("{dest} is {}", m["fstype"])
    })?;
    for o in ["nosuid", "nodev", "noexec"] {
        ensure(has_opt(m, o), || {
            format!("{dest} lacks {o}: {}", m["options"])
        })?;
    }
    let mode = at(r, "/paths/~1mnt~1conformance-tmpfs/mode");
    ensure(*mode == json!(0o1770), || {
        format!("{dest} has mode {mode}, want 0o1770")
    })
}

fn set_bind(c: &mut Value, scratch: &Path, opts: &[&str]) {
    // The host side of the bind: a file the probe can read.
    let _ = fs::write(scratch.join("hello"), "hello");
    if let Some(m) = c["mounts"].as_array_mut() {
        m.push(
            json!({"destination": "/mnt/conformance-bind", "type": "bind",
            "source": scratch.display().to_string(), "options": opts}),
        );
    }
}

fn set_bind_ro(c: &mut Value, scratch: &Path) {
    set_bind(c, scratch, &["rbind", "ro"]);
}

fn set_bind_rw(c: &mut Value, scratch: &Path) {
    set_bind(c, scratch, &["bind", "rw"]);
}

fn check_bind(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let ro = ctx.config["mounts"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| has_opt(m, "ro"));
    let m = mount_at(r, "/mnt/conformance-bind").ok_or("the bind mount is missing")?;
    ensure(has_opt(m, "ro") == ro, || {
        format!("bind mount options {}, ro wanted: {ro}", m["options"])
    })?;
    let f = at(r, "/paths/~1mnt~1conformance-bind~1hello");
    ensure(f["read_len"] == 5, || {
        format!("the host file is not visible: {f}")
    })?;
    let want_w = if ro { EROFS } else { 0 };
    ensure(f["access_w"] == want_w, || {
        format!("write access {} want {want_w}", f["access_w"])
    })
}

fn set_nested(c: &mut Value, scratch: &Path) {
    set_tmpfs(c, scratch);
    let _ = fs::write(scratch.join("hello"), "hello");
    if let Some(m) = c["mounts"].as_array_mut() {
        m.push(
            json!({"destination": "/mnt/conformance-tmpfs/inner", "type": "bind",
            "source": scratch.display().to_string(), "options": ["bind", "ro"]}),
        );
    }
}

fn check_nested(r: &Value, _: &Ctx) -> Result<(), String> {
    let outer = mount_at(r, "/mnt/conformance-tmpfs").ok_or("outer tmpfs missing")?;
    let inner = mount_at(r, "/mnt/conformance-tmpfs/inner").ok_or("inner bind missing")?;
    ensure(inner["parent"] == outer["id"], || {
        format!(
            "inner mount's parent is {}, not the tmpfs {}: mounts out of order",
            inner["parent"], outer["id"]
        )
    })
}

fn check_devices(r: &Value, _: &Ctx) -> Result<(), String> {
    let devs = at(r, "/devices").as_array().cloned().unwrap_or_default();
    let find = |p: &str| devs.iter().find(|d| d["path"] == p);
    for (p, maj, min) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        let d = find(p).ok_or_else(|| format!("{p} is missing"))?;
        ensure(
            d["kind"] == "char" && d["major"] == maj && d["minor"] == min,
            || {
                format!(
                    "{p} is {} {}:{}, want char {maj}:{min}",
                    d["kind"], d["major"], d["minor"]
                )
            },
        )?;
        ensure(d["mode"] == 0o666, || {
            format!("{p} has mode {:o}", d["mode"].as_u64().unwrap_or(0))
        })?;
    }
    let ptmx = find("/dev/ptmx").ok_or("/dev/ptmx is missing")?;
    let ok = (ptmx["kind"] == "symlink"
        && ptmx["target"]
            .as_str()
            .is_some_and(|t| t.ends_with("pts/ptmx")))
        || (ptmx["kind"] == "char" && ptmx["major"] == 5 && ptmx["minor"] == 2);
    ensure(ok, || {
        format!("/dev/ptmx is not the container's pts/ptmx: {ptmx}")
    })?;
    for (p, t) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let d = find(p).ok_or_else(|| format!("{p} is missing"))?;
        ensure(d["target"] == t, || {
            format!("{p} points to {}, want {t}", d["target"])
        })?;
    }
    Ok(())
}

fn check_only_configured_devices(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let mut allowed: Vec<String> = [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "console",
    ]
    .iter()
    .map(|d| format!("/dev/{d}"))
    .collect();
    allowed.extend(
        at(ctx.config, "/linux/devices")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["path"].as_str().map(String::from)),
    );
    let leaked: Vec<String> = at(r, "/devices")
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["kind"] == "char" || d["kind"] == "block")
        .filter_map(|d| d["path"].as_str())
        .filter(|p| !allowed.iter().any(|a| a == p) && !p.starts_with("/dev/pts/"))
        .map(String::from)
        .collect();
    ensure(leaked.is_empty(), || {
        format!("host devices visible in the container: {leaked:?}")
    })
}

fn set_devices(c: &mut Value, _: &Path) {
    c["linux"]["devices"] = json!([
        {"path": "/dev/conformance-null", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o640, "uid": 0, "gid": 0},
        {"path": "/dev/conformance-blk", "type": "b", "major": 7, "minor": 0,
         "fileMode": 0o600, "uid": 0, "gid": 0}
    ]);
}

fn check_custom_devices(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for want in at(ctx.config, "/linux/devices")
        .as_array()
        .into_iter()
        .flatten()
    {
        let p = want["path"].as_str().unwrap_or("?");
        let kind = if want["type"] == "b" { "block" } else { "char" };
        let d = at(r, "/devices")
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["path"] == p)
            .ok_or_else(|| format!("{p} is missing"))?;
        ensure(
            d["kind"] == kind && d["major"] == want["major"] && d["minor"] == want["minor"],
            || format!("{p} is {} {}:{}", d["kind"], d["major"], d["minor"]),
        )?;
        ensure(d["mode"] == want["fileMode"], || {
            format!("{p} mode {} want {}", d["mode"], want["fileMode"])
        })?;
    }
    check_only_configured_devices(r, ctx)
}

fn host_root_shared() -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            l.split(' ').nth(4) == Some("/")
                && l.split(" - ")
                    .next()
                    .is_some_and(|s| s.contains(" shared:"))
        })
}

fn set_prop(c: &mut Value, p: &str) {
    c["linux"]["rootfsPropagation"] = json!(p);
}

fn check_prop(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let want = ctx.config["linux"]["rootfsPropagation"]
        .as_str()
        .unwrap_or("");
    let m = mount_at(r, "/").ok_or("no / in mountinfo")?;
    let opt = strings(&m["optional"]);
    let shared = opt.iter().any(|o| o.starts_with("shared:"));
    let slave = opt.iter().any(|o| o.starts_with("master:"));
    let ok = match want.trim_start_matches('r') {
        "shared" => shared,
        "private" => !shared && !slave,
        // A slave has a master only if the host side was shared.
        "slave" => !shared && (slave || !host_root_shared()),
        _ => false,
    };
    ensure(ok, || format!("rootfsPropagation {want} but / has {opt:?}"))
}

macro_rules! prop_case {
    ($name:expr, $p:expr) => {
        ProcCase {
            probe_args: path_args,
            ..case!(
                $name,
                ALL,
                |c: &mut Value, _: &Path| set_prop(c, $p),
                check_prop
            )
        }
    };
}

pub fn cases() -> Vec<ProcCase> {
    let with_paths = |c: ProcCase| ProcCase {
        probe_args: path_args,
        ..c
    };
    vec![
        with_paths(case!("mounts-default", ALL, no_setup, check_base_mounts)),
        with_paths(case!("masked-paths-default", ALL, no_setup, check_masked)),
        with_paths(case!(
            "masked-paths-extra",
            ALL,
            set_extra_masked,
            check_masked
        )),
        with_paths(case!("readonly-paths", ALL, no_setup, check_readonly)),
        with_paths(case!(
            "readonly-paths-extra",
            ALL,
            set_extra_readonly,
            check_readonly
        )),
        with_paths(case!("root-readonly", ALL, set_root_ro, check_root_ro)),
        with_paths(case!("mount-tmpfs-options", ALL, set_tmpfs, check_tmpfs)),
        with_paths(case!("mount-bind-ro", ALL, set_bind_ro, check_bind)),
        with_paths(case!("mount-bind-rw", ALL, set_bind_rw, check_bind)),
        with_paths(case!("mounts-in-order", ALL, set_nested, check_nested)),
        case!("devices-default", ALL, no_setup, check_devices),
        case!(
            "devices-only-configured",
            ALL,
            no_setup,
            check_only_configured_devices
        ),
        case!("devices-custom", ALL, set_devices, check_custom_devices),
        prop_case!("rootfs-propagation-rshared", "rshared"),
        prop_case!("rootfs-propagation-rslave", "rslave"),
        prop_case!("rootfs-propagation-rprivate", "rprivate"),
        prop_case!("rootfs-propagation-shared", "shared"),
        prop_case!("rootfs-propagation-private", "private"),
    ]
}

//! A rootfs without a mount on /dev keeps the entries libcontainer makes in
//! it (/dev/null, /dev/fd, ...); like runc, pinc runs the next container from
//! the same rootfs. (A different entry under one of those names still stops
//! libcontainer, where runc keeps it; the unit tests show pinc leaves such
//! entries alone.)

use std::fs;
use std::os::unix::fs::symlink;

use pinc_tests::{require_root, stdout, unique_id, Bundle, Pinc};

#[test]
fn a_rootfs_without_a_dev_mount_runs_twice() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["ls", "/dev"]);
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| m["destination"] != "/dev");
        // Nothing may sit on /dev/pts etc. without /dev itself mounted.
        mounts.retain(|m| {
            !m["destination"]
                .as_str()
                .is_some_and(|d| d.starts_with("/dev/"))
        });
    });
    let dev = bundle.path().join("rootfs/dev");
    symlink("/somewhere/else", dev.join("mine")).expect("own link");
    let b = bundle.path().to_str().expect("utf8");
    let first = pinc.output(&["run", "-b", b, &unique_id("dev")]);
    assert!(first.status.success(), "first run: {first:?}");
    assert!(stdout(&first).contains("null"), "{}", stdout(&first));
    let second = pinc.output(&["run", "-b", b, &unique_id("dev")]);
    assert!(
        second.status.success(),
        "second run from the same rootfs: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        fs::read_link(dev.join("mine")).expect("own link"),
        std::path::Path::new("/somewhere/else"),
        "the image's own entries stay as they were"
    );
}

//! Which cgroup layout a host has, read from a mountinfo file.

use std::path::{Path, PathBuf};

/// The cgroup layout of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a cgroup2 mount (often holding only hugetlb or nothing).
    Hybrid,
    /// Only cgroup2.
    Unified,
}

/// One cgroup filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// The root of the hierarchy that is mounted there (field 4 of mountinfo).
    pub root: String,
    /// `None` for cgroup2, otherwise the v1 controllers (and `name=` entries).
    pub controllers: Option<Vec<String>>,
}

/// All cgroup mounts listed in a mountinfo text.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("");
            let root = unescape(fields.get(3)?);
            let mount_point = PathBuf::from(unescape(fields.get(4)?));
            match fstype {
                "cgroup2" => Some(CgroupMount {
                    mount_point,
                    root,
                    controllers: None,
                }),
                "cgroup" => Some(CgroupMount {
                    mount_point,
                    root,
                    controllers: Some(
                        options
                            .split(',')
                            .filter(|o| is_controller_option(o))
                            .map(str::to_string)
                            .collect(),
                    ),
                }),
                _ => None,
            }
        })
        .collect()
}

/// v1 super-block options name the controllers, plus a few generic flags.
fn is_controller_option(option: &str) -> bool {
    option.starts_with("name=")
        || !(option.is_empty()
            || option.contains('=')
            || matches!(
                option,
                "rw" | "ro" | "xattr" | "clone_children" | "noprefix" | "cpuset_v2_mode"
            ))
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as octal.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(code) = u8::from_str_radix(&field[i + 1..i + 4], 8) {
                out.push(code as char);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// The host's layout, judged from its cgroup mounts under `/sys/fs/cgroup`.
pub fn detect(mounts: &[CgroupMount]) -> CgroupMode {
    let base = Path::new("/sys/fs/cgroup");
    let has_v1 = mounts.iter().any(|m| m.controllers.is_some());
    let has_v2 = mounts.iter().any(|m| m.controllers.is_none());
    let v2_at_base = mounts
        .iter()
        .any(|m| m.controllers.is_none() && m.mount_point == base);
    match (has_v1, has_v2) {
        (_, true) if v2_at_base && !has_v1 => CgroupMode::Unified,
        (true, true) => CgroupMode::Hybrid,
        (false, true) => CgroupMode::Unified,
        _ => CgroupMode::Legacy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as this project's hybrid CI host prints them.
    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:30 /user.slice /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
36 30 0:32 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
37 20 0:40 / /mnt/with\\040space rw - ext4 /dev/vda rw
";

    #[test]
    fn parses_v1_and_v2_mounts() {
        let mounts = cgroup_mounts(HYBRID);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].controllers, None);
        assert_eq!(mounts[1].controllers, Some(vec!["cpuset".to_string()]));
        assert_eq!(mounts[2].root, "/user.slice");
        assert_eq!(
            mounts[3].controllers,
            Some(vec!["name=systemd".to_string()])
        );
        assert_eq!(
            mounts[4].controllers,
            Some(vec!["net_cls".to_string(), "net_prio".to_string()])
        );
        assert_eq!(detect(&mounts), CgroupMode::Hybrid);
    }

    #[test]
    fn detects_unified_and_legacy() {
        let unified = "29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(detect(&cgroup_mounts(unified)), CgroupMode::Unified);
        let legacy = "33 30 0:29 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n";
        assert_eq!(detect(&cgroup_mounts(legacy)), CgroupMode::Legacy);
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
        assert_eq!(unescape("/plain"), "/plain");
    }
}

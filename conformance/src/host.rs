//! Facts about the machine the suite runs on, so cases can skip what it
//! cannot support and compare container values with host values.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Host {
    /// readlink of /proc/self/ns/* for the driver itself.
    pub ns: BTreeMap<String, String>,
    /// v1 controllers mounted under /sys/fs/cgroup/<name>.
    pub v1: Vec<String>,
    /// /sys/fs/cgroup is itself a cgroup2 mount (unified hierarchy).
    pub v2_only: bool,
    /// A cgroup2 mount sits at /sys/fs/cgroup/unified (hybrid layout).
    pub hybrid: bool,
    pub apparmor: bool,
    pub selinux: bool,
    pub cpus: Vec<usize>,
}

impl Host {
    pub fn detect() -> Host {
        Host::detect_at(Path::new("/"))
    }

    /// Reads the facts below `root` (a test can point it at a fake tree).
    pub fn detect_at(root: &Path) -> Host {
        let mut ns = BTreeMap::new();
        if let Ok(rd) = fs::read_dir(root.join("proc/self/ns")) {
            for e in rd.flatten() {
                if let Ok(t) = fs::read_link(e.path()) {
                    ns.insert(
                        e.file_name().to_string_lossy().into_owned(),
                        t.display().to_string(),
                    );
                }
            }
        }
        let mountinfo = fs::read_to_string(root.join("proc/self/mountinfo")).unwrap_or_default();
        let mut v1 = Vec::new();
        let mut v2_only = false;
        let mut hybrid = false;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mp = left.split(' ').nth(4).unwrap_or("");
            let mut r = right.split(' ');
            let fstype = r.next().unwrap_or("");
            let supers = r.nth(1).unwrap_or("");
            match fstype {
                "cgroup2" if mp == "/sys/fs/cgroup" => v2_only = true,
                "cgroup2" if mp == "/sys/fs/cgroup/unified" => hybrid = true,
                "cgroup" => {
                    for opt in supers.split(',') {
                        if mp.ends_with(opt) && !opt.starts_with("name=") {
                            v1.push(opt.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        let apparmor = fs::read_to_string(root.join("sys/module/apparmor/parameters/enabled"))
            .map(|s| s.trim() == "Y")
            .unwrap_or(false);
        let selinux = root.join("sys/fs/selinux/enforce").exists();
        let cpus = fs::read_to_string(root.join("sys/devices/system/cpu/online"))
            .map(|s| parse_cpu_list(s.trim()))
            .unwrap_or_default();
        Host {
            ns,
            v1,
            v2_only,
            hybrid,
            apparmor,
            selinux,
            cpus,
        }
    }

    pub fn has_v1(&self, ctrl: &str) -> bool {
        self.v1.iter().any(|c| c == ctrl)
    }
}

/// "0-2,5" → [0, 1, 2, 5].
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("1"), vec![1]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn detects_hybrid_layout_from_mountinfo() {
        let dir = std::env::temp_dir().join(format!("cf-host-{}", std::process::id()));
        fs::create_dir_all(dir.join("proc/self")).expect("mkdir");
        fs::write(
            dir.join("proc/self/mountinfo"),
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        )
        .expect("write");
        let h = Host::detect_at(&dir);
        let _ = fs::remove_dir_all(&dir);
        assert!(h.hybrid);
        assert!(!h.v2_only);
        assert!(h.has_v1("memory"));
        assert!(!h.has_v1("pids"));
    }
}

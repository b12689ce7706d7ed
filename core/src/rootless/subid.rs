//! Subordinate ids (/etc/subuid, /etc/subgid) for rootless containers: with
//! a range and the setuid `newuidmap`/`newgidmap` helpers, the container
//! gets 65536 ids (root = the caller, 1.. = the range) instead of one, so
//! images with files owned by other users and `process.user` other than 0
//! work.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A range of subordinate ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// One line of a uid_map/gid_map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// What a container gets beyond root: at most this many ids.
pub const MAX_IDS: u32 = 65536;

/// Errors setting mappings through the helpers.
#[derive(Debug, thiserror::Error)]
pub enum SubidError {
    #[error("rootless: cannot run {helper}")]
    Spawn {
        helper: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The helper refused; what it printed, one line.
    #[error("rootless: newuidmap/newgidmap failed: {stderr}")]
    HelperFailed { stderr: String },
}

/// The ranges for a user in a subuid/subgid file (`name:start:count` or
/// `uid:start:count`).
pub fn ranges(text: &str, name: &str, id: u32) -> Vec<Range> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.trim().split(':');
            let (owner, start, count) = (parts.next()?, parts.next()?, parts.next()?);
            if owner != name && owner.parse::<u32>().ok() != Some(id) {
                return None;
            }
            Some(Range {
                start: start.parse().ok()?,
                count: count.parse().ok()?,
            })
        })
        .filter(|r| r.count > 0)
        .collect()
}

fn helper(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The caller's first subuid and subgid ranges under `root` (normally "/"),
/// if both exist and the helpers are installed.
pub fn for_user(root: &Path, uid: u32, gid: u32) -> Option<(Range, Range)> {
    helper("newuidmap")?;
    helper("newgidmap")?;
    let user = nix::unistd::User::from_uid(uid.into()).ok().flatten()?;
    let group = nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map_or_else(|| user.name.clone(), |g| g.name);
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
    // subgid lists users, not groups; accept either, as shadow-utils does.
    let sub_u = ranges(&read("etc/subuid"), &user.name, uid)
        .into_iter()
        .next()?;
    let sub_g = ranges(&read("etc/subgid"), &user.name, uid)
        .into_iter()
        .chain(ranges(&read("etc/subgid"), &group, gid))
        .next()?;
    Some((sub_u, sub_g))
}

/// Root = the caller's own id, then up to [`MAX_IDS`] - 1 ids of the range.
pub fn maps(own: u32, sub: Option<Range>) -> Vec<IdMap> {
    let mut maps = vec![IdMap {
        container: 0,
        host: own,
        size: 1,
    }];
    if let Some(r) = sub {
        maps.push(IdMap {
            container: 1,
            host: r.start,
            size: r.count.min(MAX_IDS - 1),
        });
    }
    maps
}

/// Whether `maps` are the caller's own id at 0 plus ids inside `sub`,
/// without overlaps in the container.
pub fn allowed(maps: &[IdMap], own: u32, sub: Option<Range>) -> bool {
    let Some((first, rest)) = maps.split_first() else {
        return false;
    };
    if first.container != 0 || first.host != own || first.size < 1 {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    let Some(r) = sub else {
        return false;
    };
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    let mut used: Vec<(u64, u64)> = vec![(0, end(0, first.size))];
    if first.size != 1 {
        return false;
    }
    for m in rest {
        let inside = m.host >= r.start && end(m.host, m.size) <= end(r.start, r.count);
        let span = (u64::from(m.container), end(m.container, m.size));
        let overlaps = used.iter().any(|(a, b)| span.0 < *b && *a < span.1);
        if !inside || overlaps || m.size == 0 {
            return false;
        }
        used.push(span);
    }
    true
}

fn helper_args(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}", m.container, m.host, m.size))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A helper that waits until this process has unshared its user namespace,
/// then writes its maps with the setuid helpers (an unprivileged process
/// may only map its own id itself).
pub struct MapWriter {
    child: std::process::Child,
}

impl MapWriter {
    /// Starts the helper (before `unshare(CLONE_NEWUSER)`).
    pub fn spawn(uid_maps: &[IdMap], gid_maps: &[IdMap]) -> Result<MapWriter, SubidError> {
        let pid = std::process::id();
        let child = Command::new("/bin/sh")
            .arg("-c")
            // Word splitting of $2 and $3 is wanted: they are "c h s ..." triples.
            .arg("read _ || exit 1; newuidmap \"$1\" $2 && newgidmap \"$1\" $3")
            .arg("pinc-idmap")
            .arg(pid.to_string())
            .arg(helper_args(uid_maps))
            .arg(helper_args(gid_maps))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SubidError::Spawn {
                helper: "newuidmap",
                source,
            })?;
        Ok(MapWriter { child })
    }

    /// Tells the helper to write the maps (after the unshare) and waits.
    pub fn finish(mut self) -> Result<(), SubidError> {
        use std::io::Write;
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let out = self
            .child
            .wait_with_output()
            .map_err(|source| SubidError::Spawn {
                helper: "newuidmap",
                source,
            })?;
        if !out.status.success() {
            return Err(SubidError::HelperFailed {
                stderr: String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace('\n', "; "),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_name_or_id() {
        let text = "alice:100000:65536\n1001:300000:1000\nbob:200000:65536\nbroken\n";
        assert_eq!(
            ranges(text, "alice", 1000),
            [Range {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            ranges(text, "carol", 1001),
            [Range {
                start: 300000,
                count: 1000
            }]
        );
        assert!(ranges(text, "dave", 1002).is_empty());
    }

    #[test]
    fn maps_put_the_caller_at_root() {
        let sub = Range {
            start: 100000,
            count: 100000,
        };
        let m = maps(1000, Some(sub));
        assert_eq!(
            m,
            [
                IdMap {
                    container: 0,
                    host: 1000,
                    size: 1
                },
                IdMap {
                    container: 1,
                    host: 100000,
                    size: 65535
                }
            ]
        );
        assert!(allowed(&m, 1000, Some(sub)));
        assert_eq!(maps(1000, None).len(), 1);
    }

    #[test]
    fn foreign_or_overlapping_maps_are_refused() {
        let sub = Some(Range {
            start: 100000,
            count: 65536,
        });
        let own = IdMap {
            container: 0,
            host: 1000,
            size: 1,
        };
        assert!(allowed(&[own], 1000, None));
        assert!(!allowed(&[own], 1001, None), "someone else's id");
        let outside = IdMap {
            container: 1,
            host: 90000,
            size: 10,
        };
        assert!(!allowed(&[own, outside], 1000, sub));
        let overlapping = IdMap {
            container: 0,
            host: 100000,
            size: 10,
        };
        assert!(!allowed(&[own, overlapping], 1000, sub));
        let fine = IdMap {
            container: 1000,
            host: 100000,
            size: 10,
        };
        assert!(allowed(&[own, fine], 1000, sub));
        assert!(!allowed(&[own, fine], 1000, None), "no range, no extra ids");
    }
}

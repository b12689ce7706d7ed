//! RLIMIT_MEMLOCK for registered memory (RDMA HCAs, MPI over shared memory
//! and fabrics): as high as the caller may set it. Shared by the devices
//! stage and the HPC preset.

use oci_spec::runtime::{PosixRlimitBuilder, PosixRlimitType, Spec};

/// What the caller may set `RLIMIT_MEMLOCK` to, read once from pinc's own
/// process: the container cannot go above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memlock {
    /// The caller's hard limit in bytes; `u64::MAX` is unlimited.
    pub hard: u64,
    /// CAP_SYS_RESOURCE: the hard limit may be raised.
    pub may_raise: bool,
}

impl Memlock {
    pub fn of_caller() -> Memlock {
        let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
            .map(|(_, hard)| hard)
            .unwrap_or(0);
        Memlock {
            hard: if hard == libc::RLIM_INFINITY {
                u64::MAX
            } else {
                hard
            },
            may_raise: has_cap_sys_resource(),
        }
    }
}

/// CAP_SYS_RESOURCE (bit 24) in the effective set.
fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// RDMA pins the memory it registers: lift RLIMIT_MEMLOCK as far as the
/// caller may, unless the spec already chose a value.
pub fn apply(spec: &mut Spec, caller: Memlock) {
    let Some(mut process) = spec.process().clone() else {
        return;
    };
    let mut rlimits = process.rlimits().clone().unwrap_or_default();
    if rlimits
        .iter()
        .any(|r| r.typ() == PosixRlimitType::RlimitMemlock)
    {
        return;
    }
    let limit = if caller.may_raise {
        u64::MAX
    } else {
        caller.hard
    };
    if limit != u64::MAX {
        tracing::warn!(
            target: "pinc",
            "RLIMIT_MEMLOCK stays at {limit} bytes, the caller's hard limit (raising it needs CAP_SYS_RESOURCE): RDMA and MPI memory registration may fail"
        );
    }
    match PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitMemlock)
        .hard(limit)
        .soft(limit)
        .build()
    {
        Ok(rlimit) => rlimits.push(rlimit),
        Err(e) => tracing::warn!(target: "pinc", "RLIMIT_MEMLOCK not set: {e}"),
    }
    process.set_rlimits(Some(rlimits));
    spec.set_process(Some(process));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memlock_of(spec: &Spec) -> Option<(u64, u64)> {
        spec.process()
            .as_ref()
            .and_then(|p| p.rlimits().clone())
            .and_then(|r| {
                r.iter()
                    .find(|r| r.typ() == PosixRlimitType::RlimitMemlock)
                    .map(|r| (r.soft(), r.hard()))
            })
    }

    #[test]
    fn memlock_unlimited_only_when_the_caller_may_raise_it() {
        let mut spec = Spec::default();
        apply(
            &mut spec,
            Memlock {
                hard: 8 << 20,
                may_raise: true,
            },
        );
        assert_eq!(memlock_of(&spec), Some((u64::MAX, u64::MAX)));
        let mut spec = Spec::default();
        apply(
            &mut spec,
            Memlock {
                hard: 8 << 20,
                may_raise: false,
            },
        );
        assert_eq!(memlock_of(&spec), Some((8 << 20, 8 << 20)));
        let mut spec = Spec::default();
        apply(
            &mut spec,
            Memlock {
                hard: u64::MAX,
                may_raise: false,
            },
        );
        assert_eq!(memlock_of(&spec), Some((u64::MAX, u64::MAX)));
    }

    #[test]
    fn memlock_set_by_the_spec_is_kept() {
        let mut spec = Spec::default();
        let mut process = spec.process().clone().expect("default process");
        let r = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitMemlock)
            .hard(1024u64)
            .soft(512u64)
            .build()
            .expect("rlimit");
        process.set_rlimits(Some(vec![r]));
        spec.set_process(Some(process));
        apply(
            &mut spec,
            Memlock {
                hard: u64::MAX,
                may_raise: true,
            },
        );
        assert_eq!(memlock_of(&spec), Some((512, 1024)));
    }
}

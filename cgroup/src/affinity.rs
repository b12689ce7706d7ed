//! CPU affinity of processes, as `CpuList`s.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use pinc_cpulist::CpuList;

/// Errors reading or setting a CPU affinity mask.
#[derive(Debug, thiserror::Error)]
pub enum AffinityError {
    #[error("failed to read the CPU affinity of pid {pid}")]
    Get {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("failed to set the CPU affinity of pid {pid} to {cpus}")]
    Set {
        pid: i32,
        cpus: String,
        #[source]
        source: nix::Error,
    },
    #[error("CPU {cpu} cannot be expressed in an affinity mask")]
    OutOfRange { cpu: u32 },
}

/// The affinity of `pid` (0 = the calling thread).
pub fn get(pid: i32) -> Result<CpuList, AffinityError> {
    let set = sched_getaffinity(Pid::from_raw(pid))
        .map_err(|source| AffinityError::Get { pid, source })?;
    Ok((0..CpuSet::count() as u32)
        .filter(|&cpu| set.is_set(cpu as usize).unwrap_or(false))
        .collect())
}

/// Sets the affinity of `pid` (0 = the calling thread).
pub fn set(pid: i32, cpus: &CpuList) -> Result<(), AffinityError> {
    let mut set = CpuSet::new();
    for cpu in cpus.iter() {
        set.set(cpu as usize)
            .map_err(|_| AffinityError::OutOfRange { cpu })?;
    }
    sched_setaffinity(Pid::from_raw(pid), &set).map_err(|source| AffinityError::Set {
        pid,
        cpus: cpus.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrower_mask_round_trips_and_is_restored() {
        // In a thread of its own: affinity is per thread, so the other tests
        // of this process keep theirs whatever happens here.
        std::thread::spawn(|| {
            let mine = get(0).expect("own affinity");
            assert!(!mine.is_empty());
            let tid = nix::unistd::gettid().as_raw();
            if mine.len() >= 2 {
                let last = mine.iter().last().expect("a CPU");
                let one: CpuList = [last].into_iter().collect();
                set(0, &one).expect("narrowing to one CPU");
                assert_eq!(get(0).expect("narrowed"), one);
                // The same thread seen by its id, as another process would.
                assert_eq!(get(tid).expect("narrowed, by tid"), one);
            }
            set(0, &mine).expect("restoring");
            assert_eq!(get(tid).expect("restored"), mine);
        })
        .join()
        .expect("affinity thread");
    }

    #[test]
    fn an_empty_mask_is_refused() {
        std::thread::spawn(|| {
            let mine = get(0).expect("own affinity");
            let err = set(0, &CpuList::default()).expect_err("no CPUs");
            assert!(matches!(err, AffinityError::Set { pid: 0, .. }), "{err:?}");
            assert_eq!(get(0).expect("unchanged"), mine);
        })
        .join()
        .expect("affinity thread");
    }
}

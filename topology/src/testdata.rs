//! Where tests, examples and benchmarks find the real-machine hwloc
//! topologies. They are third-party data: read in place from
//! `$PINC_TOPOLOGIES`, or from `shared/topologies` beside the checkout,
//! never copied into the repository.

use std::path::PathBuf;

/// The folder of real-machine topologies, when it is there.
pub fn dir() -> Option<PathBuf> {
    let from_env = std::env::var_os("PINC_TOPOLOGIES").map(PathBuf::from);
    let beside = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/topologies"
    ));
    from_env.into_iter().chain([beside]).find(|d| d.is_dir())
}

/// The path of one topology file (`None` without the folder).
pub fn path(name: &str) -> Option<PathBuf> {
    dir().map(|d| d.join(name))
}

/// For a test to return early: true (with one line saying why) when the
/// real-machine topologies are not on this machine.
pub fn absent() -> bool {
    let absent = dir().is_none();
    if absent {
        eprintln!(
            "skipped: no real-machine topologies (set PINC_TOPOLOGIES, or put shared/topologies beside the checkout)"
        );
    }
    absent
}

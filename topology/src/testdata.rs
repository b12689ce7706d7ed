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

/// Why a test that needs the real-machine topologies skips without them
/// (tests skip through `pinc_testkit::skip!`, so the skip is counted).
pub const ABSENT: &str =
    "no real-machine topologies (set PINC_TOPOLOGIES, or put shared/topologies beside the checkout)";

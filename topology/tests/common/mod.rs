//! What the topology test files share.

/// Skips the test, counted as a skip (`pinc_testkit::skip!`), when the
/// real-machine topologies are not on this machine.
macro_rules! needs_topologies {
    () => {
        if pinc_topology::testdata::dir().is_none() {
            pinc_testkit::skip!("{}", pinc_topology::testdata::ABSENT);
        }
    };
}

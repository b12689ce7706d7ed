//! hwloc XML exports (`lstopo --of xml`, `PINC_TOPOLOGY=<file>`) through
//! pinc's loader: libhwloc's XML parser (C, run with AFL's memory limit),
//! then pinc's conversion to its model, then the checks every topology must
//! pass (see `pinc_fuzz::check_topology`).

fn main() {
    let path = pinc_fuzz::scratch().join("topology.xml");
    afl::fuzz!(|data: &[u8]| {
        // The loader takes a file path, as the CLI does.
        std::fs::write(&path, data).expect("write input");
        if let Ok(t) = pinc_topology::hwloc::from_xml(&path) {
            pinc_fuzz::check_topology(&t);
        }
    });
}

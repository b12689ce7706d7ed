use std::path::PathBuf;
use pinc_topology::from_xml;
#[test]
fn dump() {
    for name in ["ibm-power8-2s-4p100.xml","hp-sl390s-2s-6c-3gpu-ib.xml","supermicro-x9drg-2s-e5-gpu-ib.xml","nec-2s-skylake-8ve-2ib.xml","intel-knl-snc4-hybrid-8numa.xml","amd-epyc9654-2s-384pu.xml"] {
        let t = from_xml(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).expect("load");
        println!("=== {name}");
        println!("packages {:?}", t.packages);
        for n in &t.numa_nodes { println!("numa {} {:?} cpus {} near {} mem {}", n.os_index, n.kind, n.cpus, n.near_cpus, n.memory); }
        println!("l3 {}: {:?}", t.l3_groups.len(), t.l3_groups.iter().take(4).map(|g| g.to_string()).collect::<Vec<_>>());
        for c in t.cores.iter().take(6) { println!("core {:?}", c); }
        for d in &t.devices { println!("dev {} {:?} {:?} numa {:?} cpus {}", d.bus_id, d.kind, d.names, d.numa, d.cpus); }
        println!("dist {:?}", t.distances);
    }
}

//! A bundle's config.json through pinc's own path: the typed parse with
//! pinc's raw rewrites and field-naming errors (`bundle::parse`), the host
//! checks of `validate` against an empty fake host, then `normalize::spec`.
//! The same bytes are also read as an exec `--process` file. The CPU and
//! memory-node lists of `linux.resources.cpu` (and any input that is one)
//! go through pinc's `CpuList` parser and must print back to themselves.

use std::path::Path;

use pinc_core::oci_spec::runtime::{Process, Spec};
use pinc_core::process::exec;
use pinc_core::spec::{bundle, normalize, validate};
use pinc_cpulist::CpuList;

/// A list that parses prints as one that parses back to the same set.
fn cpulist(text: &str) {
    let Ok(list) = text.parse::<CpuList>() else {
        return;
    };
    let shown = list.to_string();
    let back: CpuList = shown
        .parse()
        .unwrap_or_else(|e| panic!("{shown:?} (from {text:?}) does not parse back: {e}"));
    assert_eq!(back, list, "{text:?} -> {shown:?} changed");
}

fn spec_cpulists(spec: &Spec) {
    let cpu = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.cpu().as_ref());
    if let Some(cpu) = cpu {
        for list in [cpu.cpus(), cpu.mems()].into_iter().flatten() {
            cpulist(list);
        }
    }
}

fn main() {
    let scratch = pinc_fuzz::scratch();
    let bundle_dir = scratch.join("bundle");
    let host = scratch.join("host");
    for dir in [&bundle_dir, &host, &bundle_dir.join("rootfs")] {
        std::fs::create_dir_all(dir).expect("scratch dirs");
    }
    let container: Process = serde_json::from_str(
        r#"{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},"env":["PATH=/bin"]}"#,
    )
    .expect("container process");
    afl::fuzz!(|data: &[u8]| {
        let config = Path::new("config.json");
        if let Some(text) = pinc_fuzz::text(data) {
            cpulist(text);
        }
        if let Ok(mut spec) = bundle::parse(config, data) {
            spec_cpulists(&spec);
            // As `bundle::load` does: root.path taken from the bundle.
            if let Some(mut root) = spec.root().clone() {
                root.set_path(bundle_dir.join(root.path()));
                spec.set_root(Some(root));
            }
            if validate::spec_on(&spec, &bundle_dir, &host).is_ok() {
                normalize::spec(&mut spec);
                serde_json::to_vec(&spec).expect("a checked spec serializes");
            }
        }
        if let Ok(process) = serde_json::from_slice::<Process>(data) {
            let path = Path::new("process.json");
            if let Ok(p) = exec::process::from_file(process, path, &container, Some("0-3")) {
                let _ = validate::process(&p);
            }
        }
    });
}

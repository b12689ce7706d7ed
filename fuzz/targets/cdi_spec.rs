//! CDI spec files (admin- or vendor-written, JSON and YAML): parsing and
//! validation, then the registry over a folder holding the file and the
//! edits of every device it defines applied to a spec, device nodes read
//! below an empty host root.
//!
//! Input: the file's text. Each input is read both as `spec.json` and as
//! `spec.yaml`.

use std::path::Path;

use pinc_core::oci_spec::runtime::Spec;
use pinc_devices::cdi;

fn main() {
    let scratch = pinc_fuzz::scratch();
    let dir = scratch.join("cdi");
    let host = scratch.join("host");
    std::fs::create_dir_all(&host).expect("host");
    afl::fuzz!(|data: &[u8]| {
        let Some(text) = pinc_fuzz::text(data) else {
            return;
        };
        for name in ["spec.json", "spec.yaml"] {
            let Ok(spec) = cdi::parse_spec(Path::new(name), text) else {
                continue;
            };
            let names: Vec<String> = spec
                .devices
                .iter()
                .map(|d| format!("{}={}", spec.kind, d.name))
                .collect();
            for n in &names {
                cdi::parse_qualified_name(n)
                    .unwrap_or_else(|e| panic!("valid spec, bad device name {n:?}: {e}"));
            }
            // Through the registry, as the devices stage loads specs.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("cdi dir");
            std::fs::write(dir.join(name), text).expect("spec file");
            let registry = cdi::Registry::load(std::slice::from_ref(&dir))
                .unwrap_or_else(|e| panic!("parse_spec accepted it, the registry not: {e}"));
            let mut oci = Spec::default();
            let _ = registry.apply(&mut oci, &names, &host);
        }
    });
}

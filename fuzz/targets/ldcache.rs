//! /etc/ld.so.cache as pinc-hook reads it from a container image (any
//! bytes an image author ships): the parser, then lookups.

use std::path::Path;

use pinc_devices::{Arch, LdCache};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(cache) = LdCache::parse(Path::new("/etc/ld.so.cache"), data) else {
            return;
        };
        for e in &cache.entries {
            let found = cache
                .lookup(&e.soname, e.arch)
                .expect("an entry is found by its own soname and arch");
            assert!(found.soname == e.soname && found.arch == e.arch);
            let _ = Arch::from_flags(e.arch.flags()).compat32();
        }
        let _ = cache.lookup("libcuda.so.1", Arch::native());
    });
}

//! /etc/subuid and /etc/subgid (`name:start:count` or `uid:start:count`
//! lines), as `pinc --rootless` reads them for the caller.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some(text) = pinc_fuzz::text(data) else {
            return;
        };
        for (name, id) in [("root", 0), ("alice", 1000), ("", u32::MAX)] {
            for r in pinc_core::rootless::subid::ranges(text, name, id) {
                assert!(r.count > 0, "a range with no ids: {r:?}");
                let maps = pinc_core::rootless::subid::maps(id, Some(r));
                assert!(
                    pinc_core::rootless::subid::allowed(&maps, id, Some(r)),
                    "the maps made from {r:?} are not allowed by it: {maps:?}"
                );
            }
        }
    });
}

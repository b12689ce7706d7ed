//! Synthetic topology descriptions (`PINC_TOPOLOGY=synthetic:...`,
//! `pinc plan --topology synthetic:...`), then what must hold for every
//! topology pinc loads (see `pinc_fuzz::check_topology`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some(text) = pinc_fuzz::text(data) else {
            return;
        };
        if let Ok(t) = pinc_topology::synthetic::build(text) {
            pinc_fuzz::check_topology(&t);
        }
    });
}

//! Our CRI validation: what Kubernetes' CRI validation checks of a runtime,
//! each scenario run through `runc` (the reference), `pinc-runc` (the runc
//! shim execing pinc) and `pinc` (pinc's own shim) and compared
//! (`pinc_tests::cri_compare`). One private containerd per test; the tests
//! run one at a time, as the CRI plugin's namespace (and the runc shim's
//! state root) is shared.

use std::sync::Mutex;

use pinc_tests::cri_compare::Suite;
use pinc_tests::require_root;

#[path = "cri_validation/exec.rs"]
mod exec;
#[path = "cri_validation/lifecycle.rs"]
mod lifecycle;
#[path = "cri_validation/logs.rs"]
mod logs;
#[path = "cri_validation/namespaces.rs"]
mod namespaces;
#[path = "cri_validation/probe.rs"]
mod probe;
#[path = "cri_validation/resources.rs"]
mod resources;
#[path = "cri_validation/security.rs"]
mod security;
#[path = "cri_validation/security_paths.rs"]
mod security_paths;
#[path = "cri_validation/volumes.rs"]
mod volumes;

static SERIAL: Mutex<()> = Mutex::new(());

fn suite(tag: &str, scenarios: fn(&mut Suite)) {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Suite::start(tag);
    scenarios(&mut s);
    s.finish();
}

#[test]
fn cri_lifecycle_and_status() {
    suite("crilife", lifecycle::scenarios);
}

#[test]
fn cri_security_context() {
    suite("crisec", security::scenarios);
}

#[test]
fn cri_security_sysctls_and_paths() {
    suite("crisecp", security_paths::scenarios);
}

#[test]
fn cri_resources_and_stats() {
    suite("crires", resources::scenarios);
}

#[test]
fn cri_exec_and_attach() {
    suite("criexec", exec::scenarios);
}

#[test]
fn cri_container_logs() {
    suite("crilogs", logs::scenarios);
}

#[test]
fn cri_namespace_modes() {
    suite("crins", namespaces::scenarios);
}

#[test]
fn cri_volumes() {
    suite("crivol", volumes::scenarios);
}

//! The container's seccomp filter for exec'd processes.
//!
//! libcontainer 0.7's tenant builder rebuilds `linux` without `seccomp`, so
//! an exec'd process would run unfiltered. pinc installs the container's
//! filter itself, in its executor, as the last step before execve.
//!
//! Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
//! process has usually dropped by then. runc loads the filter before it
//! drops capabilities; pinc gets the same order by letting libcontainer
//! leave CAP_SYS_ADMIN (and CAP_SETPCAP, to shrink the bounding set) in the
//! process, loading the filter, then dropping to the process's own sets.

use libcontainer::oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp, Process};

/// What the executor applies just before execve.
#[derive(Debug, Clone)]
pub struct Confinement {
    pub seccomp: LinuxSeccomp,
    /// The process's own capability sets, set after the filter is loaded;
    /// `None` when libcontainer already left exactly these.
    pub final_caps: Option<LinuxCapabilities>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error(
        "the container's seccomp profile sends syscalls to a listener (linux.seccomp.listenerPath); \
         exec into such a container is not supported"
    )]
    Listener,
}

/// The privileges libcontainer must leave for loading the filter.
const LOADING: [Capability; 2] = [Capability::SysAdmin, Capability::Setpcap];

/// Decides how the filter is applied to `process` (which libcontainer will
/// set up), and adjusts its capabilities for that.
pub fn plan(
    seccomp: Option<&LinuxSeccomp>,
    process: &mut Process,
) -> Result<Option<Confinement>, ConfineError> {
    let Some(seccomp) = seccomp else {
        return Ok(None);
    };
    if libcontainer::seccomp::is_notify(seccomp) || seccomp.listener_path().is_some() {
        return Err(ConfineError::Listener);
    }
    if process.no_new_privileges() == Some(true) {
        return Ok(Some(Confinement {
            seccomp: seccomp.clone(),
            final_caps: None,
        }));
    }
    let final_caps = super::process::complete(process.capabilities().as_ref());
    let mut loading = final_caps.clone();
    super::process::grant(&mut loading, &LOADING);
    process.set_capabilities(Some(loading));
    Ok(Some(Confinement {
        seccomp: seccomp.clone(),
        final_caps: Some(final_caps),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seccomp() -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]
        }))
        .expect("seccomp")
    }

    fn process(nnp: Option<bool>) -> Process {
        let mut p: Process = serde_json::from_value(serde_json::json!({
            "args": ["x"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        }))
        .expect("process");
        p.set_no_new_privileges(nnp);
        p
    }

    #[test]
    fn no_filter_changes_nothing() {
        let mut p = process(None);
        let before = p.clone();
        assert!(plan(None, &mut p).expect("plan").is_none());
        assert_eq!(p, before);
    }

    #[test]
    fn no_new_privs_loads_the_filter_without_privileges() {
        let mut p = process(Some(true));
        let before = p.clone();
        let c = plan(Some(&seccomp()), &mut p)
            .expect("plan")
            .expect("confined");
        assert!(c.final_caps.is_none());
        assert_eq!(p, before);
    }

    #[test]
    fn without_no_new_privs_the_filter_is_loaded_before_the_drop() {
        for nnp in [None, Some(false)] {
            let mut p = process(nnp);
            let c = plan(Some(&seccomp()), &mut p)
                .expect("plan")
                .expect("confined");
            let loading = p.capabilities().clone().expect("caps");
            for set in [loading.bounding(), loading.effective(), loading.permitted()] {
                let set = set.as_ref().expect("set");
                assert!(set.contains(&Capability::SysAdmin) && set.contains(&Capability::Setpcap));
            }
            let final_caps = c.final_caps.expect("final caps");
            let eff = final_caps.effective().clone().expect("effective");
            assert_eq!(eff.len(), 1);
            assert!(eff.contains(&Capability::Kill));
            assert!(final_caps.ambient().as_ref().is_some_and(|a| a.is_empty()));
        }
    }

    #[test]
    fn a_listener_profile_is_refused() {
        let mut s = seccomp();
        s.set_listener_path(Some("/run/agent.sock".into()));
        let err = plan(Some(&s), &mut process(None)).expect_err("listener");
        assert!(err.to_string().contains("listenerPath"), "{err}");
    }
}

//! Pod and container lifecycle and status.

use std::time::Duration;

use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Facts, Suite};

pub fn scenarios(s: &mut Suite) {
    s.compare("exit-code-and-status", |c| {
        let pod = c.pod(|_| {});
        let id = c.run(&pod, &["sh", "-c", "exit 7"], |_| {});
        let st = c.wait_exited(&id, Duration::from_secs(30));
        assert_eq!(st.exit_code, 7, "{st:?}");
        // Not ordered: containerd stamps started_at when StartContainer returns.
        assert!(st.started_at > 0 && st.finished_at > 0, "{st:?}");
        Facts::new()
            .with("state", st.state)
            .with("exit_code", st.exit_code)
            .with("reason", &st.reason)
    });
    s.compare("running-container-status", |c| {
        let pod = c.pod(|_| {});
        let id = c.run(&pod, &["sleep", "3600"], |_| {});
        let st = c.status(&id);
        assert_eq!(st.state, ContainerState::ContainerRunning as i32, "{st:?}");
        Facts::new()
            .with("state", st.state)
            .with("reason", &st.reason)
    });
}

//! The MPI-friendly preset (`PINC_HPC=1` / `pinc.io/hpc=true`): two
//! containers on this node share the host's network and IPC namespaces and
//! exchange data through /dev/shm, with the launcher's PMI variables.

use std::fs;

use pinc_tests::{require_root, stderr, stdout, unique_id, Bundle, Pinc};

fn run(pinc: &Pinc, args: &[&str], hpc: bool, env: &[(&str, &str)]) -> std::process::Output {
    let bundle = Bundle::new(args);
    if hpc {
        bundle.add_env("PINC_HPC=1");
    }
    let mut cmd = pinc.cmd(&[
        "run",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &unique_id("hpc"),
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    pinc_tests::output_via_files(cmd)
}

fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .expect("ns")
        .display()
        .to_string()
}

#[test]
fn ranks_in_two_containers_share_memory_and_namespaces() {
    require_root();
    let pinc = Pinc::new();
    let name = format!("pinc-hpc-{}", unique_id("shm"));
    let shm = std::path::Path::new("/dev/shm").join(&name);
    let _cleanup = Cleanup(shm.clone());

    // Rank 0 writes a message into shared memory and exits.
    let out = run(
        &pinc,
        &[
            "sh",
            "-c",
            &format!(
                "echo \"from rank $PMIX_RANK of $OMPI_COMM_WORLD_SIZE\" > /dev/shm/{name}; \
                 readlink /proc/self/ns/ipc; readlink /proc/self/ns/net"
            ),
        ],
        true,
        &[("PMIX_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "2")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [host_ns("ipc"), host_ns("net")],
        "host IPC and network"
    );
    assert_eq!(
        fs::read_to_string(&shm).expect("the host sees it"),
        "from rank 0 of 2\n"
    );

    // Rank 1, another container, reads it.
    let out = run(
        &pinc,
        &[
            "sh",
            "-c",
            &format!("cat /dev/shm/{name}; echo rank $PMIX_RANK"),
        ],
        true,
        &[("PMIX_RANK", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from rank 0 of 2\nrank 1\n");

    // Without the preset: private /dev/shm and namespaces, no PMI variables.
    let out = run(
        &pinc,
        &[
            "sh",
            "-c",
            &format!(
                "ls /dev/shm/{name} 2>/dev/null || echo private; readlink /proc/self/ns/ipc; \
                 echo \"rank=$PMIX_RANK\""
            ),
        ],
        false,
        &[("PMIX_RANK", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "private", "{text}");
    assert_ne!(lines[1], host_ns("ipc"), "{text}");
    assert_eq!(lines[2], "rank=", "{text}");
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

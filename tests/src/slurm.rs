//! A private one-node Slurm cluster: its own munged (key and socket),
//! slurmctld and slurmd, with slurm.conf and oci.conf in a temporary
//! directory and free TCP ports, so the machine's Slurm (if any) is untouched.
//! `Drop` stops the daemons (SIGTERM, then SIGKILL), kills what they left
//! (slurmstepd, pinc: found by a marker in their environment, killed by pid)
//! and removes the directory.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::daemons::{
    log_tail, require_bin, run_with_timeout, short_tempdir, unmount_under, wait_until,
};

/// Set in the daemons' environment; slurmstepd and the runtime it starts
/// inherit it, which is how `Drop` finds them.
const MARKER: &str = "PINC_SLURM_TEST";

/// How long one srun may take.
pub const SRUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The packaged oci.conf `name` (under packaging/slurm), with pinc's path
/// and the state prefix substituted: `/usr/local/bin/pinc` -> `pinc`,
/// `/run/pinc-slurm` or `/run/pinc` -> `state`.
pub fn packaged_oci_conf(name: &str, pinc: &Path, state: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/slurm")
        .join(name);
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let pinc = pinc.to_string_lossy();
    let state = state.to_string_lossy();
    let text = text.replace("/usr/local/bin/pinc", &pinc);
    // Longest first: /run/pinc is a prefix of /run/pinc-slurm.
    let text = text
        .replace("--root=/run/pinc-slurm/", &format!("--root={state}/"))
        .replace("--root=/run/pinc ", &format!("--root={state} "));
    let settings = text.lines().filter(|l| !l.trim_start().starts_with('#'));
    let mut has_run = false;
    for line in settings {
        has_run |= line.starts_with("RunTimeRun=");
        assert!(
            !line.contains("/run/pinc"),
            "unsubstituted path in {line:?}"
        );
    }
    assert!(has_run, "unexpected oci.conf {}: {text}", path.display());
    text
}

/// A free TCP port on 127.0.0.1 (free now; the daemons bind it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

/// A running private cluster.
pub struct Slurm {
    munged: Child,
    slurmctld: Option<Child>,
    slurmd: Option<Child>,
    /// slurm.conf; oci.conf sits beside it.
    pub conf: PathBuf,
    pub node: String,
    dir: tempfile::TempDir,
}

impl Slurm {
    /// Starts munged, slurmctld and slurmd with `oci_conf` as oci.conf and
    /// waits until the node is idle.
    pub fn start(oci_conf: &str) -> Self {
        let munged = require_bin("munged", "munge");
        let slurmctld = require_bin("slurmctld", "slurm-wlm");
        let slurmd = require_bin("slurmd", "slurm-wlm");
        require_bin("srun", "slurm-wlm");
        let dir = short_tempdir("pinc-slurm-");
        let d = dir.path();
        // Users' srun must reach the munge socket beneath it.
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["state", "spool"] {
            fs::create_dir_all(d.join(sub)).expect("slurm dir");
        }
        let key = d.join("munge.key");
        let mut key_bytes = vec![0u8; 1024];
        std::io::Read::read_exact(
            &mut fs::File::open("/dev/urandom").expect("/dev/urandom"),
            &mut key_bytes,
        )
        .expect("random key");
        fs::write(&key, key_bytes).expect("munge key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod key");
        let sock = d.join("munge.sock");
        let munged_log = d.join("munged.log");
        let munged = Command::new(munged)
            .arg("--foreground")
            .arg("--force") // root may run it: the key is ours alone
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", d.join("munged.pid").display()))
            .arg(format!("--log-file={}", munged_log.display()))
            .arg(format!("--seed-file={}", d.join("munged.seed").display()))
            .env(MARKER, d)
            .stdin(Stdio::null())
            .stdout(log_file(&d.join("munged.out")))
            .stderr(log_file(&d.join("munged.out")))
            .spawn()
            .expect("spawn munged");
        let node = hostname();
        let conf = d.join("slurm.conf");
        fs::write(&conf, slurm_conf(d, &node)).expect("slurm.conf");
        fs::write(d.join("oci.conf"), oci_conf).expect("oci.conf");
        fs::write(d.join("plugstack.conf"), "").expect("plugstack.conf");
        let mut this = Self {
            munged,
            slurmctld: None,
            slurmd: None,
            conf,
            node,
            dir,
        };
        let up = wait_until(Duration::from_secs(10), || sock.exists());
        assert!(up, "munged did not start:\n{}", this.logs());

        let d = this.dir.path().to_path_buf();
        this.slurmctld = Some(
            Command::new(slurmctld)
                .args(["-D", "-i", "-f"])
                .arg(&this.conf)
                .env(MARKER, &d)
                .stdin(Stdio::null())
                .stdout(log_file(&d.join("slurmctld.out")))
                .stderr(log_file(&d.join("slurmctld.out")))
                .spawn()
                .expect("spawn slurmctld"),
        );
        this.slurmd = Some(
            Command::new(slurmd)
                .args(["-D", "-f"])
                .arg(&this.conf)
                .env(MARKER, &d)
                .env("SLURM_CONF", &this.conf)
                .stdin(Stdio::null())
                .stdout(log_file(&d.join("slurmd.out")))
                .stderr(log_file(&d.join("slurmd.out")))
                .spawn()
                .expect("spawn slurmd"),
        );
        let idle = wait_until(Duration::from_secs(60), || {
            let exited = [
                ("slurmctld", &mut this.slurmctld),
                ("slurmd", &mut this.slurmd),
            ]
            .into_iter()
            .find_map(|(name, child)| match child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => Some(format!("{name} exited ({status})")),
                _ => None,
            });
            if let Some(what) = exited {
                panic!("{what} during start-up:\n{}", this.logs());
            }
            this.node_state() == "idle"
        });
        assert!(
            idle,
            "node {} not idle within 60s (state {:?}):\n{}",
            this.node,
            this.node_state(),
            this.logs()
        );
        this
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The node's state as `sinfo` prints it (`idle`, `alloc`, `down*`...).
    pub fn node_state(&self) -> String {
        let out = run_with_timeout(
            self.client("sinfo").args(["-h", "-N", "-o", "%t"]),
            Duration::from_secs(20),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A Slurm client command (`srun`, `sinfo`, `squeue`...) pointed at
    /// the private cluster.
    pub fn client(&self, name: &str) -> Command {
        let mut cmd = Command::new(name);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// `srun args...` as root.
    pub fn srun(&self, args: &[&str]) -> Output {
        run_with_timeout(self.client("srun").args(args), SRUN_TIMEOUT)
    }

    /// `srun args...` as `user`, with a clean login-like environment.
    pub fn srun_as(&self, user: &str, home: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("runuser");
        cmd.args([
            "-u",
            user,
            "--",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .arg(format!("HOME={}", home.display()))
        .arg(format!("SLURM_CONF={}", self.conf.display()))
        .arg("srun")
        .args(args)
        .current_dir(home);
        run_with_timeout(&mut cmd, SRUN_TIMEOUT)
    }

    /// Starts `srun args...` (as `user`, from `cwd`, when given) without
    /// waiting; output goes nowhere.
    pub fn spawn_srun(&self, user: Option<(&str, &Path)>, args: &[&str]) -> Child {
        let mut cmd = match user {
            None => self.client("srun"),
            Some((user, cwd)) => {
                let mut cmd = Command::new("runuser");
                cmd.args([
                    "-u",
                    user,
                    "--",
                    "env",
                    "-i",
                    "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                ])
                .arg(format!("HOME={}", cwd.display()))
                .arg(format!("SLURM_CONF={}", self.conf.display()))
                .arg("srun")
                .current_dir(cwd);
                cmd
            }
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn srun")
    }

    /// The slurmd log (where step and runtime errors land).
    pub fn slurmd_log(&self) -> String {
        fs::read_to_string(self.dir().join("slurmd.log")).unwrap_or_default()
    }

    /// Tails of every daemon log, for panic messages.
    pub fn logs(&self) -> String {
        [
            "munged.log",
            "munged.out",
            "slurmctld.log",
            "slurmctld.out",
            "slurmd.log",
            "slurmd.out",
        ]
        .iter()
        .map(|f| format!("--- {f}:\n{}", log_tail(&self.dir().join(f), 25)))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Processes started by this cluster's daemons that are still alive
    /// (slurmstepd, the runtime, containers that kept the environment).
    pub fn stray_processes(&self) -> Vec<(i32, String)> {
        let daemons: Vec<i32> = [
            Some(&self.munged),
            self.slurmctld.as_ref(),
            self.slurmd.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|c| c.id() as i32)
        .collect();
        processes_with_env(MARKER, &self.dir().to_string_lossy())
            .into_iter()
            .filter(|(pid, _)| !daemons.contains(pid))
            .collect()
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let quick = Duration::from_secs(20);
        if self.slurmctld.is_some() {
            let _ = run_with_timeout(
                self.client("scancel").arg("--full").arg("-u").arg("root"),
                quick,
            );
        }
        for child in [
            self.slurmd.as_mut(),
            self.slurmctld.as_mut(),
            Some(&mut self.munged),
        ]
        .into_iter()
        .flatten()
        {
            stop(child);
        }
        let left = processes_with_env(MARKER, &self.dir().to_string_lossy());
        for (pid, _) in &left {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if !left.is_empty() {
            eprintln!("killed leftover Slurm processes: {left:?}");
        }
        unmount_under(self.dir());
    }
}

fn log_file(path: &Path) -> fs::File {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file")
}

fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    if !wait_until(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    }) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Pids (and command lines) of processes whose environment has `key=value`.
pub fn processes_with_env(key: &str, value: &str) -> Vec<(i32, String)> {
    let needle = format!("{key}={value}");
    let mut found = Vec::new();
    for pid in crate::procfs::other_pids() {
        if crate::procfs::environ(pid)
            .iter()
            .any(|kv| kv == needle.as_bytes())
        {
            found.push((pid, crate::procfs::cmdline(pid).trim().to_string()));
        }
    }
    found
}

/// KillWait=5: a container's init is pid 1 of its namespace and ignores
/// scancel's SIGTERM (as with runc); the step ends with the SIGKILL that
/// follows KillWait (default 30 s).
fn slurm_conf(d: &Path, node: &str) -> String {
    let (ctld_port, slurmd_port) = (free_port(), free_port());
    format!(
        "ClusterName=pinctest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmdDebug=debug
PlugStackConfig={d}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 CoresPerSocket=2 ThreadsPerCore=1 State=UNKNOWN
PartitionName=pinc Nodes={node} Default=YES MaxTime=INFINITE State=UP
",
        sock = d.join("munge.sock").display(),
        d = d.display(),
    )
}

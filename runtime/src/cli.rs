//! The runc-compatible command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "pinc", version, about = "An OCI container runtime for HPC", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// State directory (default /run/pinc for root, $XDG_RUNTIME_DIR/pinc otherwise)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Rootless handling: true, false or auto (unprivileged caller); before the subcommand
    #[arg(long, value_enum, default_value_t = Rootless::Auto)]
    pub rootless: Rootless,
    /// Accepted for runc compatibility; pinc has no checkpoint support
    #[arg(long, global = true, hide = true)]
    pub criu: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rootless {
    True,
    False,
    Auto,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle
    Create(Create),
    /// Start a created container
    Start(Id),
    /// Print a container's OCI state
    State(Id),
    /// Send a signal to a container's init (or all its processes)
    Kill(Kill),
    /// Delete a container
    Delete(Delete),
    /// Create, start and wait for a container
    Run(Run),
    /// Run a process in a running container
    Exec(Exec),
    /// List a container's processes
    Ps(Ps),
    /// List containers
    List(List),
    /// Suspend every process of a container
    Pause(Id),
    /// Resume a paused container
    Resume(Id),
    /// Print resource statistics of a container
    Events(Events),
    /// Change a running container's cgroup limits
    Update(Update),
    /// Write a starting config.json
    Spec(SpecCmd),
    /// Print the runtime-spec features pinc supports
    Features,
    /// Show the node as pinc sees it, and the current allocations
    Topology(TopologyCmd),
    /// Dry-run a placement request (KEY=VALUE, as the pinc.io/ annotations)
    Plan(PlanCmd),
    /// Runs a hook with the caller's bundle in its state (pinc's own use)
    #[command(name = "hook-relay", hide = true)]
    HookRelay(HookRelay),
}

#[derive(Args, Debug)]
pub struct HookRelay {
    /// The bundle to name in the state
    #[arg(long)]
    pub bundle: PathBuf,
    /// PATH ARG0 ARGS... of the hook
    #[arg(last = true, required = true)]
    pub hook: Vec<std::ffi::OsString>,
}

#[derive(Args, Debug)]
pub struct TopologyCmd {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// An hwloc XML file (or synthetic:DESCRIPTION) instead of this machine
    #[arg(long)]
    pub topology: Option<String>,
}

#[derive(Args, Debug)]
pub struct PlanCmd {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// An hwloc XML file (or synthetic:DESCRIPTION) instead of this machine
    #[arg(long)]
    pub topology: Option<String>,
    /// e.g. cores=2 near=0000:b7:00.0 policy=strict
    #[arg(required = true)]
    pub request: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Id {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct Create {
    /// Bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's init pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the console's pty master
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Pass N extra file descriptors (from 3) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Use chroot-like mount moves instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring (default: a new one, _ses.<id>)
    #[arg(long)]
    pub no_new_keyring: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Run {
    #[command(flatten)]
    pub create: Create,
    /// Return once the container started
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Do not reap the container's orphaned processes
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct Kill {
    /// Signal every process in the container
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Name (TERM, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct Delete {
    /// Kill a running container first; succeed if it is already gone
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Exec {
    /// Path to a process.json
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process started
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// VAR=value, repeatable
    #[arg(short, long, value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short, long, value_parser = parse_user)]
    pub user: Option<(u32, Option<u32>)>,
    /// Additional group ids, repeatable
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Capability to add, repeatable
    #[arg(long)]
    pub cap: Vec<String>,
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    /// Accepted for runc compatibility (SELinux is not supported)
    #[arg(long, hide = true)]
    pub process_label: Option<String>,
    /// AppArmor profile for the new process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Run in this sub-cgroup of the container's (runc's --cgroup PATH)
    #[arg(long)]
    pub cgroup: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Ps {
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    pub id: String,
    /// Options passed to ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct List {
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print ids only
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct Events {
    /// Print statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics ("5s", "500ms")
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Update {
    /// runtime-spec LinuxResources JSON, or - for stdin
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_share: Option<u64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    /// Memory limit in bytes
    #[arg(short, long)]
    pub memory: Option<i64>,
    #[arg(long)]
    pub memory_reservation: Option<i64>,
    #[arg(long)]
    pub memory_swap: Option<i64>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct SpecCmd {
    /// Write a spec for an unprivileged user
    #[arg(long)]
    pub rootless: bool,
    /// Directory to write config.json into
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not VAR=value"))
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>), String> {
    let (uid, gid) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = uid
        .parse()
        .map_err(|_| format!("{s:?}: uid must be a number"))?;
    let gid = gid
        .map(|g| {
            g.parse()
                .map_err(|_| format!("{s:?}: gid must be a number"))
        })
        .transpose()?;
    Ok((uid, gid))
}

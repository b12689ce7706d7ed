//! Soak benchmark: N container lifecycles through the real pinc binary, J at
//! a time, with a node census before and after. Zero growth is the
//! requirement; see bench/README.md (`bench/soak`) for what it runs.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pinc_tests::census::{Census, Scope};
use pinc_tests::{cgroup_dirs_named, pinc_bin, Bundle, Pinc};

const USAGE: &str = "\
usage: bench/soak [-n LIFECYCLES] [-j PARALLEL] [--smoke] [--seed S] [--watch-pid PID]...

  LIFECYCLES defaults to 1000, PARALLEL to 16; --smoke is -n 48 -j 8.
  pinc is $PINC_BIN (default target/release/pinc). --watch-pid adds a
  long-lived process (a containerd, a shim) whose fds the census lists.
  Exit status: 0 when every lifecycle passed and the census did not grow.";

/// How long one pinc command may take before the lifecycle fails.
const CMD_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a killed container may take to be seen stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

struct Args {
    n: usize,
    j: usize,
    seed: u64,
    watch: Vec<i32>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        n: 1000,
        j: 16,
        seed: 1,
        watch: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value (see --help)"))
        };
        match arg.as_str() {
            "-n" => a.n = value("-n")?.parse().context("-n takes a count")?,
            "-j" => a.j = value("-j")?.parse().context("-j takes a count")?,
            "--seed" => a.seed = value("--seed")?.parse().context("--seed takes a number")?,
            "--watch-pid" => a.watch.push(
                value("--watch-pid")?
                    .parse()
                    .context("--watch-pid takes a pid")?,
            ),
            "--smoke" => {
                a.n = 48;
                a.j = 8;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if a.n == 0 || a.j == 0 {
        bail!("-n and -j must be at least 1");
    }
    Ok(a)
}

/// What one lifecycle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// `run` of /bin/true, to completion.
    Run,
    /// create, start, 1-3 execs, kill KILL, wait stopped, delete.
    Exec,
    /// create, start, `delete --force` while running.
    Force,
    /// create, start, kill KILL, wait stopped, delete.
    Kill,
    /// create, kill KILL, `delete --force` at once (racing the exit).
    KillForce,
    /// create, `delete --force` of a never started container.
    Created,
}

impl Kind {
    fn pick(r: u64) -> Self {
        match r % 20 {
            0..=3 => Kind::Run,
            4..=9 => Kind::Exec,
            10..=13 => Kind::Force,
            14..=16 => Kind::Kill,
            17..=18 => Kind::KillForce,
            _ => Kind::Created,
        }
    }
}

/// A splitmix64 step: a reproducible mix from `--seed`.
fn mix(seed: u64, i: usize) -> u64 {
    let mut z = seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A failed command of one lifecycle.
struct Failure {
    lifecycle: usize,
    /// The lifecycle's kind, filled in by [`Soak::lifecycle`].
    kind: String,
    /// What the failed command left of the container, before the cleanup.
    left: String,
    command: String,
    status: String,
    stderr: String,
}

/// A counting semaphore: placed lifecycles at once never exceed the cores.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn take(&self) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
    }

    fn give(&self) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.cv.notify_one();
    }
}

struct Soak {
    pinc: Pinc,
    bin: PathBuf,
    /// [unplaced, placed] bundles of /bin/true and of a long sleep.
    run_bundles: [Bundle; 2],
    sleep_bundles: [Bundle; 2],
    id_prefix: String,
    seed: u64,
    slots: Slots,
    latencies: Mutex<BTreeMap<&'static str, Vec<Duration>>>,
    failures: Mutex<Vec<Failure>>,
    refusals: AtomicUsize,
    kinds: Mutex<BTreeMap<(Kind, bool), usize>>,
}

type Step<T = ()> = std::result::Result<T, Box<Failure>>;

impl Soak {
    /// Runs `pinc --root R args`, timed under `name`; stdio in unnamed files
    /// (a container inherits them, so a pipe would stay open).
    fn pinc(&self, lifecycle: usize, name: &'static str, args: &[&str]) -> Step<String> {
        let fail = |status: String, stderr: String| -> Box<Failure> {
            Box::new(Failure {
                lifecycle,
                kind: String::new(),
                left: String::new(),
                command: format!("pinc {}", args.join(" ")),
                status,
                stderr,
            })
        };
        let files =
            tempfile::tempfile().and_then(|o| Ok((o.try_clone()?, o, tempfile::tempfile()?)));
        let (out, mut out_r, mut err) =
            files.map_err(|e| fail("no temp file".into(), e.to_string()))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(self.pinc.root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(out);
        let err_w = err
            .try_clone()
            .map_err(|e| fail("no temp file".into(), e.to_string()))?;
        cmd.stderr(err_w);
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| fail("spawn failed".into(), e.to_string()))?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() < CMD_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(
                        format!("hung for {CMD_TIMEOUT:?}, killed"),
                        String::new(),
                    ));
                }
                Err(e) => return Err(fail("wait failed".into(), e.to_string())),
            }
        };
        let took = start.elapsed();
        let read = |f: &mut std::fs::File| {
            let mut s = String::new();
            let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
            s
        };
        let stderr = read(&mut err);
        if !status.success() {
            return Err(fail(status.to_string(), stderr));
        }
        self.latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default()
            .push(took);
        Ok(read(&mut out_r))
    }

    /// Polls `pinc state` until the container is stopped.
    fn wait_stopped(&self, i: usize, id: &str) -> Step {
        let start = Instant::now();
        loop {
            let state = self.pinc(i, "state", &["state", id])?;
            if state.contains("\"stopped\"") {
                return Ok(());
            }
            if start.elapsed() > STOP_TIMEOUT {
                return Err(Box::new(Failure {
                    lifecycle: i,
                    kind: String::new(),
                    left: String::new(),
                    command: format!("pinc state {id}"),
                    status: format!("not stopped {STOP_TIMEOUT:?} after kill"),
                    stderr: state,
                }));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn lifecycle(&self, i: usize) {
        let r = mix(self.seed, i);
        let kind = Kind::pick(r);
        let placed = (r >> 8).is_multiple_of(3);
        *self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((kind, placed))
            .or_default() += 1;
        let id = format!("{}{i}", self.id_prefix);
        if placed {
            self.slots.take();
        }
        let result = self.steps(i, kind, placed, &id, r);
        if let Err(mut f) = result {
            f.kind = format!("{kind:?}{}", if placed { " placed" } else { "" });
            if placed && f.command.contains(" create ") && f.stderr.contains("no free cores") {
                // An expected refusal: it must leave nothing (the census checks).
                self.refusals.fetch_add(1, Ordering::SeqCst);
            } else {
                f.left = self.left_of(&id);
                // Best effort, so one failure does not leak into the census.
                let _ = self.pinc(i, "cleanup", &["delete", "--force", &id]);
                self.failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(*f);
            }
        }
        if placed {
            self.slots.give();
        }
    }

    /// What is left of container `id`: its state dir, cgroup dirs, ledger
    /// entry and any process still in its cgroups.
    fn left_of(&self, id: &str) -> String {
        let root = self.pinc.root.path();
        let mut left = Vec::new();
        if root.join(id).exists() {
            left.push("state dir".to_string());
        }
        let cgroups: Vec<String> = cgroup_dirs_named(id)
            .iter()
            .filter_map(|p| p.strip_prefix("/sys/fs/cgroup").ok())
            .map(|p| p.display().to_string())
            .collect();
        if !cgroups.is_empty() {
            left.push(format!("cgroups {}", cgroups.join(" ")));
        }
        // The same pids in every hierarchy: listed once.
        let procs: std::collections::BTreeSet<String> = cgroup_dirs_named(id)
            .iter()
            .filter_map(|p| std::fs::read_to_string(p.join("cgroup.procs")).ok())
            .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        if !procs.is_empty() {
            left.push(format!("pids {}", Vec::from_iter(procs).join(" ")));
        }
        let ledger = std::fs::read_to_string(root.join(".pinc/ledger/allocations.json"));
        if ledger.is_ok_and(|l| l.contains(&format!("\"{id}\""))) {
            left.push("ledger entry".to_string());
        }
        if left.is_empty() {
            "nothing".to_string()
        } else {
            left.join("; ")
        }
    }

    fn steps(&self, i: usize, kind: Kind, placed: bool, id: &str, r: u64) -> Step {
        let p = usize::from(placed);
        let path = |b: &Bundle| b.path().display().to_string();
        if kind == Kind::Run {
            let b = path(&self.run_bundles[p]);
            return self.pinc(i, "run", &["run", "-b", &b, id]).map(drop);
        }
        let b = path(&self.sleep_bundles[p]);
        self.pinc(i, "create", &["create", "-b", &b, id])?;
        match kind {
            Kind::Created => {
                return self
                    .pinc(i, "delete --force", &["delete", "--force", id])
                    .map(drop)
            }
            Kind::KillForce => {
                self.pinc(i, "kill", &["kill", id, "KILL"])?;
                return self
                    .pinc(i, "delete --force", &["delete", "--force", id])
                    .map(drop);
            }
            _ => {}
        }
        self.pinc(i, "start", &["start", id])?;
        match kind {
            Kind::Force => {
                return self
                    .pinc(i, "delete --force", &["delete", "--force", id])
                    .map(drop)
            }
            Kind::Exec => {
                for _ in 0..=(r >> 16) % 3 {
                    self.pinc(i, "exec", &["exec", id, "/bin/true"])?;
                }
            }
            _ => {}
        }
        self.pinc(i, "kill", &["kill", id, "KILL"])?;
        self.wait_stopped(i, id)?;
        self.pinc(i, "delete", &["delete", id]).map(drop)
    }
}

/// Nearest-rank percentile of sorted durations, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// Cores a placed container may take at once: the topology's cores.
fn placement_slots(pinc: &Pinc) -> usize {
    let cores = pinc
        .cmd(&["topology", "--json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v["topology"]["cores"].as_array().map(Vec::len));
    cores.unwrap_or(1).max(1)
}

fn main() -> std::process::ExitCode {
    match soak_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Ctrl-C, SIGTERM and SIGHUP stop the soak between lifecycles, so it
/// still cleans up and reports.
fn catch_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// What the census counts: the soak's root, ids and bundles, its own fds
/// and those of the `watch` pids.
fn census_scope(soak: &Soak, watch: &[i32]) -> Scope {
    let mut scope = Scope::new(soak.pinc.root.path())
        .ids(&soak.id_prefix)
        .watch_fds(std::process::id() as i32);
    for b in soak.run_bundles.iter().chain(&soak.sleep_bundles) {
        scope = scope.prefix(b.path());
    }
    for pid in watch {
        scope = scope.watch_fds(*pid);
    }
    scope
}

/// Runs `n` lifecycles on `j` threads, stopping early on a signal; returns
/// how many ran and the wall time.
fn run_lifecycles(soak: &Soak, n: usize, j: usize) -> (usize, Duration) {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..j.min(n) {
            s.spawn(|| loop {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                soak.lifecycle(i);
            });
        }
    });
    let wall = started.elapsed();
    (next.load(Ordering::SeqCst).min(n), wall)
}

/// The first ten failures, with what each left behind.
fn print_failures(failures: &[Failure]) {
    for f in failures.iter().take(10) {
        println!(
            "FAILED lifecycle {} ({}): {} -> {}\n    left: {}\n    {}",
            f.lifecycle,
            f.kind,
            f.command,
            f.status,
            f.left,
            f.stderr.trim_end().replace('\n', "\n    ")
        );
    }
}

fn soak_main() -> Result<()> {
    let args = parse_args()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("bench/soak runs real containers and needs root");
    }
    let bin = pinc_bin();
    if !bin.is_file() {
        bail!(
            "no pinc binary at {} (build it or set PINC_BIN)",
            bin.display()
        );
    }
    catch_signals();
    let pinc = Pinc::new();
    let bundles = |args: &[&str]| {
        let placed = Bundle::new(args);
        placed.add_env("PINC_CPUS=1");
        [Bundle::new(args), placed]
    };
    let slots = placement_slots(&pinc);
    let soak = Soak {
        bin: bin.clone(),
        run_bundles: bundles(&["/bin/true"]),
        sleep_bundles: bundles(&["sleep", "600"]),
        id_prefix: format!("soak-{}-", std::process::id()),
        seed: args.seed,
        slots: Slots {
            free: Mutex::new(slots),
            cv: Condvar::new(),
        },
        latencies: Mutex::default(),
        failures: Mutex::default(),
        refusals: AtomicUsize::new(0),
        kinds: Mutex::default(),
        pinc,
    };
    let scope = census_scope(&soak, &args.watch);
    let meta = std::fs::metadata(&bin).ok();
    println!(
        "soak: {} lifecycles, {} at a time, seed {}, pinc {} ({} bytes), {} placement slots",
        args.n,
        args.j,
        args.seed,
        bin.display(),
        meta.map(|m| m.len()).unwrap_or(0),
        slots
    );
    println!("root {}", soak.pinc.root.path().display());

    // Warm-up (not counted): the root's own files (ledger, topology cache)
    // exist from then on, so the baseline holds them.
    warm_up(&soak)?;
    let before = Census::take_in(&scope);
    println!("census before:\n{before}");

    let (done, wall) = run_lifecycles(&soak, args.n, args.j);

    let mut after = Census::take_in(&scope);
    let mut leaks = before.diff(&after).leaks();
    // Processes killed by delete --force are reaped by their parent (pid 1)
    // a moment later: a growth that is gone within seconds is not a leak.
    let settle = Instant::now();
    while leaks.grew() && settle.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(250));
        after = Census::take_in(&scope);
        leaks = before.diff(&after).leaks();
    }
    println!("census after:\n{after}");
    println!(
        "growth (after - before; the root's own files excluded; settled {:.1}s):\n{leaks}",
        settle.elapsed().as_secs_f64()
    );
    report(&soak, done, wall);

    let failures = soak.failures.lock().unwrap_or_else(|e| e.into_inner());
    print_failures(&failures);
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted after {done} lifecycles");
    }
    if !failures.is_empty() {
        bail!("{} of {done} lifecycles failed", failures.len());
    }
    if leaks.grew() {
        bail!("the census grew over {done} lifecycles (see above)");
    }
    println!("ok: {done} lifecycles, zero growth");
    Ok(())
}

/// Runs one placed exec lifecycle and one unplaced run, not counted.
fn warm_up(soak: &Soak) -> Result<()> {
    let runs = [
        (Kind::Exec, true, "warm-exec"),
        (Kind::Run, false, "warm-run"),
    ];
    for (kind, placed, name) in runs {
        let id = format!("{}{name}", soak.id_prefix);
        if let Err(f) = soak.steps(0, kind, placed, &id, 0) {
            let _ = soak.pinc(0, "cleanup", &["delete", "--force", &id]);
            bail!(
                "warm-up failed: {} -> {}: {}",
                f.command,
                f.status,
                f.stderr.trim_end()
            );
        }
    }
    soak.latencies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    Ok(())
}

fn report(soak: &Soak, done: usize, wall: Duration) {
    let kinds = soak.kinds.lock().unwrap_or_else(|e| e.into_inner());
    let mix: Vec<String> = kinds
        .iter()
        .map(|((k, placed), n)| format!("{k:?}{} {n}", if *placed { "(placed)" } else { "" }))
        .collect();
    println!("mix: {}", mix.join(", "));
    println!(
        "throughput: {:.2} lifecycles/s ({done} in {:.1} s); placement refusals: {}",
        done as f64 / wall.as_secs_f64(),
        wall.as_secs_f64(),
        soak.refusals.load(Ordering::SeqCst)
    );
    println!(
        "{:<16} {:>6} {:>9} {:>9} {:>9}",
        "latency (ms)", "count", "p50", "p99", "max"
    );
    let mut lat = soak.latencies.lock().unwrap_or_else(|e| e.into_inner());
    for (name, v) in lat.iter_mut() {
        v.sort();
        println!(
            "{name:<16} {:>6} {:>9.1} {:>9.1} {:>9.1}",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.99),
            percentile(v, 1.0)
        );
    }
}

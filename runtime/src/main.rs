//! `pinc`: a runc-compatible OCI runtime for HPC. This binary only parses the
//! command line and calls `pinc-core`.

mod cli;
mod commands;
mod logging;
mod sealed;

use clap::Parser;

use cli::{Cli, Command};

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    match &cli.command {
        Command::Create(a) => commands::create::run(a, g),
        Command::Start(a) => commands::simple::start(a, g),
        Command::State(a) => commands::simple::state(a, g),
        Command::Kill(a) => commands::kill::run(a, g),
        Command::Delete(a) => commands::delete::run(a, g),
        Command::Run(a) => commands::run::run(a, g),
        Command::Exec(a) => commands::exec::run(a, g),
        Command::Ps(a) => commands::ps::run(a, g),
        Command::List(a) => commands::list::run(a, g),
        Command::Pause(a) => commands::simple::pause(a, g),
        Command::Resume(a) => commands::simple::resume(a, g),
        Command::Events(a) => commands::events::run(a, g),
        Command::Update(a) => commands::update::run(a, g),
        Command::Spec(a) => commands::spec::run(a),
        Command::Features => commands::simple::features(),
        Command::Topology(a) => commands::placement::topology(a, g),
        Command::Plan(a) => commands::placement::plan(a, g),
        Command::HookRelay(a) => commands::hook_relay::run(a),
    }
}

/// One line: the error and its causes, without repeating a cause that the
/// message before it already contains.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// The kind of the error, from pinc-core's error (or `ps`'s) in the chain;
/// other failures of the binary itself (log file, re-exec) are internal.
fn kind_of(err: &anyhow::Error) -> pinc_core::ErrorKind {
    err.chain()
        .find_map(|c| {
            c.downcast_ref::<pinc_core::Error>()
                .map(pinc_core::Error::kind)
                .or_else(|| {
                    c.downcast_ref::<commands::ps::PsError>()
                        .map(commands::ps::PsError::kind)
                })
        })
        .unwrap_or(pinc_core::ErrorKind::Internal)
}

fn main() {
    let cli = Cli::parse();
    // Processes that enter containers run from a sealed copy (CVE-2019-5736).
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        if let Err(e) = sealed::ensure() {
            eprintln!("pinc: error: {}", one_line(&e));
            std::process::exit(1);
        }
    }
    if matches!(cli.command, Command::Create(_) | Command::Run(_)) {
        pinc_core::prewarm_cgroup_attach();
    }
    let logger = match logging::init(
        cli.global.log.as_deref(),
        cli.global.log_format,
        cli.global.debug,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pinc: error: {}", one_line(&e));
            std::process::exit(1);
        }
    };
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let line = one_line(&e);
            logger.error(&line, kind_of(&e));
            eprintln!("pinc: error: {line}");
            1
        }
    };
    std::process::exit(code);
}

//! `pinc-hook`: pinc's device work for callers that are not pinc.
//!
//! - `precreate`: podman's hooks.d `precreate` stage (spec on stdin, edited
//!   spec on stdout): the very devices stage `pinc create` runs, so runc and
//!   crun containers get GPUs, HCAs and CDI devices the same way.
//! - `ldconfig`: an OCI hook (createContainer, or prestart/createRuntime)
//!   that refreshes the container's ld cache after driver libraries were
//!   mounted in.
//! - `cdi generate`: a CDI spec for the GPUs and HCAs found, for podman,
//!   containerd, or pinc itself.
//! - `list`: what discovery finds.

mod generate;
mod ldconfig;

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pinc-hook",
    version,
    about = "pinc's OCI hook for GPUs, RDMA HCAs and CDI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// hooks.d precreate: read an OCI spec on stdin, write it with devices injected.
    Precreate,
    /// OCI hook: refresh the container's ld cache (state on stdin).
    Ldconfig {
        /// Library folders (in the container) to add to the cache.
        #[arg(long = "folder")]
        folders: Vec<PathBuf>,
    },
    /// CDI specs.
    Cdi {
        #[command(subcommand)]
        command: CdiCommand,
    },
    /// Print the GPUs and HCAs discovery finds.
    List,
}

#[derive(Subcommand)]
enum CdiCommand {
    /// Write CDI specs for the GPUs (nvidia.com/gpu) and HCAs (pinc.io/rdma) found.
    Generate {
        /// Folder to write the spec files into ("-" for stdout).
        #[arg(long, default_value = "/etc/cdi")]
        output_dir: String,
        /// yaml or json.
        #[arg(long, default_value = "yaml")]
        format: String,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("pinc-hook: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Precreate => precreate(),
        Command::Ldconfig { folders } => ldconfig::run(&folders),
        Command::Cdi {
            command: CdiCommand::Generate { output_dir, format },
        } => generate::run(&output_dir, &format),
        Command::List => generate::list(),
    }
}

/// The devices stage over stdin's spec.
fn precreate() -> anyhow::Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the spec from stdin")?;
    let mut spec: oci_spec::runtime::Spec =
        serde_json::from_str(&text).context("parsing the spec on stdin")?;
    let original = spec.clone();
    let request = pinc_request::Request::read(&spec)?;
    let stage = pinc_devices::inject::DevicesStage::from_env();
    let rootless = !nix::unistd::geteuid().is_root();
    stage.inject(&mut spec, &request, rootless)?;
    let mut stdout = std::io::stdout().lock();
    if spec == original {
        // Nothing requested (the hooks.d file runs for every container):
        // hand back the caller's bytes, not a re-serialisation that reorders
        // sets and drops fields oci-spec does not know.
        stdout
            .write_all(text.as_bytes())
            .context("writing the spec")?;
    } else {
        serde_json::to_writer(&mut stdout, &spec).context("writing the spec")?;
    }
    stdout.flush().context("writing the spec")?;
    Ok(())
}

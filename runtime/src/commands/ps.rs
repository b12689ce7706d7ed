use std::process::Command;

use pinc_core::container::ps;
use pinc_core::ErrorKind;

use crate::cli::{Format, Global, Ps};

pub fn run(args: &Ps, global: &Global) -> anyhow::Result<i32> {
    let pids = ps::pids(&super::root(global), &args.id)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&pids)?),
        Format::Table => print!("{}", table(&pids, &args.ps_args)?),
    }
    Ok(0)
}

/// Why `ps`'s table could not be limited to the container's processes.
#[derive(Debug, thiserror::Error)]
pub enum PsError {
    #[error("failed to run: ps")]
    Run(#[source] std::io::Error),
    /// `ps ARGS` printed a header without a PID column to filter by.
    #[error("ps {args} printed no PID column")]
    NoPidColumn { args: String },
}

impl PsError {
    /// The kinds these had as pinc-core errors, kept for the shim.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PsError::Run(_) => ErrorKind::Internal,
            PsError::NoPidColumn { .. } => ErrorKind::Unsupported,
        }
    }
}

/// `ps` output (run with `ps_args`, default `-ef`) limited to `pids`, header kept.
fn table(pids: &[i32], ps_args: &[String]) -> Result<String, PsError> {
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_args.to_vec()
    };
    let output = Command::new("ps")
        .args(&args)
        .output()
        .map_err(PsError::Run)?;
    filter(&String::from_utf8_lossy(&output.stdout), pids, &args)
}

/// The header and the rows of `text` whose PID column is one of `pids`.
fn filter(text: &str, pids: &[i32], args: &[String]) -> Result<String, PsError> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| PsError::NoPidColumn {
            args: args.join(" "),
        })?;
    let mut out = String::from(header);
    out.push('\n');
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_header_and_the_containers_rows() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 43 42 ps\n";
        let out = filter(text, &[1, 43], &["-ef".into()]).expect("filtered");
        assert_eq!(out, "UID PID PPID CMD\nroot 1 0 init\nroot 43 42 ps\n");
    }

    #[test]
    fn no_pid_column_is_unsupported_with_the_former_message() {
        let e = filter("COMMAND\nsh\n", &[1], &["-o".into(), "comm".into()])
            .expect_err("no PID column");
        assert_eq!(e.to_string(), "ps -o comm printed no PID column");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn a_failed_run_is_internal() {
        let e = PsError::Run(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(e.to_string(), "failed to run: ps");
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}

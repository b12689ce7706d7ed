use pinc_core::process::exec::{exec, ExecOptions};

use crate::cli::{Exec, Global};

pub fn run(args: &Exec, global: &Global) -> anyhow::Result<i32> {
    let opts = ExecOptions {
        id: args.id.clone(),
        process: args.process.clone(),
        command: args.command.clone(),
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        tty: args.tty,
        env: args.env.clone(),
        cwd: args.cwd.clone(),
        user: args.user,
        additional_gids: args.additional_gids.clone(),
        caps: args.cap.clone(),
        no_new_privs: args.no_new_privs,
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        cgroup: args.cgroup.clone(),
        apparmor: args.apparmor.clone(),
    };
    Ok(exec(&super::root(global), &opts)?)
}

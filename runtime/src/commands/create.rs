use pinc_core::container::create::{create, CreateOptions};
use pinc_core::stages;

use crate::cli::{Create, Global};

pub fn options(args: &Create, global: &Global, detach: bool) -> CreateOptions {
    CreateOptions {
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        systemd_cgroup: global.systemd_cgroup,
        rootless: super::rootless(global),
        detach,
    }
}

pub fn run(args: &Create, global: &Global) -> anyhow::Result<i32> {
    let root = super::root_for_create(global)?;
    create(&root, &options(args, global, true), &stages::hpc())?;
    Ok(0)
}

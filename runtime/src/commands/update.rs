use pinc_core::container::update::{update, UpdateOptions};

use crate::cli::{Global, Update};

pub fn run(args: &Update, global: &Global) -> anyhow::Result<i32> {
    let opts = UpdateOptions {
        id: args.id.clone(),
        resources: args.resources.clone(),
        cpuset_cpus: args.cpuset_cpus.clone(),
        cpuset_mems: args.cpuset_mems.clone(),
        cpu_period: args.cpu_period,
        cpu_quota: args.cpu_quota,
        cpu_shares: args.cpu_share,
        cpu_rt_period: args.cpu_rt_period,
        cpu_rt_runtime: args.cpu_rt_runtime,
        memory: args.memory,
        memory_reservation: args.memory_reservation,
        memory_swap: args.memory_swap,
        pids_limit: args.pids_limit,
        blkio_weight: args.blkio_weight,
    };
    update(&super::root(global), &opts)?;
    Ok(0)
}

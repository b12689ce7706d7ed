use pinc_core::spec::spec_template;

use crate::cli::SpecCmd;

pub fn run(args: &SpecCmd) -> anyhow::Result<i32> {
    spec_template::write(&args.bundle, args.rootless)?;
    Ok(0)
}

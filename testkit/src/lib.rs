//! Helpers shared by pinc's tests, and only by tests (a dev-dependency;
//! never published).
//!
//! - [`tree`]: fixture trees standing in for a machine's `/dev`, `/proc`,
//!   `/sys` and driver installs: directories, files, symlinks, real device
//!   nodes and compiled C shared objects.
//! - [`skip!`] and [`require_root!`]: the one way a test returns early
//!   because this machine cannot run it. Each skip prints one
//!   `SKIPPED <test path>: <reason>` line to stderr, so skips can be
//!   counted (`grep -c '^SKIPPED '`), and with `PINC_TESTS_NO_SKIP=1` a
//!   skip panics instead, for runs (CI as root) where nothing may be
//!   skipped.

pub mod tree;

/// The environment variable that turns every skip into a failure.
pub const NO_SKIP_VAR: &str = "PINC_TESTS_NO_SKIP";

/// Whether this process runs as root (may mknod, chroot, run containers).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether skips are refused (`PINC_TESTS_NO_SKIP=1`).
pub fn skips_refused() -> bool {
    std::env::var_os(NO_SKIP_VAR).is_some_and(|v| v == "1")
}

/// Reports the skip of `test` for `reason`: one `SKIPPED <test>: <reason>`
/// line on stderr, or a panic when skips are refused. The caller returns
/// right after; [`skip!`] does both.
pub fn skipped(test: &str, reason: &str) {
    if skips_refused() {
        panic!("{test} would be skipped ({reason}), but {NO_SKIP_VAR}=1 refuses skips");
    }
    eprintln!("SKIPPED {test}: {reason}");
}

/// The path of the function this expands in (`crate::module::test_name`),
/// from the type name of a local item, which stays right whichever thread
/// the test harness runs the test on.
#[doc(hidden)]
#[macro_export]
macro_rules! __function_path {
    () => {{
        fn here() {}
        fn name_of<T>(_: T) -> &'static str {
            ::std::any::type_name::<T>()
        }
        let name = name_of(here);
        name.strip_suffix("::here").unwrap_or(name)
    }};
}

/// Skips the current test: prints `SKIPPED <test path>: <reason>` to stderr
/// and returns (or panics under `PINC_TESTS_NO_SKIP=1`). The reason is a
/// `format!` string; the test must return `()`.
#[macro_export]
macro_rules! skip {
    ($($reason:tt)+) => {{
        $crate::skipped($crate::__function_path!(), &::std::format!($($reason)+));
        return;
    }};
}

/// Skips the current test unless it runs as root, naming what needs root
/// (e.g. `require_root!("mknod device nodes")`).
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require_root!("needs root")
    };
    ($why:literal) => {
        if !$crate::is_root() {
            $crate::skip!("needs root ({})", $why);
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_function_path_names_the_test() {
        assert_eq!(
            crate::__function_path!(),
            "pinc_testkit::tests::the_function_path_names_the_test"
        );
    }

    #[test]
    fn a_skip_returns_early() {
        // Under PINC_TESTS_NO_SKIP=1 the skip would panic: not tested here.
        if crate::skips_refused() {
            return;
        }
        let mut reached = false;
        let mut body = || {
            crate::skip!("testing the skip itself");
            #[allow(unreachable_code)]
            {
                reached = true;
            }
        };
        body();
        assert!(!reached);
    }
}

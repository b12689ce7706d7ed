//! NVML discovery against the test-only stand-in library
//! `tests/fixtures/nvml/fake_nvml.c`, compiled with `cc` per test.

use std::path::{Path, PathBuf};

use nvml_wrapper::error::NvmlError as WrapperError;
use pinc_devices::gpu::Source;
use pinc_devices::nvml::{discover, NvmlError, NvmlGpu};
use pinc_devices::{discover_gpus_with, GpuError};
use pinc_testkit::require_root;
use pinc_testkit::tree::{self, SharedObject};

const UUID_3B: &str = "GPU-6f3c2a1e-9b7d-4c55-8e21-0a1b2c3d4e5f";
const UUID_86: &str = "GPU-11111111-2222-3333-4444-555555555555";

/// NVML order is PCI bus order; the minors run the other way, so index and
/// minor differ. Bus ids in NVML's uppercase 8-digit-domain form.
fn two_gpus() -> String {
    format!(
        "{UUID_3B}|00000000:3B:00.0|1|Tesla V100-SXM2-16GB;\
         {UUID_86}|00000000:86:00.0|0|Tesla V100-SXM2-32GB"
    )
}

/// Compiles the fake NVML into `<dir>/libnvidia-ml.so.1` with `defines`
/// (each passed as `-D<define>`).
fn fake_nvml(dir: &Path, defines: &[String]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nvml/fake_nvml.c");
    let mut library = SharedObject::new(&dir.join("libnvidia-ml.so.1"), "libnvidia-ml.so.1")
        .file(&source)
        .flag("-std=c11")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror");
    for d in defines {
        library = library.define(d);
    }
    library.build()
}

fn gpus_define(table: &str) -> String {
    format!("FAKE_NVML_GPUS=\"{table}\"")
}

/// Creates the character device `<root>/<rel>` (mode 0666, parents created).
fn chardev(root: &Path, rel: &str, major: u64, minor: u64) {
    tree::chardev(root, rel, major, minor, 0o666);
}

fn write(root: &Path, rel: &str, contents: &str) {
    tree::file(root, rel, contents);
}

/// Device nodes for minors 0 and 1 plus nvidiactl, and a procfs view that
/// differs from the fake NVML (one GPU, another model) so tests can tell
/// which source was used.
fn fixture_root(root: &Path) {
    chardev(root, "dev/nvidia0", 195, 0);
    chardev(root, "dev/nvidia1", 195, 1);
    chardev(root, "dev/nvidiactl", 195, 255);
    write(
        root,
        "proc/driver/nvidia/gpus/0000:06:00.0/information",
        "Model: \t\t A100-PROCFS\n\
         GPU UUID: \t GPU-00000000-0000-0000-0000-000000000006\n\
         Bus Location: \t 0000:06:00.0\n\
         Device Minor: \t 0\n",
    );
}

#[test]
fn discover_returns_the_compiled_in_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = fake_nvml(dir.path(), &[gpus_define(&two_gpus())]);
    // The fake exports only the handful of entry points pinc uses; loading
    // must not depend on the hundreds of others nvml-wrapper knows about.
    let gpus = discover(&library).expect("discover");
    assert_eq!(
        gpus,
        [
            NvmlGpu {
                index: 0,
                uuid: UUID_3B.to_owned(),
                bus_id: "0000:3b:00.0".to_owned(),
                minor: 1,
                name: "Tesla V100-SXM2-16GB".to_owned(),
            },
            NvmlGpu {
                index: 1,
                uuid: UUID_86.to_owned(),
                bus_id: "0000:86:00.0".to_owned(),
                minor: 0,
                name: "Tesla V100-SXM2-32GB".to_owned(),
            },
        ]
    );
    // NVML was shut down and can be loaded and initialized again.
    assert_eq!(discover(&library).expect("discover again").len(), 2);
}

#[test]
fn no_gpus_is_an_empty_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = fake_nvml(dir.path(), &[]);
    assert_eq!(discover(&library).expect("discover"), []);
}

#[test]
fn missing_library_cannot_be_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = dir.path().join("libnvidia-ml.so.1");
    let err = discover(&library).expect_err("no library");
    assert!(
        matches!(
            &err,
            NvmlError::Load {
                source: WrapperError::LibloadingError(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert!(
        err.to_string().contains(&library.display().to_string()),
        "{err}"
    );
}

#[test]
fn init_failure_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 9 = NVML_ERROR_DRIVER_NOT_LOADED
    let library = fake_nvml(
        dir.path(),
        &[gpus_define(&two_gpus()), "FAKE_NVML_INIT_FAIL=9".to_owned()],
    );
    let err = discover(&library).expect_err("init fails");
    assert!(
        matches!(
            &err,
            NvmlError::Init {
                source: WrapperError::DriverNotLoaded,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_unavailable());
    // Not a reason to fall back: the procfs data must not be used silently.
    let root = tempfile::tempdir().expect("tempdir");
    write(
        root.path(),
        "proc/driver/nvidia/version",
        "NVRM version: 550\n",
    );
    let err = discover_gpus_with(root.path(), Some(&library)).expect_err("init fails");
    assert!(
        matches!(
            &err,
            GpuError::Nvml {
                source: NvmlError::Init { .. }
            }
        ),
        "{err:?}"
    );
}

#[test]
fn malformed_table_fails_init() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = fake_nvml(dir.path(), &[gpus_define("GPU-1|not-a-bus-id|0|X")]);
    let err = discover(&library).expect_err("bad table");
    assert!(
        matches!(
            &err,
            NvmlError::Init {
                source: WrapperError::Unknown,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn query_failure_names_the_device_and_the_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = fake_nvml(
        dir.path(),
        &[
            gpus_define(&two_gpus()),
            "FAKE_NVML_FAIL_MINOR=1".to_owned(),
        ],
    );
    let err = discover(&library).expect_err("minor query fails");
    assert!(
        matches!(
            &err,
            NvmlError::Query {
                index: 1,
                query: "nvmlDeviceGetMinorNumber",
                source: WrapperError::NotSupported,
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("device 1") && text.contains("nvmlDeviceGetMinorNumber"),
        "{text}"
    );
}

#[test]
fn library_without_shutdown_is_refused_without_panicking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = fake_nvml(
        dir.path(),
        &[
            gpus_define(&two_gpus()),
            "FAKE_NVML_OMIT_SHUTDOWN".to_owned(),
        ],
    );
    let err = discover(&library).expect_err("no nvmlShutdown");
    assert!(
        matches!(
            &err,
            NvmlError::MissingSymbol {
                symbol: "nvmlShutdown",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn duplicate_minor_from_nvml_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = fake_nvml(
        dir.path(),
        &[gpus_define(&format!(
            "{UUID_3B}|00000000:3B:00.0|0|A100;{UUID_86}|00000000:86:00.0|0|A100"
        ))],
    );
    let root = tempfile::tempdir().expect("tempdir");
    let err = discover_gpus_with(root.path(), Some(&library)).expect_err("duplicate");
    assert!(
        matches!(err, GpuError::DuplicateMinor { minor: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn discover_gpus_with_uses_nvml_and_reads_nodes_under_root() {
    require_root!("mknod device nodes");
    let dir = tempfile::tempdir().expect("tempdir");
    let library = fake_nvml(dir.path(), &[gpus_define(&two_gpus())]);
    let root = tempfile::tempdir().expect("tempdir");
    fixture_root(root.path());
    let found = discover_gpus_with(root.path(), Some(&library)).expect("discover");
    assert_eq!(found.source, Source::Nvml);
    let gpus: Vec<_> = found
        .gpus
        .iter()
        .map(|g| {
            (
                g.index,
                g.minor,
                g.uuid.as_str(),
                g.bus_id.as_str(),
                g.model.as_str(),
            )
        })
        .collect();
    assert_eq!(
        gpus,
        [
            (0, 1, UUID_3B, "0000:3b:00.0", "Tesla V100-SXM2-16GB"),
            (1, 0, UUID_86, "0000:86:00.0", "Tesla V100-SXM2-32GB"),
        ]
    );
    let g0 = &found.gpus[0].device;
    assert_eq!(g0.path, Path::new("/dev/nvidia1"));
    assert_eq!(g0.host_path, root.path().join("dev/nvidia1"));
    assert_eq!((g0.major, g0.minor), (195, 1));
    let g1 = &found.gpus[1].device;
    assert_eq!(g1.path, Path::new("/dev/nvidia0"));
    assert_eq!((g1.major, g1.minor), (195, 0));
    let control: Vec<_> = found
        .control
        .iter()
        .map(|d| (d.path.clone(), d.major, d.minor))
        .collect();
    assert_eq!(control, [(PathBuf::from("/dev/nvidiactl"), 195, 255)]);

    // A node NVML names but the root lacks is an error, as with procfs.
    std::fs::remove_file(root.path().join("dev/nvidia1")).expect("rm");
    let err = discover_gpus_with(root.path(), Some(&library)).expect_err("missing node");
    assert!(matches!(err, GpuError::GpuNode { minor: 1, .. }), "{err:?}");
}

#[test]
fn discover_gpus_with_falls_back_to_procfs() {
    require_root!("mknod device nodes");
    let root = tempfile::tempdir().expect("tempdir");
    fixture_root(root.path());
    let absent = root.path().join("no/such/libnvidia-ml.so.1");
    for library in [Some(absent.as_path()), None] {
        let found = discover_gpus_with(root.path(), library).expect("discover");
        assert_eq!(found.source, Source::Procfs, "{library:?}");
        assert_eq!(found.gpus.len(), 1);
        let g0 = &found.gpus[0];
        assert_eq!((g0.index, g0.minor), (0, 0));
        assert_eq!(g0.model, "A100-PROCFS");
        assert_eq!(g0.bus_id, "0000:06:00.0");
        assert_eq!(g0.device.path, Path::new("/dev/nvidia0"));
    }
}

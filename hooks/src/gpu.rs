//! NVIDIA GPU discovery: through NVML when a library path is configured and
//! loads ([`discover_gpus_with`]), otherwise from `/proc/driver/nvidia`
//! ([`discover_gpus`]). Device nodes are read under `root` either way.

use std::path::{Path, PathBuf};

use crate::device::{DeviceError, DeviceNode};
use crate::nvml::NvmlError;

/// Errors discovering NVIDIA GPUs.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: missing field {field:?}", path.display())]
    MissingField { path: PathBuf, field: &'static str },
    #[error("{}: invalid {field:?} value {value:?}", path.display())]
    InvalidField {
        path: PathBuf,
        field: &'static str,
        value: String,
    },
    #[error("GPUs {first} and {second} both report device minor {minor}")]
    DuplicateMinor {
        minor: u32,
        first: String,
        second: String,
    },
    #[error("GPU {bus_id} (minor {minor}): device node")]
    GpuNode {
        bus_id: String,
        minor: u32,
        #[source]
        source: DeviceError,
    },
    #[error("NVIDIA control device {path}")]
    ControlNode {
        path: &'static str,
        #[source]
        source: DeviceError,
    },
    #[error("GPU discovery through NVML")]
    Nvml {
        #[source]
        source: NvmlError,
    },
}

/// Where [`NvidiaDevices::gpus`] came from (for logging).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// NVML, loaded from the configured library path.
    Nvml,
    /// `/proc/driver/nvidia/gpus/*/information`: no NVML library configured,
    /// or it could not be loaded.
    #[default]
    Procfs,
}

/// One NVIDIA GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// What `NVIDIA_VISIBLE_DEVICES=0` means here: the NVML index (PCI bus
    /// order) with [`Source::Nvml`], the position by device minor with
    /// [`Source::Procfs`].
    pub index: usize,
    pub minor: u32,
    /// `GPU-xxxxxxxx-...`
    pub uuid: String,
    /// Normalized PCI address, e.g. `0000:06:00.0`.
    pub bus_id: String,
    pub model: String,
    /// `/dev/nvidia<minor>`
    pub device: DeviceNode,
}

/// Everything the NVIDIA driver exposes on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NvidiaDevices {
    /// Ordered by index (see [`Gpu::index`]); `gpus[i].index == i`.
    pub gpus: Vec<Gpu>,
    /// Present control nodes, in this order: `/dev/nvidiactl`, `/dev/nvidia-uvm`,
    /// `/dev/nvidia-uvm-tools`, `/dev/nvidia-modeset`. Needed by every container
    /// that gets a GPU. `nvidiactl` is required when there are GPUs; the others
    /// are included only if present (their modules load on demand).
    pub control: Vec<DeviceNode>,
    /// Where `gpus` came from.
    pub source: Source,
}

const NVIDIACTL: &str = "/dev/nvidiactl";
const OPTIONAL_CONTROL: [&str; 3] = [
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];

/// Discovers NVIDIA GPUs below `root` (normally `/`) from procfs, without NVML.
///
/// No `<root>/proc/driver/nvidia` (or no `gpus` directory in it) means no GPUs
/// and is not an error.
pub fn discover_gpus(root: &Path) -> Result<NvidiaDevices, GpuError> {
    let infos = procfs_infos(root)?;
    assemble(root, infos, Source::Procfs)
}

/// Discovers NVIDIA GPUs through NVML loaded from `nvml_library` (a host path,
/// not resolved under `root`: it is loaded into this process), reading device
/// nodes below `root`.
///
/// Falls back to [`discover_gpus`] when no library is given or it cannot be
/// loaded (typically absent on hosts without the driver); any other NVML
/// failure (init, a device query) is an error.
pub fn discover_gpus_with(
    root: &Path,
    nvml_library: Option<&Path>,
) -> Result<NvidiaDevices, GpuError> {
    let Some(library) = nvml_library else {
        return discover_gpus(root);
    };
    let found = match crate::nvml::discover(library) {
        Ok(found) => found,
        Err(e) if e.is_unavailable() => return discover_gpus(root),
        Err(source) => return Err(GpuError::Nvml { source }),
    };
    // NVML lists devices by index 0..n, so position == NVML index.
    let infos: Vec<Information> = found
        .into_iter()
        .map(|gpu| Information {
            minor: gpu.minor,
            uuid: gpu.uuid,
            bus_id: gpu.bus_id,
            model: gpu.name,
        })
        .collect();
    check_unique_minors(&infos)?;
    assemble(root, infos, Source::Nvml)
}

/// Reads every `information` file, ordered by minor.
fn procfs_infos(root: &Path) -> Result<Vec<Information>, GpuError> {
    let gpus_dir = root.join("proc/driver/nvidia/gpus");
    let entries = match std::fs::read_dir(&gpus_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(GpuError::Io {
                path: gpus_dir,
                source,
            })
        }
    };
    let mut infos = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| GpuError::Io {
            path: gpus_dir.clone(),
            source,
        })?;
        let path = entry.path().join("information");
        let text = std::fs::read_to_string(&path).map_err(|source| GpuError::Io {
            path: path.clone(),
            source,
        })?;
        infos.push(parse_information(&path, &text)?);
    }
    infos.sort_by_key(|i| i.minor);
    check_unique_minors(&infos)?;
    Ok(infos)
}

/// Two GPUs sharing a minor would share one device node.
fn check_unique_minors(infos: &[Information]) -> Result<(), GpuError> {
    let mut by_minor: Vec<&Information> = infos.iter().collect();
    by_minor.sort_by_key(|i| i.minor);
    for pair in by_minor.windows(2) {
        if pair[0].minor == pair[1].minor {
            return Err(GpuError::DuplicateMinor {
                minor: pair[0].minor,
                first: pair[0].bus_id.clone(),
                second: pair[1].bus_id.clone(),
            });
        }
    }
    Ok(())
}

/// Reads the GPU and control device nodes; `infos` is in index order.
fn assemble(
    root: &Path,
    infos: Vec<Information>,
    source: Source,
) -> Result<NvidiaDevices, GpuError> {
    let mut gpus = Vec::with_capacity(infos.len());
    for (index, info) in infos.into_iter().enumerate() {
        let device =
            DeviceNode::read(root, &format!("/dev/nvidia{}", info.minor)).map_err(|source| {
                GpuError::GpuNode {
                    bus_id: info.bus_id.clone(),
                    minor: info.minor,
                    source,
                }
            })?;
        gpus.push(Gpu {
            index,
            minor: info.minor,
            uuid: info.uuid,
            bus_id: info.bus_id,
            model: info.model,
            device,
        });
    }
    let mut control = Vec::new();
    if gpus.is_empty() {
        if let Some(node) =
            DeviceNode::read_optional(root, NVIDIACTL).map_err(|source| GpuError::ControlNode {
                path: NVIDIACTL,
                source,
            })?
        {
            control.push(node);
        }
    } else {
        control.push(DeviceNode::read(root, NVIDIACTL).map_err(|source| {
            GpuError::ControlNode {
                path: NVIDIACTL,
                source,
            }
        })?);
    }
    for path in OPTIONAL_CONTROL {
        if let Some(node) = DeviceNode::read_optional(root, path)
            .map_err(|source| GpuError::ControlNode { path, source })?
        {
            control.push(node);
        }
    }
    Ok(NvidiaDevices {
        gpus,
        control,
        source,
    })
}

struct Information {
    minor: u32,
    uuid: String,
    bus_id: String,
    model: String,
}

/// Parses one `/proc/driver/nvidia/gpus/<bus id>/information` file.
fn parse_information(path: &Path, text: &str) -> Result<Information, GpuError> {
    let field = |name: &'static str| -> Result<&str, GpuError> {
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim())
            .ok_or(GpuError::MissingField {
                path: path.to_path_buf(),
                field: name,
            })
    };
    let invalid = |name: &'static str, value: &str| GpuError::InvalidField {
        path: path.to_path_buf(),
        field: name,
        value: value.to_owned(),
    };
    let model = field("Model")?;
    if model.is_empty() {
        return Err(invalid("Model", model));
    }
    let uuid = field("GPU UUID")?;
    if !uuid.starts_with("GPU-") {
        return Err(invalid("GPU UUID", uuid));
    }
    let bus = field("Bus Location")?;
    let bus_id =
        crate::selection::normalize_bus_id(bus).ok_or_else(|| invalid("Bus Location", bus))?;
    let minor_text = field("Device Minor")?;
    let minor = minor_text
        .parse::<u32>()
        .map_err(|_| invalid("Device Minor", minor_text))?;
    Ok(Information {
        minor,
        uuid: uuid.to_owned(),
        bus_id,
        model: model.to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::{chardev, require_root, symlink, write};

    pub const UUID0: &str = "GPU-6f3c2a1e-9b7d-4c55-8e21-0a1b2c3d4e5f";
    pub const UUID1: &str = "GPU-11111111-2222-3333-4444-555555555555";

    fn information(model: &str, uuid: &str, bus: &str, minor: u32) -> String {
        format!(
            "Model: \t\t {model}\n\
             IRQ:   \t\t 95\n\
             GPU UUID: \t {uuid}\n\
             Video BIOS: \t 88.00.4e.00.05\n\
             Bus Type: \t PCIe\n\
             DMA Size: \t 47 bits\n\
             DMA Mask: \t 0x7fffffffffff\n\
             Bus Location: \t {bus}\n\
             Device Minor: \t {minor}\n\
             GPU Excluded:\t No\n"
        )
    }

    /// Two GPUs; the one at the lower bus address has the higher minor.
    pub fn two_gpu_fixture(root: &Path) {
        write(
            root,
            "proc/driver/nvidia/gpus/0000:06:00.0/information",
            &information("Tesla V100-SXM2-16GB", UUID1, "0000:06:00.0", 1),
        );
        write(
            root,
            "proc/driver/nvidia/gpus/0000:86:00.0/information",
            &information("Tesla V100-SXM2-16GB", UUID0, "0000:86:00.0", 0),
        );
        chardev(root, "dev/nvidia0", 195, 0);
        chardev(root, "dev/nvidia1", 195, 1);
        chardev(root, "dev/nvidiactl", 195, 255);
        chardev(root, "dev/nvidia-modeset", 195, 254);
        chardev(root, "dev/nvidia-uvm", 508, 0);
        chardev(root, "dev/nvidia-uvm-tools", 508, 1);
    }

    #[test]
    fn discovers_two_gpus_ordered_by_minor() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_gpu_fixture(dir.path());
        let found = discover_gpus(dir.path()).expect("discover");
        assert_eq!(found.source, Source::Procfs);
        assert_eq!(found.gpus.len(), 2);
        let g0 = &found.gpus[0];
        assert_eq!((g0.index, g0.minor), (0, 0));
        assert_eq!(g0.uuid, UUID0);
        assert_eq!(g0.bus_id, "0000:86:00.0");
        assert_eq!(g0.model, "Tesla V100-SXM2-16GB");
        assert_eq!(g0.device.path, Path::new("/dev/nvidia0"));
        assert_eq!((g0.device.major, g0.device.minor), (195, 0));
        let g1 = &found.gpus[1];
        assert_eq!((g1.index, g1.minor), (1, 1));
        assert_eq!(g1.uuid, UUID1);
        assert_eq!(g1.bus_id, "0000:06:00.0");
        assert_eq!(g1.device.host_path, dir.path().join("dev/nvidia1"));
        assert_eq!((g1.device.major, g1.device.minor), (195, 1));
        let control: Vec<_> = found
            .control
            .iter()
            .map(|d| (d.path.to_str().expect("utf-8").to_owned(), d.major, d.minor))
            .collect();
        assert_eq!(
            control,
            [
                ("/dev/nvidiactl".to_owned(), 195, 255),
                ("/dev/nvidia-uvm".to_owned(), 508, 0),
                ("/dev/nvidia-uvm-tools".to_owned(), 508, 1),
                ("/dev/nvidia-modeset".to_owned(), 195, 254),
            ]
        );
    }

    #[test]
    fn no_driver_means_no_gpus() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            discover_gpus(dir.path()).expect("discover"),
            NvidiaDevices::default()
        );
        // Driver loaded but no GPUs directory yet.
        write(
            dir.path(),
            "proc/driver/nvidia/version",
            "NVRM version: 550\n",
        );
        assert_eq!(
            discover_gpus(dir.path()).expect("discover"),
            NvidiaDevices::default()
        );
    }

    #[test]
    fn optional_control_nodes_may_be_absent() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "proc/driver/nvidia/gpus/0000:06:00.0/information",
            &information("A100", UUID0, "0000:06:00.0", 0),
        );
        chardev(dir.path(), "dev/nvidia0", 195, 0);
        let err = discover_gpus(dir.path()).expect_err("nvidiactl is required");
        assert!(err.to_string().contains("/dev/nvidiactl"), "{err}");
        chardev(dir.path(), "dev/nvidiactl", 195, 255);
        let found = discover_gpus(dir.path()).expect("discover");
        assert_eq!(found.control.len(), 1);
    }

    #[test]
    fn symlinked_gpu_node_is_refused() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_gpu_fixture(dir.path());
        std::fs::remove_file(dir.path().join("dev/nvidia1")).expect("rm");
        symlink(dir.path(), "dev/nvidia1", "nvidia0");
        let err = discover_gpus(dir.path()).expect_err("symlink refused");
        assert!(
            matches!(
                &err,
                GpuError::GpuNode {
                    minor: 1,
                    source: DeviceError::Symlink { .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn missing_gpu_node_is_an_error_naming_the_path() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        two_gpu_fixture(dir.path());
        std::fs::remove_file(dir.path().join("dev/nvidia1")).expect("rm");
        let err = discover_gpus(dir.path()).expect_err("missing node");
        let source = std::error::Error::source(&err).expect("source kept");
        assert!(source.to_string().contains("dev/nvidia1"), "{source}");
    }

    #[test]
    fn bad_information_files() {
        let path = Path::new("/x/information");
        let err = parse_information(
            path,
            "Model: A100\nGPU UUID: GPU-1\nBus Location: 0000:06:00.0\n",
        )
        .err()
        .expect("missing minor");
        assert!(
            matches!(
                err,
                GpuError::MissingField {
                    field: "Device Minor",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("/x/information"), "{err}");
        let err = parse_information(
            path,
            "Model: A100\nGPU UUID: GPU-1\nBus Location: 0000:06:00.0\nDevice Minor: x\n",
        )
        .err()
        .expect("bad minor");
        assert!(
            matches!(
                err,
                GpuError::InvalidField {
                    field: "Device Minor",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = parse_information(
            path,
            "Model: A100\nGPU UUID: ??\nBus Location: 0000:06:00.0\nDevice Minor: 0\n",
        )
        .err()
        .expect("bad uuid");
        assert!(
            matches!(
                err,
                GpuError::InvalidField {
                    field: "GPU UUID",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_minor_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "proc/driver/nvidia/gpus/0000:06:00.0/information",
            &information("A100", UUID0, "0000:06:00.0", 0),
        );
        write(
            dir.path(),
            "proc/driver/nvidia/gpus/0000:07:00.0/information",
            &information("A100", UUID1, "0000:07:00.0", 0),
        );
        let err = discover_gpus(dir.path()).expect_err("duplicate");
        assert!(
            matches!(err, GpuError::DuplicateMinor { minor: 0, .. }),
            "{err:?}"
        );
    }
}

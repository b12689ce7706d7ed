//! NVIDIA GPU discovery through NVML (`libnvidia-ml`), loaded at run time from
//! an explicit library path with `nvml-wrapper`.
//!
//! nvml-wrapper resolves every NVML symbol lazily (bindgen dynamic loading:
//! each symbol is looked up with `dlsym` at load time and kept as a `Result`),
//! so a library lacking unrelated entry points still loads. The entry points
//! used here are `nvmlInit_v2`, `nvmlSystemGetDriverVersion` (probed by
//! nvml-wrapper's init; its failure is ignored there), `nvmlDeviceGetCount_v2`,
//! `nvmlDeviceGetHandleByIndex_v2`, `nvmlDeviceGetUUID`,
//! `nvmlDeviceGetPciInfo_v3`, `nvmlDeviceGetMinorNumber`, `nvmlDeviceGetName`
//! and `nvmlShutdown`.

use std::path::{Path, PathBuf};

use nvml_wrapper::error::NvmlError as WrapperError;
use nvml_wrapper::Nvml;

use crate::selection::normalize_bus_id;

/// Errors discovering GPUs through NVML.
#[derive(Debug, thiserror::Error)]
pub enum NvmlError {
    /// Loading needs a fixed location: `dlopen` would search
    /// `LD_LIBRARY_PATH` for a bare name and resolve a relative one against
    /// the working directory.
    #[error("NVML library path {} must be absolute", library.display())]
    RelativePath { library: PathBuf },
    /// `dlopen` failed: no such file, not a loadable shared object, or an
    /// unresolved dependency. Callers may treat this as "no NVML here"
    /// (see [`NvmlError::is_unavailable`]).
    #[error("cannot load NVML library {}", library.display())]
    Load {
        library: PathBuf,
        #[source]
        source: WrapperError,
    },
    /// Loaded, but `nvmlInit_v2` is missing or failed (e.g. driver not loaded).
    #[error("cannot initialize NVML from {}", library.display())]
    Init {
        library: PathBuf,
        #[source]
        source: WrapperError,
    },
    #[error("NVML library {} lacks {symbol}", library.display())]
    MissingSymbol {
        library: PathBuf,
        symbol: &'static str,
    },
    #[error("NVML: cannot count devices (nvmlDeviceGetCount_v2)")]
    Count {
        #[source]
        source: WrapperError,
    },
    #[error("NVML device {index}: {query} failed")]
    Query {
        index: u32,
        query: &'static str,
        #[source]
        source: WrapperError,
    },
    #[error("NVML device {index}: invalid {field} {value:?}")]
    InvalidValue {
        index: u32,
        field: &'static str,
        value: String,
    },
    #[error("NVML shutdown failed")]
    Shutdown {
        #[source]
        source: WrapperError,
    },
}

impl NvmlError {
    /// True if the library could not be loaded at all, i.e. NVML is not
    /// available and callers may fall back to another discovery method.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, NvmlError::Load { .. })
    }
}

/// One GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmlGpu {
    /// NVML device index (PCI bus order, as `nvidia-smi` numbers GPUs).
    pub index: u32,
    /// `GPU-xxxxxxxx-...`
    pub uuid: String,
    /// Normalized PCI address, e.g. `0000:06:00.0` (NVML says `00000000:06:00.0`).
    pub bus_id: String,
    /// Device minor: the GPU's node is `/dev/nvidia<minor>`.
    pub minor: u32,
    /// Product name, e.g. `Tesla V100-SXM2-16GB`.
    pub name: String,
}

/// Loads NVML from `library` (an absolute path, e.g.
/// `/usr/lib64/libnvidia-ml.so.1`), lists its GPUs in index order and shuts
/// NVML down again.
pub fn discover(library: &Path) -> Result<Vec<NvmlGpu>, NvmlError> {
    if !library.is_absolute() {
        return Err(NvmlError::RelativePath {
            library: library.to_path_buf(),
        });
    }
    let nvml = Nvml::builder()
        .lib_path(library.as_os_str())
        .init()
        .map_err(|source| match source {
            // Only the dlopen step yields a libloading error here; a missing
            // nvmlInit_v2 is FailedToLoadSymbol and counts as an init failure.
            WrapperError::LibloadingError(_) => NvmlError::Load {
                library: library.to_path_buf(),
                source,
            },
            source => NvmlError::Init {
                library: library.to_path_buf(),
                source,
            },
        })?;
    if nvml.lib().nvmlShutdown.is_err() {
        // nvml-wrapper's Drop calls nvmlShutdown without checking the symbol
        // and would panic; leak this broken library's handle instead.
        std::mem::forget(nvml);
        return Err(NvmlError::MissingSymbol {
            library: library.to_path_buf(),
            symbol: "nvmlShutdown",
        });
    }
    let gpus = list(&nvml);
    // Shut down before returning either way; a query error outranks a
    // shutdown error.
    let shutdown = nvml.shutdown();
    let gpus = gpus?;
    shutdown.map_err(|source| NvmlError::Shutdown { source })?;
    Ok(gpus)
}

fn list(nvml: &Nvml) -> Result<Vec<NvmlGpu>, NvmlError> {
    let count = nvml
        .device_count()
        .map_err(|source| NvmlError::Count { source })?;
    (0..count).map(|index| describe(nvml, index)).collect()
}

fn describe(nvml: &Nvml, index: u32) -> Result<NvmlGpu, NvmlError> {
    let query = |query: &'static str| {
        move |source: WrapperError| NvmlError::Query {
            index,
            query,
            source,
        }
    };
    let device = nvml
        .device_by_index(index)
        .map_err(query("nvmlDeviceGetHandleByIndex_v2"))?;
    let uuid = device.uuid().map_err(query("nvmlDeviceGetUUID"))?;
    let pci = device
        .pci_info()
        .map_err(query("nvmlDeviceGetPciInfo_v3"))?;
    let minor = device
        .minor_number()
        .map_err(query("nvmlDeviceGetMinorNumber"))?;
    let name = device.name().map_err(query("nvmlDeviceGetName"))?;
    let invalid = |field: &'static str, value: &str| NvmlError::InvalidValue {
        index,
        field,
        value: value.to_owned(),
    };
    // Same checks as the procfs path, so both sources yield the same shape.
    if !uuid.starts_with("GPU-") {
        return Err(invalid("UUID", &uuid));
    }
    if name.is_empty() {
        return Err(invalid("name", &name));
    }
    let bus_id = normalize_bus_id(&pci.bus_id).ok_or_else(|| invalid("PCI bus id", &pci.bus_id))?;
    Ok(NvmlGpu {
        index,
        uuid,
        bus_id,
        minor,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_library_path_is_refused() {
        for path in ["libnvidia-ml.so.1", "lib/libnvidia-ml.so.1"] {
            let err = discover(Path::new(path)).expect_err("relative path");
            assert!(matches!(err, NvmlError::RelativePath { .. }), "{err:?}");
            assert!(!err.is_unavailable());
        }
    }

    #[test]
    fn missing_library_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let library = dir.path().join("libnvidia-ml.so.1");
        let err = discover(&library).expect_err("no library");
        assert!(err.is_unavailable(), "{err:?}");
        assert!(err.to_string().contains("libnvidia-ml.so.1"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn non_library_file_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let library = dir.path().join("libnvidia-ml.so.1");
        std::fs::write(&library, "not an ELF file").expect("write");
        let err = discover(&library).expect_err("not a library");
        assert!(err.is_unavailable(), "{err:?}");
    }
}

//! What a container asks pinc for, read once per create. The one place
//! that knows pinc's vocabulary: every key, its carriers, their precedence
//! and how values are parsed.
//!
//! - Carriers: the OCI annotation `pinc.io/<key>`, else the process env
//!   `PINC_<KEY>` (upper case, `-` as `_`) for callers that cannot set
//!   annotations (Docker 20.10); `gpus` also reads `NVIDIA_VISIBLE_DEVICES`,
//!   after `PINC_GPUS`. An annotation wins over env; of env entries, the
//!   last of the first variable found.
//! - Booleans: `1/true/yes/on` or `0/false/no/off`, any case; anything
//!   else is refused, naming the key.
//! - An unknown `pinc.io/` key is refused (a typo must not be ignored);
//!   unknown `PINC_` variables are the container's own business.
//!
//! Bad values fail before anything is created, each with one line naming
//! the key and what is accepted.
//!
//! The values' own syntax: [`placement`] (CPUs, memory, hugepages, also
//! spelt as `pinc plan` words), [`devices`] (GPU and HCA lists) and [`cdi`]
//! (CDI device names). A leaf crate, so every binary that reads a request
//! (pinc, the shim, `pinc-hook`) reads it the same way without the rest.

use std::collections::HashMap;

use oci_spec::runtime::Spec;

pub mod cdi;
pub mod devices;
pub mod placement;

use devices::{DeviceAsk, DeviceListError, DeviceSelection};

/// Prefix of pinc's annotations.
pub const ANNOTATION_PREFIX: &str = "pinc.io/";

/// Keys read by the stages other than placement (whose keys are
/// [`placement::PLACEMENT_KEYS`]).
const STAGE_KEYS: &[&str] = &["hpc", "gpus", "rdma", "require-cgroups"];

/// Keys pinc writes into a final spec: accepted and ignored on input, so a
/// final spec can be run again.
const WRITTEN_KEYS: &[&str] = &["placement", "device-locality"];

/// Everything a container asked pinc for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The MPI preset (`hpc`).
    pub hpc: bool,
    /// Refuse, rather than drop, cgroup limits the sandbox cannot enforce.
    pub require_cgroups: bool,
    /// GPUs; `None` when none were asked for.
    pub gpus: Option<DeviceAsk>,
    /// RDMA HCAs; `None` when none were asked for.
    pub rdma: Option<DeviceAsk>,
    /// CDI devices (`cdi.k8s.io/*` annotations), fully qualified names.
    pub cdi: Vec<String>,
    /// CPUs, memory and hugepages.
    pub placement: Option<placement::PlacementRequest>,
    /// A Kubernetes pod's sandbox (pause) container: pod annotations reach
    /// it too, but it needs no cores or devices of its own, so their keys
    /// are not read for it.
    pub pod_sandbox: bool,
}

/// A request that cannot be honoured as written.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{key}: unknown key (pinc.io keys: {known})")]
    UnknownKey { key: String, known: String },
    #[error("{from}")]
    Devices {
        from: String,
        #[source]
        source: DeviceListError,
    },
    #[error(transparent)]
    Cdi(#[from] cdi::NameError),
    #[error(transparent)]
    Placement(#[from] placement::PlacementRequestError),
}

/// A key's value and the annotation or variable it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Given {
    from: String,
    value: String,
}

/// The env variables that carry `key`, first found wins.
fn env_names(key: &str) -> Vec<String> {
    let mut names = vec![format!(
        "PINC_{}",
        key.to_ascii_uppercase().replace('-', "_")
    )];
    if key == "gpus" {
        names.push("NVIDIA_VISIBLE_DEVICES".to_string());
    }
    names
}

fn known_keys() -> impl Iterator<Item = &'static str> {
    STAGE_KEYS.iter().chain(placement::PLACEMENT_KEYS).copied()
}

/// The spec's annotations and process env: where every request is read from.
fn annotations_and_env(spec: &Spec) -> (HashMap<String, String>, Vec<String>) {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    (annotations, env)
}

/// `key`'s value: the annotation if set, else the last entry of the first
/// env variable found.
fn given(annotations: &HashMap<String, String>, env: &[String], key: &str) -> Option<Given> {
    let annotation = format!("{ANNOTATION_PREFIX}{key}");
    if let Some(value) = annotations.get(&annotation) {
        return Some(Given {
            from: annotation,
            value: value.clone(),
        });
    }
    env_names(key).into_iter().find_map(|var| {
        env.iter()
            .rev()
            .find_map(|kv| {
                kv.strip_prefix(var.as_str())
                    .and_then(|r| r.strip_prefix('='))
            })
            .map(|value| Given {
                from: var.clone(),
                value: value.to_string(),
            })
    })
}

/// Whether the annotations are those of a Kubernetes pod's sandbox.
fn is_pod_sandbox(annotations: &HashMap<String, String>) -> bool {
    [
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
    ]
    .iter()
    .any(|k| annotations.get(*k).is_some_and(|v| v == "sandbox"))
}

fn refuse_unknown(annotations: &HashMap<String, String>) -> Result<(), RequestError> {
    for name in annotations.keys() {
        let Some(key) = name.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        if !known_keys().any(|k| k == key) && !WRITTEN_KEYS.contains(&key) {
            return Err(RequestError::UnknownKey {
                key: name.clone(),
                known: known_keys().collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(())
}

fn flag(
    annotations: &HashMap<String, String>,
    env: &[String],
    key: &str,
) -> Result<bool, RequestError> {
    match given(annotations, env, key) {
        Some(g) => Ok(placement::parse_bool(&g.from, &g.value)?),
        None => Ok(false),
    }
}

fn devices(
    annotations: &HashMap<String, String>,
    env: &[String],
    key: &str,
) -> Result<Option<DeviceAsk>, RequestError> {
    let Some(g) = given(annotations, env, key) else {
        return Ok(None);
    };
    let selection = DeviceSelection::parse(&g.value).map_err(|source| RequestError::Devices {
        from: g.from.clone(),
        source,
    })?;
    Ok(
        (selection != DeviceSelection::Nothing).then_some(DeviceAsk {
            from: g.from,
            selection,
        }),
    )
}

impl Request {
    /// The request in `spec`'s annotations and process env.
    pub fn read(spec: &Spec) -> Result<Request, RequestError> {
        let (annotations, env) = annotations_and_env(spec);
        Self::from_parts(&annotations, &env)
    }

    /// The request in these annotations and env entries (`KEY=value`).
    pub fn from_parts(
        annotations: &HashMap<String, String>,
        env: &[String],
    ) -> Result<Request, RequestError> {
        refuse_unknown(annotations)?;
        let mut request = Request {
            hpc: flag(annotations, env, "hpc")?,
            require_cgroups: flag(annotations, env, "require-cgroups")?,
            pod_sandbox: is_pod_sandbox(annotations),
            ..Request::default()
        };
        if request.pod_sandbox {
            return Ok(request);
        }
        request.gpus = devices(annotations, env, "gpus")?;
        request.rdma = devices(annotations, env, "rdma")?;
        request.cdi = cdi::requested_devices(annotations)?;
        let found: HashMap<String, (String, String)> = placement::PLACEMENT_KEYS
            .iter()
            .filter_map(|key| {
                given(annotations, env, key).map(|g| (key.to_string(), (g.from, g.value)))
            })
            .collect();
        request.placement = placement::from_given(found)?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests;

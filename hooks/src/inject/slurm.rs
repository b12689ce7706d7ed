//! Inside a Slurm job, the GPUs the job was given bound what a container may
//! ask for: a `srun ... pinc run` cannot reach a neighbour job's GPU.

use crate::Gpu;

use super::DevicesError;

/// The GPUs of the caller's Slurm job, from the environment `pinc` itself
/// runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmGpus {
    /// The variable it came from, for messages.
    pub source: &'static str,
    pub value: String,
    /// GPU ids as Slurm prints them.
    ids: Vec<String>,
}

/// Where Slurm records the allocation, most precise first. Slurm's GPU ids
/// are the device file numbers (`/dev/nvidia<N>`, i.e. minors), and
/// `SLURM_STEP_GPUS`/`SLURM_JOB_GPUS` keep them even where the cgroup
/// renumbers `CUDA_VISIBLE_DEVICES` from 0; that one is a last resort and
/// may hold UUIDs.
const VARS: [&str; 3] = ["SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"];

impl SlurmGpus {
    /// `None` outside a Slurm job (no `SLURM_JOB_ID`), or inside one that
    /// records no GPU allocation (Slurm does not manage GPUs there).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Option<SlurmGpus> {
        get("SLURM_JOB_ID")?;
        VARS.iter().find_map(|var| {
            get(var).map(|value| SlurmGpus {
                source: var,
                ids: value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && *s != "NoDevFiles")
                    .map(str::to_string)
                    .collect(),
                value,
            })
        })
    }

    fn holds(&self, gpu: &Gpu) -> bool {
        self.ids.iter().any(|id| {
            if id.bytes().all(|b| b.is_ascii_digit()) {
                if self.source == "CUDA_VISIBLE_DEVICES" {
                    id.parse::<usize>().is_ok_and(|i| i == gpu.index)
                } else {
                    id.parse::<u32>().is_ok_and(|m| m == gpu.minor)
                }
            } else {
                id.eq_ignore_ascii_case(&gpu.uuid)
            }
        })
    }

    /// `all` becomes the allocation; a named GPU outside it is refused.
    pub fn restrict<'a>(
        &self,
        chosen: Vec<&'a Gpu>,
        all: bool,
    ) -> Result<Vec<&'a Gpu>, DevicesError> {
        if all {
            return Ok(chosen.into_iter().filter(|g| self.holds(g)).collect());
        }
        if let Some(g) = chosen.iter().find(|g| !self.holds(g)) {
            return Err(DevicesError::OutsideSlurm {
                index: g.index,
                uuid: g.uuid.clone(),
                var: self.source.to_string(),
                value: self.value.clone(),
            });
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use crate::{DeviceNode, NodeKind};

    use super::*;

    fn gpu(index: usize, minor: u32, uuid: &str) -> Gpu {
        Gpu {
            index,
            minor,
            uuid: uuid.to_string(),
            bus_id: format!("0000:{:02x}:00.0", index + 1),
            model: "Test".to_string(),
            device: DeviceNode {
                path: PathBuf::from(format!("/dev/nvidia{minor}")),
                host_path: PathBuf::from(format!("/dev/nvidia{minor}")),
                kind: NodeKind::Char,
                major: 195,
                minor: minor.into(),
                mode: 0o666,
                uid: 0,
                gid: 0,
            },
        }
    }

    fn alloc(vars: &[(&str, &str)]) -> Option<SlurmGpus> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SlurmGpus::from_env(|k| env.get(k).cloned())
    }

    #[test]
    fn outside_a_job_nothing_is_restricted() {
        assert_eq!(alloc(&[("SLURM_STEP_GPUS", "0")]), None);
        assert_eq!(alloc(&[("SLURM_JOB_ID", "7")]), None);
    }

    #[test]
    fn step_gpus_are_minors_and_win_over_cuda_visible_devices() {
        let gpus = [gpu(0, 2, "GPU-a"), gpu(1, 3, "GPU-b")];
        let a = alloc(&[
            ("SLURM_JOB_ID", "7"),
            ("SLURM_STEP_GPUS", "3"),
            ("CUDA_VISIBLE_DEVICES", "0"),
        ])
        .expect("allocation");
        assert_eq!(a.source, "SLURM_STEP_GPUS");
        let all = a.restrict(gpus.iter().collect(), true).expect("all");
        assert_eq!(
            all.iter().map(|g| g.uuid.as_str()).collect::<Vec<_>>(),
            ["GPU-b"]
        );
        let err = a
            .restrict(vec![&gpus[0]], false)
            .expect_err("outside the allocation")
            .to_string();
        assert!(
            err.contains("GPU 0 (GPU-a) is not in this Slurm job's allocation (SLURM_STEP_GPUS=3)"),
            "{err}"
        );
        assert_eq!(a.restrict(vec![&gpus[1]], false).expect("inside").len(), 1);
    }

    #[test]
    fn cuda_visible_devices_by_index_or_uuid() {
        let gpus = [gpu(0, 0, "GPU-a"), gpu(1, 1, "GPU-b")];
        let a =
            alloc(&[("SLURM_JOB_ID", "7"), ("CUDA_VISIBLE_DEVICES", "GPU-B")]).expect("allocation");
        let all = a.restrict(gpus.iter().collect(), true).expect("all");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].index, 1);
        let none = alloc(&[
            ("SLURM_JOB_ID", "7"),
            ("CUDA_VISIBLE_DEVICES", "NoDevFiles"),
        ])
        .expect("allocation");
        assert!(none
            .restrict(gpus.iter().collect(), true)
            .expect("all")
            .is_empty());
        assert!(none.restrict(vec![&gpus[0]], false).is_err());
    }
}

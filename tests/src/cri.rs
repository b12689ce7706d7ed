//! Kubernetes' view of pinc: a CRI v1 client for a private containerd 1.6
//! with its CRI plugin on, a locally built pause image, and the busybox
//! image, both imported into containerd's `k8s.io` namespace.
//!
//! The client is the generated tonic stub of the `k8s-cri` crate, driven
//! over containerd's unix gRPC socket from a current-thread tokio runtime,
//! so the tests stay synchronous. Every call has a deadline: a hung daemon
//! fails the test instead of hanging it.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use serde_json::json;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::daemons::{
    ok, pinc_abs, require_bin, run_with_timeout, Containerd, ContainerdOptions, CMD_TIMEOUT,
};
use crate::make_rootfs;

/// The namespace containerd's CRI plugin keeps its images and containers in.
pub const K8S_NS: &str = "k8s.io";
/// Image names as imported (`ctr image import` prefixes docker.io/library/).
pub const PAUSE_IMAGE: &str = "localhost/pinc-pause:local";
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:local";
/// How long one CRI call may take (image-free pod start is well under this).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// The packaged containerd 1.6/1.7 snippet, as tested.
pub fn packaged_config_v2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/containerd/config-v2.toml")
}

/// A synchronous CRI v1 client (RuntimeService + ImageService).
pub struct CriClient {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// One blocking RPC with a deadline; a timeout becomes DEADLINE_EXCEEDED.
macro_rules! rpc {
    ($(#[$doc:meta])* $name:ident, $svc:ident, $req:ty, $resp:ty) => {
        $(#[$doc])*
        pub fn $name(&mut self, req: $req) -> Result<$resp, tonic::Status> {
            let svc = &mut self.$svc;
            let call = svc.$name(req);
            block_on_deadline(&self.rt, call, stringify!($name)).map(|r| r.into_inner())
        }
    };
}

fn block_on_deadline<T>(
    rt: &tokio::runtime::Runtime,
    call: impl Future<Output = Result<T, tonic::Status>>,
    what: &str,
) -> Result<T, tonic::Status> {
    rt.block_on(async { tokio::time::timeout(RPC_TIMEOUT, call).await })
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(format!(
                "CRI {what} took longer than {RPC_TIMEOUT:?}"
            )))
        })
}

impl CriClient {
    /// Connects to a CRI server at a unix socket path.
    pub fn connect(sock: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let path = sock.to_path_buf();
        // The URI is a placeholder: the connector ignores it and dials the socket.
        let endpoint = Endpoint::try_from("http://[::]:50051").expect("endpoint");
        let channel = rt
            .block_on(async {
                endpoint
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }))
                    .await
            })
            .unwrap_or_else(|e| panic!("cannot connect to CRI at {}: {e}", sock.display()));
        Self {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        }
    }

    rpc!(version, runtime, VersionRequest, VersionResponse);
    rpc!(status, runtime, StatusRequest, StatusResponse);
    rpc!(
        run_pod_sandbox,
        runtime,
        RunPodSandboxRequest,
        RunPodSandboxResponse
    );
    rpc!(
        stop_pod_sandbox,
        runtime,
        StopPodSandboxRequest,
        StopPodSandboxResponse
    );
    rpc!(
        remove_pod_sandbox,
        runtime,
        RemovePodSandboxRequest,
        RemovePodSandboxResponse
    );
    rpc!(
        pod_sandbox_status,
        runtime,
        PodSandboxStatusRequest,
        PodSandboxStatusResponse
    );
    rpc!(
        list_pod_sandbox,
        runtime,
        ListPodSandboxRequest,
        ListPodSandboxResponse
    );
    rpc!(
        create_container,
        runtime,
        CreateContainerRequest,
        CreateContainerResponse
    );
    rpc!(
        start_container,
        runtime,
        StartContainerRequest,
        StartContainerResponse
    );
    rpc!(
        stop_container,
        runtime,
        StopContainerRequest,
        StopContainerResponse
    );
    rpc!(
        remove_container,
        runtime,
        RemoveContainerRequest,
        RemoveContainerResponse
    );
    rpc!(
        list_containers,
        runtime,
        ListContainersRequest,
        ListContainersResponse
    );
    rpc!(
        container_status,
        runtime,
        ContainerStatusRequest,
        ContainerStatusResponse
    );
    rpc!(exec_sync, runtime, ExecSyncRequest, ExecSyncResponse);
    rpc!(
        container_stats,
        runtime,
        ContainerStatsRequest,
        ContainerStatsResponse
    );
    rpc!(
        /// Streaming exec: returns the URL of containerd's streaming server.
        exec,
        runtime,
        ExecRequest,
        ExecResponse
    );
    rpc!(
        /// Streaming attach: returns the URL of containerd's streaming server.
        attach,
        runtime,
        AttachRequest,
        AttachResponse
    );
    rpc!(
        update_container_resources,
        runtime,
        UpdateContainerResourcesRequest,
        UpdateContainerResourcesResponse
    );
    rpc!(
        reopen_container_log,
        runtime,
        ReopenContainerLogRequest,
        ReopenContainerLogResponse
    );
    rpc!(
        list_container_stats,
        runtime,
        ListContainerStatsRequest,
        ListContainerStatsResponse
    );
    rpc!(list_images, images, ListImagesRequest, ListImagesResponse);

    /// Ids of all pod sandboxes.
    pub fn pod_ids(&mut self) -> Vec<String> {
        self.list_pod_sandbox(ListPodSandboxRequest::default())
            .expect("ListPodSandbox")
            .items
            .into_iter()
            .map(|p| p.id)
            .collect()
    }

    /// Ids of all containers.
    pub fn container_ids(&mut self) -> Vec<String> {
        self.list_containers(ListContainersRequest::default())
            .expect("ListContainers")
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    /// Best effort: stops and removes every container and pod (after a
    /// failed test, so containerd's shutdown has nothing left to kill).
    pub fn remove_everything(&mut self) {
        let containers = self
            .list_containers(ListContainersRequest::default())
            .map(|r| r.containers)
            .unwrap_or_default();
        for c in containers {
            let _ = self.stop_container(StopContainerRequest {
                container_id: c.id.clone(),
                timeout: 0,
            });
            let _ = self.remove_container(RemoveContainerRequest { container_id: c.id });
        }
        let pods = self
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .map(|r| r.items)
            .unwrap_or_default();
        for p in pods {
            let _ = self.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: p.id.clone(),
            });
            let _ = self.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: p.id,
            });
        }
    }
}

/// A host-network pod's config: no CNI involved, PID and IPC namespaces
/// of the pod's own.
pub fn host_network_pod(
    name: &str,
    annotations: &[(&str, &str)],
    cgroup_parent: &str,
) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("uid-{name}"),
            namespace: "pinc-test".to_string(),
            attempt: 0,
        }),
        // No hostname: like the kubelet for host-network pods (the UTS
        // namespace is the host's; runc and pinc refuse a hostname there).
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.to_string(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Pod as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A busybox container running `args`.
pub fn busybox_container(
    name: &str,
    args: &[&str],
    annotations: &[(&str, &str)],
) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: BUSYBOX_IMAGE.to_string(),
            ..Default::default()
        }),
        command: args.iter().map(|a| a.to_string()).collect(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Compiles tests/fixtures/pause.c statically into `<dir>/pause`.
pub fn build_pause(dir: &Path) -> PathBuf {
    let cc = require_bin("cc", "gcc");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pause.c");
    let out = dir.join("pause");
    let res = run_with_timeout(
        Command::new(cc)
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&src),
        CMD_TIMEOUT,
    );
    ok("cc -static pause.c (needs libc6-dev)", &res);
    out
}

fn tar_dir(src: &Path, archive: &Path) -> PathBuf {
    let out = run_with_timeout(
        Command::new(require_bin("tar", "tar"))
            .arg("--numeric-owner")
            .arg("-C")
            .arg(src)
            .arg("-cf")
            .arg(archive)
            .arg("."),
        CMD_TIMEOUT,
    );
    ok(&format!("tar of {}", src.display()), &out);
    archive.to_path_buf()
}

/// Builds the pause image (busybox rootfs + static /pause) and the busybox
/// image as archives under `dir`; returns (pause, busybox).
pub fn build_images(dir: &Path) -> (PathBuf, PathBuf) {
    let pause_dir = dir.join("pause-img");
    let bb_dir = dir.join("busybox-img");
    fs::create_dir_all(&pause_dir).expect("pause image dir");
    fs::create_dir_all(&bb_dir).expect("busybox image dir");

    let rootfs = pause_dir.join("rootfs");
    make_rootfs(&rootfs);
    fs::copy(build_pause(dir), rootfs.join("pause")).expect("copy pause");
    let layer = tar_dir(&rootfs, &pause_dir.join("rootfs.tar"));
    let pause = crate::daemons::image_archive(&pause_dir, &layer, PAUSE_IMAGE, &["/pause"]);

    let rootfs = bb_dir.join("rootfs");
    make_rootfs(&rootfs);
    let layer = tar_dir(&rootfs, &bb_dir.join("rootfs.tar"));
    let busybox = crate::daemons::image_archive(&bb_dir, &layer, "busybox:local", &["sh"]);
    (pause, busybox)
}

/// The CRI plugin's own settings for the tests, put before the packaged
/// runtime snippet (TOML allows a parent table after its children only
/// when it is not defined twice, so the snippet must not define it).
/// `cni_conf_dir`: where the tests' own network is (see [`TestNetwork`]).
pub fn cri_plugin_config(sandbox_image: &str, cni_conf_dir: &Path) -> String {
    format!(
        r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which root lacks here.
  restrict_oom_score_adj = true
  # Random port on localhost: streaming Exec/Attach (tests/src/cri_stream.rs).
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Pod-network pods join the tests' own bridge; host-network pods never
  # call CNI.
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
  # Plain runc, for comparison.
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"#,
        cni_conf_dir.display()
    )
}

/// Debian's containernetworking-plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// The pod network of one CriDaemon: a bridge with no address on the host
/// (no gateway, no masquerading, no uplink), so pods get an eth0 with an
/// address that reaches nothing but the other pods of the run. Its name,
/// subnet and IPAM state are the run's own; `Drop` removes the bridge.
pub struct TestNetwork {
    /// The bridge device on the host (unique to the run: pid-named).
    pub bridge: String,
    /// The subnet pods' addresses are in, e.g. `10.251.7.0/24`.
    pub subnet: String,
    /// The subnet's first three octets with a dot: `10.251.7.`.
    pub prefix: String,
    pub conf_dir: PathBuf,
}

impl TestNetwork {
    /// Writes the conflist under `dir` (IPAM state there too).
    pub fn new(dir: &Path) -> Self {
        for plugin in ["bridge", "host-local", "loopback"] {
            let bin = Path::new(CNI_BIN_DIR).join(plugin);
            assert!(
                bin.is_file(),
                "{} is missing: install containernetworking-plugins (scripts/install-deps)",
                bin.display()
            );
        }
        let pid = std::process::id();
        let bridge = format!("pcri{pid}");
        let prefix = format!("10.251.{}.", pid % 250);
        let subnet = format!("{prefix}0/24");
        let conf_dir = dir.join("cni-conf");
        fs::create_dir_all(&conf_dir).expect("CNI conf dir");
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": format!("pinc-test-{pid}"),
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": false,
                    "isDefaultGateway": false,
                    "ipMasq": false,
                    "hairpinMode": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": subnet}]],
                        "dataDir": dir.join("cni-ipam"),
                    },
                },
                {"type": "loopback"},
            ],
        });
        fs::write(conf_dir.join("10-pinc-test.conflist"), conf.to_string()).expect("CNI conflist");
        Self {
            bridge,
            subnet,
            prefix,
            conf_dir,
        }
    }

    /// Whether the bridge device exists on the host.
    pub fn bridge_exists(&self) -> bool {
        Path::new("/sys/class/net").join(&self.bridge).exists()
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        // Pods (and their veths and netns) are gone by now; the bridge
        // is the plugin's leftover: CNI DEL never removes it.
        if self.bridge_exists() {
            let out = Command::new("ip")
                .args(["link", "delete", &self.bridge])
                .output();
            if !matches!(&out, Ok(o) if o.status.success()) {
                eprintln!("cannot delete bridge {}: {out:?}", self.bridge);
            }
        }
    }
}

/// The packaged v2 snippet with its install paths replaced: pinc's binary
/// and the shim's config file. Panics if the packaged file no longer names
/// the paths (then the test would no longer test it).
pub fn packaged_snippet(pinc: &Path, shim_config: &Path) -> String {
    let path = packaged_config_v2();
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for needle in [
        "\"/usr/local/bin/pinc\"",
        "\"/etc/containerd/pinc-shim.json\"",
    ] {
        assert!(
            text.contains(needle),
            "{} no longer contains {needle}: update the test's substitutions",
            path.display()
        );
    }
    text.replace(
        "\"/usr/local/bin/pinc\"",
        &format!("\"{}\"", pinc.display()),
    )
    .replace(
        "\"/etc/containerd/pinc-shim.json\"",
        &format!("\"{}\"", shim_config.display()),
    )
}

/// A private containerd with CRI, the pinc runtime handlers from the
/// packaged snippet, and both images imported into `k8s.io`.
pub struct CriDaemon {
    // Field order is drop order: the client closes before containerd stops,
    // and the image directory goes last.
    pub client: CriClient,
    pub containerd: Containerd,
    pub pinc: PathBuf,
    /// pinc's state root as the `pinc` handler's shim uses it, before the
    /// namespace is appended.
    pub shim_root: PathBuf,
    /// The pod network (pods with network namespace mode POD).
    pub net: TestNetwork,
    work: tempfile::TempDir,
}

impl CriDaemon {
    /// `path_prepend`: where containerd looks for shims by name.
    pub fn start(path_prepend: Vec<PathBuf>) -> Self {
        let pinc = pinc_abs();
        let work = crate::daemons::short_tempdir("pinc-cri-");
        let (pause, busybox) = build_images(work.path());
        // The shim's JSON config (ConfigPath): pinc under test, and a
        // private state root (the shim appends the namespace).
        let shim_root = work.path().join("shim-root");
        let shim_config = work.path().join("pinc-shim.json");
        let body = json!({"binary": pinc, "root": shim_root});
        fs::write(&shim_config, body.to_string()).expect("shim config");
        let net = TestNetwork::new(work.path());
        let extra_config = format!(
            "{}\n{}",
            cri_plugin_config(PAUSE_IMAGE, &net.conf_dir),
            packaged_snippet(&pinc, &shim_config)
        );
        let mut containerd = Containerd::start_with(&ContainerdOptions {
            cri: true,
            extra_config,
            path_prepend,
        });
        containerd.use_namespace(K8S_NS);
        for (archive, name) in [(&pause, PAUSE_IMAGE), (&busybox, BUSYBOX_IMAGE)] {
            let archive = archive.to_string_lossy().into_owned();
            let out = containerd.ctr_out(K8S_NS, &["images", "import", &archive]);
            let text = ok(&format!("ctr -n k8s.io images import {name}"), &out);
            assert!(text.contains(name), "import did not name {name}: {text}");
        }
        let client = CriClient::connect(&containerd.sock);
        Self {
            client,
            containerd,
            pinc,
            shim_root,
            net,
            work,
        }
    }

    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// `pinc --root <root> list -q`: ids pinc still has there.
    pub fn pinc_ids(&self, root: &Path) -> Vec<String> {
        if !root.exists() {
            return Vec::new();
        }
        let out = run_with_timeout(
            Command::new(&self.pinc)
                .arg("--root")
                .arg(root)
                .args(["list", "-q"]),
            CMD_TIMEOUT,
        );
        ok("pinc list -q", &out)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for CriDaemon {
    fn drop(&mut self) {
        // After a failure, remove pods through CRI so shims and mounts go
        // the normal way; Containerd's drop kills whatever still remains.
        self.client.remove_everything();
    }
}

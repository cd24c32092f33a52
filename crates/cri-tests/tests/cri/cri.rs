//! A blocking CRI v1 client over containerd's socket (k8s-cri's tonic client on a
//! private current-thread tokio runtime), one per scenario, with the calls a
//! kubelet makes and every call bounded by `TIMEOUT`.

use crate::env::TIMEOUT;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::future::Future;
use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint, Uri};

pub struct Cri {
    rt: tokio::runtime::Runtime,
    rs: RuntimeServiceClient<Channel>,
    is: ImageServiceClient<Channel>,
}

pub type Res<T> = Result<T, tonic::Status>;

impl Cri {
    pub fn connect(socket: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let path = PathBuf::from(socket);
        // tonic's lazy channel spawns its connection task on the current runtime.
        let _in_rt = rt.enter();
        // The URI is required by tonic but unused: every connection is the socket.
        let channel = Endpoint::try_from("http://[::]:0")
            .unwrap()
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Cri {
            rs: RuntimeServiceClient::new(channel.clone()),
            is: ImageServiceClient::new(channel),
            rt,
        }
    }

    fn call<T>(&self, what: &str, f: impl Future<Output = Res<tonic::Response<T>>>) -> Res<T> {
        // The timer is made inside the runtime: tokio's Sleep needs its time driver.
        match self
            .rt
            .block_on(async { tokio::time::timeout(TIMEOUT, f).await })
        {
            Ok(r) => r.map(|r| r.into_inner()),
            Err(_) => panic!("CRI {what} did not answer within {TIMEOUT:?}"),
        }
    }

    /// Whether the CRI plugin answers `Version` (containerd is up).
    pub fn ready(&self) -> bool {
        let mut c = self.rs.clone();
        let f = c.version(VersionRequest::default());
        matches!(
            self.rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(5), f).await
            }),
            Ok(Ok(_))
        )
    }

    pub fn version(&self) -> VersionResponse {
        let mut c = self.rs.clone();
        self.call(
            "Version",
            c.version(VersionRequest {
                version: "v1".into(),
            }),
        )
        .unwrap()
    }

    pub fn pull(&self, image: &str) -> Res<String> {
        let mut c = self.is.clone();
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.call("PullImage", c.pull_image(req))
            .map(|r| r.image_ref)
    }

    pub fn run_pod(&self, config: &PodSandboxConfig, handler: &str) -> Res<String> {
        let mut c = self.rs.clone();
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        self.call("RunPodSandbox", c.run_pod_sandbox(req))
            .map(|r| r.pod_sandbox_id)
    }

    pub fn pod_status(&self, id: &str) -> PodSandboxStatusResponse {
        let mut c = self.rs.clone();
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        self.call("PodSandboxStatus", c.pod_sandbox_status(req))
            .unwrap()
    }

    pub fn stop_pod(&self, id: &str) -> Res<()> {
        let mut c = self.rs.clone();
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call("StopPodSandbox", c.stop_pod_sandbox(req))
            .map(drop)
    }

    pub fn remove_pod(&self, id: &str) -> Res<()> {
        let mut c = self.rs.clone();
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call("RemovePodSandbox", c.remove_pod_sandbox(req))
            .map(drop)
    }

    pub fn list_pods(&self, filter: PodSandboxFilter) -> Vec<PodSandbox> {
        let mut c = self.rs.clone();
        let req = ListPodSandboxRequest {
            filter: Some(filter),
        };
        self.call("ListPodSandbox", c.list_pod_sandbox(req))
            .unwrap()
            .items
    }

    pub fn create(
        &self,
        pod: &str,
        config: &ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> Res<String> {
        let mut c = self.rs.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config.clone()),
            sandbox_config: Some(pod_config.clone()),
        };
        self.call("CreateContainer", c.create_container(req))
            .map(|r| r.container_id)
    }

    pub fn start(&self, id: &str) -> Res<()> {
        let mut c = self.rs.clone();
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        self.call("StartContainer", c.start_container(req))
            .map(drop)
    }

    pub fn status(&self, id: &str) -> ContainerStatus {
        let mut c = self.rs.clone();
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        self.call("ContainerStatus", c.container_status(req))
            .unwrap()
            .status
            .unwrap()
    }

    pub fn stop(&self, id: &str, timeout: i64) -> Res<()> {
        let mut c = self.rs.clone();
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout,
        };
        self.call("StopContainer", c.stop_container(req)).map(drop)
    }

    pub fn remove(&self, id: &str) -> Res<()> {
        let mut c = self.rs.clone();
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.call("RemoveContainer", c.remove_container(req))
            .map(drop)
    }

    pub fn list(&self, filter: ContainerFilter) -> Vec<Container> {
        let mut c = self.rs.clone();
        let req = ListContainersRequest {
            filter: Some(filter),
        };
        self.call("ListContainers", c.list_containers(req))
            .unwrap()
            .containers
    }

    /// ExecSync: (exit code, stdout, stderr).
    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        let mut c = self.rs.clone();
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
        };
        let r = self
            .call("ExecSync", c.exec_sync(req))
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?} in {id}: {e}"));
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    /// `sh -c script` through ExecSync; panics unless it exits 0. Returns stdout.
    pub fn sh(&self, id: &str, script: &str) -> String {
        let (code, out, err) = self.exec_sync(id, &["sh", "-c", script]);
        assert_eq!(
            code, 0,
            "`{script}` in {id} exited {code}\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Exec: the streaming server's URL for `cmd`.
    pub fn exec_url(&self, id: &str, cmd: &[&str], stdin: bool) -> String {
        let mut c = self.rs.clone();
        let req = ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin,
            stdout: true,
            stderr: true,
        };
        self.call("Exec", c.exec(req)).unwrap().url
    }

    pub fn update(&self, id: &str, res: LinuxContainerResources) -> Res<()> {
        let mut c = self.rs.clone();
        let req = UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(res),
            ..Default::default()
        };
        self.call(
            "UpdateContainerResources",
            c.update_container_resources(req),
        )
        .map(drop)
    }

    pub fn stats(&self, id: &str) -> ContainerStats {
        let mut c = self.rs.clone();
        let req = ContainerStatsRequest {
            container_id: id.into(),
        };
        self.call("ContainerStats", c.container_stats(req))
            .unwrap()
            .stats
            .unwrap()
    }

    pub fn reopen_log(&self, id: &str) -> Res<()> {
        let mut c = self.rs.clone();
        let req = ReopenContainerLogRequest {
            container_id: id.into(),
        };
        self.call("ReopenContainerLog", c.reopen_container_log(req))
            .map(drop)
    }

    /// Stop and remove every pod (the suite's last clean-up, as the kubelet's
    /// garbage collector would).
    pub fn remove_all_pods(&self) {
        for p in self.list_pods(PodSandboxFilter::default()) {
            let _ = self.stop_pod(&p.id);
            let _ = self.remove_pod(&p.id);
        }
    }
}

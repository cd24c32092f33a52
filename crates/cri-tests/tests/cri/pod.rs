//! A pod as a kubelet runs one: its sandbox config (cgroup parent, log directory,
//! namespace options), its containers, and a teardown that checks that
//! `StopPodSandbox` + `RemovePodSandbox` leave nothing behind.

use crate::cri::Cri;
use crate::env::{cgroups_below, mounts_under, remove_cgroup_tree, Env, TIMEOUT};
use k8s_cri::v1::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub const CONTAINER_RUNNING: i32 = ContainerState::ContainerRunning as i32;
pub const CONTAINER_EXITED: i32 = ContainerState::ContainerExited as i32;

/// NamespaceOption as the kubelet fills it: network and IPC per pod, PID per
/// container unless the pod sets `shareProcessNamespace` (then POD).
pub fn namespaces(share_pid: bool) -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        ipc: NamespaceMode::Pod as i32,
        pid: if share_pid {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Container
        } as i32,
        ..Default::default()
    }
}

pub struct Pod<'a> {
    pub cri: &'a Cri,
    pub env: &'a Env,
    pub handler: String,
    pub id: String,
    pub config: PodSandboxConfig,
    pub cgroup_parent: String,
    pub log_dir: PathBuf,
    containers: RefCell<Vec<String>>,
    removed: bool,
}

impl<'a> Pod<'a> {
    /// Run a pod named `name` under `handler`, after `tweak` has adjusted its config.
    pub fn run(
        cri: &'a Cri,
        env: &'a Env,
        handler: &str,
        name: &str,
        tweak: impl FnOnce(&mut PodSandboxConfig),
    ) -> Pod<'a> {
        let uid = format!(
            "{name}-{handler}-{}",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let cgroup_parent = env.cgroup_parent(&uid);
        let log_dir = env.dir.join("logs").join(&uid);
        std::fs::create_dir_all(&log_dir).unwrap();
        let mut config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "oxcri".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: log_dir.display().to_string(),
            labels: HashMap::from([
                ("oxcri/pod".to_string(), uid.clone()),
                ("oxcri/handler".to_string(), handler.to_string()),
            ]),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces(false)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        tweak(&mut config);
        let id = cri.run_pod(&config, handler).unwrap_or_else(|e| {
            remove_cgroup_tree(&cgroup_parent);
            panic!("RunPodSandbox ({handler}): {e}")
        });
        Pod {
            cri,
            env,
            handler: handler.into(),
            id,
            config,
            cgroup_parent,
            log_dir,
            containers: RefCell::new(vec![]),
            removed: false,
        }
    }

    pub fn uid(&self) -> &str {
        &self.config.metadata.as_ref().unwrap().uid
    }

    /// A busybox container config running `cmd`, logging to `<name>.log`, with the
    /// pod's namespace options (the kubelet passes them to both).
    pub fn container(&self, name: &str, cmd: &[&str]) -> ContainerConfig {
        let ns = self
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: self.env.busybox.clone(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            labels: HashMap::from([("oxcri/container".to_string(), name.to_string())]),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources::default()),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: ns,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// CreateContainer (the id is remembered for the leftover checks).
    pub fn create(&self, config: &ContainerConfig) -> crate::cri::Res<String> {
        let r = self.cri.create(&self.id, config, &self.config);
        if let Ok(id) = &r {
            self.containers.borrow_mut().push(id.clone());
        }
        r
    }

    /// Create and start `config`; panics on failure. Returns the container id.
    pub fn start(&self, config: &ContainerConfig) -> String {
        let id = self
            .create(config)
            .unwrap_or_else(|e| panic!("CreateContainer ({}): {e}", self.handler));
        self.cri
            .start(&id)
            .unwrap_or_else(|e| panic!("StartContainer ({}): {e}", self.handler));
        assert_eq!(self.cri.status(&id).state, CONTAINER_RUNNING);
        id
    }

    /// Wait until container `id` has exited; returns its status.
    pub fn wait_exited(&self, id: &str) -> ContainerStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let st = self.cri.status(id);
            if st.state == CONTAINER_EXITED {
                return st;
            }
            assert!(Instant::now() < deadline, "{id} did not exit: {st:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The sandbox's network namespace path (from the verbose status, as crictl
    /// inspectp shows it).
    pub fn netns(&self) -> Option<String> {
        let info = self.cri.pod_status(&self.id).info;
        let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
        v["runtimeSpec"]["linux"]["namespaces"]
            .as_array()?
            .iter()
            .find(|n| n["type"] == "network")
            .and_then(|n| n["path"].as_str())
            .map(String::from)
    }

    pub fn ip(&self) -> String {
        let st = self.cri.pod_status(&self.id).status.unwrap();
        st.network.unwrap().ip
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// StopPodSandbox + RemovePodSandbox as the kubelet does, then check that
    /// nothing of the pod is left: no cgroup below its parent, no mount of its
    /// sandbox or containers, no network namespace, no runtime state.
    pub fn remove_and_check(mut self) {
        let netns = self.netns();
        self.cri.stop_pod(&self.id).unwrap();
        self.cri.remove_pod(&self.id).unwrap();
        self.removed = true;
        assert!(
            self.cri
                .list_pods(PodSandboxFilter {
                    id: self.id.clone(),
                    ..Default::default()
                })
                .is_empty(),
            "pod {} still listed after RemovePodSandbox",
            self.id
        );
        self.assert_clean(netns.as_deref(), true);
        remove_cgroup_tree(&self.cgroup_parent);
    }

    /// As `remove_and_check`, except that cgroups below the pod's parent may be
    /// left if they hold no process (see scenarios::killed_runtime).
    pub fn remove_and_check_leaving_empty_cgroups(mut self, netns: Option<&str>) {
        self.cri.stop_pod(&self.id).unwrap();
        self.cri.remove_pod(&self.id).unwrap();
        self.removed = true;
        for cg in cgroups_below(&self.cgroup_parent) {
            let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
            let what: Vec<String> = procs
                .split_whitespace()
                .map(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!("{p} {:?}", String::from_utf8_lossy(&cmd).replace('\0', " "))
                })
                .collect();
            assert!(
                what.is_empty(),
                "{}: processes {what:?} left in {cg:?}",
                self.handler
            );
        }
        self.assert_clean(netns, false);
        remove_cgroup_tree(&self.cgroup_parent);
    }

    /// StopPodSandbox + RemovePodSandbox only (the benchmark's teardown, timed).
    pub fn remove_unchecked(mut self) {
        self.cri.stop_pod(&self.id).unwrap();
        self.cri.remove_pod(&self.id).unwrap();
        self.removed = true;
    }

    pub fn assert_clean(&self, netns: Option<&str>, cgroups_too: bool) {
        let mut ids = self.containers.borrow().clone();
        ids.push(self.id.clone());
        let cgroups = cgroups_below(&self.cgroup_parent);
        assert!(
            !cgroups_too || cgroups.is_empty(),
            "{}: cgroups left: {cgroups:?}",
            self.handler
        );
        let mounts: Vec<PathBuf> = mounts_under(Path::new("/"))
            .into_iter()
            .filter(|m| {
                ids.iter()
                    .any(|id| m.to_string_lossy().contains(id.as_str()))
            })
            .collect();
        assert!(
            mounts.is_empty(),
            "{}: mounts left: {mounts:?}",
            self.handler
        );
        if let Some(ns) = netns {
            assert!(!Path::new(ns).exists(), "{}: netns {ns} left", self.handler);
        }
        let state: Vec<PathBuf> = std::fs::read_dir(&self.env.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("rt-"))
            .flat_map(|e| ids.iter().map(move |id| e.path().join("k8s.io").join(id)))
            .filter(|p| p.exists())
            .collect();
        assert!(
            state.is_empty(),
            "{}: runtime state left: {state:?}",
            self.handler
        );
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        if !self.removed {
            // A failed scenario: clean up without checking.
            let _ = self.cri.stop_pod(&self.id);
            let _ = self.cri.remove_pod(&self.id);
            remove_cgroup_tree(&self.cgroup_parent);
        }
    }
}

/// Poll `f` until it returns Some (bounded by TIMEOUT), for asynchronous outcomes
/// (a log line written, a listener up).
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

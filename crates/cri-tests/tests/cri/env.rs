//! The suite's private world: a docker-registry on 127.0.0.1 holding our busybox and
//! pause images, a CNI bridge of our own, and one containerd with its CRI plugin,
//! every path under one temp dir. `Env::drop` takes it all down again.
//!
//! Patterns shared with crates/runtime/tests/clients.rs (private containerd, process
//! and mount clean-up by our temp dir) and crates/image/tests/common (docker-registry
//! on a free port, skopeo push): test crates cannot depend on each other's tests, so
//! the few small helpers are restated here.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The CRI runtime handlers the suite configures: each scenario runs under both.
pub const HANDLERS: [&str; 2] = ["oxcart", "runc"];

/// Generous: a debug runtime on a loaded 2-core CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub struct Env {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub registry: String,
    pub busybox: String,
    pub pause: String,
    /// `/oxcri-<pid>`: every pod's cgroup parent is below it (cgroupfs driver).
    pub cgroup_root: String,
    pub bridge: String,
    /// The pod subnet's first three octets; the bridge holds `.1`.
    pub subnet: String,
    pub runtime: PathBuf,
    containerd: Mutex<Option<Child>>,
    registry_child: Mutex<Option<Child>>,
    bridge_made: bool,
    /// Host directories libcni creates on first use (its result cache) that did
    /// not exist before the suite: removed at the end if empty again. (containerd
    /// also makes /run/netns, as `ip netns add` does: a shared bind mount of
    /// itself, which every netns user of the host relies on once it exists, so
    /// it stays.)
    made_host_dirs: Vec<PathBuf>,
}

/// See `Env::made_host_dirs`, deepest first.
const HOST_DIRS: [&str; 2] = ["/var/lib/cni/results", "/var/lib/cni"];

/// The runtime under test: `$OXCART_RUNTIME` when set (scripts/test.sh runs suites
/// against the static release build that way), else the debug build next to this
/// test executable (`target/debug/oxcart-runtime`; `cargo test --workspace` builds it,
/// `cargo build -p oxcart-runtime` does for a lone run of this crate).
fn runtime_under_test() -> PathBuf {
    if let Some(p) = std::env::var_os("OXCART_RUNTIME") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/cri-<hash> → target/debug/oxcart-runtime
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("oxcart-runtime");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p oxcart-runtime` first, or set OXCART_RUNTIME",
        p.display()
    );
    p
}

/// The reference runtime: `$OXCRI_RUNC` when set (bench/cri.sh's `--breakdown`
/// puts a timing wrapper there), else Debian's runc.
pub fn runc() -> PathBuf {
    match std::env::var_os("OXCRI_RUNC") {
        Some(p) => PathBuf::from(p),
        None => require("runc", "runc"),
    }
}

pub fn require(bin: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("`{bin}` is not installed: the CRI suite needs it (apt-get install {package})");
}

/// Run a set-up command; panic with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    pub fn setup() -> Env {
        for (bin, pkg) in [
            ("containerd", "containerd"),
            ("containerd-shim-runc-v2", "containerd"),
            ("runc", "runc"),
            ("docker-registry", "docker-registry"),
            ("skopeo", "skopeo"),
        ] {
            require(bin, pkg);
        }
        assert!(
            Path::new("/usr/lib/cni/bridge").exists(),
            "Debian's CNI plugins are missing: apt-get install containernetworking-plugins"
        );
        let pid = std::process::id();
        // Short and under /tmp: unix socket paths are limited to 108 bytes.
        let dir = PathBuf::from(format!("/tmp/oxcri-{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let subnet = pick_subnet();
        let mut env = Env {
            socket: dir.join("c.sock"),
            registry: String::new(),
            busybox: String::new(),
            pause: String::new(),
            cgroup_root: format!("/oxcri-{pid}"),
            bridge: format!("oxcri{}", pid % 100_000),
            subnet,
            runtime: runtime_under_test(),
            containerd: Mutex::new(None),
            registry_child: Mutex::new(None),
            bridge_made: false,
            made_host_dirs: HOST_DIRS
                .iter()
                .map(PathBuf::from)
                .filter(|d| !d.exists())
                .collect(),
            dir,
        };
        env.start_registry();
        env.push_images();
        env.make_bridge();
        env.write_cni_conf();
        env.write_wrappers();
        env.start_containerd();
        env
    }

    fn start_registry(&mut self) {
        let d = self.dir.join("registry");
        fs::create_dir_all(&d).unwrap();
        // A free port can be taken again before the registry binds it: retry.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let cfg = d.join("config.yml");
            fs::write(
                &cfg,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                    d.join("data").display()
                ),
            )
            .unwrap();
            let log = fs::File::create(d.join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            let up = loop {
                if child.try_wait().unwrap().is_some() {
                    break false;
                }
                if TcpStream::connect(&addr).is_ok() {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if up && child.try_wait().unwrap().is_none() {
                self.registry = addr;
                *self.registry_child.lock().unwrap() = Some(child);
                return;
            }
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(d.join("registry.log")).unwrap_or_default()
        );
    }

    /// The busybox image the containers run and our pause image, built here (no
    /// internet) as docker archives and pushed as OCI images with skopeo.
    fn push_images(&mut self) {
        let work = self.dir.join("images");
        fs::create_dir_all(&work).unwrap();
        let bb_root = work.join("busybox");
        busybox_rootfs(&bb_root);
        self.busybox = format!("{}/oxcart/busybox:1", self.registry);
        let env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
        let tar = docker_archive(&work, &bb_root, &self.busybox, &[], &["sh"], &env);
        self.push(&tar, &self.busybox);

        let pause_root = work.join("pause");
        fs::create_dir_all(&pause_root).unwrap();
        fs::copy(crate::pause::binary(), pause_root.join("pause")).unwrap();
        fs::set_permissions(pause_root.join("pause"), fs::Permissions::from_mode(0o755)).unwrap();
        self.pause = format!("{}/oxcart/pause:1", self.registry);
        let tar = docker_archive(&work, &pause_root, &self.pause, &["/pause"], &[], &[]);
        self.push(&tar, &self.pause);
        fs::remove_dir_all(&work).unwrap();
    }

    fn push(&self, tar: &Path, reference: &str) {
        run(Command::new("skopeo")
            // As OCI images (manifest and config media types), what image
            // builders push today; containerd takes either.
            .args(["copy", "--quiet", "--dest-tls-verify=false", "--format=oci"])
            .arg(format!("docker-archive:{}", tar.display()))
            .arg(format!("docker://{reference}")));
    }

    /// Our own bridge, made here with the subnet's `.1`: the bridge plugin then
    /// runs with `isGateway: false`, which leaves the host's `net.ipv4.ip_forward`
    /// alone (with `isGateway` the plugin turns forwarding on for the whole host),
    /// and the host still reaches the pods on the connected subnet.
    fn make_bridge(&mut self) {
        let br = &self.bridge;
        run(Command::new("ip").args(["link", "add", br, "type", "bridge"]));
        self.bridge_made = true;
        run(Command::new("ip").args(["addr", "add", &format!("{}.1/24", self.subnet), "dev", br]));
        run(Command::new("ip").args(["link", "set", br, "up"]));
    }

    /// The conflist a kubeadm node would carry: bridge with host-local IPAM, then
    /// portmap for hostPort (it does nothing for pods without port mappings, so it
    /// never touches the host's iptables here). containerd adds loopback itself
    /// (from bin_dir) for every pod.
    fn write_cni_conf(&self) {
        let conf = self.dir.join("cni");
        fs::create_dir_all(&conf).unwrap();
        let list = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "oxcri",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": false,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{
                            "subnet": format!("{}.0/24", self.subnet),
                            "gateway": format!("{}.1", self.subnet),
                        }]],
                        // Not /var/lib/cni: leases of this run stay in our dir.
                        "dataDir": self.dir.join("cni-ipam").display().to_string(),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        });
        fs::write(conf.join("10-oxcri.conflist"), list.to_string()).unwrap();
    }

    /// The runtimes the `killed_runtime` scenario uses: each wraps the real one and
    /// SIGKILLs it in the middle of an application container's `create` (after it
    /// has forked its init), as a node's OOM killer or a crash would.
    fn write_wrappers(&self) {
        for (name, real) in [
            ("oxcart", self.runtime.display().to_string()),
            ("runc", runc().display().to_string()),
        ] {
            let w = self.dir.join(format!("{name}-killed"));
            fs::write(&w, crate::scenarios::killing_wrapper(&real)).unwrap();
            fs::set_permissions(&w, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    /// The four runtime handlers, all runc-v2 shims: the runtime under test, runc,
    /// and their killing wrappers (scenarios::killed_runtime), each with its own root.
    fn runtimes_toml(&self) -> String {
        let d = self.dir.display().to_string();
        let mut runtimes = String::new();
        let runc = runc().display().to_string();
        let rt = self.runtime.display().to_string();
        for (name, bin) in [
            ("oxcart".to_string(), rt),
            ("runc".to_string(), runc),
            ("oxcart-killed".to_string(), format!("{d}/oxcart-killed")),
            ("runc-killed".to_string(), format!("{d}/runc-killed")),
        ] {
            runtimes.push_str(&format!(
                r#"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
  BinaryName = "{bin}"
  Root = "{d}/rt-{name}"
  SystemdCgroup = false
"#
            ));
        }
        runtimes
    }

    fn config_toml(&self, stream_port: u16) -> String {
        let d = self.dir.display().to_string();
        let runtimes = self.runtimes_toml();
        let reg = &self.registry;
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # These hosts lack CAP_SYS_RESOURCE: the kubelet's -998 for sandboxes cannot be
  # written, and containerd's documented answer is to clamp to our own score.
  restrict_oom_score_adj = true
  # Exec's streaming server: loopback only, on a port picked free (the URLs
  # Exec returns are built from the configured address and port, not the bound one).
  stream_server_address = "127.0.0.1"
  stream_server_port = "{stream_port}"
  # Neither is enabled on these hosts; said so that containerd never tries.
  enable_selinux = false
  disable_apparmor = true
  # containerd's default, stated: logs_and_reopen checks the split at it.
  max_container_log_line_size = 16384
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
  snapshotter = "overlayfs"
{runtimes}
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{d}/cni"
  max_conf_num = 1
# Our registry speaks plain HTTP on loopback, as a kubeadm lab's local one.
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{reg}"]
  endpoint = ["http://{reg}"]
"#,
            pause = self.pause,
        )
    }

    fn start_containerd(&self) {
        let log_path = self.dir.join("containerd.log");
        for _ in 0..5 {
            let port = free_port();
            fs::write(self.dir.join("config.toml"), self.config_toml(port)).unwrap();
            let log = fs::File::create(&log_path).unwrap();
            let child = Command::new("containerd")
                .arg("--config")
                .arg(self.dir.join("config.toml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            *self.containerd.lock().unwrap() = Some(child);
            let deadline = Instant::now() + TIMEOUT;
            loop {
                let exited = self
                    .containerd
                    .lock()
                    .unwrap()
                    .as_mut()
                    .unwrap()
                    .try_wait()
                    .unwrap();
                if exited.is_some() {
                    break;
                }
                if self.socket.exists() && crate::cri::Cri::connect(&self.socket).ready() {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "containerd did not come up: {}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            // Exited: most likely the streaming port was taken meanwhile; retry.
            eprintln!(
                "containerd exited, retrying: {}",
                fs::read_to_string(&log_path).unwrap_or_default()
            );
            *self.containerd.lock().unwrap() = None;
        }
        panic!("containerd failed to start 5 times");
    }

    /// The pod cgroup parent for a new pod, as the kubelet's cgroupfs driver names
    /// it (`…/pod<uid>`).
    pub fn cgroup_parent(&self, uid: &str) -> String {
        format!("{}/pod{uid}", self.cgroup_root)
    }

    /// The containerd log (for failure messages).
    pub fn containerd_log_tail(&self) -> String {
        let s = fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Whatever a failed scenario left: every pod, through the CRI as a kubelet
        // would garbage-collect them.
        if self.socket.exists() {
            let _ = std::panic::catch_unwind(|| {
                crate::cri::Cri::connect(&self.socket).remove_all_pods()
            });
        }
        if let Some(mut c) = self.containerd.lock().unwrap().take() {
            // SAFETY: kill(2) of the containerd we spawned, by its pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut r) = self.registry_child.lock().unwrap().take() {
            let _ = r.kill();
            let _ = r.wait();
        }
        // Shims and containers of ours (their argv names our dir), then our mounts.
        kill_processes_under(&self.dir);
        unmount_under(&self.dir);
        if self.bridge_made {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .stdin(Stdio::null())
                .status();
        }
        remove_cgroup_tree(&self.cgroup_root);
        for d in &self.made_host_dirs {
            // Only if empty: another containerd may have started using it.
            let _ = fs::remove_dir(d);
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// A /24 in 10.0.0.0/8 that no host route covers or overlaps. Picked by our pid so
/// two runs on one host (two worktrees) do not share one.
fn pick_subnet() -> String {
    let routes = run(Command::new("ip").args(["-4", "route", "show", "table", "all"]));
    let taken = |s: &str| {
        routes.lines().any(|l| {
            let dst = l
                .split_whitespace()
                .find(|w| w.starts_with("10.") || *w == "default");
            match dst {
                Some("default") | None => false,
                Some(d) => overlaps(d, s),
            }
        })
    };
    let start = std::process::id() % 200;
    for i in 0..200 {
        let s = format!("10.{}.{}", 200 + (start + i) % 50, (start + i) % 250);
        if !taken(&s) {
            return s;
        }
    }
    panic!("no free 10.x.y.0/24 for the pod network: every one overlaps a host route");
}

/// Whether route destination `dst` (`a.b.c.d[/n]`) overlaps `<s>.0/24`.
fn overlaps(dst: &str, s: &str) -> bool {
    let parse = |ip: &str| -> Option<u32> {
        let o: Vec<u32> = ip
            .split('.')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        (o.len() == 4).then(|| (o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3])
    };
    let (ip, len) = match dst.split_once('/') {
        Some((ip, n)) => (ip, n.parse::<u32>().unwrap_or(32)),
        None => (dst, 32),
    };
    let (Some(a), Some(b)) = (parse(ip), parse(&format!("{s}.0"))) else {
        return false;
    };
    // Two prefixes overlap iff they agree on the shorter one's bits.
    let n = len.min(24);
    let mask = if n == 0 { 0 } else { u32::MAX << (32 - n) };
    a & mask == b & mask
}

/// A busybox rootfs (as crates/runtime/tests/common `rootfs()`), with a non-root
/// user for runAsUser.
fn busybox_rootfs(root: &Path) {
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is needed: apt-get install busybox-static");
    let list = run(Command::new("/bin/busybox").arg("--list"));
    for applet in list.lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1234:1234:user:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nuser:x:1234:\nnobody:x:65534:\n",
    )
    .unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
}

/// A docker archive (`docker save` layout, which skopeo reads) of one layer made
/// from `root`, with the given Entrypoint/Cmd/Env.
fn docker_archive(
    work: &Path,
    root: &Path,
    reference: &str,
    entrypoint: &[&str],
    cmd: &[&str],
    env: &[&str],
) -> PathBuf {
    let arch = work.join("archive");
    let _ = fs::remove_dir_all(&arch);
    fs::create_dir_all(&arch).unwrap();
    run(Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("--numeric-owner")
        .arg("-cf")
        .arg(arch.join("layer.tar"))
        .arg("."));
    let sum = run(Command::new("sha256sum").arg(arch.join("layer.tar")));
    let diff_id = sum.split_whitespace().next().unwrap().to_string();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": env},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    });
    fs::write(arch.join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [reference],
        "Layers": ["layer.tar"],
    }]);
    fs::write(arch.join("manifest.json"), manifest.to_string()).unwrap();
    let tar = work.join(format!(
        "{}.tar",
        root.file_name().unwrap().to_string_lossy()
    ));
    run(Command::new("tar")
        .arg("-C")
        .arg(&arch)
        .arg("-cf")
        .arg(&tar)
        .args(["manifest.json", "config.json", "layer.tar"]));
    fs::remove_dir_all(&arch).unwrap();
    tar
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

fn unmount_under(dir: &Path) {
    for m in mounts_under(dir) {
        let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; MNT_DETACH never blocks.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Kill the processes whose command line names our dir (containerd, its shims,
/// containers' runtimes): they were started by this suite, never by anyone else.
fn kill_processes_under(dir: &Path) {
    let needle = format!("{}/", dir.display()).into_bytes();
    let me = std::process::id();
    let Ok(rd) = fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(mut cmdline) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        // An argument that is the dir itself also counts.
        cmdline.push(b'/');
        let named = cmdline
            .windows(needle.len())
            .any(|w| w == needle.as_slice());
        if named {
            // SAFETY: plain kill(2) of a pid we started (its argv names our dir).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// Every cgroup hierarchy's root (v1 controllers and the hybrid unified mount).
pub fn cgroup_roots() -> Vec<PathBuf> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return vec!["/sys/fs/cgroup".into()];
    }
    fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// The cgroups below `cg` (a cgroup path) in any hierarchy, `cg` itself excluded.
pub fn cgroups_below(cg: &str) -> Vec<PathBuf> {
    let mut found = vec![];
    for root in cgroup_roots() {
        let top = root.join(cg.trim_start_matches('/'));
        let mut stack = vec![top.clone()];
        while let Some(d) = stack.pop() {
            if let Ok(rd) = fs::read_dir(&d) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p.clone());
                        found.push(p);
                    }
                }
            }
        }
    }
    found
}

/// Remove the cgroup `cg` and everything below it, deepest first, in every
/// hierarchy (the kubelet owns the pod cgroup parents; here that is us).
pub fn remove_cgroup_tree(cg: &str) {
    let mut dirs = cgroups_below(cg);
    for root in cgroup_roots() {
        let top = root.join(cg.trim_start_matches('/'));
        if top.is_dir() {
            dirs.push(top);
        }
    }
    dirs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for d in dirs {
        // A cgroup whose last process just died can be EBUSY for a moment.
        for _ in 0..100 {
            if fs::remove_dir(&d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

//! testcontainers' reaper in the API tests. Ryuk's image (`testcontainers/ryuk`) is on
//! Docker Hub, which these machines cannot reach, so the tests build their own:
//! `crates/reaper` (`oxcart-test-reaper`, Ryuk's protocol and behaviour) linked
//! statically, on the busybox base layer, pushed to the shared test registry as
//! `test/reaper:latest` with Ryuk's image label. testcontainers-python takes it from
//! `RYUK_CONTAINER_IMAGE`.

use super::*;
use crate::engine::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin};
use std::sync::OnceLock;

/// The image label Ryuk's image carries; a reaper skips containers that have it.
pub const RYUK_LABEL: &str = "org.testcontainers.ryuk";
/// testcontainers' session label (testcontainers-python's `LABEL_SESSION_ID`).
pub const SESSION_LABEL: &str = "org.testcontainers.session-id";

/// The host's target triple, from the `rustc` beside the `cargo` that built us.
fn host_triple() -> String {
    let cargo = Path::new(env!("CARGO"));
    let rustc = cargo.with_file_name("rustc");
    let rustc = if rustc.exists() {
        rustc
    } else {
        PathBuf::from("rustc")
    };
    let o = Command::new(rustc).arg("-vV").output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(String::from))
        .expect("rustc -vV names the host triple")
}

/// Whether an ELF executable asks for a program interpreter (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert!(elf.starts_with(b"\x7fELF\x02\x01"), "a little-endian ELF64");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let p = phoff + i * phentsize;
        u32::from_le_bytes(elf[p..p + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// `oxcart-test-reaper` built static (glibc's crt-static, as scripts/build-runtime.sh
/// builds the runtime) so it runs in a busybox image; built once per test binary. An
/// explicit `--target` keeps the flag away from build scripts, which must stay dynamic.
pub fn reaper_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let triple = host_triple();
        let debug_dir = PathBuf::from(env!("CARGO_BIN_EXE_oxcart"))
            .parent()
            .unwrap()
            .to_path_buf();
        let profile = debug_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut c = Command::new(env!("CARGO"));
        c.args([
            "build",
            "-q",
            "-p",
            "oxcart-test-reaper",
            "--target",
            &triple,
        ])
        .arg("--config")
        .arg(format!(
            "target.{triple}.rustflags = [\"-C\", \"target-feature=+crt-static\"]"
        ));
        if profile == "release" {
            c.arg("--release");
        }
        let st = c.status().unwrap();
        assert!(st.success(), "building oxcart-test-reaper (static)");
        let bin = debug_dir
            .parent()
            .unwrap()
            .join(&triple)
            .join(&profile)
            .join("oxcart-test-reaper");
        let elf = std::fs::read(&bin).unwrap();
        assert!(
            !has_interpreter(&elf),
            "{} is dynamically linked (is RUSTFLAGS set? it overrides crt-static)",
            bin.display()
        );
        bin
    })
}

/// The reaper image's `RYUK_CONNECTION_TIMEOUT`.
pub const CONNECTION_SECS: u64 = 10;

/// `<registry>/test/reaper:latest`: busybox, `/bin/oxcart-test-reaper` as its command,
/// labelled as Ryuk's image is. Built and pushed once per test binary.
pub fn reaper_image() -> &'static str {
    static IMG: OnceLock<String> = OnceLock::new();
    IMG.get_or_init(|| {
        let reg = &images().reg;
        let bin = std::fs::read(reaper_bin()).unwrap();
        let layer = tar_of(&[E::File("bin/oxcart-test-reaper", bin, 0o755, 0, 0)]);
        let mut layout = Layout::new();
        let img = layout.image_with(
            &[(base_layer(), Comp::Gzip), (layer, Comp::Gzip)],
            "amd64",
            serde_json::json!({
                // Ryuk's default is 60s; a reaper nobody connected to (a session that
                // failed after starting it) is gone sooner, and the tests wait less.
                "Env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    format!("RYUK_CONNECTION_TIMEOUT={CONNECTION_SECS}s"),
                ],
                "Cmd": ["/bin/oxcart-test-reaper"],
                "Labels": {RYUK_LABEL: "true"},
            }),
        );
        layout.tag_manifest(&img, "latest");
        reg.push(layout.path(), "latest", "test/reaper", false);
        format!("{}/test/reaper:latest", reg.addr)
    })
}

/// A testcontainers-python session that leaves what a crashed test run leaves: a
/// container (mapped port, log wait) on a session network with a session volume
/// mounted, none of them cleaned up; then it holds Ryuk's connection until stdin
/// closes or it is killed.
pub const RYUK_SESSION_SCRIPT: &str = r#"
import sys, urllib.request
import docker
from testcontainers.core.container import DockerContainer
from testcontainers.core.docker_client import DockerClient
from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID
from testcontainers.core.network import Network
from testcontainers.core.waiting_utils import wait_for_logs
img = sys.argv[1]
# A subnet of its own: networks of the tests beside it (other engine roots) take the
# default allocator's first free /16 too.
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.231.8.0/24")])
net = Network(docker_network_kw={"ipam": ipam}).create()
vol = DockerClient().client.volumes.create(labels={LABEL_SESSION_ID: SESSION_ID})
c = (DockerContainer(img)
     .with_command(["sh", "-c", "echo server-ready; exec busybox httpd -f -p 8080 -h /data"])
     .with_exposed_ports(8080)
     .with_network(net)
     .with_volume_mapping(vol.name, "/vol", "rw"))
c.start()
wait_for_logs(c, "server-ready", timeout=30)
host = c.get_container_host_ip()
port = c.get_exposed_port(8080)
body = urllib.request.urlopen(f"http://{host}:{port}/hello.txt", timeout=10).read().decode()
print("SESSION", SESSION_ID)
print("CONTAINER", c.get_wrapped_container().id)
print("NETWORK", net.name)
print("VOLUME", vol.name)
print("BODY", body.strip())
print("READY", flush=True)
sys.stdin.read()
"#;

/// The reconnection timeout testcontainers passes on to the reaper (its
/// `RYUK_RECONNECTION_TIMEOUT`; testcontainers' default is 10s).
pub const RECONNECTION_SECS: u64 = 2;

/// `python` (a command running testcontainers-python, with the engine's
/// `DOCKER_HOST` already set) set up for Ryuk: enabled, our reaper image, a short
/// reconnection timeout.
pub fn with_ryuk(python: &mut Command, home: &Path) {
    python
        .env_remove("TESTCONTAINERS_RYUK_DISABLED")
        .env("RYUK_CONTAINER_IMAGE", reaper_image())
        .env("RYUK_RECONNECTION_TIMEOUT", format!("{RECONNECTION_SECS}s"))
        .env("HOME", home);
}

/// A running session of `RYUK_SESSION_SCRIPT`: what it printed, and the process.
pub struct Session {
    pub child: Child,
    _stdin: ChildStdin,
    stderr: PathBuf,
    pub id: String,
    pub container: String,
    pub network: String,
    pub volume: String,
    pub body: String,
}

impl Session {
    /// Starts `python` (set up by `with_ryuk`) on the script and `img`; returns once
    /// the session reported READY.
    pub fn start(mut python: Command, img: &str, scratch: &Path) -> Session {
        let stderr = scratch.join("session.stderr");
        python
            .args(["-c", RYUK_SESSION_SCRIPT, img])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut child = python.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut got = std::collections::BTreeMap::new();
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!(
                    "the session ended before READY: {got:?}\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            let l = line.trim_end();
            if l == "READY" {
                break;
            }
            if let Some((k, v)) = l.split_once(' ') {
                got.insert(k.to_string(), v.to_string());
            }
        }
        let mut take = |k: &str| got.remove(k).unwrap_or_default();
        Session {
            id: take("SESSION"),
            container: take("CONTAINER"),
            network: take("NETWORK"),
            volume: take("VOLUME"),
            body: take("BODY"),
            child,
            _stdin: stdin,
            stderr,
        }
    }

    /// What the session wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGKILL, as a crashed test run: no atexit handler runs, the kernel closes its
    /// connection to the reaper.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `path` with docker's label filter for `label`, in the map shape.
pub fn label_filtered(path: &str, label: &str) -> String {
    let f = serde_json::json!({"label": {label: true}}).to_string();
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}filters={}", url_escape(&f))
}

pub fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

/// The ids (`Id`, or `Name` for volumes) an API list answered.
pub fn listed(api: &Api, path: &str) -> Vec<String> {
    let (code, v) = api.json("GET", path, "");
    assert_eq!(code, 200, "{path}: {v}");
    let list = if path.starts_with("/volumes") {
        v["Volumes"].clone()
    } else {
        v
    };
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["Id"].as_str().or(x["Name"].as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What the session's resources look like through the API: its containers (running
/// ones), networks and volumes by the session label, and the reaper container by name.
pub struct Seen {
    pub containers: Vec<String>,
    pub running: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub reaper: Vec<String>,
}

pub fn seen(api: &Api, session: &str) -> Seen {
    let label = format!("{SESSION_LABEL}={session}");
    let reaper_name = serde_json::json!({"name": [format!("testcontainers-ryuk-{session}")]});
    Seen {
        containers: listed(api, &label_filtered("/containers/json?all=1", &label)),
        running: listed(api, &label_filtered("/containers/json", &label)),
        networks: listed(api, &label_filtered("/networks", &label)),
        volumes: listed(api, &label_filtered("/volumes", &label)),
        reaper: listed(
            api,
            &format!(
                "/containers/json?all=1&filters={}",
                url_escape(&reaper_name.to_string())
            ),
        ),
    }
}

/// The scenario Ryuk exists for, against `api`: testcontainers-python (`python`,
/// with the engine's `DOCKER_HOST`) starts our reaper and a session that leaves its
/// container, network and volume behind. While the session holds the reaper's
/// connection — also past the reconnection timeout — they live; once it is killed,
/// the reaper removes them all and exits, and its container (`auto_remove`) goes.
/// The reaper's log (followed with the docker CLI until it exited), for what the
/// engines differ in: how the killed session's connection ends.
pub fn ryuk_reaps_a_killed_session(api: &Api, mut python: Command, img: &str) -> String {
    let scratch = tempfile::tempdir().unwrap();
    with_ryuk(&mut python, scratch.path());
    let mut s = Session::start(python, img, scratch.path());
    assert_eq!(s.body, "hello from the image", "{}", s.stderr());
    let before = seen(api, &s.id);
    assert_eq!(before.containers, [s.container.clone()], "{}", s.stderr());
    assert_eq!(before.running, [s.container.clone()]);
    assert_eq!(before.networks.len(), 1, "the session network");
    assert_eq!(before.volumes, [s.volume.clone()]);
    assert_eq!(before.reaper.len(), 1, "the reaper container");
    let reaper = before.reaper[0].clone();
    let (code, v) = api.json("GET", &format!("/containers/{reaper}/json"), "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["State"]["Running"], true, "{v}");
    assert_eq!(
        v["Config"]["Labels"][RYUK_LABEL], "true",
        "the image's label"
    );
    assert_eq!(v["HostConfig"]["AutoRemove"], true, "{v}");
    // The reaper's log, followed until it exits.
    let logs = api
        .docker_cmd(OLD, &["logs", "-f", &reaper])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Connected, the session outlives the reconnection timeout.
    std::thread::sleep(std::time::Duration::from_secs(2 * RECONNECTION_SECS + 1));
    let held = seen(api, &s.id);
    assert_eq!(
        (held.running, held.networks, held.volumes, held.reaper),
        (
            before.running,
            before.networks,
            before.volumes,
            vec![reaper.clone()]
        ),
        "nothing is reaped while the session is connected"
    );
    s.kill();
    let gone = || {
        let n = seen(api, &s.id);
        n.containers.is_empty()
            && n.networks.is_empty()
            && n.volumes.is_empty()
            && n.reaper.is_empty()
    };
    assert!(eventually(60, gone), "left behind: {:?}", {
        let n = seen(api, &s.id);
        (n.containers, n.networks, n.volumes, n.reaper)
    });
    let o = logs.wait_with_output().unwrap();
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert_reaper_log(&log, &s.id);
    log
}

/// The reaper's log of `ryuk_reaps_a_killed_session`: Ryuk's lines, the session's
/// filter, and one container, network and volume removed.
pub fn assert_reaper_log(log: &str, session: &str) {
    for want in [
        "level=INFO msg=Started address=",
        "msg=\"client connected\"",
        "msg=\"client disconnected\"",
        "msg=\"prune check\" clients=0",
        "msg=removed containers=1 networks=1 volumes=1 images=0",
        "msg=done",
    ] {
        assert!(log.contains(want), "{want:?} in:\n{log}");
    }
    // slog quotes a value holding '='.
    let f = format!("msg=\"adding filter\" type=label values=\"[{SESSION_LABEL}={session}]\"");
    assert!(log.contains(&f), "{f:?} in:\n{log}");
}

/// `<registry>/<repo>:latest`: the busybox layer with image `labels` (an image a
/// reaper's filter selects). Pushed once per repo and test binary.
pub fn labelled_image(repo: &'static str, labels: serde_json::Value) -> String {
    static DONE: std::sync::Mutex<Vec<(&'static str, String)>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap();
    if let Some((_, img)) = done.iter().find(|(r, _)| *r == repo) {
        return img.clone();
    }
    let reg = &images().reg;
    let mut cfg = image_config();
    cfg["Labels"] = labels;
    let mut layout = Layout::new();
    let img = layout.image_with(&[(base_layer(), Comp::Gzip)], "amd64", cfg);
    layout.tag_manifest(&img, "latest");
    reg.push(layout.path(), "latest", repo, false);
    let name = format!("{}/{repo}:latest", reg.addr);
    done.push((repo, name.clone()));
    name
}

/// A client of the reaper published on 127.0.0.1:`port`: connects (again, while the
/// reaper is still starting behind the port proxy) until `line` is acknowledged.
/// The open connection.
pub fn reaper_client(port: u16, line: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut ack = [0u8; 4];
            if s.write_all(format!("{line}\n").as_bytes()).is_ok() && s.read_exact(&mut ack).is_ok()
            {
                assert_eq!(&ack, b"ACK\n");
                return s;
            }
            last = "no ACK".into();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the reaper on port {port} never acknowledged {line:?}: {last}");
}

//! Harness for the engine's end-to-end tests: a busybox image built from
//! `busybox-static`, pushed to a real `docker-registry` on 127.0.0.1, and an `oxcart`
//! with private roots. Every test's containers, mounts and runtime state are removed
//! and checked gone when its `Ox` drops.
#![allow(dead_code, clippy::unwrap_used)]

pub use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Applets the test image links to busybox.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "id", "pwd", "env", "ls", "stty", "true", "false", "head", "yes",
    "dd", "touch", "rm", "mkdir", "ps", "hostname", "grep", "wc", "tr", "seq", "printf", "kill",
    "test", "stat", "readlink", "mount", "tail", "trap", "wget", "nc", "whoami", "ln",
];

/// The image's config: what the engine must apply (docker's semantics).
pub fn image_config() -> serde_json::Value {
    serde_json::json!({
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "IMGVAR=from-image"],
        "Cmd": ["sh", "-c", "echo default-cmd"],
        "WorkingDir": "/data",
        "Labels": {"org.test.image": "yes"},
    })
}

/// The busybox base layer: the binary, its applets, users and groups, a few dirs.
pub fn base_layer() -> Vec<u8> {
    let mut e = vec![
        E::Dir("bin/", 0o755, 0, 0),
        E::File("bin/busybox", busybox(), 0o755, 0, 0),
        E::Dir("etc/", 0o755, 0, 0),
        E::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n".to_vec(),
            0o644,
            0,
            0,
        ),
        E::File(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nextra:x:2000:app\n".to_vec(),
            0o644,
            0,
            0,
        ),
        E::Dir("root/", 0o700, 0, 0),
        E::Dir("home/", 0o755, 0, 0),
        E::Dir("home/app/", 0o755, 1000, 1000),
        E::Dir("tmp/", 0o1777, 0, 0),
        E::Dir("data/", 0o755, 0, 0),
        E::File(
            "data/hello.txt",
            b"hello from the image\n".to_vec(),
            0o644,
            0,
            0,
        ),
        E::File(
            "data/notexec",
            b"#!/bin/sh\necho no\n".to_vec(),
            0o644,
            0,
            0,
        ),
    ];
    for a in APPLETS {
        let name: &'static str = Box::leak(format!("bin/{a}").into_boxed_str());
        e.push(E::Symlink(name, "busybox"));
    }
    tar_of(&e)
}

/// A registry with `test/bb:latest` on it, shared by the tests of one binary.
pub struct Images {
    pub reg: Registry,
    _layout: Layout,
    pub image: String,
}

pub fn images() -> &'static Images {
    static IMGS: OnceLock<Images> = OnceLock::new();
    let imgs = IMGS.get_or_init(|| {
        let reg = Registry::start(Auth::None);
        let mut layout = Layout::new();
        let img = layout.image_with(&[(base_layer(), Comp::Gzip)], "amd64", image_config());
        layout.tag_manifest(&img, "latest");
        reg.push(layout.path(), "latest", "test/bb", false);
        let image = format!("{}/test/bb:latest", reg.addr);
        Images {
            reg,
            _layout: layout,
            image,
        }
    });
    // A static is never dropped: whoever first asks for the images registers the exit
    // handler that stops their registry (a filtered run may never call `pulled`).
    static ATEXIT: std::sync::Once = std::sync::Once::new();
    // SAFETY: registering a plain extern "C" function.
    ATEXIT.call_once(|| unsafe {
        libc::atexit(stop_registry);
    });
    imgs
}

/// The `oxcart` under test: this build's, or `$OXCART_BIN` (scripts/test.sh runs the
/// `run` suite again on the static release build, scripts/build-release.sh).
pub fn oxcart_bin() -> PathBuf {
    std::env::var_os("OXCART_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_oxcart")))
}

/// The target directory of the running test binary (…/target/debug).
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxcart"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The runtime and monitor beside `oxcart`, built once if this run did not build them
/// (`cargo test -p oxcart` builds only this package's binary).
pub fn helper_bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = target_dir();
        let rt = std::env::var_os("OXCART_RUNTIME")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("oxcart-runtime"));
        let mon = std::env::var_os("OXCART_MONITOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("oxcart-monitor"));
        let profile = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut c = Command::new(env!("CARGO"));
        c.args([
            "build",
            "-q",
            "-p",
            "oxcart-monitor",
            "-p",
            "oxcart-runtime",
        ]);
        if profile == "release" {
            c.arg("--release");
        }
        let st = c.status().unwrap();
        assert!(st.success(), "building oxcart-monitor and oxcart-runtime");
        assert!(
            rt.is_file() && mon.is_file(),
            "{} {}",
            rt.display(),
            mon.display()
        );
        (rt, mon)
    })
}

pub struct Ox {
    pub dir: tempfile::TempDir,
    pub runtime: Option<String>,
}

impl Ox {
    pub fn new() -> Ox {
        helper_bins();
        Ox {
            dir: tempfile::tempdir().unwrap(),
            runtime: None,
        }
    }

    /// An engine whose containers default to another runtime (`runc`).
    pub fn with_runtime(rt: &str) -> Ox {
        let mut o = Ox::new();
        let cfg = o.dir.path().join("oxcart.toml");
        std::fs::write(&cfg, format!("[engine]\nruntime = \"{rt}\"\n")).unwrap();
        o.runtime = Some(rt.to_string());
        o
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn cmd(&self) -> Command {
        let (rt, mon) = helper_bins();
        let mut c = Command::new(oxcart_bin());
        c.arg("--root").arg(self.root());
        c.arg("--runroot").arg(self.runroot());
        c.arg("--insecure-registry").arg(&images().reg.addr);
        let cfg = self.dir.path().join("oxcart.toml");
        if cfg.exists() {
            c.env("OXCART_CONFIG", &cfg);
        } else {
            c.env("OXCART_CONFIG", self.dir.path().join("none.toml"));
            std::fs::write(self.dir.path().join("none.toml"), "").unwrap();
        }
        c.env("OXCART_RUNTIME", rt);
        c.env("OXCART_MONITOR", mon);
        c.env("HOME", self.dir.path());
        c.env("OXCART_AUTH_FILE", self.dir.path().join("auth.json"));
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "oxcart {args:?} failed ({:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Expect a failure with `code`; its stderr.
    pub fn fail(&self, code: i32, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "oxcart {args:?}: want exit {code}:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    pub fn image(&self) -> &'static str {
        &images().image
    }

    /// Pull the test image once into this engine's store.
    pub fn pulled(self) -> Ox {
        clean_images_at_exit();
        self.ok(&["pull", "-q", self.image()]);
        self
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    pub fn ctr_dir(&self, id: &str) -> PathBuf {
        self.root().join("containers").join(id)
    }

    /// Mounts under this engine's roots still in the host's table.
    pub fn leftover_mounts(&self) -> Vec<String> {
        let me = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&me)))
            .map(String::from)
            .collect()
    }

    /// Assert nothing of any container is left: rows, directories, mounts, runtime
    /// state, cgroups.
    pub fn assert_clean(&self) {
        assert_eq!(self.ok(&["ps", "-aq"]), "", "containers left");
        let cdir = self.root().join("containers");
        let left: Vec<_> = std::fs::read_dir(&cdir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "container directories left: {left:?}");
        let trash = self.wait_trash_empty();
        assert!(
            trash.is_empty(),
            "removed containers' directories not deleted: {trash:?}"
        );
        let cgroups = self.leftover_cgroups();
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
        assert!(
            self.leftover_mounts().is_empty(),
            "{:?}",
            self.leftover_mounts()
        );
        let rt = self.runroot().join("runtime");
        let states: Vec<_> = walk_dirs(&rt);
        assert!(states.is_empty(), "runtime state left: {states:?}");
        // No DNS resolver of this root (it exits with the last container on a user
        // network), nor its socket, pid file or records.
        let dns = self.runroot().join("dns");
        assert!(
            !dns.exists(),
            "resolver state left: {:?}",
            std::fs::read_dir(&dns).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        // No process of this root at all: monitors (their --ctr-dir is under the
        // root), resolvers, port proxies, trash removers. A monitor handing its
        // cleanup over waits for its client's hang-up, so this is given a moment.
        let left = wait_for(std::time::Duration::from_secs(10), || self.processes());
        assert!(left.is_empty(), "processes of this root left: {left:?}");
    }

    /// Every process whose command line names this root or run root, but for the
    /// test's own children (an API service it holds, a command it still waits for).
    pub fn processes(&self) -> Vec<String> {
        let me = std::process::id().to_string();
        let mine = [
            self.root().as_os_str().as_encoded_bytes().to_vec(),
            self.runroot().as_os_str().as_encoded_bytes().to_vec(),
        ];
        let has = |c: &[u8], w: &[u8]| c.windows(w.len()).any(|x| x == w);
        let mut out = Vec::new();
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let c = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if mine.iter().any(|m| has(&c, m)) {
                let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
                // Field 4, after the `(comm)` that may hold spaces (proc(5)).
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1));
                if ppid == Some(me.as_str()) {
                    continue;
                }
                out.push(format!(
                    "{} {}",
                    stat.trim(),
                    String::from_utf8_lossy(&c).replace('\0', " ")
                ));
            }
        }
        out
    }
}

impl Ox {
    /// The cgroup directories (`<hierarchy>/oxcart/<id>`, every v1 hierarchy and the
    /// unified one) of any container this root ever created, from its events journal.
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        let log =
            std::fs::read_to_string(self.root().join("events/events.log")).unwrap_or_default();
        let ids: std::collections::BTreeSet<String> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["status"] == "create")
            .filter_map(|v| v["id"].as_str().map(String::from))
            .collect();
        let mut left = Vec::new();
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            for id in &ids {
                let p = h.path().join("oxcart").join(id);
                if p.exists() {
                    left.push(p);
                }
            }
        }
        left
    }

    /// What is still in the trash after the removers had 10 s (crates/engine/src/trash.rs:
    /// a removed container's directory is deleted by a detached `oxcart-monitor`).
    pub fn wait_trash_empty(&self) -> Vec<std::ffi::OsString> {
        let trash = self.root().join("trash");
        wait_for(std::time::Duration::from_secs(10), || {
            std::fs::read_dir(&trash)
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default()
        })
    }
}

/// Polls `list` until it is empty or `limit` has passed; what it last listed.
fn wait_for<T>(limit: std::time::Duration, list: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let l = list();
        if l.is_empty() || std::time::Instant::now() >= deadline {
            return l;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runtime state directories (one per container) under a runtime root.
fn walk_dirs(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for rt in std::fs::read_dir(p).into_iter().flatten().flatten() {
        for c in std::fs::read_dir(rt.path()).into_iter().flatten().flatten() {
            if c.path().is_dir() && c.file_name().len() == 64 {
                out.push(c.path());
            }
        }
    }
    out
}

impl Drop for Ox {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        // Networks a test made (their bridges and rules went with their containers).
        let _ = self.run(&["network", "prune", "-f"]);
        // The removers must be done before the root goes.
        let _ = self.wait_trash_empty();
        for m in self.leftover_mounts().iter().rev() {
            if let Some(p) = m.split(' ').nth(4) {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
    }
}

/// Run `args` under a real pty (util-linux `script`), feeding `input`; output and code.
pub fn in_pty(ox: &Ox, args: &[&str], input: &str) -> (String, i32) {
    let argv: Vec<String> = std::iter::once(oxcart_bin().display().to_string())
        .chain(["--root".into(), ox.root().display().to_string()])
        .chain(["--runroot".into(), ox.runroot().display().to_string()])
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    let c = ox.cmd();
    let envs: Vec<(&std::ffi::OsStr, &std::ffi::OsStr)> =
        c.get_envs().filter_map(|(k, v)| Some((k, v?))).collect();
    argv_in_pty(&argv, &envs, input, 700)
}

/// `argv` under a real pty (util-linux `script`) with `envs` added, feeding `input` in
/// chunks separated by `\u{1}`, each after `pause_ms`; output and exit code.
pub fn argv_in_pty(
    argv: &[String],
    envs: &[(&std::ffi::OsStr, &std::ffi::OsStr)],
    input: &str,
    pause_ms: u64,
) -> (String, i32) {
    let line = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", &line, "/dev/null"])
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        for chunk in input.split('\u{1}') {
            std::thread::sleep(std::time::Duration::from_millis(pause_ms));
            si.write_all(chunk.as_bytes()).unwrap();
            si.flush().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The nftables table of this engine root (docs/networking.md: one per runroot).
pub fn nft_table(ox: &Ox) -> String {
    let h = ox
        .runroot()
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0x811c9dc5u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x01000193)
        });
    format!("oxcart_{h:08x}")
}

impl Ox {
    /// No container network state left: no namespace file, no veth or bridge of this
    /// root's networks, no nft table, no lease.
    pub fn assert_net_clean(&self) {
        let ns: Vec<_> = std::fs::read_dir(self.runroot().join("netns"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(ns.is_empty(), "netns files left: {ns:?}");
        let ids: Vec<String> = self
            .ok(&["network", "ls", "-q", "--no-trunc"])
            .lines()
            .map(String::from)
            .collect();
        for id in &ids {
            let v = self.inspect_network(id);
            assert_eq!(
                v["Containers"],
                serde_json::json!({}),
                "leases left on {id}"
            );
        }
        let t = Command::new("nft")
            .args(["list", "table", "ip", &nft_table(self)])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&t.stdout);
        // Published ports go with their container; a network's own rules go with its
        // bridge (`network prune` below).
        assert!(!t.contains("dnat to"), "port rules left: {t}");
        self.ok(&["network", "prune", "-f"]);
        let links = String::from_utf8(
            Command::new("ip")
                .args(["-o", "link"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        for id in &ids {
            let br = format!("ox-{}", &id[..12]);
            assert!(!links.contains(&format!(" {br}:")), "bridge {br} left");
        }
        let tables = String::from_utf8(
            Command::new("nft")
                .args(["list", "tables"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(
            !tables.contains(&nft_table(self)),
            "nft table left: {tables}"
        );
    }

    pub fn inspect_network(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["network", "inspect", name])).unwrap();
        v[0].clone()
    }

    /// A running container's address on its (only) network.
    pub fn ip_of(&self, name: &str) -> String {
        let v = self.inspect(name);
        let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
        nets.values().next().unwrap()["IPAddress"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

// ---- helpers for verbs.rs / podman_diff.rs / runsc.rs ----

impl Ox {
    /// `run --rm --network none FLAGS IMAGE sh -c SCRIPT`, which must succeed; stdout.
    pub fn sh(&self, flags: &[&str], script: &str) -> String {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&[self.image(), "sh", "-c", script]);
        self.ok(&a)
    }

    /// `run -d --network none FLAGS IMAGE ARGS...`; the full id.
    pub fn detached(&self, flags: &[&str], args: &[&str]) -> String {
        let mut a = vec!["run", "-d", "--network", "none"];
        a.extend_from_slice(flags);
        a.push(self.image());
        a.extend_from_slice(args);
        let id = self.ok(&a).trim().to_string();
        assert_eq!(id.len(), 64, "{id}");
        id
    }

    /// The whole events journal so far (`events --since 0 --until` a second from now),
    /// each event as `format` prints it.
    pub fn journal(&self, format: &str) -> String {
        let until = (unix_now() + 1).to_string();
        self.ok(&[
            "events", "--since", "0", "--until", &until, "--format", format,
        ])
    }

    /// `oxcart ARGS` with `input` on its stdin; the output.
    pub fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut c = self.cmd();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut si = child.stdin.take().unwrap();
        let input = input.to_vec();
        let w = std::thread::spawn(move || {
            let _ = si.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        w.join().unwrap();
        out
    }
}

/// Seconds since the epoch (for `events --until`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Poll `cond` every 50 ms for up to `secs`; whether it became true (never a timing
/// assertion: the bound only keeps a broken engine from hanging the suite).
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cond()
}

/// The member names of a tar stream, as `tar -t` lists them.
pub fn tar_names(data: &[u8]) -> Vec<String> {
    let mut c = Command::new("tar")
        .arg("-tf")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut si = c.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = si.write_all(&data);
        });
    }
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "not a tar stream");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect()
}

/// `images()` lives in a static, which Rust never drops: without an exit handler its
/// registry process and the two temporary directories outlive the test binary. Makes
/// sure the images (and so the handler, which kills the registry this process started
/// and removes them) exist.
pub fn clean_images_at_exit() {
    // `images()` registers the handler the first time it is called.
    images();
}

extern "C" fn stop_registry() {
    let me = std::process::id();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 2..]
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm != "docker-registry" || ppid != Some(me) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let config = cmdline
            .split(|b| *b == 0)
            .rfind(|a| !a.is_empty())
            .map(|a| PathBuf::from(String::from_utf8_lossy(a).into_owned()));
        // SAFETY: our own child, found by its parent pid; reaped right after.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        if let Some(dir) = config.as_deref().and_then(Path::parent) {
            if dir.starts_with(std::env::temp_dir()) {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    let _ = std::fs::remove_dir_all(images()._layout.path());
}

//! The `oxcart` image commands end to end, against a real docker-registry.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

struct Ox {
    root: tempfile::TempDir,
}

impl Ox {
    fn new() -> Ox {
        Ox {
            root: tempfile::tempdir().unwrap(),
        }
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_oxcart"));
        c.arg("--root").arg(self.root.path().join("store"));
        // Never read the invoking user's real credentials.
        c.env("HOME", self.root.path());
        c.env("OXCART_AUTH_FILE", self.root.path().join("auth.json"));
        c.env_remove("DOCKER_CONFIG");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "oxcart {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn fail(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "oxcart {args:?} should fail:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
    fn store(&self) -> std::path::PathBuf {
        self.root.path().join("store")
    }
    fn count(&self, sub: &str) -> usize {
        std::fs::read_dir(self.store().join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn two_images(reg: &Registry, repo: &str) -> (Layout, BuiltImage, BuiltImage) {
    let mut layout = Layout::new();
    let base = tar_of(&[
        E::Dir("bin/", 0o755, 0, 0),
        E::File("bin/busybox", busybox(), 0o755, 0, 0),
        E::Symlink("bin/sh", "busybox"),
    ]);
    let a = layout.image(
        &[
            (base.clone(), Comp::Gzip),
            (
                tar_of(&[E::File("a.txt", b"A".to_vec(), 0o644, 0, 0)]),
                Comp::Gzip,
            ),
        ],
        "amd64",
    );
    let b = layout.image(
        &[
            (base, Comp::Gzip),
            (
                tar_of(&[E::File("b.txt", b"B".to_vec(), 0o644, 0, 0)]),
                Comp::Zstd,
            ),
        ],
        "amd64",
    );
    layout.tag_manifest(&a, "a");
    layout.tag_manifest(&b, "b");
    reg.push(layout.path(), "a", repo, false);
    reg.push(layout.path(), "b", repo, false);
    (layout, a, b)
}

#[test]
fn pull_images_inspect_tag_rmi() {
    let reg = Registry::start(Auth::None);
    let (_l, a, b) = two_images(&reg, "cli/app");
    let ox = Ox::new();
    let ra = format!("{}/cli/app:a", reg.addr);
    let rb = format!("{}/cli/app:b", reg.addr);
    let out = ox.ok(&["pull", &ra]);
    assert!(
        out.contains("Pull complete") && out.contains(&format!("Image: {}", a.config_digest)),
        "{out}"
    );
    let out = ox.ok(&["pull", &rb]);
    assert!(
        out.contains(&format!("{}: Already exists", a.layer_digests[0].short())),
        "shared base layer reused:\n{out}"
    );
    assert_eq!(ox.ok(&["pull", "-q", &rb]).trim(), rb);
    assert_eq!(ox.count("layers"), 3);

    let json = ox.ok(&["images", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r["Tag"] == "a"
        && r["Repository"] == format!("{}/cli/app", reg.addr)
        && r["ID"] == a.config_digest.to_string()));
    let table = ox.ok(&["images"]);
    assert!(
        table.starts_with("REPOSITORY") && table.contains(a.config_digest.short()),
        "{table}"
    );

    let insp: serde_json::Value = serde_json::from_str(&ox.ok(&["inspect", &ra])).unwrap();
    assert_eq!(insp[0]["Id"], a.config_digest.to_string());
    assert_eq!(insp[0]["RootFS"]["Layers"][1], a.diff_ids[1].to_string());
    assert_eq!(insp[0]["Config"]["Cmd"][0], "/bin/sh");
    assert_eq!(
        insp[0]["RepoDigests"][0],
        format!("{}/cli/app@{}", reg.addr, a.manifest_digest)
    );
    // By ID prefix, too.
    let insp: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", &b.config_digest.hex()[..10]])).unwrap();
    assert_eq!(insp[0]["Id"], b.config_digest.to_string());
    assert!(ox
        .fail(&["inspect", "nosuch:image"])
        .contains("No such object: nosuch:image"));

    ox.ok(&["tag", &ra, "mine/app:v2"]);
    let insp: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "docker.io/mine/app:v2"])).unwrap();
    assert_eq!(insp[0]["Id"], a.config_digest.to_string());
    // Two tags: removing by ID needs --force; by name only untags.
    assert!(ox
        .fail(&["rmi", &a.config_digest.hex()[..12]])
        .contains("--force"));
    let out = ox.ok(&["rmi", "mine/app:v2"]);
    assert!(
        out.contains("Untagged: docker.io/mine/app:v2") && !out.contains("Deleted"),
        "{out}"
    );
    let out = ox.ok(&["rmi", &ra]);
    assert!(
        out.contains(&format!("Deleted: {}", a.config_digest)),
        "{out}"
    );
    assert_eq!(ox.count("layers"), 2, "the shared base stays for b");
    ox.ok(&["rmi", &rb]);
    assert_eq!(ox.count("layers"), 0);
    assert_eq!(ox.count("blobs/sha256"), 0, "every blob freed");
    assert_eq!(ox.ok(&["images", "-q"]), "");
    ox.ok(&["pull", "-q", &ra]);
    ox.ok(&["pull", "-q", &rb]);
    assert!(ox
        .ok(&["rmi", "--all"])
        .contains("Deleted 2 images; freed 3 layers"));
    assert_eq!(
        ox.count("layers") + ox.count("blobs/sha256") + ox.count("locks"),
        0
    );
}

#[test]
fn save_load_roundtrip_and_interop_with_skopeo() {
    let reg = Registry::start(Auth::None);
    let (_l, a, _b) = two_images(&reg, "cli/save");
    let ox = Ox::new();
    let ra = format!("{}/cli/save:a", reg.addr);
    ox.ok(&["pull", "-q", &ra]);
    let dir = tempfile::tempdir().unwrap();
    let docker_tar = dir.path().join("d.tar");
    let oci_tar = dir.path().join("o.tar");
    ox.ok(&["save", "-o", docker_tar.to_str().unwrap(), &ra]);
    ox.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci_tar.to_str().unwrap(),
        &ra,
    ]);
    // skopeo reads both.
    let s = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", docker_tar.display())));
    assert!(
        s.contains(&a.layer_digests[0].to_string()) || s.contains(&a.diff_ids[0].to_string()),
        "{s}"
    );
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}:a", oci_tar.display())));

    ox.ok(&["rmi", &ra]);
    for t in [&docker_tar, &oci_tar] {
        let out = ox.ok(&["load", "-i", t.to_str().unwrap()]);
        assert!(out.contains(&format!("Loaded image: {ra}")), "{out}");
        let insp: serde_json::Value = serde_json::from_str(&ox.ok(&["inspect", &ra])).unwrap();
        assert_eq!(insp[0]["Id"], a.config_digest.to_string());
        ox.ok(&["rmi", &ra]);
    }
    // An archive written by skopeo (docker-archive with uncompressed layers).
    let sk = dir.path().join("sk.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{ra}"))
        .arg(format!(
            "docker-archive:{}:example.com/from/skopeo:1",
            sk.display()
        )));
    let out = ox.ok(&["load", "-i", sk.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: example.com/from/skopeo:1"),
        "{out}"
    );
    let insp: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "example.com/from/skopeo:1"])).unwrap();
    assert_eq!(
        insp[0]["Id"],
        a.config_digest.to_string(),
        "same config, same image ID"
    );
    let lower = insp[0]["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    let base = lower.split(':').next_back().unwrap();
    assert!(Path::new(base).join("bin/busybox").exists());
    // A truncated archive is refused and leaves nothing behind.
    let data = std::fs::read(&docker_tar).unwrap();
    let cut = dir.path().join("cut.tar");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    ox.ok(&["rmi", "example.com/from/skopeo:1"]);
    assert!(!ox.fail(&["load", "-i", cut.to_str().unwrap()]).is_empty());
    assert_eq!(ox.count("tmp"), 0);
}

#[test]
fn import_rootfs_tarball() {
    let ox = Ox::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hostname"), b"imported\n").unwrap();
    std::os::unix::fs::symlink("hostname", rootfs.join("etc/alias")).unwrap();
    let tgz = dir.path().join("rootfs.tgz");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-czf")
        .arg(&tgz)
        .arg("."));
    let id = ox.ok(&["import", tgz.to_str().unwrap(), "imported/rootfs:1"]);
    let insp: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "imported/rootfs:1"])).unwrap();
    assert_eq!(insp[0]["Id"].as_str().unwrap(), id.trim());
    assert_eq!(insp[0]["Os"], "linux");
    assert_eq!(insp[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let lower = insp[0]["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read(Path::new(&lower).join("etc/hostname")).unwrap(),
        b"imported\n"
    );
    assert_eq!(
        std::fs::read_link(Path::new(&lower).join("etc/alias")).unwrap(),
        Path::new("hostname")
    );
    // From stdin, uncompressed; and what import makes can be saved.
    let tar = dir.path().join("rootfs.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    let mut c = ox.cmd();
    c.args(["import", "-", "imported/stdin:1"])
        .stdin(std::fs::File::open(&tar).unwrap());
    assert!(c.output().unwrap().status.success());
    ox.ok(&[
        "save",
        "-o",
        dir.path().join("s.tar").to_str().unwrap(),
        "imported/stdin:1",
    ]);
    assert!(ox
        .fail(&["import", dir.path().join("missing.tar").to_str().unwrap()])
        .contains("missing.tar"));
}

#[test]
fn login_logout_with_basic_auth() {
    login_logout(Auth::Basic);
}

#[test]
fn login_logout_with_bearer_tokens() {
    login_logout(Auth::Token);
}

fn login_logout(auth: Auth) {
    let reg = Registry::start(auth);
    let mut layout = Layout::new();
    let img = layout.image(
        &[(
            tar_of(&[E::File("x", b"x".to_vec(), 0o644, 0, 0)]),
            Comp::Gzip,
        )],
        "amd64",
    );
    layout.tag_manifest(&img, "v1");
    reg.push(layout.path(), "v1", "priv/x", false);
    let ox = Ox::new();
    let r = format!("{}/priv/x:v1", reg.addr);
    let e = ox.fail(&["pull", &r]);
    assert!(
        e.contains(&reg.addr) && (e.contains("login") || e.contains("authentication")),
        "{e}"
    );
    let mut c = ox.cmd();
    c.args(["login", "-u", USER, "--password-stdin", &reg.addr]);
    let bad = pipe_stdin(c, b"wrong\n");
    assert!(!bad.status.success(), "wrong password accepted");
    assert!(
        !ox.root.path().join("auth.json").exists(),
        "nothing stored on failure"
    );
    let mut c = ox.cmd();
    c.args(["login", "-u", USER, "--password-stdin", &reg.addr]);
    let good = pipe_stdin(c, format!("{PASS}\n").as_bytes());
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("Login Succeeded"));
    ox.ok(&["pull", "-q", &r]);
    ox.ok(&["rmi", &r]);
    ox.ok(&["logout", &reg.addr]);
    ox.fail(&["pull", &r]);
    assert!(ox.fail(&["logout", &reg.addr]).contains("not logged in"));
}

fn pipe_stdin(mut c: Command, data: &[u8]) -> Output {
    use std::io::Write;
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap()
}

/// 4 layers of 6 MB incompressible data (gzip and zstd), pushed as crash/big:big.
fn big_image() -> (Registry, Layout, BuiltImage) {
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    // Incompressible content so the transfer takes a while.
    let mut seed = 0x1234_5678_u64;
    let noise: Vec<u8> = (0..24_000_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let layers: Vec<(Vec<u8>, Comp)> = (0..4)
        .map(|i| {
            (
                tar_of(&[E::File(
                    ["l0", "l1", "l2", "l3"][i],
                    noise[i * 6_000_000..(i + 1) * 6_000_000].to_vec(),
                    0o644,
                    0,
                    0,
                )]),
                if i % 2 == 0 { Comp::Gzip } else { Comp::Zstd },
            )
        })
        .collect();
    let img = layout.image(&layers, "amd64");
    layout.tag_manifest(&img, "big");
    reg.push(layout.path(), "big", "crash/big", false);
    (reg, layout, img)
}

/// Kill `oxcart pull` at many points; each time the store must hold only verified blobs
/// and complete layers, the next command must clean up the debris, and a final pull
/// must succeed.
#[test]
fn killed_pull_leaves_no_corrupt_state() {
    let (reg, _layout, img) = big_image();
    let ox = Ox::new();
    let r = format!("{}/crash/big:big", reg.addr);
    for delay_ms in [1u64, 5, 15, 30, 60, 100, 150, 250, 400] {
        let mut child = ox
            .cmd()
            .args(["pull", "-q", &r])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        // Every visible blob verifies.
        if let Ok(rd) = std::fs::read_dir(ox.store().join("blobs/sha256")) {
            for e in rd {
                let p = e.unwrap().path();
                let data = std::fs::read(&p).unwrap();
                assert_eq!(
                    oxcart_image::Digest::sha256_of(&data).hex(),
                    p.file_name().unwrap().to_str().unwrap(),
                    "corrupt blob visible after kill at {delay_ms} ms"
                );
            }
        }
        // Every visible layer is complete: exactly the file its tar holds.
        if let Ok(rd) = std::fs::read_dir(ox.store().join("layers")) {
            for e in rd {
                let p = e.unwrap().path();
                let files: Vec<_> = std::fs::read_dir(&p)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                assert_eq!(files.len(), 1, "{p:?}");
                assert_eq!(
                    std::fs::metadata(&files[0]).unwrap().len(),
                    6_000_000,
                    "half-unpacked layer visible after kill at {delay_ms} ms"
                );
            }
        }
        // The next command cleans up what the killed one left.
        ox.ok(&["images"]);
        assert_eq!(ox.count("tmp"), 0, "tmp debris after kill at {delay_ms} ms");
        assert_eq!(
            ox.count("ingest"),
            0,
            "ingest debris after kill at {delay_ms} ms"
        );
    }
    ox.ok(&["pull", "-q", &r]);
    let insp: serde_json::Value = serde_json::from_str(&ox.ok(&["inspect", &r])).unwrap();
    assert_eq!(insp[0]["Id"], img.config_digest.to_string());
    assert_eq!(ox.count("layers"), 4);
}

/// A pull that fills the disk fails with a clear error and leaves only verified blobs;
/// the next command cleans up. The small filesystem is a tmpfs in a private mount
/// namespace made by unshare(1), so the host's mount table is never touched.
#[test]
fn full_disk_leaves_no_corrupt_state() {
    let (reg, _layout, _img) = big_image();
    let ox = Ox::new();
    let root = ox.root.path().join("small");
    std::fs::create_dir(&root).unwrap();
    let script = r#"
set -u
mount -t tmpfs -o size=10m oxcart-test "$ROOT" || exit 99
if "$OX" --root "$ROOT" pull -q "$REF" >/dev/null 2>"$ROOT.err"; then echo UNEXPECTED-SUCCESS; exit 1; fi
"$OX" --root "$ROOT" images >/dev/null || echo IMAGES-FAILED
echo "tmp=$(ls -A "$ROOT/tmp" | wc -l) ingest=$(ls -A "$ROOT/ingest" | wc -l)"
for f in "$ROOT"/blobs/sha256/*; do
  [ -e "$f" ] || continue
  [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || echo "CORRUPT $f"
done
for d in "$ROOT"/layers/*; do
  [ -e "$d" ] || continue
  for f in "$d"/*; do [ "$(stat -c %s "$f")" = 6000000 ] || echo "PARTIAL $f"; done
done
"#;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("ROOT", &root)
        .env("OX", env!("CARGO_BIN_EXE_oxcart"))
        .env("REF", format!("{}/crash/big:big", reg.addr))
        .env("HOME", ox.root.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tmp=0 ingest=0"), "{stdout}");
    assert!(
        !stdout.contains("CORRUPT") && !stdout.contains("PARTIAL") && !stdout.contains("FAILED"),
        "{stdout}"
    );
    let err = std::fs::read_to_string(ox.root.path().join("small.err")).unwrap();
    assert!(
        err.contains("No space left on device") && err.contains("crash/big"),
        "{err}"
    );
}

/// Modes of the layer root and of parents the tar does not list do not depend on the
/// caller's umask.
#[test]
fn strict_umask_does_not_leak_into_layers() {
    let ox = Ox::new();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("t.tar");
    std::fs::write(
        &tar,
        tar_of(&[E::File("a/b/file", b"x".to_vec(), 0o644, 0, 0)]),
    )
    .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 077; exec "$OX" --root "$ROOT" import "$TAR" umask/test:1"#)
        .env("OX", env!("CARGO_BIN_EXE_oxcart"))
        .env("ROOT", ox.store())
        .env("TAR", &tar)
        .env("HOME", ox.root.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let insp: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "umask/test:1"])).unwrap();
    let lower = insp[0]["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    use std::os::unix::fs::PermissionsExt;
    for p in ["", "a", "a/b"] {
        let m = std::fs::metadata(Path::new(&lower).join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(m, 0o755, "{p:?}");
    }
}

/// Two `oxcart pull` processes at once, images sharing their base layer: both succeed
/// and the shared layer is stored once.
#[test]
fn concurrent_pull_processes() {
    let reg = Registry::start(Auth::None);
    let (_l, _a, _b) = two_images(&reg, "cli/conc");
    let ox = Ox::new();
    for round in 0..3 {
        let children: Vec<_> = ["a", "b"]
            .iter()
            .map(|t| {
                ox.cmd()
                    .args(["pull", "-q", &format!("{}/cli/conc:{t}", reg.addr)])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert_eq!(ox.count("layers"), 3, "round {round}");
        ox.ok(&["rmi", "--all"]);
    }
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(ox.store().join("layers"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(m & 0o777, 0o700, "layers are private to root");
}

/// `[--root R] [--runroot RR] VERB …` for `run`, `rm`, `ps`, `stats` and `logs` is
/// parsed by that verb's own parser (main.rs `OneVerb`, which skips building every
/// other verb): its help, its flag errors and their exit codes are exactly those of
/// the whole command tree, which a global flag other than --root/--runroot before
/// the verb selects.
#[test]
fn a_verb_parsed_alone_says_what_the_whole_command_tree_says() {
    let bin = env!("CARGO_BIN_EXE_oxcart");
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root").display().to_string();
    let runroot = t.path().join("run").display().to_string();
    let out = |args: &[&str]| {
        let o = Command::new(bin).args(args).output().unwrap();
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            o.status.code(),
        )
    };
    for tail in [
        &["run", "--help"][..],
        &["run", "--bogus", "img"],
        &["run"],
        &["run", "--memory", "lots", "img"],
        &["run", "--network", "none", "no-such-image-here"],
        &["rm", "--help"],
        &["rm"],
        &["rm", "-x", "c"],
        &["rm", "-fv", "no-such-container"],
        &["ps", "--help"],
        &["ps", "--last", "x"],
        &["ps", "--filter", "bogus=1"],
        &["stats", "--help"],
        &["stats", "--no-stream", "no-such-container"],
        &["stats", "--bogus"],
        &["logs", "--help"],
        &["logs"],
        &["logs", "--tail", "x", "c"],
        &["logs", "no-such-container"],
    ] {
        let globals = ["--root", root.as_str(), "--runroot", runroot.as_str()];
        let fast: Vec<&str> = globals.iter().chain(tail).copied().collect();
        let full: Vec<&str> = globals
            .iter()
            .chain(&["--tls-verify=true"])
            .chain(tail)
            .copied()
            .collect();
        let (a, b) = (out(&fast), out(&full));
        assert_eq!(a, b, "{tail:?}");
        if tail.get(1) == Some(&"--help") {
            assert!(
                a.0.contains(&format!("Usage: oxcart {} [OPTIONS]", tail[0])),
                "{a:?}"
            );
        } else {
            assert_ne!(a.2, Some(0), "{tail:?} must fail: {a:?}");
        }
    }
}

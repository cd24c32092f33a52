//! Volumes end to end: real containers through the `oxcart` CLI, named and anonymous
//! volumes, copy-up from an image with `VOLUME`s, the volume verbs, and a hostile
//! image whose `VOLUME` path is a symlink to a host directory.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The host directory the hostile image's `/evil` symlink points at.
fn canary_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/oxcart-vol-canary-{}", std::process::id()))
}

/// `test/vol:latest`: the busybox layer plus `/srv` with owners, modes, an xattr, a
/// symlink and a hard link, `/evil` a symlink to a host path; `VOLUME /srv /evil`.
fn vol_image() -> &'static str {
    static IMG: OnceLock<String> = OnceLock::new();
    IMG.get_or_init(|| {
        let canary: &'static str =
            Box::leak(canary_dir().to_string_lossy().into_owned().into_boxed_str());
        let layer = tar_of(&[
            E::Dir("srv/", 0o750, 1000, 1000),
            E::File("srv/a.txt", b"alpha\n".to_vec(), 0o640, 1000, 2000),
            E::Dir("srv/sub/", 0o700, 2000, 2000),
            E::File("srv/sub/b", b"beta\n".to_vec(), 0o604, 0, 0),
            E::Symlink("srv/link", "a.txt"),
            E::Hardlink("srv/hard", "srv/a.txt"),
            E::FileX(
                "srv/x",
                b"x\n".to_vec(),
                0o644,
                vec![("user.oxcart", b"kept")],
            ),
            E::Symlink("evil", canary),
        ]);
        let mut cfg = image_config();
        cfg["Volumes"] = serde_json::json!({"/srv": {}, "/evil": {}});
        let imgs = images();
        let mut layout = Layout::new();
        let img = layout.image_with(
            &[(base_layer(), Comp::Gzip), (layer, Comp::Gzip)],
            "amd64",
            cfg,
        );
        layout.tag_manifest(&img, "latest");
        imgs.reg.push(layout.path(), "latest", "test/vol", false);
        format!("{}/test/vol:latest", imgs.reg.addr)
    })
}

fn with_vol_image() -> Ox {
    let ox = Ox::new().pulled();
    ox.ok(&["pull", "-q", vol_image()]);
    ox
}

fn run_out(ox: &Ox, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(args);
    ox.ok(&a)
}

fn mountpoint(ox: &Ox, vol: &str) -> PathBuf {
    PathBuf::from(
        ox.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", vol])
            .trim(),
    )
}

fn volume_names(ox: &Ox) -> Vec<String> {
    ox.ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect()
}

fn getxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid strings and a buffer of the length passed.
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

/// (path, uid, gid, mode) of every entry under `root`, sorted.
fn tree(root: &Path) -> Vec<(String, u32, u32, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            out.push((rel, md.uid(), md.gid(), md.mode() & 0o7777));
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn named_volume_data_outlives_its_container_and_shows_in_inspect() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    ox.ok(&[
        "run",
        "--name",
        "wr",
        "--network",
        "none",
        "-v",
        "data:/d",
        img,
        "sh",
        "-c",
        "echo kept > /d/f",
    ]);
    let mounts = ox.inspect("wr")["Mounts"].clone();
    let m = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/d")
        .unwrap()
        .clone();
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "data");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["RW"], true);
    assert_eq!(
        m["Source"].as_str().unwrap(),
        mountpoint(&ox, "data").to_str().unwrap()
    );
    ox.ok(&["rm", "-v", "wr"]);
    assert_eq!(volume_names(&ox), vec!["data"], "rm -v keeps named volumes");
    assert_eq!(
        run_out(&ox, &["-v", "data:/d", img, "cat", "/d/f"]),
        "kept\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ox.ok(&["volume", "inspect", "data"])).unwrap();
    let v = &v[0];
    for k in [
        "Name",
        "Driver",
        "Mountpoint",
        "Labels",
        "Options",
        "Scope",
        "CreatedAt",
    ] {
        assert!(v.get(k).is_some(), "volume inspect lacks {k}: {v}");
    }
    assert_eq!(v["Scope"], "local");
    assert!(mountpoint(&ox, "data").ends_with("volumes/data/_data"));
    ox.ok(&["volume", "rm", "data"]);
    assert!(volume_names(&ox).is_empty());
    assert!(!ox.root().join("volumes/data").exists());
    ox.assert_clean();
}

#[test]
fn copy_up_keeps_the_images_files_owners_modes_xattrs_and_nocopy_skips_it() {
    let ox = with_vol_image();
    run_out(&ox, &["-v", "cu:/srv", vol_image(), "true"]);
    let data = mountpoint(&ox, "cu");
    let got = tree(&data);
    let want: Vec<(String, u32, u32, u32)> = vec![
        ("a.txt".into(), 1000, 2000, 0o640),
        ("hard".into(), 1000, 2000, 0o640),
        ("link".into(), 0, 0, 0o777),
        ("sub".into(), 2000, 2000, 0o700),
        ("sub/b".into(), 0, 0, 0o604),
        ("x".into(), 0, 0, 0o644),
    ];
    assert_eq!(got, want);
    let top = std::fs::metadata(&data).unwrap();
    assert_eq!(
        (top.uid(), top.gid(), top.mode() & 0o7777),
        (1000, 1000, 0o750),
        "the volume takes the image directory's owner and mode"
    );
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        Path::new("a.txt")
    );
    assert_eq!(
        std::fs::metadata(data.join("a.txt")).unwrap().ino(),
        std::fs::metadata(data.join("hard")).unwrap().ino(),
        "hard links stay links"
    );
    assert_eq!(
        getxattr(&data.join("x"), "user.oxcart").as_deref(),
        Some(&b"kept"[..])
    );
    // The container sees the same (its ls of the volume matches the image's).
    let inside = run_out(
        &ox,
        &[
            "-v",
            "cu:/srv",
            vol_image(),
            "cat",
            "/srv/a.txt",
            "/srv/sub/b",
        ],
    );
    assert_eq!(inside, "alpha\nbeta\n");
    // A volume with content is never overwritten by a later copy-up.
    run_out(
        &ox,
        &[
            "-v",
            "cu:/srv",
            vol_image(),
            "sh",
            "-c",
            "rm /srv/a.txt; echo mine > /srv/new",
        ],
    );
    run_out(&ox, &["-v", "cu:/srv", vol_image(), "true"]);
    assert!(!data.join("a.txt").exists() && data.join("new").exists());
    // nocopy, both spellings.
    run_out(&ox, &["-v", "nc:/srv:nocopy", vol_image(), "true"]);
    assert!(tree(&mountpoint(&ox, "nc")).is_empty());
    run_out(
        &ox,
        &[
            "--mount",
            "type=volume,src=nc2,dst=/srv,volume-nocopy",
            vol_image(),
            "true",
        ],
    );
    assert!(tree(&mountpoint(&ox, "nc2")).is_empty());
    ox.ok(&["volume", "prune", "-a", "-f"]);
    assert!(volume_names(&ox).is_empty());
    ox.assert_clean();
}

#[test]
fn image_volumes_become_anonymous_volumes_that_rm_v_and_rm_remove() {
    let ox = with_vol_image();
    ox.ok(&[
        "create",
        "--name",
        "ca",
        "--network",
        "none",
        "-v",
        "named:/n",
        "-v",
        "/anon",
        vol_image(),
        "true",
    ]);
    let mounts = ox.inspect("ca")["Mounts"].as_array().unwrap().clone();
    let mut dsts: Vec<&str> = mounts
        .iter()
        .map(|m| m["Destination"].as_str().unwrap())
        .collect();
    dsts.sort();
    assert_eq!(dsts, vec!["/anon", "/evil", "/n", "/srv"]);
    for m in &mounts {
        assert_eq!(m["Type"], "volume", "{m}");
        let n = m["Name"].as_str().unwrap();
        if m["Destination"] != "/n" {
            assert!(
                n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()),
                "{n}"
            );
        }
    }
    assert_eq!(volume_names(&ox).len(), 4);
    // In use by a container that does not run: refused, naming it.
    let err = ox.fail(1, &["volume", "rm", "named"]);
    assert!(
        err.contains("volume is in use") && err.contains("[ca]"),
        "{err}"
    );
    ox.ok(&["start", "ca"]);
    ox.ok(&["wait", "ca"]);
    ox.ok(&["rm", "-v", "ca"]);
    assert_eq!(
        volume_names(&ox),
        vec!["named"],
        "rm -v took the anonymous ones only"
    );
    // --rm does the same.
    run_out(&ox, &["-v", "named:/n", vol_image(), "ls", "/srv"]);
    assert_eq!(volume_names(&ox), vec!["named"]);
    // Without -v, rm keeps them (dangling, and `volume prune` takes them).
    ox.ok(&[
        "run",
        "--name",
        "cb",
        "--network",
        "none",
        vol_image(),
        "true",
    ]);
    ox.ok(&["rm", "cb"]);
    assert_eq!(volume_names(&ox).len(), 3);
    let dangling = ox.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.lines().count(), 3);
    let out = ox.ok(&["volume", "prune", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert_eq!(
        volume_names(&ox),
        vec!["named"],
        "prune without -a keeps named volumes"
    );
    ox.assert_clean();
}

#[test]
fn read_only_volumes_are_enforced() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    for spec in [
        &["-v", "ro1:/d:ro"][..],
        &["--mount", "type=volume,src=ro1,dst=/d,readonly"],
    ] {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(spec);
        a.extend_from_slice(&[img, "sh", "-c", "touch /d/x"]);
        let o = ox.run(&a);
        assert_eq!(o.status.code(), Some(1), "{spec:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("Read-only file system"));
    }
    assert!(tree(&mountpoint(&ox, "ro1")).is_empty());
    ox.ok(&["volume", "rm", "ro1"]);
    ox.assert_clean();
}

#[test]
fn in_use_volumes_are_refused_shared_and_force_removed() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    ox.ok(&["volume", "create", "--label", "team=a", "shared"]);
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "r1",
        "--network",
        "none",
        "-v",
        "shared:/s",
        img,
        "sh",
        "-c",
        "echo one > /s/f; sleep 300",
    ]);
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "r2",
        "--network",
        "none",
        "-v",
        "shared:/s",
        img,
        "sleep",
        "300",
    ]);
    // Both run at once over the same data.
    let mut got = String::new();
    for _ in 0..100 {
        got = ox.ok(&["exec", "r2", "cat", "/s/f"]).to_string();
        if got == "one\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(got, "one\n");
    let err = ox.fail(1, &["volume", "rm", "shared"]);
    assert!(
        err.contains("r1") && err.contains("r2") && err.contains("volume is in use"),
        "{err}"
    );
    assert_eq!(
        ox.ok(&["volume", "ls", "-q", "--filter", "label=team=a"]),
        "shared\n"
    );
    assert_eq!(
        ox.ok(&["volume", "ls", "-q", "--filter", "label=team=b"]),
        ""
    );
    assert_eq!(
        ox.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        ""
    );
    let table = ox.ok(&["volume", "ls"]);
    assert_eq!(table, "DRIVER    VOLUME NAME\nlocal     shared\n");
    assert_eq!(
        ox.ok(&["volume", "ls", "--format", "{{.Name}} {{.Labels}}"]),
        "shared team=a\n"
    );
    ox.ok(&["volume", "rm", "-f", "shared"]);
    assert_eq!(
        ox.ok(&["ps", "-aq"]),
        "",
        "-f removed the containers using it"
    );
    assert!(volume_names(&ox).is_empty());
    let e = ox.fail(1, &["volume", "rm", "nosuch"]);
    assert!(e.contains("No such volume: nosuch"), "{e}");
    ox.ok(&["volume", "rm", "-f", "nosuch"]);
    let e = ox.fail(125, &["volume", "create", "bad/name"]);
    assert!(
        e.contains("includes invalid characters for a local volume name"),
        "{e}"
    );
    let e = ox.fail(125, &["run", "--rm", "-v", "_x:/d", img, "true"]);
    assert!(e.contains("invalid characters"), "{e}");
    ox.assert_clean();
}

#[test]
fn volumes_from_shares_volumes_and_binds_with_an_optional_mode() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "host\n").unwrap();
    let bind = format!("{}:/h", host.path().display());
    ox.ok(&[
        "create",
        "--name",
        "src",
        "--network",
        "none",
        "-v",
        "vf:/a",
        "-v",
        "/b",
        "-v",
        &bind,
        img,
        "true",
    ]);
    run_out(
        &ox,
        &[
            "--volumes-from",
            "src",
            img,
            "sh",
            "-c",
            "echo a > /a/f; echo b > /b/f",
        ],
    );
    assert_eq!(
        run_out(
            &ox,
            &[
                "--volumes-from",
                "src:ro",
                img,
                "cat",
                "/a/f",
                "/b/f",
                "/h/h"
            ]
        ),
        "a\nb\nhost\n"
    );
    let o = ox.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src:ro",
        img,
        "touch",
        "/a/g",
    ]);
    assert_eq!(o.status.code(), Some(1));
    // A user mount at the same destination wins over --volumes-from's.
    assert_eq!(
        run_out(
            &ox,
            &["--volumes-from", "src", "-v", "other:/a", img, "ls", "/a"]
        ),
        ""
    );
    // The --volumes-from container's --rm did not take src's anonymous volume.
    assert_eq!(volume_names(&ox).len(), 3);
    ox.ok(&["rm", "-v", "src"]);
    let mut left = volume_names(&ox);
    left.sort();
    assert_eq!(left, vec!["other", "vf"]);
    ox.ok(&["volume", "rm", "other", "vf"]);
    ox.assert_clean();
}

#[test]
fn tmpfs_backed_volume_is_mounted_on_use_and_unmounted_after() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    ox.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m,mode=0711",
        "tv",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ox.ok(&["volume", "inspect", "tv"])).unwrap();
    assert_eq!(v[0]["Options"]["type"], "tmpfs");
    let data = mountpoint(&ox, "tv");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(data.to_str().unwrap()))
    };
    assert!(!mounted());
    let out = run_out(
        &ox,
        &[
            "-v",
            "tv:/t",
            img,
            "sh",
            "-c",
            "grep ' /t ' /proc/mounts; stat -c %a /t; echo x > /t/f",
        ],
    );
    assert!(
        out.starts_with("tmpfs /t tmpfs rw,") && out.contains("size=1024k"),
        "{out}"
    );
    assert!(out.ends_with("711\n"), "{out}");
    assert!(!mounted(), "unmounted when the last user stopped");
    assert!(!data.join("f").exists(), "the data lived in the tmpfs");
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "t1",
        "--network",
        "none",
        "-v",
        "tv:/t",
        img,
        "sleep",
        "300",
    ]);
    assert!(mounted());
    ox.ok(&["rm", "-f", "t1"]);
    assert!(!mounted());
    let e = ox.fail(125, &["volume", "create", "-o", "color=red", "bad"]);
    assert!(e.contains("invalid option"), "{e}");
    ox.ok(&["volume", "rm", "tv"]);
    ox.assert_clean();
}

#[test]
fn a_hostile_images_symlinked_volume_path_never_touches_the_host() {
    let canary = canary_dir();
    std::fs::create_dir_all(&canary).unwrap();
    std::fs::write(canary.join("secret"), "host secret\n").unwrap();
    let ox = with_vol_image();
    let o = ox.run(&[
        "run",
        "--name",
        "hh",
        "--network",
        "none",
        vol_image(),
        "sh",
        "-c",
        "ls /evil; echo pwned > /evil/pwned",
    ]);
    let mounts = ox.inspect("hh")["Mounts"].clone();
    let evil = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/evil")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    let data = mountpoint(&ox, &evil);
    ox.ok(&["rm", "-v", "hh"]);
    let mut host: Vec<String> = std::fs::read_dir(&canary)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    std::fs::remove_dir_all(&canary).unwrap();
    assert_eq!(
        host,
        vec!["secret"],
        "nothing written to the host through the symlink"
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("secret"),
        "the host's files were not copied in"
    );
    assert!(!data.exists(), "rm -v removed the anonymous volume");
    ox.assert_clean();
}

#[test]
fn an_interrupted_copy_up_is_reported_and_redone() {
    let ox = with_vol_image();
    ox.ok(&["volume", "create", "half"]);
    let dir = ox.root().join("volumes/half");
    // What a kill -9 mid-copy leaves: the marker and part of the data.
    std::fs::write(dir.join("copying"), "").unwrap();
    std::fs::write(dir.join("_data/a.txt"), "trunc").unwrap();
    std::fs::write(dir.join("_data/junk"), "partial").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ox.ok(&["volume", "inspect", "half"])).unwrap();
    assert_eq!(v[0]["Incomplete"], true, "{v}");
    assert_eq!(
        run_out(&ox, &["-v", "half:/srv", vol_image(), "cat", "/srv/a.txt"]),
        "alpha\n"
    );
    assert!(!dir.join("copying").exists());
    assert!(!dir.join("_data/junk").exists());
    let v: serde_json::Value =
        serde_json::from_str(&ox.ok(&["volume", "inspect", "half"])).unwrap();
    assert!(v[0].get("Incomplete").is_none(), "{v}");
    // A removal killed after its row went leaves a directory no row names: collected.
    std::fs::create_dir_all(ox.root().join("volumes/ghost/_data")).unwrap();
    assert_eq!(volume_names(&ox), vec!["half"]);
    assert!(!ox.root().join("volumes/ghost").exists());
    ox.ok(&["volume", "rm", "half"]);
    ox.assert_clean();
}

#[test]
fn system_df_and_prune_list_what_they_count_and_remove() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    ox.ok(&[
        "run",
        "--name",
        "sy",
        "--network",
        "none",
        "-v",
        "/anon",
        "-v",
        "keep:/k",
        img,
        "sh",
        "-c",
        "echo 12345 > /k/f",
    ]);
    let df = ox.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    assert!(
        lines[0].starts_with("TYPE") && lines[0].contains("RECLAIMABLE"),
        "{df}"
    );
    assert!(
        lines[1].starts_with("Images ")
            && lines[2].starts_with("Containers ")
            && lines[3].starts_with("Local Volumes "),
        "{df}"
    );
    let vols: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(&vols[2..4], &["2", "2"], "{df}");
    let dfv = ox.ok(&["system", "df", "-v"]);
    assert!(
        dfv.contains("Local Volumes space usage:") && dfv.contains("keep "),
        "{dfv}"
    );
    let out = ox.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(
        out.contains("Deleted Containers:\n") && out.contains("Deleted Volumes:\n"),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(volume_names(&ox), vec!["keep"], "named volumes stay");
    let out = ox.ok(&["system", "prune", "-f", "-a"]);
    assert!(
        out.contains("Deleted Images:\n") && out.contains("deleted: sha256:"),
        "{out}"
    );
    ox.ok(&["volume", "rm", "keep"]);
    ox.assert_clean();
}

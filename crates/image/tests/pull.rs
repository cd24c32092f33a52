//! End-to-end pulls from a real docker-registry on 127.0.0.1, compared with umoci.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oxcart_image::auth::CredentialStore;
use oxcart_image::pull::{NoProgress, PullOptions};
use oxcart_image::registry::Insecure;
use oxcart_image::{ImageStore, Reference};
use tar::EntryType;

fn opts(auth_dir: &std::path::Path) -> PullOptions {
    PullOptions {
        platform: None,
        insecure: Insecure::default(),
        credentials: CredentialStore {
            auth_file: auth_dir.join("auth.json"),
            docker_config: None,
            given: None,
        },
        jobs: 3,
    }
}

/// Layers exercising every entry type, owners, modes, xattrs, whiteouts, an opaque dir.
fn rich_layers(c: [Comp; 3]) -> Vec<(Vec<u8>, Comp)> {
    let bb = busybox();
    let base = tar_of(&[
        E::Dir("bin/", 0o755, 0, 0),
        E::File("bin/busybox", bb, 0o755, 0, 0),
        E::Symlink("bin/sh", "busybox"),
        E::Symlink("bin/ls", "/bin/busybox"),
        E::Dir("etc/", 0o755, 0, 0),
        E::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n".to_vec(),
            0o644,
            0,
            0,
        ),
        E::File("etc/shadow", b"root:*:1::::::\n".to_vec(), 0o640, 0, 42),
        E::Dir("etc/conf.d/", 0o755, 0, 0),
        E::File("etc/conf.d/a.conf", b"a=1\n".to_vec(), 0o644, 0, 0),
        E::File("etc/conf.d/b.conf", b"b=2\n".to_vec(), 0o644, 0, 0),
        E::Dir("home/", 0o755, 0, 0),
        E::Dir("home/u/", 0o700, 1000, 1000),
        E::File(
            "home/u/.profile",
            b"export X=1\n".to_vec(),
            0o600,
            1000,
            1000,
        ),
        E::Dir("tmp/", 0o1777, 0, 0),
        E::Dir("dev/", 0o755, 0, 0),
        E::Char("dev/null", 1, 3),
        E::Fifo("dev/initctl"),
        E::File("usr/bin/passwd", b"#!/bin/sh\n".to_vec(), 0o4755, 0, 0),
        E::Dir("var/", 0o755, 0, 0),
        E::Dir("var/cache/", 0o755, 0, 0),
        E::File("var/cache/old1", b"old".to_vec(), 0o644, 0, 0),
        E::Dir("var/cache/sub/", 0o755, 0, 0),
        E::File("var/cache/sub/old2", b"old2".to_vec(), 0o644, 0, 0),
        E::File("var/remove-me", b"bye".to_vec(), 0o644, 0, 0),
    ]);
    let second = tar_of(&[
        E::Dir("etc/", 0o755, 0, 0),
        E::File("etc/conf.d/.wh.a.conf", Vec::new(), 0o644, 0, 0),
        E::File("etc/motd", b"hello from layer 2\n".to_vec(), 0o644, 0, 0),
        E::Hardlink("etc/motd.link", "etc/motd"),
        E::FileX("usr/bin/ping", b"ping".to_vec(), 0o755, vec![("security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), ("user.note", b"hi")]),
        E::File("var/.wh.remove-me", Vec::new(), 0o644, 0, 0),
        E::Dir("var/cache/", 0o750, 0, 0),
        E::File("var/cache/.wh..wh..opq", Vec::new(), 0o644, 0, 0),
        E::File("var/cache/new", b"new".to_vec(), 0o644, 0, 0),
    ]);
    let third = tar_of(&[
        E::File(
            "etc/motd",
            b"overwritten in layer 3\n".to_vec(),
            0o600,
            0,
            0,
        ),
        E::Symlink("etc/conf.d", "../var/cache"),
        E::Dir("opt/app/", 0o755, 0, 0),
        E::File("opt/app/data.bin", vec![7u8; 300_000], 0o644, 0, 0),
        E::Hardlink("opt/app/data2.bin", "opt/app/data.bin"),
        E::File("etc/.wh.shadow", Vec::new(), 0o644, 0, 0),
    ]);
    vec![(base, c[0]), (second, c[1]), (third, c[2])]
}

#[test]
fn pull_matches_umoci_for_gzip_zstd_and_plain_layers() {
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    for (tag, comps) in [
        ("gz", [Comp::Gzip; 3]),
        ("mixed", [Comp::Zstd, Comp::Plain, Comp::Gzip]),
    ] {
        let img = layout.image(&rich_layers(comps), "amd64");
        layout.tag_manifest(&img, tag);
        reg.push(layout.path(), tag, "test/rich", false);
    }
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    for tag in ["gz", "mixed"] {
        let r = Reference::parse(&format!("{}/test/rich:{tag}", reg.addr)).unwrap();
        let rec = st.pull(&r, &opts(root.path()), &NoProgress).unwrap();
        assert_eq!(rec.layers.len(), 3);
        let ours = overlay_dump(&st.layer_dirs(&rec));
        // umoci 0.4.7 cannot read zstd layers; "mixed" has the same diff_ids as "gz", so
        // umoci's unpack of "gz" is the reference for both.
        let theirs = umoci_dump(layout.path(), "gz");
        if tag == "mixed" {
            let mts: Vec<&str> = rec.layers.iter().map(|l| l.media_type.as_str()).collect();
            assert_eq!(
                mts[0], "application/vnd.oci.image.layer.v1.tar+zstd",
                "pushed as zstd"
            );
            assert_eq!(mts[1], "application/vnd.oci.image.layer.v1.tar");
        }
        assert!(
            theirs.contains_key("etc/motd.link"),
            "sanity: umoci tree has the hardlink"
        );
        assert!(
            !theirs.contains_key("var/cache/old1"),
            "sanity: opaque dir applied"
        );
        assert!(
            theirs["usr/bin/ping"].contains("user.note=hi"),
            "sanity: xattrs compared: {}",
            theirs["usr/bin/ping"]
        );
        assert!(
            theirs["dev/null"].starts_with("char 1:3"),
            "{}",
            theirs["dev/null"]
        );
        assert_same_tree(&ours, &theirs);
    }
    // Same diff_ids in both images: the layers are stored once.
    let layers = std::fs::read_dir(root.path().join("layers"))
        .unwrap()
        .count();
    assert_eq!(
        layers, 3,
        "identical layers with different compression must share storage"
    );
    // On-disk overlay translation, checked directly in the layer dirs.
    let rec = st.find(&format!("{}/test/rich:gz", reg.addr)).unwrap();
    let dirs = st.layer_dirs(&rec);
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let wh = std::fs::symlink_metadata(dirs[1].join("var/remove-me")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    let mut v = [0u8; 4];
    let p = std::ffi::CString::new(dirs[1].join("var/cache").to_str().unwrap()).unwrap();
    let k = std::ffi::CString::new("trusted.overlay.opaque").unwrap();
    let n = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
    assert_eq!(
        &v[..n.max(0) as usize],
        b"y",
        "opaque dir carries trusted.overlay.opaque=y"
    );
    let a = std::fs::metadata(dirs[2].join("opt/app/data.bin")).unwrap();
    let b = std::fs::metadata(dirs[2].join("opt/app/data2.bin")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hardlink preserved as a hardlink");
    assert_eq!(
        std::fs::metadata(dirs[0].join("usr/bin/passwd"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
}

#[test]
fn multi_arch_index_resolves_host_or_requested_platform() {
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    let amd = layout.image(
        &[(
            tar_of(&[E::File("arch", b"amd64".to_vec(), 0o644, 0, 0)]),
            Comp::Gzip,
        )],
        "amd64",
    );
    let arm = layout.image(
        &[(
            tar_of(&[E::File("arch", b"arm64".to_vec(), 0o644, 0, 0)]),
            Comp::Zstd,
        )],
        "arm64",
    );
    let idx = layout.tag_index(
        &[(&arm, "arm64", Some("v8")), (&amd, "amd64", None)],
        "multi",
    );
    reg.push(layout.path(), "multi", "test/multi", true);
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/multi:multi", reg.addr)).unwrap();
    let rec = st.pull(&r, &opts(root.path()), &NoProgress).unwrap();
    assert_eq!(rec.platform, "linux/amd64");
    assert_eq!(rec.manifest_digest, amd.manifest_digest);
    assert_eq!(rec.index_digest.as_ref(), Some(&idx));
    assert_eq!(
        std::fs::read(st.layer_dirs(&rec)[0].join("arch")).unwrap(),
        b"amd64"
    );
    let mut o = opts(root.path());
    o.platform = Some(oxcart_image::oci::Platform::parse("linux/arm64").unwrap());
    let rec = st.pull(&r, &o, &NoProgress).unwrap();
    assert_eq!(rec.manifest_digest, arm.manifest_digest);
    assert_eq!(
        std::fs::read(st.layer_dirs(&rec)[0].join("arch")).unwrap(),
        b"arm64"
    );
    o.platform = Some(oxcart_image::oci::Platform::parse("linux/s390x").unwrap());
    let e = st.pull(&r, &o, &NoProgress).unwrap_err().to_string();
    assert!(
        e.contains("no manifest for platform linux/s390x") && e.contains("linux/amd64"),
        "{e}"
    );
    // A single-platform image must match an explicit --platform.
    let single =
        Reference::parse(&format!("{}/test/multi@{}", reg.addr, amd.manifest_digest)).unwrap();
    o.platform = Some(oxcart_image::oci::Platform::parse("linux/arm64").unwrap());
    let e = st.pull(&single, &o, &NoProgress).unwrap_err().to_string();
    assert!(
        e.contains("image is for linux/amd64, not the requested platform linux/arm64/v8"),
        "{e}"
    );
    // By digest, too (the index digest).
    let rd = Reference::parse(&format!("{}/test/multi@{idx}", reg.addr)).unwrap();
    let rec = st.pull(&rd, &opts(root.path()), &NoProgress).unwrap();
    assert_eq!(rec.manifest_digest, amd.manifest_digest);
}

fn auth_roundtrip(auth: Auth) {
    let reg = Registry::start(auth);
    let mut layout = Layout::new();
    let img = layout.image(
        &[(
            tar_of(&[E::File("f", b"secret image".to_vec(), 0o644, 0, 0)]),
            Comp::Gzip,
        )],
        "amd64",
    );
    layout.tag_manifest(&img, "v1");
    reg.push(layout.path(), "v1", "private/app", false);
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/private/app:v1", reg.addr)).unwrap();
    // Anonymous: refused, and the error names the registry.
    let e = st
        .pull(&r, &opts(root.path()), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&reg.addr) && e.contains("auth"), "{e}");
    // Credentials from docker's config.json.
    let o = opts(root.path());
    let docker = root.path().join("docker-config.json");
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    std::fs::write(
        &docker,
        serde_json::json!({"auths": {reg.addr.clone(): {"auth": enc}}}).to_string(),
    )
    .unwrap();
    let o2 = PullOptions {
        credentials: CredentialStore {
            auth_file: o.credentials.auth_file.clone(),
            docker_config: Some(docker),
            given: None,
        },
        ..o
    };
    let rec = st.pull(&r, &o2, &NoProgress).unwrap();
    assert_eq!(
        std::fs::read(st.layer_dirs(&rec)[0].join("f")).unwrap(),
        b"secret image"
    );
    // Wrong password via oxcart's own file (which takes precedence): refused.
    let bad = oxcart_image::auth::Credentials {
        username: USER.into(),
        password: "wrong".into(),
    };
    o2.credentials.store(&reg.addr, &bad).unwrap();
    st.remove_all().unwrap();
    let e = st.pull(&r, &o2, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("auth"), "{e}");
}

#[test]
fn basic_auth_with_htpasswd() {
    auth_roundtrip(Auth::Basic);
}

#[test]
fn bearer_token_auth() {
    auth_roundtrip(Auth::Token);
}

#[test]
fn concurrent_pulls_share_layers_and_store_each_once() {
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    let base = tar_of(&[E::File(
        "base.bin",
        (0..2_000_000u32).map(|i| (i % 251) as u8).collect(),
        0o644,
        0,
        0,
    )]);
    let mid = tar_of(&[E::File("mid.bin", vec![3u8; 500_000], 0o644, 0, 0)]);
    let a = layout.image(
        &[
            (base.clone(), Comp::Gzip),
            (mid.clone(), Comp::Gzip),
            (
                tar_of(&[E::File("a", b"a".to_vec(), 0o644, 0, 0)]),
                Comp::Gzip,
            ),
        ],
        "amd64",
    );
    let b = layout.image(
        &[
            (base, Comp::Gzip),
            (mid, Comp::Gzip),
            (
                tar_of(&[E::File("b", b"b".to_vec(), 0o644, 0, 0)]),
                Comp::Gzip,
            ),
        ],
        "amd64",
    );
    layout.tag_manifest(&a, "a");
    layout.tag_manifest(&b, "b");
    reg.push(layout.path(), "a", "test/shared", false);
    reg.push(layout.path(), "b", "test/shared", false);
    let root = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let handles: Vec<_> = ["a", "b"]
            .iter()
            .map(|tag| {
                let rootp = root.path().to_path_buf();
                let r = Reference::parse(&format!("{}/test/shared:{tag}", reg.addr)).unwrap();
                std::thread::spawn(move || {
                    // Separate stores = separate SQLite connections and lock fds, as two processes.
                    let mut st = ImageStore::open(&rootp).unwrap();
                    st.pull(&r, &opts(&rootp), &NoProgress)
                        .map(|rec| rec.layers.len())
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), 3, "round {round}");
        }
        let n = std::fs::read_dir(root.path().join("layers"))
            .unwrap()
            .count();
        assert_eq!(n, 4, "2 shared + 2 distinct layers, each stored once");
        let mut st = ImageStore::open(root.path()).unwrap();
        assert_eq!(st.list().unwrap().len(), 2);
        if round < 2 {
            st.remove_all().unwrap();
            assert_eq!(
                std::fs::read_dir(root.path().join("layers"))
                    .unwrap()
                    .count(),
                0
            );
        }
    }
}

#[test]
fn malicious_layer_is_refused_naming_layer_and_entry() {
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    let evil = tar_of(&[
        E::Dir("etc/", 0o755, 0, 0),
        E::Symlink("etc/escape", "/tmp"),
        E::Raw(
            b"etc/escape/oxcart-pwned".to_vec(),
            EntryType::Regular,
            Vec::new(),
            b"pwned".to_vec(),
        ),
    ]);
    let img = layout.image(
        &[
            (
                tar_of(&[E::File("ok", b"ok".to_vec(), 0o644, 0, 0)]),
                Comp::Gzip,
            ),
            (evil, Comp::Gzip),
        ],
        "amd64",
    );
    layout.tag_manifest(&img, "evil");
    reg.push(layout.path(), "evil", "test/evil", false);
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/evil:evil", reg.addr)).unwrap();
    let e = st
        .pull(&r, &opts(root.path()), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&img.layer_digests[1].to_string()),
        "names the layer: {e}"
    );
    assert!(
        e.contains("etc/escape/oxcart-pwned") && e.contains("symlink"),
        "names the entry: {e}"
    );
    assert!(!std::path::Path::new("/tmp/oxcart-pwned").exists());
    assert!(st.list().unwrap().is_empty(), "no image recorded");
    assert_eq!(
        std::fs::read_dir(root.path().join("tmp")).unwrap().count(),
        0,
        "no half-unpacked layer left"
    );
}

#[test]
fn docker_media_types_manifest_list_and_schema2() {
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    let amd = layout.image(
        &[(
            tar_of(&[E::File("arch", b"amd64".to_vec(), 0o644, 0, 0)]),
            Comp::Gzip,
        )],
        "amd64",
    );
    let arm = layout.image(
        &[(
            tar_of(&[E::File("arch", b"arm64".to_vec(), 0o644, 0, 0)]),
            Comp::Gzip,
        )],
        "arm64",
    );
    layout.tag_index(
        &[(&arm, "arm64", Some("v8")), (&amd, "amd64", None)],
        "list",
    );
    reg.push_as(layout.path(), "list", "test/docker", true, Some("v2s2"));
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/docker:list", reg.addr)).unwrap();
    let rec = st.pull(&r, &opts(root.path()), &NoProgress).unwrap();
    assert_eq!(
        rec.manifest_media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        rec.layers[0].media_type,
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let idx = st
        .store()
        .read_blob(rec.index_digest.as_ref().unwrap())
        .unwrap();
    assert!(String::from_utf8_lossy(&idx)
        .contains("application/vnd.docker.distribution.manifest.list.v2+json"));
    assert_eq!(
        std::fs::read(st.layer_dirs(&rec)[0].join("arch")).unwrap(),
        b"amd64"
    );
    // Docker's config media type, same image ID as the OCI original (same config bytes).
    assert_eq!(rec.id, amd.config_digest);
}

#[test]
fn empty_and_repeated_layers() {
    // Old docker builds emit empty layers (a tar of just the end blocks) for ENV and
    // friends; the same blob can appear several times in one manifest.
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    let empty = tar_of(&[]);
    let img = layout.image(
        &[
            (
                tar_of(&[E::File("a", b"a".to_vec(), 0o644, 0, 0)]),
                Comp::Gzip,
            ),
            (empty.clone(), Comp::Gzip),
            (empty.clone(), Comp::Gzip),
            (
                tar_of(&[E::File("a", b"a".to_vec(), 0o644, 0, 0)]),
                Comp::Gzip,
            ),
        ],
        "amd64",
    );
    assert_eq!(img.layer_digests[1], img.layer_digests[2]);
    layout.tag_manifest(&img, "e");
    reg.push(layout.path(), "e", "test/empty", false);
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/empty:e", reg.addr)).unwrap();
    let rec = st.pull(&r, &opts(root.path()), &NoProgress).unwrap();
    assert_eq!(rec.layers.len(), 4);
    let chains: std::collections::HashSet<_> =
        rec.layers.iter().map(|l| l.chain_id.clone()).collect();
    assert_eq!(
        chains.len(),
        4,
        "same DiffID at different depths: different ChainIDs"
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("layers"))
            .unwrap()
            .count(),
        4
    );
    let ours = overlay_dump(&st.layer_dirs(&rec));
    assert_eq!(ours.keys().collect::<Vec<_>>(), vec!["a"]);
}

#[test]
fn images_in_use_are_not_removed() {
    let reg = Registry::start(Auth::None);
    let mut layout = Layout::new();
    let img = layout.image(
        &[(
            tar_of(&[E::File("u", b"u".to_vec(), 0o644, 0, 0)]),
            Comp::Gzip,
        )],
        "amd64",
    );
    layout.tag_manifest(&img, "u");
    reg.push(layout.path(), "u", "test/used", false);
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    let name = format!("{}/test/used:u", reg.addr);
    let rec = st
        .pull(
            &Reference::parse(&name).unwrap(),
            &opts(root.path()),
            &NoProgress,
        )
        .unwrap();
    st.retain(&rec.id, "container-1").unwrap();
    let e = st.remove(&name, true).unwrap_err().to_string();
    assert!(e.contains("in use by container-1"), "{e}");
    let (removed, kept, _) = st.remove_all().unwrap();
    assert_eq!((removed, kept), (0, 1));
    assert_eq!(
        std::fs::read_dir(root.path().join("layers"))
            .unwrap()
            .count(),
        1,
        "layers kept"
    );
    assert!(st.release(&rec.id, "container-1").unwrap());
    assert!(!st.release(&rec.id, "container-1").unwrap());
    st.remove(&name, false).unwrap();
    assert_eq!(
        std::fs::read_dir(root.path().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

//! Layer extraction against hostile and tricky tars, straight through `unpack_layer`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oxcart_image::oci::Compression;
use oxcart_image::unpack::{unpack_layer, UnpackError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tar::EntryType;

fn unpack(tar: &[u8], dest: &Path) -> Result<oxcart_image::unpack::Unpacked, UnpackError> {
    unpack_layer(Box::new(tar), Compression::None, dest, "sha256:testlayer")
}

/// A sandbox: `root/layer` is where the layer goes, `root/outside` must stay untouched.
fn sandbox() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let layer = t.path().join("a/b/layer");
    let outside = t.path().join("a/b/outside");
    std::fs::create_dir_all(&layer).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"original").unwrap();
    (t, layer, outside)
}

fn assert_refused(entries: &[E], entry: &str, why: &str) {
    let (_t, layer, outside) = sandbox();
    let err = unpack(&tar_of(entries), &layer).unwrap_err();
    let msg = err.to_string();
    assert!(err.refused, "should be a refusal, got {msg}");
    assert!(msg.contains("sha256:testlayer"), "names the layer: {msg}");
    assert!(msg.contains(entry), "names entry {entry}: {msg}");
    assert!(msg.contains(why), "says why ({why}): {msg}");
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"original");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing created outside"
    );
}

fn raw(name: &str, ty: EntryType, link: &str, data: &[u8]) -> E {
    E::Raw(
        name.as_bytes().to_vec(),
        ty,
        link.as_bytes().to_vec(),
        data.to_vec(),
    )
}

#[test]
fn dotdot_entries_are_refused() {
    assert_refused(
        &[raw("../outside/victim", EntryType::Regular, "", b"pwned")],
        "../outside/victim",
        "'..'",
    );
    assert_refused(
        &[raw("x/../../outside/new", EntryType::Regular, "", b"pwned")],
        "x/../../outside/new",
        "'..'",
    );
    assert_refused(
        &[raw("../outside/d", EntryType::Directory, "", b"")],
        "../outside/d",
        "'..'",
    );
}

#[test]
fn absolute_names_are_refused() {
    assert_refused(
        &[raw(
            "/tmp/oxcart-abs-test",
            EntryType::Regular,
            "",
            b"pwned",
        )],
        "/tmp/oxcart-abs-test",
        "absolute",
    );
    assert!(!Path::new("/tmp/oxcart-abs-test").exists());
}

#[test]
fn writing_through_a_planted_symlink_is_refused() {
    // Relative and absolute symlink escapes, directory and file targets.
    assert_refused(
        &[
            E::Symlink("esc", "../outside"),
            raw("esc/victim", EntryType::Regular, "", b"pwned"),
        ],
        "esc/victim",
        "symlink",
    );
    assert_refused(
        &[
            E::Symlink("esc", "/"),
            raw("esc/tmp/oxcart-sym-test", EntryType::Regular, "", b"pwned"),
        ],
        "esc/tmp/oxcart-sym-test",
        "symlink",
    );
    assert_refused(
        &[
            E::Dir("d/", 0o755, 0, 0),
            E::Symlink("d/esc", "../../outside"),
            raw("d/esc/new/deeper", EntryType::Directory, "", b""),
        ],
        "d/esc/new/deeper",
        "symlink",
    );
    assert!(!Path::new("/tmp/oxcart-sym-test").exists());
}

#[test]
fn hardlink_escapes_are_refused() {
    assert_refused(
        &[raw("h", EntryType::Link, "../outside/victim", b"")],
        "\"h\"",
        "'..'",
    );
    assert_refused(
        &[raw("h", EntryType::Link, "/etc/passwd", b"")],
        "\"h\"",
        "absolute",
    );
    // A hardlink whose target goes through a planted symlink.
    assert_refused(
        &[
            E::Symlink("esc", "../outside"),
            raw("h", EntryType::Link, "esc/victim", b""),
        ],
        "\"h\"",
        "symlink",
    );
    // A hardlink to something this layer does not have.
    assert_refused(
        &[raw("h", EntryType::Link, "nope", b"")],
        "\"h\"",
        "does not exist",
    );
}

#[test]
fn a_file_replacing_a_planted_symlink_does_not_write_through_it() {
    let (_t, layer, outside) = sandbox();
    let target = outside.join("victim");
    let tar = tar_of(&[
        raw("f", EntryType::Symlink, target.to_str().unwrap(), b""),
        E::File("f", b"replaced".to_vec(), 0o644, 0, 0),
        // A hardlink to the planted symlink links the symlink, not its target.
        raw("g", EntryType::Symlink, target.to_str().unwrap(), b""),
        raw("g2", EntryType::Link, "g", b""),
    ]);
    unpack(&tar, &layer).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"original");
    assert_eq!(std::fs::read(layer.join("f")).unwrap(), b"replaced");
    assert!(std::fs::symlink_metadata(layer.join("g2"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn invalid_whiteouts_and_forged_overlay_xattrs_are_refused() {
    assert_refused(
        &[E::File(".wh.", Vec::new(), 0o644, 0, 0)],
        ".wh.",
        "invalid whiteout",
    );
    assert_refused(
        &[E::File("d/.wh..", Vec::new(), 0o644, 0, 0)],
        "d/.wh..",
        "invalid whiteout",
    );
    assert_refused(
        &[E::FileX(
            "x",
            b"x".to_vec(),
            0o644,
            vec![("trusted.overlay.opaque", b"y")],
        )],
        "\"x\"",
        "overlayfs xattr",
    );
}

#[test]
fn diff_id_and_attributes() {
    let (_t, layer, _o) = sandbox();
    let tar = tar_of(&[
        E::Dir("d/", 0o710, 12, 34),
        E::File("d/f", b"data".to_vec(), 0o2751, 56, 78),
        E::File("d/f", b"second copy wins".to_vec(), 0o640, 0, 0),
        E::Dir("d/", 0o750, 12, 34),
        E::File("implicit/parent/file", b"x".to_vec(), 0o644, 0, 0),
        E::File("implicit/.wh.gone", Vec::new(), 0o644, 0, 0),
    ]);
    let gz = compress(&tar, Comp::Gzip).0;
    let u = unpack_layer(Box::new(&gz[..]), Compression::Gzip, &layer, "l").unwrap();
    assert_eq!(u.diff_id, oxcart_image::Digest::sha256_of(&tar));
    let d = std::fs::metadata(layer.join("d")).unwrap();
    assert_eq!(
        (d.mode() & 0o7777, d.uid(), d.gid()),
        (0o750, 12, 34),
        "dir attrs replaced by the duplicate"
    );
    assert_eq!(d.mtime(), 1_700_000_000, "dir mtime set after its children");
    let f = std::fs::metadata(layer.join("d/f")).unwrap();
    assert_eq!((f.mode() & 0o7777, f.uid()), (0o640, 0));
    assert_eq!(
        std::fs::read(layer.join("d/f")).unwrap(),
        b"second copy wins"
    );
    assert_eq!(f.mtime(), 1_700_000_000);
    let p = std::fs::metadata(layer.join("implicit/parent")).unwrap();
    assert_eq!(p.mode() & 0o7777, 0o755);
    let wh = std::fs::symlink_metadata(layer.join("implicit/gone")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    // A corrupt stream is an error naming the layer, not a partial success.
    let mut bad = gz.clone();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    let (_t2, layer2, _o2) = sandbox();
    let e = unpack_layer(
        Box::new(&bad[..]),
        Compression::Gzip,
        &layer2,
        "sha256:corrupt",
    )
    .unwrap_err();
    assert!(e.to_string().contains("sha256:corrupt"), "{e}");
}

#[test]
fn a_root_entry_named_slash_sets_root_attributes() {
    // umoci insert writes the layer root as "/".
    let (_t, layer, _o) = sandbox();
    let tar = tar_of(&[
        raw("/", EntryType::Directory, "", b""),
        E::File("f", b"x".to_vec(), 0o644, 0, 0),
    ]);
    unpack(&tar, &layer).unwrap();
    assert_eq!(
        std::fs::metadata(&layer).unwrap().mode() & 0o7777,
        0o644,
        "the raw() helper's mode applied to the root"
    );
    assert!(layer.join("f").exists());
}

#[test]
fn a_missing_tar_trailer_is_accepted_but_truncated_data_is_not() {
    let full = tar_of(&[
        E::Dir("bin/", 0o755, 0, 0),
        E::File("bin/tool", vec![9u8; 1000], 0o755, 0, 0),
    ]);
    // umoci insert's output: the last file's data, then nothing (no padding, no zero blocks).
    let unterminated = &full[..512 + 512 + 1000];
    let (_t, layer, _o) = sandbox();
    let u = unpack(unterminated, &layer).unwrap();
    assert_eq!(
        u.diff_id,
        oxcart_image::Digest::sha256_of(unterminated),
        "DiffID over the real bytes only"
    );
    assert_eq!(
        std::fs::read(layer.join("bin/tool")).unwrap(),
        vec![9u8; 1000]
    );
    // Cut inside the file's data: refused, naming the entry.
    let (_t2, layer2, _o2) = sandbox();
    let e = unpack(&full[..512 + 512 + 600], &layer2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bin/tool") && e.contains("inside this entry's data"),
        "{e}"
    );
}

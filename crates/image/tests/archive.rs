//! `load` treats archives as hostile input.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oxcart_image::pull::NoProgress;
use oxcart_image::ImageStore;
use std::path::Path;

fn load(tar: Vec<u8>) -> String {
    let root = tempfile::tempdir().unwrap();
    let mut st = ImageStore::open(root.path()).unwrap();
    let e = st
        .load(
            Box::new(std::io::Cursor::new(tar)),
            Path::new("evil.tar"),
            &NoProgress,
        )
        .unwrap_err()
        .to_string();
    assert!(st.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(root.path().join("tmp")).unwrap().count(),
        0
    );
    e
}

#[test]
fn symlinks_inside_an_archive_are_not_followed_when_reading_it() {
    // docker format: the config path goes through a planted symlink to /etc.
    let manifest = br#"[{"Config":"evil/passwd","RepoTags":["x:1"],"Layers":[]}]"#.to_vec();
    let e = load(tar_of(&[
        E::Symlink("evil", "/etc"),
        E::File("manifest.json", manifest, 0o644, 0, 0),
    ]));
    assert!(e.contains("evil/passwd"), "{e}");
    // OCI format: `blobs` itself is a symlink out of the archive.
    let d = oxcart_image::Digest::sha256_of(b"whatever");
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":8}}]}}"#
    );
    let e = load(tar_of(&[
        E::Symlink("blobs", "/"),
        E::File("index.json", index.into_bytes(), 0o644, 0, 0),
    ]));
    assert!(e.contains(&d.to_string()), "{e}");
    // And `..` in manifest.json paths.
    let manifest = br#"[{"Config":"../../etc/passwd","RepoTags":["x:1"],"Layers":[]}]"#.to_vec();
    let e = load(tar_of(&[E::File("manifest.json", manifest, 0o644, 0, 0)]));
    assert!(e.contains("leaves the archive"), "{e}");
}

#[test]
fn archive_entries_escaping_the_extraction_dir_are_refused() {
    let e = load(tar_of(&[E::Raw(
        b"../../escape".to_vec(),
        tar::EntryType::Regular,
        Vec::new(),
        b"x".to_vec(),
    )]));
    assert!(e.contains("evil.tar") && e.contains("../../escape"), "{e}");
}

//! HTTPS registries: verified with a CA from a certs.d directory, refused without it,
//! and docker's "insecure" handling (HTTPS without verification, plain-HTTP fallback).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oxcart_image::auth::CredentialStore;
use oxcart_image::pull::{NoProgress, PullOptions};
use oxcart_image::registry::Insecure;
use oxcart_image::{ImageStore, Reference};

fn opts(dir: &std::path::Path, insecure: Insecure) -> PullOptions {
    PullOptions {
        platform: None,
        insecure,
        credentials: CredentialStore {
            auth_file: dir.join("auth.json"),
            docker_config: None,
            given: None,
        },
        jobs: 2,
    }
}

#[test]
fn https_registry_with_certs_d_ca_and_basic_auth() {
    let reg = Registry::start_tls(Auth::Basic);
    let mut layout = Layout::new();
    let img = layout.image(
        &[(
            tar_of(&[E::File("tls", b"over https".to_vec(), 0o644, 0, 0)]),
            Comp::Gzip,
        )],
        "amd64",
    );
    layout.tag_manifest(&img, "v1");
    reg.push(layout.path(), "v1", "tls/app", false);
    let dir = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/tls/app:v1", reg.addr)).unwrap();
    let certs = dir.path().join("certs.d");
    let empty = dir.path().join("empty.d");
    std::fs::create_dir_all(certs.join(&reg.addr)).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(
        reg.ca.as_ref().unwrap(),
        certs.join(&reg.addr).join("ca.crt"),
    )
    .unwrap();
    let o = opts(
        dir.path(),
        Insecure::default()
            .with_tls_verify(Some(true))
            .with_certs_dirs(vec![certs.clone()]),
    );
    o.credentials
        .store(
            &reg.addr,
            &oxcart_image::auth::Credentials {
                username: USER.into(),
                password: PASS.into(),
            },
        )
        .unwrap();
    let mut st = ImageStore::open(&dir.path().join("store")).unwrap();

    // Verified against the certs.d CA.
    let rec = st.pull(&r, &o, &NoProgress).unwrap();
    assert_eq!(
        std::fs::read(st.layer_dirs(&rec)[0].join("tls")).unwrap(),
        b"over https"
    );
    st.remove_all().unwrap();

    // Without the CA, verification fails and says which registry.
    let o2 = PullOptions {
        insecure: Insecure::default()
            .with_tls_verify(Some(true))
            .with_certs_dirs(vec![empty]),
        ..o.clone()
    };
    let e = st.pull(&r, &o2, &NoProgress).unwrap_err().to_string();
    assert!(
        e.contains(&reg.addr)
            && (e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer")),
        "{e}"
    );

    // Loopback is insecure by default: HTTPS without verification works (a plain-HTTP
    // attempt would get "Client sent an HTTP request to an HTTPS server").
    let o3 = PullOptions {
        insecure: Insecure::default().with_certs_dirs(vec![]),
        ..o.clone()
    };
    st.pull(&r, &o3, &NoProgress).unwrap();
}

#[test]
fn a_broken_certs_d_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("reg.example:5000")).unwrap();
    std::fs::write(
        dir.path().join("reg.example:5000/ca.crt"),
        b"not a certificate",
    )
    .unwrap();
    let i = Insecure::default().with_certs_dirs(vec![dir.path().to_path_buf()]);
    let e = i.ca_certs("reg.example:5000").unwrap_err().to_string();
    assert!(e.contains("ca.crt"), "{e}");
}

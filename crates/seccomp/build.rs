//! Links libseccomp statically (src/libseccomp.rs says why) and records which archive
//! was linked, so the filter cache can tell a runtime built against another one.
//!
//! Where the archive is: `$LIBSECCOMP_LIB_DIR`, else pkg-config's `libdir` for
//! libseccomp, else the usual library directories. Debian: `apt install libseccomp-dev`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn pkg_config(args: &[&str]) -> Option<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libseccomp")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    for v in ["LIBSECCOMP_LIB_DIR", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let override_dir = env::var_os("LIBSECCOMP_LIB_DIR").filter(|d| !d.is_empty());
    if let Some(d) = &override_dir {
        dirs.push(d.into());
    } else {
        if let Some(d) = pkg_config(&["--variable=libdir"]) {
            dirs.push(d.into());
        }
        for d in [
            format!("/usr/lib/{arch}-linux-gnu"),
            "/usr/lib64".into(),
            "/usr/lib".into(),
            "/usr/local/lib".into(),
        ] {
            dirs.push(d.into());
        }
    }
    let Some(dir) = dirs.iter().find(|d| d.join("libseccomp.a").is_file()) else {
        panic!(
            "libseccomp.a not found in {dirs:?}: install libseccomp-dev (>= 2.5; Debian: \
             apt install libseccomp-dev) or set LIBSECCOMP_LIB_DIR"
        );
    };
    // SCMP_ACT_NOTIFY and the runtime-spec actions need 2.5. pkg-config describes the
    // system's libseccomp, so this early check is only for that archive; compile()
    // checks the linked library's own version at run time in every case.
    if let Some(v) = override_dir
        .is_none()
        .then(|| pkg_config(&["--modversion"]))
        .flatten()
    {
        let mut it = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
        let (maj, min) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        if (maj, min) < (2, 5) {
            panic!("libseccomp {v} is too old: SCMP_ACT_NOTIFY and the runtime-spec actions need >= 2.5");
        }
    }
    let archive = dir.join("libseccomp.a");
    println!("cargo:rerun-if-changed={}", archive.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=seccomp");

    let bytes =
        fs::read(&archive).unwrap_or_else(|e| panic!("cannot read {}: {e}", archive.display()));
    // FNV-1a 64: a digest only to tell archives apart, not a security boundary (the
    // cache entries themselves are checksummed and owner-checked).
    let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let out =
        Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("libseccomp_archive.rs");
    fs::write(
        &out,
        format!("/// FNV-1a 64 of the linked libseccomp.a.\npub const ARCHIVE_DIGEST: u64 = {digest:#018x};\n"),
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

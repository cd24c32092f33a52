//! The sandbox image's program: crates/pause, built static here (the image holds
//! nothing else, so it cannot load a libc).

use std::path::PathBuf;
use std::process::Command;

/// The static pause executable: `$OXCART_PAUSE` when set, else built with cargo into
/// a target dir of its own under cargo's test scratch dir (a second cargo on the
/// workspace's own target dir would wait for the lock of the cargo running us).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("OXCART_PAUSE") {
        return PathBuf::from(p);
    }
    let cargo = std::env::var("CARGO")
        .ok()
        .or(option_env!("CARGO").map(String::from))
        .unwrap_or_else(|| "cargo".into());
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pause-build");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pause/Cargo.toml");
    // Static as scripts/build-runtime.sh builds the runtime: crt-static through
    // --target so only the final link is static. RUSTFLAGS would replace the
    // config's rustflags and silently give a dynamic binary: not passed on.
    let out = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--target", &triple])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--config")
        .arg(format!(
            "target.{triple}.rustflags = [\"-C\", \"target-feature=+crt-static\"]"
        ))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap_or_else(|e| panic!("running {cargo} to build the pause program: {e}"));
    assert!(
        out.status.success(),
        "building crates/pause failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target_dir.join(&triple).join("release/pause");
    let headers = crate::env::run(Command::new("readelf").arg("-lW").arg(&bin));
    assert!(
        !headers.contains("Requesting program interpreter"),
        "{} is dynamically linked: the pause image has no libc",
        bin.display()
    );
    bin
}

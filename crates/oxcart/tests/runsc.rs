//! gVisor's `runsc` (Debian's package) as a runtime configured the way a user would:
//! an engine config file naming it with the flags these hosts need.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;

const RUNSC: &str = "/usr/bin/runsc";

/// An engine whose config file names `runsc` with the arguments these hosts need:
/// `--ignore-cgroups` (runsc's cgroup setup fails on the hybrid hierarchy) and
/// `--network=none` (runsc's default sandbox network wants a namespace with links).
fn ox_with_runsc() -> Ox {
    assert!(
        std::path::Path::new(RUNSC).is_file(),
        "{RUNSC} missing: scripts/setup.sh installs Debian's runsc"
    );
    let ox = new_ox();
    std::fs::write(
        ox.dir.path().join("oxcart.toml"),
        format!(
            "[runtimes.runsc]\npath = \"{RUNSC}\"\nargs = [\"--ignore-cgroups\", \"--network=none\"]\n"
        ),
    )
    .unwrap();
    ox.pulled()
}

/// An engine; the shared registry goes when this binary exits.
fn new_ox() -> Ox {
    clean_images_at_exit();
    Ox::new()
}

#[test]
fn runsc_runs_containers_in_gvisor() {
    let ox = ox_with_runsc();
    let img = ox.image();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "run",
            "--rm",
            "--runtime",
            "runsc",
            "--network",
            "none",
            img,
        ];
        a.extend_from_slice(extra);
        ox.run(&a)
    };
    let o = run(&["echo", "hello"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(run(&["sh", "-c", "exit 3"]).status.code(), Some(3));
    // gVisor's kernel is not the host's: its /proc/version and dmesg are its own.
    let o = run(&["sh", "-c", "cat /proc/version; busybox dmesg"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let host = std::fs::read_to_string("/proc/version").unwrap();
    assert_ne!(out.lines().next().unwrap_or(""), host.trim_end(), "{out}");
    assert!(out.contains("gVisor"), "dmesg shows gVisor's boot: {out}");

    let id = ox
        .ok(&[
            "run",
            "-d",
            "--runtime",
            "runsc",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "trap 'exit 5' TERM; while true; do sleep 0.1; done",
        ])
        .trim()
        .to_string();
    let v = ox.inspect(&id);
    assert_eq!(v["HostConfig"]["Runtime"], "runsc");
    assert_eq!(v["State"]["Running"], true);
    assert_eq!(
        ox.ok(&["exec", &id, "sh", "-c", "echo $IMGVAR"]),
        "from-image\n"
    );
    assert_eq!(
        ox.run(&["exec", &id, "sh", "-c", "exit 4"]).status.code(),
        Some(4)
    );
    // cp both ways into the running sandbox. The engine writes the container's
    // layer (the sandbox's pid has another root); gVisor's gofer serves it. Not /tmp:
    // runsc mounts its own tmpfs over an empty /tmp, which no host path reaches.
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("f");
    std::fs::write(&f, "into gvisor\n").unwrap();
    ox.ok(&["cp", &f.display().to_string(), &format!("{id}:/data/f")]);
    assert_eq!(ox.ok(&["exec", &id, "cat", "/data/f"]), "into gvisor\n");
    let back = host.path().join("back");
    ox.ok(&[
        "cp",
        &format!("{id}:/data/hello.txt"),
        &back.display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "hello from the image\n"
    );
    assert_eq!(ox.ok(&["stop", "-t", "10", &id]).trim(), id);
    let v = ox.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 5, "the trap ran: TERM reached it");
    ox.ok(&["rm", &id]);
    ox.assert_clean();
}

#[test]
fn runsc_without_its_host_flags_fails_with_the_runtimes_error() {
    // Without the config, `--runtime runsc` is found on PATH and run bare: on these
    // hosts runsc then cannot set up its network ("cannot run with network enabled in
    // root network namespace") — the error must be the runtime's, exit 125, with
    // nothing left behind.
    let ox = new_ox().pulled();
    let o = ox.run(&[
        "run",
        "--rm",
        "--runtime",
        "runsc",
        "--network",
        "none",
        ox.image(),
        "true",
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{e}");
    // runsc's own words reach the user: its sandbox refuses to network from the
    // host's namespace (or, on a host where that passes, to set up cgroups).
    assert!(
        e.contains("OCI runtime") && (e.contains("network namespace") || e.contains("cgroup")),
        "{e}"
    );
    ox.assert_clean();
}

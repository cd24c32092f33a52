//! The container verbs and `run` flags run.rs does not cover, end to end against real
//! containers: each with docker's expected output and exit code, and a case that fails.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use std::path::Path;

fn s(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn e(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An engine; the shared registry goes when this binary exits.
fn new_ox() -> Ox {
    clean_images_at_exit();
    Ox::new()
}

#[test]
fn cp_copies_both_ways_with_tar_streams_and_symlinks_stay_in_the_container() {
    let ox = new_ox().pulled();
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    let hs = h.display().to_string();
    std::fs::write(h.join("in.txt"), "to the container\n").unwrap();
    std::fs::write(h.join("secret"), "host secret\n").unwrap();
    let id = ox.detached(&["--name", "cc"], &["sleep", "1000"]);

    // host -> container, container -> host.
    ox.ok(&["cp", &format!("{hs}/in.txt"), "cc:/tmp/in.txt"]);
    assert_eq!(
        ox.ok(&["exec", "cc", "cat", "/tmp/in.txt"]),
        "to the container\n"
    );
    ox.ok(&["cp", "cc:/data/hello.txt", &hs]);
    assert_eq!(
        std::fs::read_to_string(h.join("hello.txt")).unwrap(),
        "hello from the image\n"
    );
    // A directory copies recursively into a new name.
    ox.ok(&["cp", "cc:/data", &format!("{hs}/datacopy")]);
    assert!(h.join("datacopy/hello.txt").is_file());
    assert!(h.join("datacopy/notexec").is_file());

    // container -> `-`: a tar stream of the path, named by its base name.
    let o = ox.run(&["cp", "cc:/data", "-"]);
    assert!(o.status.success(), "{}", e(&o));
    let names = tar_names(&o.stdout);
    assert!(names.iter().any(|n| n == "data/hello.txt"), "{names:?}");
    // `-` -> container: a tar stream extracted into a directory.
    let tar = tar_of(&[
        E::Dir("fromtar/", 0o755, 0, 0),
        E::File("fromtar/x.txt", b"in a tar\n".to_vec(), 0o640, 1000, 1000),
    ]);
    let o = ox.with_stdin(&["cp", "-", "cc:/tmp"], &tar);
    assert!(o.status.success(), "{}", e(&o));
    assert_eq!(
        ox.ok(&[
            "exec",
            "cc",
            "sh",
            "-c",
            "cat /tmp/fromtar/x.txt; stat -c '%u %a' /tmp/fromtar/x.txt"
        ]),
        "in a tar
0 640
",
        "without -a the files belong to root, as docker's cp"
    );
    let o = ox.with_stdin(&["cp", "-a", "-", "cc:/home"], &tar);
    assert!(o.status.success(), "{}", e(&o));
    assert_eq!(
        ox.ok(&["exec", "cc", "stat", "-c", "%u %a", "/home/fromtar/x.txt"]),
        "1000 640
",
        "-a keeps the tar's owners"
    );
    // `-` -> a path that is not a directory is refused.
    let o = ox.with_stdin(&["cp", "-", "cc:/data/hello.txt"], &tar);
    assert_eq!(o.status.code(), Some(125), "{}", e(&o));

    // A symlink in the container pointing at a host path resolves inside the
    // container's root: the host's directory is neither written nor read.
    ox.ok(&[
        "exec",
        "cc",
        "sh",
        "-c",
        &format!("mkdir -p {hs} && ln -s {hs} /data/link && ln -s ../../../../../../../../{hs}/secret /data/up"),
    ]);
    ox.ok(&["cp", &format!("{hs}/in.txt"), "cc:/data/link/written"]);
    assert!(
        !h.join("written").exists(),
        "cp wrote through the symlink to the host"
    );
    assert_eq!(
        ox.ok(&["exec", "cc", "cat", &format!("{hs}/written")]),
        "to the container\n"
    );
    let out = tempfile::tempdir().unwrap();
    let o = ox.run(&[
        "cp",
        "-L",
        "cc:/data/up",
        &out.path().join("got").display().to_string(),
    ]);
    // The link's target is missing in the container: docker's error, and no link is
    // left on the host that would resolve to the host's own file.
    assert_eq!(o.status.code(), Some(125), "{}", s(&o));
    assert!(std::fs::symlink_metadata(out.path().join("got")).is_err());
    assert!(
        e(&o).contains("No such container:path: cc:/data/up"),
        "{}",
        e(&o)
    );
    // Without -L the link itself is copied, as a link.
    ox.ok(&[
        "cp",
        "cc:/data/up",
        &out.path().join("l").display().to_string(),
    ]);
    assert!(std::fs::symlink_metadata(out.path().join("l"))
        .unwrap()
        .file_type()
        .is_symlink());

    // Errors: a missing path in the container, a missing container.
    let o = ox.run(&["cp", "cc:/nosuch", &hs]);
    assert_eq!(o.status.code(), Some(125), "{}", e(&o));
    assert!(e(&o).contains("/nosuch"), "{}", e(&o));
    let err = ox.fail(125, &["cp", "nosuchctr:/a", &hs]);
    assert!(err.contains("No such container"), "{err}");
    ox.ok(&["rm", "-f", &id]);
    ox.assert_clean();
}

#[test]
fn diff_export_commit_and_save_read_the_containers_layer() {
    let ox = new_ox().pulled();
    let id = ox
        .ok(&[
            "run",
            "--name",
            "ch",
            "--network",
            "none",
            ox.image(),
            "sh",
            "-c",
            "echo new > /data/new; echo more >> /data/hello.txt; rm /data/notexec",
        ])
        .to_string();
    assert_eq!(id, "");
    // docker diff: C(hanged), A(dded), D(eleted), in path order. The mount points
    // the runtime made (/etc/hostname, /proc, ...) are left out as podman leaves them
    // out; /etc, their directory, is `C` as under podman (docker hides it in its
    // init layer).
    let d = ox.ok(&["diff", "ch"]);
    let mut lines: Vec<&str> = d.lines().collect();
    let sorted = {
        let mut l = lines.clone();
        l.sort_by_key(|l| l[2..].to_string());
        l
    };
    assert_eq!(lines, sorted, "sorted by path: {d}");
    lines.sort();
    assert_eq!(
        lines,
        [
            "A /data/new",
            "C /data",
            "C /data/hello.txt",
            "C /etc",
            "D /data/notexec"
        ],
        "{d}"
    );
    let err = ox.fail(125, &["diff", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // export: the merged filesystem as a tar.
    let o = ox.run(&["export", "ch"]);
    assert!(o.status.success(), "{}", e(&o));
    let names = tar_names(&o.stdout);
    for want in ["bin/busybox", "data/new", "data/hello.txt", "etc/passwd"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "data/notexec"), "{names:?}");
    let tmp = tempfile::tempdir().unwrap();
    let tarp = tmp.path().join("fs.tar");
    ox.ok(&["export", "-o", &tarp.display().to_string(), "ch"]);
    assert_eq!(tar_names(&std::fs::read(&tarp).unwrap()), names);

    // commit: an image whose top layer is the container's; it runs.
    let digest = ox.ok(&["commit", "ch", "test/committed:v1"]);
    assert!(
        digest.starts_with("sha256:") && digest.trim().len() == 71,
        "{digest}"
    );
    assert_eq!(
        ox.sh(&[], "echo unused").trim(),
        "unused",
        "the base image is unchanged"
    );
    let out = ox.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "test/committed:v1",
        "sh",
        "-c",
        "cat /data/new /data/hello.txt; ls /data",
    ]);
    assert_eq!(out, "new\nhello from the image\nmore\nhello.txt\nnew\n");
    // The image's config is the container's, with --change applied.
    ox.ok(&[
        "commit",
        "--change",
        "CMD [\"cat\", \"/data/new\"]",
        "--change",
        "ENV ADDED=1",
        "ch",
        "test/committed:v2",
    ]);
    assert_eq!(
        ox.ok(&["run", "--rm", "--network", "none", "test/committed:v2"]),
        "new\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "--type", "image", "test/committed:v2"])).unwrap();
    let env = v[0]["Config"]["Env"].to_string();
    assert!(
        env.contains("ADDED=1") && env.contains("IMGVAR=from-image"),
        "{env}"
    );
    let err = ox.fail(125, &["commit", "--change", "BOGUS x", "ch", "test/bad"]);
    assert!(err.contains("BOGUS"), "{err}");
    // save: a docker-archive that lists the committed image.
    let arch = tmp.path().join("img.tar");
    ox.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        &arch.display().to_string(),
        "test/committed:v1",
    ]);
    let names = tar_names(&std::fs::read(&arch).unwrap());
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");
    let m = Command::new("tar")
        .args(["-xOf", &arch.display().to_string(), "manifest.json"])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    let tags = m[0]["RepoTags"].to_string();
    assert!(tags.contains("test/committed:v1"), "{m}");
    assert_eq!(
        m[0]["Layers"].as_array().unwrap().len(),
        2,
        "base + commit: {m}"
    );
    // The committed layer holds the container's changes, whiteout included.
    let top = m[0]["Layers"][1].as_str().unwrap();
    let layer = Command::new("tar")
        .args(["-xOf", &arch.display().to_string(), top])
        .output()
        .unwrap();
    // (compressed or not: tar tells from the file)
    let lp = tmp.path().join("layer");
    std::fs::write(&lp, &layer.stdout).unwrap();
    let l = Command::new("tar").arg("-tf").arg(&lp).output().unwrap();
    assert!(l.status.success(), "{}", String::from_utf8_lossy(&l.stderr));
    let mut names: Vec<String> = String::from_utf8_lossy(&l.stdout)
        .lines()
        .map(|n| n.trim_start_matches("./").to_string())
        .collect();
    names.sort();
    for want in ["data/new", "data/hello.txt", "data/.wh.notexec"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    // ...and not the runtime's mount points (docker's commit leaves out its init
    // layer): the image has no /proc, /sys, /dev or /etc/hostname of its own.
    for stub in [
        "proc/",
        "sys/",
        "dev/",
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
    ] {
        assert!(!names.iter().any(|n| n == stub), "{stub} in {names:?}");
    }
    ox.ok(&["rm", "ch"]);
    ox.ok(&["rmi", "test/committed:v1", "test/committed:v2"]);
    ox.assert_clean();
}

use std::process::Command;

/// The container's own memory limit as it sees it: cgroup v1's memory controller
/// (these hosts are hybrid) or v2's memory.max.
const MEMLIMIT: &str =
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";

#[test]
fn update_changes_a_running_containers_memory_and_keeps_its_devices() {
    let ox = new_ox().pulled();
    let id = ox.detached(&["-m", "64m"], &["sleep", "1000"]);
    assert_eq!(ox.ok(&["exec", &id, "sh", "-c", MEMLIMIT]), "67108864\n");
    assert_eq!(ox.ok(&["update", "--memory", "128m", &id]).trim(), id);
    assert_eq!(ox.ok(&["exec", &id, "sh", "-c", MEMLIMIT]), "134217728\n");
    assert_eq!(ox.inspect(&id)["HostConfig"]["Memory"], 134217728);
    // runc's update once rewrote the device rules to deny-all: /dev/null must still work.
    assert_eq!(
        ox.ok(&[
            "exec",
            &id,
            "sh",
            "-c",
            "echo x > /dev/null && head -c 3 /dev/zero | wc -c"
        ]),
        "3\n"
    );
    let err = ox.fail(125, &["update", "--memory", "lots", &id]);
    assert!(err.contains("--memory"), "{err}");
    let err = ox.fail(125, &["update", "--memory", "64m", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    ox.ok(&["rm", "-f", &id]);
    ox.assert_clean();
}

#[test]
fn restart_runs_the_container_again() {
    let ox = new_ox().pulled();
    let id = ox.detached(
        &["--name", "rr"],
        &[
            "sh",
            "-c",
            "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    assert!(eventually(10, || ox.ok(&["logs", "rr"]) == "started\n"));
    let pid1 = ox.inspect("rr")["State"]["Pid"].as_i64().unwrap();
    let started1 = ox.inspect("rr")["State"]["StartedAt"].clone();
    assert_eq!(ox.ok(&["restart", "-t", "5", "rr"]), "rr\n");
    let v = ox.inspect("rr");
    assert_eq!(v["State"]["Status"], "running");
    assert_ne!(v["State"]["Pid"].as_i64().unwrap(), pid1);
    assert_ne!(v["State"]["StartedAt"], started1);
    assert!(eventually(10, || ox.ok(&["logs", "rr"]) == "started\nstarted\n"));
    // An exited container restarts too.
    ox.ok(&["stop", "rr"]);
    ox.ok(&["restart", "rr"]);
    assert_eq!(ox.inspect("rr")["State"]["Running"], true);
    let err = ox.fail(125, &["restart", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    ox.ok(&["rm", "-f", &id]);
    ox.assert_clean();
}

#[test]
fn attach_and_start_a_i_stream_through_a_pty_and_pipes() {
    let ox = new_ox().pulled();
    // -it container; attach through a real pty; ^P^Q detaches and leaves it running.
    ox.detached(&["-it", "--name", "tty"], &["sh"]);
    let (out, code) = in_pty(
        &ox,
        &["attach", "tty"],
        "echo hi-$((40+2))\n\u{1}\u{10}\u{11}",
    );
    assert!(out.contains("hi-42"), "{out}");
    assert_eq!(code, 0, "{out}");
    assert_eq!(ox.inspect("tty")["State"]["Running"], true, "^P^Q detached");
    // Attach again, and exit the shell: attach returns its exit code.
    let (out, code) = in_pty(&ox, &["attach", "tty"], "echo again\n\u{1}exit 6\n");
    assert!(out.contains("again"), "{out}");
    assert_eq!(code, 6, "{out}");
    assert_eq!(ox.inspect("tty")["State"]["ExitCode"], 6);

    // -i without a tty: attach streams stdin and returns the exit code.
    ox.detached(
        &["-i", "--name", "pipe"],
        &["sh", "-c", "read x; echo got $x; exit 3"],
    );
    let o = ox.with_stdin(&["attach", "pipe"], b"yo\n");
    assert_eq!(s(&o), "got yo\n", "{}", e(&o));
    assert_eq!(o.status.code(), Some(3));
    // Attaching to a stopped container is docker's error.
    let err = ox.fail(125, &["attach", "pipe"]);
    assert!(
        err.contains("You cannot attach to a stopped container"),
        "{err}"
    );

    // start -a -i: the created container's stdin is ours.
    ox.ok(&[
        "create",
        "-i",
        "--name",
        "st",
        "--network",
        "none",
        ox.image(),
        "sh",
        "-c",
        "read x; echo got $x >&2; echo out; exit 4",
    ]);
    let o = ox.with_stdin(&["start", "-a", "-i", "st"], b"in\n");
    assert_eq!(s(&o), "out\n");
    assert!(e(&o).contains("got in"), "{}", e(&o));
    assert_eq!(o.status.code(), Some(4));
    ox.ok(&["rm", "tty", "pipe", "st"]);
    ox.assert_clean();
}

#[test]
fn logs_follow_until_exit_across_rotation_and_filter_by_time() {
    let ox = new_ox().pulled();
    let id = ox.detached(
        &["--log-opt", "max-size=1k", "--log-opt", "max-file=50"],
        &[
            "sh",
            "-c",
            "sleep 0.5; for i in $(seq 1 300); do echo line-$i; done; sleep 0.3; echo last",
        ],
    );
    let o = ox.run(&["logs", "-f", &id]);
    assert!(o.status.success(), "{}", e(&o));
    let want: String = (1..=300)
        .map(|i| format!("line-{i}\n"))
        .chain(["last\n".to_string()])
        .collect();
    assert_eq!(s(&o), want, "followed across rotation");
    assert!(
        ox.ctr_dir(&id).join("ctr.log.3").exists(),
        "the log rotated"
    );

    let id2 = ox.detached(&[], &["sh", "-c", "echo a; sleep 1.2; echo b"]);
    ox.ok(&["wait", &id2]);
    let t = ox.ok(&["logs", "-t", &id2]);
    let ts: Vec<&str> = t.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(ts.len(), 2, "{t}");
    assert_eq!(ox.ok(&["logs", "--since", ts[1], &id2]), "b\n");
    assert_eq!(ox.ok(&["logs", "--until", ts[0], &id2]), "a\n");
    assert_eq!(ox.ok(&["logs", "--since", "0", &id2]), "a\nb\n");
    // A relative duration in the future of both lines: nothing.
    assert_eq!(
        ox.ok(&["logs", "--until", "1970-01-02T00:00:00Z", &id2]),
        ""
    );
    let err = ox.fail(125, &["logs", "--until", "yesterday", &id2]);
    assert!(err.contains("--until"), "{err}");
    ox.ok(&["rm", &id, &id2]);
    ox.assert_clean();
}

#[test]
fn ps_filters_flags_and_formats() {
    let ox = new_ox().pulled();
    let img = ox.image();
    let run = |name: &str, label: &str, cmd: &str| {
        ox.run(&[
            "run",
            "--name",
            name,
            "--network",
            "none",
            "-l",
            label,
            img,
            "sh",
            "-c",
            cmd,
        ]);
    };
    run("ok0", "a=1", "true");
    run("bad3", "a=2", "exit 3");
    let up = ox.detached(&["--name", "up", "-l", "b=1"], &["sleep", "1000"]);
    let created = ox
        .ok(&["create", "--name", "new", "--network", "none", img, "true"])
        .trim()
        .to_string();
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps", "-a", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = ox.ok(&a).lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(names(&["--filter", "status=running"]), ["up"]);
    assert_eq!(names(&["--filter", "status=exited"]), ["bad3", "ok0"]);
    assert_eq!(names(&["--filter", "status=created"]), ["new"]);
    assert_eq!(names(&["--filter", "name=bad"]), ["bad3"]);
    assert_eq!(names(&["--filter", &format!("id={}", &up[..8])]), ["up"]);
    assert_eq!(names(&["--filter", "label=a=1"]), ["ok0"]);
    assert_eq!(names(&["--filter", "label=a"]), ["bad3", "ok0"]);
    assert_eq!(names(&["--filter", "exited=3"]), ["bad3"]);
    assert_eq!(names(&["--filter", "exited=0"]), ["ok0"]);
    assert_eq!(names(&["--filter", &format!("ancestor={img}")]).len(), 4);
    assert!(names(&["--filter", "ancestor=other/image"]).is_empty());
    // Two filters of one key are ORed, of different keys ANDed.
    assert_eq!(
        names(&["--filter", "status=exited", "--filter", "status=created"]),
        ["bad3", "new", "ok0"]
    );
    assert_eq!(
        names(&["--filter", "status=exited", "--filter", "label=a=2"]),
        ["bad3"]
    );
    let err = ox.fail(125, &["ps", "--filter", "bogus=1"]);
    assert!(err.contains("bogus"), "{err}");
    let err = ox.fail(125, &["ps", "--filter", "status=sleepy"]);
    assert!(err.contains("sleepy"), "{err}");

    // -q: running only, short ids; -aq all; --no-trunc full ids; -l / -n newest.
    assert_eq!(ox.ok(&["ps", "-q"]), format!("{}\n", &up[..12]));
    assert_eq!(ox.ok(&["ps", "-aq"]).lines().count(), 4);
    assert_eq!(ox.ok(&["ps", "-q", "--no-trunc"]), format!("{up}\n"));
    assert_eq!(ox.ok(&["ps", "-lq", "--no-trunc"]), format!("{created}\n"));
    let n2 = ox.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]);
    assert_eq!(n2, "new\nup\n", "newest first");
    let sz = ox.ok(&["ps", "-s"]);
    let header = sz.lines().next().unwrap();
    assert!(header.ends_with("SIZE"), "{sz}");
    assert!(sz.lines().nth(1).unwrap().contains("(virtual "), "{sz}");

    // table templates get docker's headers; json one object per line.
    let t = ox.ok(&["ps", "-a", "--format", "table {{.Names}}\t{{.Status}}"]);
    let mut lines = t.lines();
    let h = lines.next().unwrap();
    assert!(
        h.starts_with("NAMES") && h.trim_end().ends_with("STATUS"),
        "{t}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "{t}");
    let bad = rows.iter().find(|r| r.starts_with("bad3")).unwrap();
    assert!(bad.contains("Exited (3) "), "{t}");
    let col = h.find("STATUS").unwrap();
    assert!(
        rows.iter()
            .all(|r| r.len() > col && r.as_bytes()[col - 1] == b' '),
        "aligned: {t}"
    );
    let js = ox.ok(&["ps", "-a", "--format", "json"]);
    let objs: Vec<serde_json::Value> = js
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 4);
    let u = objs.iter().find(|o| o["Names"] == "up").unwrap();
    assert_eq!(u["ID"], &up[..12]);
    assert_eq!(u["State"], "running");
    assert_eq!(u["Image"], img);
    assert!(u["Labels"].as_str().unwrap().contains("b=1"), "{u}");
    ox.ok(&["rm", "-f", "ok0", "bad3", "up", "new"]);
    ox.assert_clean();
}

#[test]
fn inspect_by_type_and_templates() {
    let ox = new_ox().pulled();
    let host = tempfile::tempdir().unwrap();
    let hs = host.path().display().to_string();
    ox.ok(&[
        "create",
        "--name",
        "ii",
        "--network",
        "none",
        "-v",
        &format!("{hs}:/m:ro"),
        "-e",
        "E=1",
        ox.image(),
        "true",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "--type", "image", ox.image()])).unwrap();
    assert!(v[0]["Id"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v[0]["Config"]["WorkingDir"], "/data");
    let err = ox.fail(125, &["inspect", "--type", "container", ox.image()]);
    assert!(err.contains("No such container"), "{err}");
    let err = ox.fail(125, &["inspect", "--type", "image", "ii"]);
    assert!(err.contains("No such image"), "{err}");
    let err = ox.fail(125, &["inspect", "--type", "volume", "ii"]);
    assert!(err.contains("volume"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "--type", "container", "ii"])).unwrap();
    assert_eq!(v[0]["Name"], "/ii");
    // Templates: json of a sub-object, range over mounts.
    let cfg: serde_json::Value =
        serde_json::from_str(&ox.ok(&["inspect", "-f", "{{json .Config}}", "ii"])).unwrap();
    assert_eq!(cfg["Cmd"], serde_json::json!(["true"]));
    assert!(cfg["Env"].to_string().contains("E=1"));
    assert_eq!(
        ox.ok(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}} {{.Source}}:{{.Destination}} {{.RW}}{{end}}",
            "ii"
        ]),
        format!("bind {hs}:/m false\n")
    );
    // Several objects: one line each; a missing one fails the command after the rest.
    let o = ox.run(&["inspect", "-f", "{{.Name}}", "ii", "nosuch"]);
    assert_eq!(s(&o), "/ii\n");
    assert_eq!(o.status.code(), Some(125), "{}", e(&o));
    assert!(e(&o).contains("nosuch"), "{}", e(&o));
    let err = ox.fail(125, &["inspect", "-f", "{{.Config.Cmd", "ii"]);
    assert!(err.contains("template"), "{err}");
    ox.ok(&["container", "rm", "ii"]);
    ox.assert_clean();
}

#[test]
fn mounts_binds_tmpfs_and_read_only() {
    let ox = new_ox().pulled();
    let host = tempfile::tempdir().unwrap();
    let hs = host.path().display().to_string();
    std::fs::write(host.path().join("f"), "host file\n").unwrap();
    // :ro is enforced; reading works.
    let o = ox.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{hs}:/m:ro"),
        ox.image(),
        "sh",
        "-c",
        "cat /m/f; touch /m/new",
    ]);
    assert_eq!(s(&o), "host file\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(e(&o).contains("Read-only file system"), "{}", e(&o));
    assert!(!host.path().join("new").exists());
    // rw by default: the write reaches the host.
    ox.sh(&["-v", &format!("{hs}:/m")], "echo w > /m/new");
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).unwrap(),
        "w\n"
    );
    // --mount type=bind,readonly and type=tmpfs; --tmpfs.
    let out = ox.sh(
        &[
            "--mount", &format!("type=bind,source={hs},target=/b,readonly"),
            "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
            "--tmpfs", "/scratch:size=2m",
        ],
        "cat /b/f; touch /b/x 2>/dev/null && echo WROTE; grep -E ' /(t|scratch) ' /proc/mounts | cut -d' ' -f2,3,4 | tr ',' ' ' | cut -d' ' -f1-4; echo ok > /t/a && cat /t/a",
    );
    let _ = out;
    let out = ox.sh(
        &[
            "--mount", &format!("type=bind,source={hs},target=/b,readonly"),
            "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
            "--tmpfs", "/scratch:size=2m",
        ],
        "cat /b/f; touch /b/x 2>/dev/null && echo WROTE; grep -E ' /(t|scratch) ' /proc/mounts; echo ok > /t/a && cat /t/a",
    );
    assert!(
        out.starts_with("host file\n") && !out.contains("WROTE"),
        "{out}"
    );
    let t = out.lines().find(|l| l.contains(" /t ")).unwrap();
    assert!(
        t.starts_with("tmpfs /t tmpfs rw") && t.contains("size=1024k"),
        "{out}"
    );
    let sc = out.lines().find(|l| l.contains(" /scratch ")).unwrap();
    assert!(
        sc.starts_with("tmpfs /scratch tmpfs rw") && sc.contains("size=2048k"),
        "{out}"
    );
    assert!(out.ends_with("ok\n"), "{out}");
    // --read-only: the root is read-only; /dev/shm and a --tmpfs stay writable.
    let o = ox.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp",
        ox.image(),
        "sh",
        "-c",
        "touch /tmp/a && touch /dev/shm/a && echo writable; touch /data/x",
    ]);
    assert_eq!(s(&o), "writable\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(e(&o).contains("Read-only file system"), "{}", e(&o));
    // Bad mounts: named clearly, nothing left.
    let err = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--mount",
            "type=bogus,target=/x",
            ox.image(),
            "true",
        ],
    );
    assert!(err.contains("bogus"), "{err}");
    let missing = format!("{hs}/missing");
    let err = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={missing},target=/x"),
            ox.image(),
            "true",
        ],
    );
    assert!(
        err.contains("bind source path does not exist") && err.contains(&missing),
        "{err}"
    );
    assert!(
        !Path::new(&missing).exists(),
        "--mount never creates its source"
    );
    ox.assert_clean();
}

/// A hex capability mask from /proc/self/status.
fn caps(status: &str, key: &str) -> u64 {
    let l = status.lines().find(|l| l.starts_with(key)).unwrap();
    u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn security_flags_land_in_the_process() {
    let ox = new_ox().pulled();
    let st = ox.sh(&[], "cat /proc/self/status");
    // docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(caps(&st, "CapEff:"), 0xa80425fb, "{st}");
    assert!(st.contains("NoNewPrivs:\t0"), "{st}");
    let st = ox.sh(
        &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
        "cat /proc/self/status",
    );
    assert_eq!(caps(&st, "CapEff:"), 1 << 12, "{st}");
    let st = ox.sh(
        &["--cap-drop", "CHOWN", "--cap-add", "SYS_ADMIN"],
        "cat /proc/self/status",
    );
    assert_eq!(caps(&st, "CapEff:"), (0xa80425fb & !1) | (1 << 21), "{st}");
    let err = ox.fail(
        125,
        &["run", "--rm", "--cap-add", "NOT_A_CAP", ox.image(), "true"],
    );
    assert!(err.contains("NOT_A_CAP"), "{err}");
    // --privileged: every capability the host has, and the host's devices.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let st = ox.sh(&["--privileged"], "cat /proc/self/status; ls /dev");
    assert_eq!(caps(&st, "CapEff:"), caps(&host, "CapBnd:"), "{st}");
    assert!(st.contains("Seccomp:\t0"), "no seccomp filter: {st}");
    assert!(
        st.lines().any(|l| l == "loop-control" || l == "kmsg"),
        "{st}"
    );
    let st = ox.sh(&[], "grep Seccomp: /proc/self/status");
    assert_eq!(st, "Seccomp:\t2\n", "docker's default profile is a filter");
    let st = ox.sh(
        &["--security-opt", "no-new-privileges"],
        "cat /proc/self/status",
    );
    assert!(st.contains("NoNewPrivs:\t1"), "{st}");
    let err = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--security-opt",
            "bogus=1",
            ox.image(),
            "true",
        ],
    );
    assert!(err.contains("bogus"), "{err}");
    // --init: pid 1 is the init, the command its child.
    let out = ox.sh(&["--init"], "echo $$; cat /proc/1/cmdline | tr '\\0' ' '");
    let mut l = out.lines();
    assert_ne!(l.next().unwrap(), "1", "{out}");
    // docker's form: its init at /sbin/docker-init, the command after `--`.
    assert!(
        l.next()
            .unwrap()
            .starts_with("/sbin/docker-init -- sh -c echo $$;"),
        "{out}"
    );
    assert_eq!(ox.sh(&[], "echo $$"), "1\n");
    ox.assert_clean();
}

#[test]
fn resource_flags_land_in_the_cgroup_and_limits() {
    let ox = new_ox().pulled();
    let out = ox.sh(
        &["-m", "32m", "--pids-limit", "50"],
        &format!("{MEMLIMIT}; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"),
    );
    assert_eq!(out, "33554432\n50\n");
    let out = ox.sh(
        &["--ulimit", "nofile=512:1024"],
        "grep 'open files' /proc/self/limits",
    );
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&f[3..5], ["512", "1024"], "{out}");
    let err = ox.fail(
        125,
        &["run", "--rm", "--ulimit", "nofile=x", ox.image(), "true"],
    );
    assert!(err.contains("--ulimit") || err.contains("nofile"), "{err}");
    let out = ox.sh(&["--shm-size", "16m"], "grep ' /dev/shm ' /proc/mounts");
    assert!(out.contains("size=16384k"), "{out}");
    let out = ox.sh(&[], "grep ' /dev/shm ' /proc/mounts");
    assert!(out.contains("size=65536k"), "docker's 64m default: {out}");
    let host_port =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_eq!(
        ox.sh(&[], "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"),
        "0\n",
        "docker's default for a container's own network namespace (since 20.10)"
    );
    let out = ox.sh(
        &["--sysctl", "net.ipv4.ip_unprivileged_port_start=80"],
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
    );
    assert_eq!(out, "80\n");
    // ...in the container's network namespace only.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(),
        host_port
    );
    // --network none: a network namespace of its own with only lo.
    let out = ox.sh(&[], "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    assert_eq!(out, "lo\n");
    // A sysctl that is not namespaced is refused (docker: "not allowed").
    let o = ox.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--sysctl",
        "kernel.panic=5",
        ox.image(),
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", e(&o));
    assert!(e(&o).contains("kernel.panic"), "{}", e(&o));
    ox.assert_clean();
}

#[test]
fn stop_signal_rm_d_and_prune() {
    let ox = new_ox().pulled();
    let id = ox.detached(
        &["--stop-signal", "USR1"],
        &[
            "sh",
            "-c",
            "trap 'exit 9' USR1; trap 'exit 1' TERM; while true; do sleep 0.1; done",
        ],
    );
    assert_eq!(ox.inspect(&id)["Config"]["StopSignal"], "USR1");
    ox.ok(&["stop", "-t", "10", &id]);
    assert_eq!(ox.inspect(&id)["State"]["ExitCode"], 9);
    ox.ok(&["rm", &id]);
    let err = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--stop-signal",
            "SIGNOPE",
            ox.image(),
            "true",
        ],
    );
    assert!(err.contains("SIGNOPE"), "{err}");

    // --rm -d: the monitor removes it after it exits.
    let id = ox.detached(&["--rm"], &["sh", "-c", "sleep 0.3"]);
    assert!(
        eventually(20, || ox.ok(&["ps", "-aq"]).is_empty()
            && !ox.ctr_dir(&id).exists()),
        "{id} not removed"
    );

    // container prune: stopped ones only; --filter label= narrows it.
    let img = ox.image();
    for (n, l) in [("p1", "keep=no"), ("p2", "keep=yes")] {
        ox.ok(&[
            "run",
            "--name",
            n,
            "--network",
            "none",
            "-l",
            l,
            img,
            "true",
        ]);
    }
    let up = ox.detached(&["--name", "p3"], &["sleep", "1000"]);
    // Without -f, docker's question on stdout and one line of stdin, terminal or not:
    // anything but y/Y (end of input included) removes nothing, exit 0.
    for no in [&b"n\n"[..], b"", b"yes\n"] {
        let o = ox.with_stdin(&["container", "prune"], no);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
        );
    }
    assert_eq!(ox.ok(&["ps", "-aq"]).lines().count(), 3);
    let p1 = ox.inspect("p1")["Id"].as_str().unwrap().to_string();
    let out = ox.ok(&["container", "prune", "-f", "--filter", "label!=keep=yes"]);
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{p1}\n")),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let out = ox.ok(&["container", "prune", "-f"]);
    assert!(
        out.contains("Deleted Containers:\n") && !out.contains(&up),
        "{out}"
    );
    assert_eq!(ox.ok(&["ps", "-a", "--format", "{{.Names}}"]), "p3\n");
    let err = ox.fail(125, &["container", "prune", "-f", "--filter", "colour=red"]);
    assert!(err.contains("colour"), "{err}");
    // The same question for the other prunes; Y is a yes.
    ox.ok(&["network", "create", "prunenet"]);
    let o = ox.with_stdin(&["network", "prune"], b"N\n");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("[y/N] "),
        "{o:?}"
    );
    assert!(ox.ok(&["network", "ls"]).contains("prunenet"));
    let o = ox.with_stdin(&["network", "prune"], b"Y\n");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("prunenet"),
        "{o:?}"
    );
    assert!(!ox.ok(&["network", "ls"]).contains("prunenet"));

    // rmi of an image in use names the container, with or without -f.
    for f in [&["rmi"][..], &["rmi", "-f"][..]] {
        let mut a = f.to_vec();
        a.push(img);
        let err = ox.fail(125, &a);
        assert!(err.contains(&up[..12]), "{err}");
    }
    ox.ok(&["container", "rm", "-f", "p3"]);
    ox.assert_clean();
}

#[test]
fn completion_scripts_and_container_aliases() {
    let ox = new_ox();
    let bash = ox.ok(&["completion", "bash"]);
    assert!(bash.contains("oxcart"), "{bash}");
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c.bash");
    std::fs::write(&p, &bash).unwrap();
    let st = Command::new("bash").arg("-n").arg(&p).status().unwrap();
    assert!(st.success(), "bash -n rejects the script");
    assert!(ox.ok(&["completion", "zsh"]).starts_with("#compdef oxcart"));
    let fish = ox.ok(&["completion", "fish"]);
    assert!(fish.contains("complete -c oxcart"), "{fish}");
    let o = ox.run(&["completion", "tcsh"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(e(&o).contains("tcsh"), "{}", e(&o));

    // `container <verb>` answers as the top-level verb does.
    let ox = ox.pulled();
    let id = ox
        .ok(&[
            "container",
            "create",
            "--name",
            "al",
            "--network",
            "none",
            ox.image(),
            "true",
        ])
        .trim()
        .to_string();
    assert_eq!(
        ox.ok(&["container", "ls", "-aq", "--no-trunc"]),
        format!("{id}\n")
    );
    assert_eq!(ox.ok(&["container", "ps", "-aq"]), ox.ok(&["ps", "-aq"]));
    assert_eq!(ox.ok(&["container", "start", "-a", "al"]), "");
    assert_eq!(
        ox.ok(&["container", "inspect", "-f", "{{.State.ExitCode}}", "al"]),
        "0\n"
    );
    assert_eq!(ox.ok(&["container", "rm", "al"]), "al\n");
    let err = ox.fail(125, &["container", "rm", "al"]);
    assert!(err.contains("No such container: al"), "{err}");
    ox.assert_clean();
}

#[test]
fn runc_takes_the_same_flags_and_updates() {
    assert!(
        Path::new("/usr/sbin/runc").exists(),
        "runc is not installed (scripts/setup.sh installs it)"
    );
    clean_images_at_exit();
    let ox = Ox::with_runtime("runc").pulled();
    let st = ox.sh(
        &["--cap-drop", "ALL", "--security-opt", "no-new-privileges"],
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
    );
    assert_eq!(st, "CapEff:\t0000000000000000\nNoNewPrivs:\t1\n");
    let out = ox.sh(
        &["--read-only", "--tmpfs", "/tmp", "--init", "--pids-limit", "40"],
        "touch /tmp/a && echo tmp-ok; touch /x 2>/dev/null || echo ro; cat /proc/1/comm; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    );
    assert_eq!(out, "tmp-ok\nro\ndocker-init\n40\n");
    // update under runc: the limit moves, the device rules stay.
    let id = ox.detached(&["-m", "64m"], &["sleep", "1000"]);
    ox.ok(&["update", "-m", "96m", &id]);
    assert_eq!(ox.ok(&["exec", &id, "sh", "-c", MEMLIMIT]), "100663296\n");
    assert_eq!(
        ox.ok(&["exec", &id, "sh", "-c", "echo x > /dev/null && echo ok"]),
        "ok\n"
    );
    // cp and diff read the same overlay whatever the runtime.
    ox.ok(&["exec", &id, "sh", "-c", "echo hi > /data/r.txt"]);
    let o = ox.run(&["cp", &format!("{id}:/data/r.txt"), "-"]);
    assert_eq!(tar_names(&o.stdout), ["r.txt"]);
    assert!(ox.ok(&["diff", &id]).contains("A /data/r.txt"));
    ox.ok(&["rm", "-f", &id]);
    ox.assert_clean();
}

#[test]
fn commit_pauses_a_running_container_and_update_applies_to_a_stopped_one() {
    let ox = new_ox().pulled();
    let id = ox.detached(
        &["--name", "live"],
        &[
            "sh",
            "-c",
            "echo x > /data/live.txt; while true; do sleep 0.1; done",
        ],
    );
    assert!(eventually(10, || ox
        .run(&["exec", "live", "test", "-f", "/data/live.txt"])
        .status
        .success()));
    ox.ok(&["commit", "live", "test/live:1"]);
    assert_eq!(
        ox.inspect("live")["State"]["Status"],
        "running",
        "unpaused after"
    );
    assert_eq!(
        ox.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "test/live:1",
            "cat",
            "/data/live.txt"
        ]),
        "x\n"
    );
    // A stopped container's resources change for its next start (docker allows it).
    ox.ok(&["stop", "-t", "0", "live"]);
    ox.ok(&["update", "--memory", "48m", "live"]);
    assert_eq!(ox.inspect("live")["HostConfig"]["Memory"], 48 << 20);
    ox.ok(&["start", "live"]);
    assert_eq!(ox.ok(&["exec", "live", "sh", "-c", MEMLIMIT]), "50331648\n");
    // cp into a read-only root is refused (docker: "marked read-only").
    let ro = ox.detached(&["--read-only"], &["sleep", "1000"]);
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "f\n").unwrap();
    let err = ox.fail(
        125,
        &[
            "cp",
            &host.path().join("f").display().to_string(),
            &format!("{ro}:/data/"),
        ],
    );
    assert!(err.to_lowercase().contains("read-only"), "{err}");
    ox.ok(&["rm", "-f", &id, &ro]);
    ox.ok(&["rmi", "test/live:1"]);
    ox.assert_clean();
}

#[test]
fn cp_sees_a_running_containers_mounts() {
    let ox = new_ox().pulled();
    let host = tempfile::tempdir().unwrap();
    let hs = host.path().display().to_string();
    std::fs::write(host.path().join("f"), "host f\n").unwrap();
    let id = ox.detached(
        &["-v", &format!("{hs}:/m"), "--tmpfs", "/t"],
        &[
            "sh",
            "-c",
            "echo tmp > /t/x; while true; do sleep 0.1; done",
        ],
    );
    assert!(eventually(10, || ox
        .run(&["exec", &id, "test", "-f", "/t/x"])
        .status
        .success()));
    // Out of a bind and a tmpfs: what the container sees there.
    let o = ox.run(&["cp", &format!("{id}:/m/f"), "-"]);
    assert!(o.status.success(), "{}", e(&o));
    assert_eq!(tar_names(&o.stdout), ["f"]);
    let o = ox.run(&["cp", &format!("{id}:/t/x"), "-"]);
    assert!(o.status.success(), "{}", e(&o));
    // Into a bind: the file reaches the host's directory and the container sees it,
    // rather than landing in the layer beneath the mount.
    ox.ok(&["cp", &format!("{hs}/f"), &format!("{id}:/m/g")]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("g")).unwrap(),
        "host f\n"
    );
    assert_eq!(ox.ok(&["exec", &id, "cat", "/m/g"]), "host f\n");
    assert!(!ox.ok(&["diff", &id]).contains("/m/g"));
    ox.ok(&["rm", "-f", &id]);
    ox.assert_clean();
}

/// `oxcart-runtime state ID` through the binary, on the engine's runtime root:
/// its status, or "gone" when the binary does not know the container.
fn binary_state(ox: &Ox, id: &str) -> String {
    let (rt, _) = helper_bins();
    let o = Command::new(rt)
        .arg("--root")
        .arg(ox.runroot().join("runtime").join("oxcart-runtime"))
        .args(["state", id])
        .output()
        .unwrap();
    if !o.status.success() {
        assert!(e(&o).contains("does not exist"), "{}", e(&o));
        return "gone".into();
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["status"].as_str().unwrap().to_string()
}

/// The engine calls its own runtime's library for start, kill, state and delete
/// (`OXCART_RUNTIME_CLI=1` forces the binary): both work on the same state, so a
/// container one path made or changed is what the other reads.
#[test]
fn the_runtime_library_and_binary_share_a_containers_state() {
    let ox = new_ox().pulled();
    let id = ox.detached(&["--name", "lb"], &["sleep", "1000"]);
    assert_eq!(binary_state(&ox, &id), "running");
    // kill and the runtime's delete by the library; the binary sees the result.
    ox.ok(&["stop", "-t", "0", "lb"]);
    assert_eq!(ox.inspect("lb")["State"]["Status"], "exited");
    assert_eq!(binary_state(&ox, &id), "gone");
    // started by the binary, stopped and removed by the library.
    let o = ox
        .cmd()
        .env("OXCART_RUNTIME_CLI", "1")
        .args(["start", "lb"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", e(&o));
    assert_eq!(binary_state(&ox, &id), "running");
    assert_eq!(ox.inspect("lb")["State"]["Running"], true);
    let err = ox.fail(125, &["kill", "-s", "NOSUCHSIG", "lb"]);
    assert!(err.to_lowercase().contains("signal"), "{err}");
    // pid 1 of a pid namespace ignores a signal it has no handler for
    // (pid_namespaces(7)), except SIGKILL.
    ox.ok(&["kill", "-s", "USR1", "lb"]);
    assert_eq!(binary_state(&ox, &id), "running");
    ox.ok(&["kill", "lb"]);
    assert!(eventually(10, || ox.inspect("lb")["State"]["Status"] == "exited"));
    // The monitor records the exit first (an `inspect` right after an attached run
    // must not say running) and then has the runtime delete the container: `kill`
    // returns before either, so the state is gone soon after, not at once.
    assert!(eventually(10, || binary_state(&ox, &id) == "gone"));
    ox.ok(&["start", "lb"]);
    assert_eq!(binary_state(&ox, &id), "running");
    let o = ox
        .cmd()
        .env("OXCART_RUNTIME_CLI", "1")
        .args(["rm", "-f", "lb"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", e(&o));
    assert_eq!(binary_state(&ox, &id), "gone");
    ox.assert_clean();
}

/// docker's `image` group: `ls`, `inspect`, `tag`, `rm` answer as their top-level
/// twins; `history` shows the config's history newest first (the top row the image's
/// ID, a layer's size on the entries that made one); `prune` takes the dangling
/// images, or with `-a` the unused ones its label filters select, and names a bad
/// filter before asking or removing anything.
#[test]
fn the_image_group_answers_as_dockers() {
    let ox = Ox::new().pulled();
    let img = ox.image();
    assert_eq!(ox.ok(&["image", "ls"]), ox.ok(&["images"]));
    assert_eq!(ox.ok(&["image", "list", "-q"]), ox.ok(&["images", "-q"]));
    assert_eq!(
        ox.ok(&["image", "inspect", "-f", "{{.Id}} {{.Os}}", img]),
        ox.ok(&["inspect", "--type", "image", "-f", "{{.Id}} {{.Os}}", img])
    );
    let e = ox.fail(125, &["image", "inspect", "nosuch"]);
    assert!(e.contains("nosuch"), "{e}");

    // Two commits to one name: the first is left dangling.
    ox.ok(&[
        "create",
        "--name",
        "src",
        "--network",
        "none",
        img,
        "touch",
        "/made",
    ]);
    ox.ok(&["start", "-a", "src"]);
    let first = ox.ok(&["commit", "-m", "first", "src", "test/hist:v1"]);
    let second = ox.ok(&["commit", "-m", "second cut", "src", "test/hist:v1"]);
    assert_ne!(first, second);
    let h = ox.ok(&["image", "history", "test/hist:v1"]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE")
            && lines[0].contains("CREATED BY")
            && lines[0].ends_with("COMMENT"),
        "{h}"
    );
    // The base image has no history; the commit's entry is the one row (docker's
    // own commit makes the same config).
    assert_eq!(lines.len(), 2, "{h}");
    let short = &second.trim()["sha256:".len()..][..12];
    assert!(lines[1].starts_with(short), "{h}");
    assert!(
        lines[1].contains("touch /made") && lines[1].ends_with("second cut"),
        "{h}"
    );
    assert!(lines[1].contains("ago"), "{h}");
    assert_eq!(
        ox.ok(&["image", "history", "-q", "test/hist:v1"]),
        format!("{short}\n")
    );
    let full = ox.ok(&[
        "image",
        "history",
        "--no-trunc",
        "-H=false",
        "--format",
        "{{.ID}}|{{.CreatedAt}}|{{.Size}}|{{.Comment}}",
        "test/hist:v1",
    ]);
    let f: Vec<&str> = full.trim().split('|').collect();
    assert_eq!(f[0], second.trim(), "{full}");
    assert!(f[1].len() >= 20 && f[1].contains('T'), "{full}");
    assert!(f[2].parse::<u64>().is_ok_and(|n| n > 0), "{full}");
    assert_eq!(f[3], "second cut");
    // The same rows from docker's top-level `history` (absolute times: the
    // relative ones move between two commands); a bare -H/--human is the boolean
    // (pflag's), the next word stays the image.
    let abs = ox.ok(&["image", "history", "-H=false", "test/hist:v1"]);
    assert_eq!(ox.ok(&["history", "-H=false", "test/hist:v1"]), abs);
    let f = "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}";
    let human = ox.ok(&["image", "history", "--format", f, "test/hist:v1"]);
    assert!(
        human.contains("|touch /made|") && human.ends_with("|second cut\n"),
        "{human}"
    );
    assert_eq!(
        ox.ok(&["history", "--format", f, "-H", "test/hist:v1"]),
        human
    );
    assert_eq!(
        ox.ok(&["image", "history", "--format", f, "--human", "test/hist:v1"]),
        human
    );
    let e = ox.fail(125, &["image", "history", "nosuch"]);
    assert!(e.contains("nosuch"), "{e}");

    // prune: a bad filter first, nothing asked or removed.
    let e = ox.fail(125, &["image", "prune", "-f", "--filter", "bogus=1"]);
    assert!(e.contains("invalid filter 'bogus'"), "{e}");
    let before = ox.ok(&["images", "-q", "--no-trunc"]);
    assert!(before.contains(first.trim()), "{before}");
    // Without -f it asks; "n" keeps everything.
    let o = ox.with_stdin(&["image", "prune"], b"n\n");
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .starts_with("WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "),
        "{o:?}"
    );
    assert_eq!(ox.ok(&["images", "-q", "--no-trunc"]), before);
    // Both commits hold the same layer (the same diff of `src`): removing the first
    // frees no layer, and docker counts only the layers it deletes.
    let out = ox.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with(&format!("Deleted Images:\ndeleted: {}\n", first.trim()))
            && out.ends_with("\n\nTotal reclaimed space: 0B\n"),
        "{out}"
    );
    assert_eq!(
        ox.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // -a with a label filter: the committed image carries the base's label; the
    // base is held by `src`, so only the commit goes, untagged then deleted.
    let out = ox.ok(&[
        "image",
        "prune",
        "-a",
        "-f",
        "--filter",
        "label=org.test.image=yes",
    ]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: ")
            && out.contains(&format!("deleted: {}", second.trim())),
        "{out}"
    );
    assert!(
        ox.ok(&["images"]).contains("test/bb"),
        "the base image stays"
    );
    let out = ox.ok(&[
        "image",
        "prune",
        "-a",
        "-f",
        "--filter",
        "label!=org.test.image",
    ]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    // tag and rm under the group.
    ox.ok(&["image", "tag", img, "test/again:1"]);
    assert!(ox
        .ok(&["image", "rm", "test/again:1"])
        .contains("Untagged: "));
    ox.ok(&["rm", "src"]);
    ox.assert_clean();
}

//! Scenario steps that are the same against every engine (`api.rs` runs them
//! against oxcart's service, `api_podman.rs` against podman's). What an engine
//! answers differently comes in as an expectation, or is returned for the caller
//! to assert where that engine's own checks are.

use super::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Stdio};

// ---- ping, version and info ----

/// `/_ping` GET and HEAD, bare and prefixed: 200, `API-Version: 1.41`, `OK` (nothing
/// for HEAD); and `OSType: linux` there or not as `ostype` says. Then `version` and
/// `info` through both CLIs on an engine without containers.
pub fn ping_version_and_info(api: &Api, ostype: bool) {
    for (m, path) in [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/v1.41/_ping"),
    ] {
        let (code, head, body) = api.raw(m, path, b"");
        assert_eq!(code, 200, "{m} {path}: {head}");
        let h = head.to_ascii_lowercase();
        assert!(h.contains("api-version: 1.41"), "{head}");
        assert_eq!(h.contains("ostype: linux"), ostype, "{head}");
        assert_eq!(body, if m == "HEAD" { &b""[..] } else { &b"OK"[..] });
    }
    for d in DOCKERS {
        let v = api.ok(
            d,
            &[
                "version",
                "--format",
                "{{.Server.APIVersion}} {{.Server.Os}}",
            ],
        );
        assert_eq!(v.trim(), "1.41 linux", "{d}");
        let i = api.ok(d, &["info", "--format", "{{.OSType}} {{.Containers}}"]);
        assert_eq!(i.trim(), "linux 0", "{d}");
    }
}

// ---- run, attached and detached ----

/// `run --rm` attached with `d`: stdout and stderr apart, and `code` as the CLI's
/// exit code for a process exiting 3.
pub fn run_rm_attached(api: &Api, d: &str, img: &str, code: i32) {
    let script = "echo out; echo err >&2; exit 3";
    let o = api.docker(
        d,
        &["run", "--rm", "--network", "none", img, "sh", "-c", script],
    );
    assert_eq!(o.status.code(), Some(code), "{d}: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n", "{d}");
    assert!(stderr(&o).contains("err\n"), "{d}: {}", stderr(&o));
}

/// A detached container labelled `k=v` that logs `started` and sleeps: its full id,
/// its log, listed by the newer CLI as up with its label, and inspected as running
/// with a `Networks` object (never null). Its id.
pub fn run_detached(api: &Api, img: &str) -> String {
    let id = api.ok(
        OLD,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            "k=v",
            img,
            "sh",
            "-c",
            "echo started; exec sleep 100",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(eventually(10, || api.ok(OLD, &["logs", id]) == "started\n"));
    let ps = api.ok(NEW, &["ps", "--format", "{{.ID}} {{.Status}} {{.Labels}}"]);
    assert!(
        ps.starts_with(&id[..12]) && ps.contains("Up ") && ps.contains("k=v"),
        "{ps}"
    );
    let v: serde_json::Value = serde_json::from_str(&api.ok(OLD, &["inspect", id])).unwrap();
    assert_eq!(v[0]["State"]["Running"], true);
    assert!(
        v[0]["NetworkSettings"]["Networks"].is_object(),
        "Networks never null: {v}"
    );
    id.to_string()
}

/// `docker events` of container `id` from the start of the journal to a second
/// from now, one status a line.
pub fn events_of(api: &Api, id: &str) -> String {
    let until = (unix_now() + 1).to_string();
    let filter = format!("container={id}");
    api.ok(
        OLD,
        &[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            &filter,
            "--format",
            "{{.Status}}",
        ],
    )
}

// ---- attach before start, wait conditions ----

/// `start -a` attaches before the start (the first line is not lost) and has the
/// exit code; `wait` on the exited container answers at once with it; and
/// `wait?condition=next-exit` sends its headers before the next exit and the code
/// after it. The (exited) container's id.
pub fn start_attached_and_wait_next_exit(api: &Api, img: &str) -> String {
    let d = OLD;
    let id = api.ok(
        d,
        &[
            "create",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "echo first; echo second; exit 4",
        ],
    );
    let id = id.trim().to_string();
    let o = api.docker(d, &["start", "-a", &id]);
    assert_eq!(stdout(&o), "first\nsecond\n");
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(api.ok(d, &["wait", &id]).trim(), "4");
    let mut s = UnixStream::connect(&api.sock).unwrap();
    s.write_all(format!("POST /v1.41/containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    api.ok(d, &["start", &id]);
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&rest).contains("StatusCode") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&rest).contains("\"StatusCode\":4"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    id
}

/// `wait?condition=removed` on an `--rm` container exiting 2 returns once it is
/// gone, with `want` as its `StatusCode`. Its id.
pub fn wait_removed(api: &Api, img: &str, want: i64) -> String {
    let id = api.ok(
        OLD,
        &[
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "sleep 1; exit 2",
        ],
    );
    let id = id.trim();
    let (c, v) = api.json(
        "POST",
        &format!("/containers/{id}/wait?condition=removed"),
        "",
    );
    assert_eq!((c, v["StatusCode"].as_i64()), (200, Some(want)), "{v}");
    let o = api.docker(OLD, &["inspect", id]);
    assert!(
        !o.status.success(),
        "the --rm container is gone once wait returns"
    );
    id.to_string()
}

// ---- a terminal ----

/// What the terminal scenario expects of an engine.
pub struct TtyExpect {
    /// The exit code `docker run -it --rm` reports for a process exiting 5.
    pub rm_exit: i32,
    /// Whether the container's tty has the client's size before its process runs.
    pub sized_before_start: bool,
    /// The exit codes accepted for `docker exec ID nosuchcmd`.
    pub missing_cmd: &'static [i32],
}

/// `run -it` and `exec -it` through a real pty with both CLIs, `exec -i` with
/// stdout and stderr apart, and an exec's exit code as soon as its stream ends.
pub fn run_it_and_exec_it(api: &Api, img: &str, want: &TtyExpect) {
    for d in DOCKERS {
        let (out, code) = api.docker_in_pty(
            d,
            &[
                "run",
                "-it",
                "--rm",
                "--network",
                "none",
                img,
                "sh",
                "-c",
                "stty size; read x; echo got-$x; exit 5",
            ],
            "hello\r",
        );
        assert_eq!(code, want.rm_exit, "{d}: {out}");
        assert!(out.contains("got-hello"), "{d}: {out}");
        if want.sized_before_start {
            assert!(!out.contains("0 0"), "{d}: the tty was never sized: {out}");
        }
    }
    let id = api.ok(
        OLD,
        &["run", "-d", "--network", "none", img, "sleep", "100"],
    );
    let id = id.trim();
    for d in DOCKERS {
        let (out, code) = api.docker_in_pty(
            d,
            &[
                "exec",
                "-it",
                id,
                "sh",
                "-c",
                "tty; read y; echo exec-$y; exit 7",
            ],
            "there\r",
        );
        assert_eq!(code, 7, "{d}: {out}");
        assert!(
            out.contains("/dev/pts/") && out.contains("exec-there"),
            "{d}: {out}"
        );
        // Without a tty: stdout and stderr apart, the exit code, stdin to its end.
        let c = api.docker_cmd(
            d,
            &["exec", "-i", id, "sh", "-c", "cat; echo e >&2; exit 9"],
        );
        let o = output_with_stdin(c, b"piped input\n");
        assert_eq!(o.status.code(), Some(9), "{d}: {}", stderr(&o));
        assert_eq!(stdout(&o), "piped input\n", "{d}");
        assert_eq!(stderr(&o), "e\n", "{d}");
        let o = api.docker(d, &["exec", id, "nosuchcmd"]);
        assert!(
            o.status
                .code()
                .is_some_and(|c| want.missing_cmd.contains(&c)),
            "{d}: {:?} {}",
            o.status.code(),
            stderr(&o)
        );
    }
    // The exec's exit code is there as soon as its stream ends.
    let (code, v) = api.json(
        "POST",
        &format!("/containers/{id}/exec"),
        r#"{"Cmd":["sh","-c","exit 3"],"AttachStdout":true,"AttachStderr":true}"#,
    );
    assert_eq!(code, 201, "{v}");
    let eid = v["Id"].as_str().unwrap().to_string();
    let (code, _, _) = api.raw(
        "POST",
        &format!("/exec/{eid}/start"),
        br#"{"Detach":false,"Tty":false}"#,
    );
    assert_eq!(code, 200);
    let (_, v) = api.json("GET", &format!("/exec/{eid}/json"), "");
    assert_eq!(
        (v["Running"].as_bool(), v["ExitCode"].as_i64()),
        (Some(false), Some(3)),
        "{v}"
    );
    api.ok(OLD, &["rm", "-f", id]);
}

// ---- logs, cp, the state verbs ----

/// Starts container `verbs` (`line1`..`line3` a second apart, then `bye` on stderr,
/// then a long sleep) and a `logs -f` of it; once `bye` is logged, `logs --tail 1`
/// is that stderr line alone. Its id and the follower (see `assert_followed`).
pub fn verbs_followed(api: &Api, d: &str, img: &str) -> (String, Child) {
    let id = api.ok(
        d,
        &[
            "run",
            "-d",
            "--name",
            "verbs",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 1; done; echo bye >&2; sleep 100",
        ],
    );
    let mut follow = api.docker_cmd(d, &["logs", "-f", "verbs"]);
    follow.stdout(Stdio::piped()).stderr(Stdio::piped());
    let follow = follow.spawn().unwrap();
    assert!(eventually(20, || stderr(
        &api.docker(d, &["logs", "verbs"])
    ) == "bye\n"));
    let o = api.docker(d, &["logs", "--tail", "1", "verbs"]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("", "bye\n"),
        "the last line is stderr's"
    );
    (id.trim().to_string(), follow)
}

/// The `logs -f` of `verbs_followed`, once its container was killed: it streamed
/// everything, stdout and stderr apart, and stopped with the container.
pub fn assert_followed(follow: Child) {
    let o = follow.wait_with_output().unwrap();
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("line1\nline2\nline3\n", "bye\n")
    );
}

/// `docker cp` both ways with the running container `ctr` (of the test image), through
/// `host`; a path out of the container's root resolves inside it.
pub fn cp_both_ways(api: &Api, d: &str, ctr: &str, host: &Path) {
    let cat = |path: &str| api.ok(d, &["exec", ctr, "cat", path]);
    std::fs::create_dir_all(host).unwrap();
    std::fs::write(host.join("in.txt"), "into the container\n").unwrap();
    api.ok(
        d,
        &[
            "cp",
            host.join("in.txt").to_str().unwrap(),
            &format!("{ctr}:/tmp/"),
        ],
    );
    assert_eq!(cat("/tmp/in.txt"), "into the container\n");
    api.ok(
        d,
        &[
            "cp",
            &format!("{ctr}:/data/hello.txt"),
            host.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(host.join("hello.txt")).unwrap(),
        "hello from the image\n"
    );
    api.ok(
        d,
        &[
            "cp",
            &format!("{ctr}:/../../../../etc/hostname"),
            host.join("h").to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(host.join("h")).unwrap(),
        cat("/etc/hostname"),
        "resolved in the container's root"
    );
}

/// `docker stats --no-stream` of container `name` through CLI `dk`: its line of
/// name, memory use and pids, computed by the CLI from the engine's stats JSON.
pub fn stats_line(api: &Api, dk: &str, name: &str) -> String {
    api.ok(
        dk,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            name,
        ],
    )
}

/// A detached `sleep 100` without network, labelled `label`, run with `d`; its id.
pub fn sleeper_labelled(api: &Api, d: &str, label: &str, img: &str) -> String {
    let id = api.ok(
        d,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            label,
            img,
            "sleep",
            "100",
        ],
    );
    id.trim().to_string()
}

/// A container labelled `role=db`, found by `GET /containers/json` with the label
/// filter in both of its JSON shapes (one row each, returned) and by the newer
/// CLI's `ps --filter`.
pub fn ps_label_filters(api: &Api, d: &str, img: &str) -> Vec<serde_json::Value> {
    sleeper_labelled(api, d, "role=db", img);
    let mut rows = Vec::new();
    for f in [r#"{"label":{"role=db":true}}"#, r#"{"label":["role=db"]}"#] {
        let path = format!(
            "/containers/json?filters={}",
            f.replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('[', "%5B")
                .replace(']', "%5D")
                .replace('=', "%3D")
                .replace(':', "%3A")
        );
        let (code, v) = api.json("GET", &path, "");
        assert_eq!(code, 200, "{v}");
        let found = v.as_array().unwrap();
        assert_eq!(found.len(), 1, "{f}: {v}");
        rows.push(found[0].clone());
    }
    let ps = api.ok(NEW, &["ps", "-q", "--filter", "label=role=db"]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
    rows
}

/// Removes every container through the API.
pub fn rm_all(api: &Api, d: &str) {
    for c in api.ok(d, &["ps", "-aq"]).lines() {
        api.ok(d, &["rm", "-f", c]);
    }
}

// ---- images, networks, volumes, df ----

/// After `img` was pulled: `GET /images/{img}/json` in docker's shape (a
/// `ContainerConfig`, the image's working directory); a pull of what the registry
/// does not have fails; `tag` to `other/name:v1`, listed by the newer CLI.
pub fn image_inspect_and_tag(api: &Api, d: &str, img: &str) {
    let (code, v) = api.json("GET", &format!("/images/{img}/json"), "");
    assert_eq!(code, 200, "{v}");
    assert!(
        v["ContainerConfig"].is_object(),
        "ContainerConfig present: {v}"
    );
    assert_eq!(v["Config"]["WorkingDir"], "/data");
    let o = api.docker(
        d,
        &["pull", &format!("{}/test/nosuch:latest", images().reg.addr)],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    api.ok(d, &["tag", img, "other/name:v1"]);
    let list = api.ok(NEW, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(list.contains("other/name:v1"), "{list}");
}

/// `images` filters after `image_inspect_and_tag`: by label (map and list shapes, the
/// image's `org.test.image=yes`), by reference (a name, a glob; the tags shown
/// narrowed to it where `narrows`, as dockerd does; every tag of the image otherwise),
/// dangling; a filter that matches nothing lists nothing.
pub fn image_list_filters(api: &Api, d: &str, img: &str, narrows: bool) {
    let ids = |args: &[&str]| {
        let mut a = vec!["images", "-q", "--no-trunc"];
        a.extend_from_slice(args);
        let out = api.ok(d, &a);
        let mut v: Vec<String> = out.lines().map(String::from).collect();
        v.dedup();
        v
    };
    let all = ids(&[]);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(ids(&["--filter", "label=org.test.image=yes"]), all);
    assert_eq!(ids(&["--filter", "label=org.test.image"]), all);
    assert!(ids(&["--filter", "label=org.test.image=no"]).is_empty());
    assert!(ids(&["--filter", "label=org.testcontainers.session-id=x"]).is_empty());
    assert!(ids(&["--filter", "dangling=true"]).is_empty());
    let refs = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        a.extend_from_slice(args);
        api.ok(d, &a)
    };
    for by in [&["other/name"][..], &["--filter", "reference=*/name:v*"]] {
        let got = refs(by);
        if narrows {
            assert_eq!(got, "other/name:v1\n", "{by:?}");
        } else {
            let mut lines: Vec<&str> = got.lines().collect();
            lines.sort();
            assert_eq!(lines, [img, "other/name:v1"], "{by:?}");
        }
    }
    assert_eq!(refs(&["--filter", "reference=nosuch"]), "");
    for f in [
        r#"{"label":{"org.test.image=yes":true}}"#,
        r#"{"label":["org.test.image=yes"]}"#,
    ] {
        let (code, v) = api.json(
            "GET",
            &format!("/images/json?filters={}", url_escape(f)),
            "",
        );
        assert_eq!(code, 200, "{v}");
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{f}: {v}");
    }
}

/// `save` of `other/name:v1` to `tar`, `rmi`, `load` back: the outputs of `rmi` and
/// `load`, for the caller to check. Then `rmi` of a missing image: `No such image`.
pub fn save_rmi_load(api: &Api, d: &str, tar: &Path) -> (String, String) {
    let tar = tar.to_str().unwrap();
    api.ok(d, &["save", "-o", tar, "other/name:v1"]);
    let rmi = api.ok(d, &["rmi", "other/name:v1"]);
    let load = api.ok(d, &["load", "-i", tar]);
    // A body that is no archive: the stream ends with docker's errorDetail, which
    // the CLI prints and exits 1 on.
    let junk = format!("{tar}.junk");
    std::fs::write(&junk, b"not a tar at all").unwrap();
    let o = api.docker(d, &["load", "-i", &junk]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(!stderr(&o).trim().is_empty(), "{o:?}");
    let o = api.docker(d, &["rmi", "nosuch:latest"]);
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));
    (rmi, load)
}

/// `network create --label t=1 apinet`: a full id, listed next to `bridge`.
pub fn network_created(api: &Api, d: &str) {
    let net = api.ok(d, &["network", "create", "--label", "t=1", "apinet"]);
    assert_eq!(net.trim().len(), 64, "{net}");
    let ls = api.ok(d, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls.contains("apinet") && ls.contains("bridge"), "{ls}");
}

/// A container on network `apinet` with volume `apivol` at /v: it writes and reads
/// the volume, then prints its address when `hostname -i` finds one. Its output.
pub fn run_on_apinet_with_apivol(api: &Api, d: &str, img: &str) -> String {
    api.ok(
        d,
        &[
            "run",
            "--rm",
            "--network",
            "apinet",
            "-v",
            "apivol:/v",
            img,
            "sh",
            "-c",
            "echo hi > /v/f; cat /v/f; hostname -i 2>/dev/null || true",
        ],
    )
}

/// `system df` has its sections, and the API's `Command` is the plain line in both
/// the container list and `/system/df`, as docker's.
pub fn df_and_listed_command(api: &Api, d: &str, img: &str) {
    let df = api.ok(d, &["system", "df"]);
    assert!(
        df.contains("Images") && df.contains("Local Volumes"),
        "{df}"
    );
    let cid = api.ok(d, &["create", "--name", "dfcmd", img, "sleep", "5"]);
    let (_, ps) = api.json("GET", "/containers/json?all=1", "");
    let (_, sdf) = api.json("GET", "/system/df", "");
    for list in [&ps, &sdf["Containers"]] {
        let c = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Id"] == cid.trim())
            .unwrap();
        assert_eq!(c["Command"], "sleep 5", "{c}");
    }
    api.ok(d, &["rm", "dfcmd"]);
}

/// `volume rm apivol` and `network rm apinet`: both gone.
pub fn rm_volume_and_network(api: &Api, d: &str) {
    api.ok(d, &["volume", "rm", "apivol"]);
    let o = api.docker(d, &["volume", "inspect", "apivol"]);
    assert!(!o.status.success());
    api.ok(d, &["network", "rm", "apinet"]);
    let o = api.docker(d, &["network", "inspect", "apinet"]);
    assert!(!o.status.success());
}

/// `container prune` removes a stopped container.
pub fn container_prune(api: &Api, d: &str, img: &str) {
    api.ok(d, &["create", "--network", "none", img, "true"]);
    let out = api.ok(d, &["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
}

// ---- docker-compose ----

/// The compose project of the compose scenario in `dir`: `web` serves the named
/// volume, which the image's /data fills on first use, on an ephemeral published
/// port (empty HostPort); `worker` logs `worker-up`; both on network `back`.
pub fn write_compose_project(dir: &Path, img: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3.7"
services:
  web:
    image: {img}
    command: ["busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/data"]
    ports: ["8080"]
    volumes: ["data:/data"]
    networks: [back]
  worker:
    image: {img}
    command: ["sh", "-c", "echo worker-up; exec sleep 1000"]
    depends_on: [web]
    networks: [back]
networks:
  back: {{}}
volumes:
  data: {{}}
"#
        ),
    )
    .unwrap();
}

/// The compose scenario's end: `restart` of the worker, which comes back up; then
/// `down -v` (containers, network and volume).
pub fn compose_restart_worker_and_down(api: &Api, dir: &Path) {
    api.compose_ok(dir, &["restart", "-t", "1", "worker"]);
    let ps = api.compose_ok(dir, &["ps"]);
    assert!(ps.contains("apiproj_worker_1") && ps.contains("Up"), "{ps}");
    api.compose_ok(dir, &["down", "-v", "-t", "1"]);
}

// ---- testcontainers-python ----

/// testcontainers-python (argv[1]: the image): a container serving the image's /data
/// on an exposed port, waited for by its log line; prints `BODY` and what it served,
/// then `ID` and the container's id, and removes it on leaving the `with`.
pub const TESTCONTAINERS_SCRIPT: &str = r#"
import sys, urllib.request
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs
img = sys.argv[1]
c = (DockerContainer(img)
     .with_command(["sh", "-c", "echo server-ready; exec busybox httpd -f -p 8080 -h /data"])
     .with_exposed_ports(8080)
     .with_kwargs(network_mode="bridge"))
with c:
    wait_for_logs(c, "server-ready", timeout=30)
    host = c.get_container_host_ip()
    port = c.get_exposed_port(8080)
    body = urllib.request.urlopen(f"http://{host}:{port}/hello.txt", timeout=10).read().decode()
    print("BODY", body.strip())
    print("ID", c.get_wrapped_container().id)
"#;

// ---- the API from inside a container ----

/// As Ryuk does: from inside a container that has the service's socket and the
/// static docker CLI bind-mounted, the API version, then every container labelled
/// `reap=me` listed and removed. The labelled container's id and the output.
pub fn reap_from_inside(api: &Api, img: &str) -> (String, String) {
    assert!(
        Path::new(NEW).exists(),
        "the static docker CLI ({NEW}) is what the container runs"
    );
    let sock = format!("{}:/var/run/docker.sock", api.sock.display());
    let cli = format!("{NEW}:/usr/bin/docker:ro");
    let id = sleeper_labelled(api, OLD, "reap=me", img);
    let out = api.ok(
        OLD,
        &[
            "run", "--rm", "--network", "none", "-v", &sock, "-v", &cli, "-e", "HOME=/tmp", img,
            "sh", "-c", "docker version --format '{{.Server.APIVersion}}' && docker ps -q --filter label=reap=me | while read id; do docker rm -f $id; done",
        ],
    );
    (id.trim().to_string(), out)
}

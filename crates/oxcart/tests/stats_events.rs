//! `stats`, `events` and OOM kills end to end against real containers: docker's
//! columns and units, the event sequence a follower sees, filters, `--since/--until`,
//! the journal's bound, and `OOMKilled` with its `oom` event.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn new_ox() -> Ox {
    clean_images_at_exit();
    Ox::new()
}

/// Bytes of a docker size cell (`12.5MiB`, `1.2kB`, `0B`).
fn bytes_of(cell: &str) -> f64 {
    let cell = cell.trim();
    let split = cell
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(cell.len());
    let (n, unit) = cell.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("size {cell:?}"));
    let mul = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("unit of {cell:?}"),
    };
    n * mul
}

/// The memory usage in bytes `stats --no-stream` reports for one container.
fn mem_usage(ox: &Ox, name: &str) -> f64 {
    let out = ox.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", name]);
    bytes_of(out.split(" / ").next().unwrap())
}

#[test]
fn stats_shows_memory_a_container_allocated_in_dockers_columns() {
    let ox = new_ox().pulled();
    // 48 MiB written to the container's tmpfs is memory it uses (shmem is never
    // counted as inactive file cache, which docker subtracts).
    ox.detached(
        &["--name", "hog", "--memory", "256m"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null; touch /tmp/done; sleep 1000",
        ],
    );
    ox.detached(&["--name", "idle"], &["sleep", "1000"]);
    assert!(eventually(30, || ox
        .run(&["exec", "hog", "test", "-f", "/tmp/done"])
        .status
        .success()));
    let used = mem_usage(&ox, "hog");
    let mib = 1024.0 * 1024.0;
    assert!(
        used >= 48.0 * mib && used < 100.0 * mib,
        "hog uses {used} bytes"
    );
    assert!(mem_usage(&ox, "idle") < 16.0 * mib);
    // No limit on the container or above it: docker's limit is the host's memory
    // (MemTotal), however the cgroup's "no limit" is read.
    let out = ox.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "idle"]);
    let limit = bytes_of(out.trim().split(" / ").nth(1).unwrap());
    let total = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap()
        * 1024.0;
    assert!(
        (limit - total).abs() / total < 1e-3,
        "idle's limit {out:?}, MemTotal {total}"
    );

    // The default table: docker's header and one row per running container.
    let out = ox.ok(&["stats", "--no-stream"]);
    let lines: Vec<&str> = out.lines().collect();
    let cols: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    let hog = lines.iter().find(|l| l.contains(" hog ")).unwrap();
    assert!(hog.contains(" / 256MiB "), "the limit: {hog}");
    // busybox sh execs its last command: sleep alone.
    assert!(hog.trim_end().ends_with(" 1"), "pids: {hog}");
    assert!(!out.contains("\x1b["), "no screen control with --no-stream");

    // json: docker's fields, one object per line.
    let out = ox.ok(&["stats", "--no-stream", "--format", "json", "hog"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    for k in [
        "BlockIO",
        "CPUPerc",
        "Container",
        "ID",
        "MemPerc",
        "MemUsage",
        "Name",
        "NetIO",
        "PIDs",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    assert_eq!(v["Container"], "hog");
    assert_eq!(v["Name"], "hog");
    assert_eq!(v["ID"].as_str().unwrap().len(), 12);
    let pct: f64 = v["MemPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(pct > 18.0 && pct < 40.0, "{v}");

    // A stopped container, with -a: docker's zeros.
    ox.ok(&["create", "--name", "never", ox.image(), "true"]);
    let out = ox.ok(&[
        "stats",
        "-a",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}",
    ]);
    assert!(
        out.lines()
            .any(|l| l == "never|0.00%|0B / 0B|0B / 0B|0B / 0B|0"),
        "{out}"
    );
    assert!(!ox.ok(&["stats", "--no-stream"]).contains("never"));
    let err = ox.fail(125, &["stats", "--no-stream", "no-such-ctr"]);
    assert!(err.contains("no-such-ctr"), "{err}");
}

/// `stats` lists what `ps` calls running, however the container's monitor and
/// process fared: its own pass (the monitor's files and the cgroup's processes,
/// without `observe`) must agree with the whole state. Each case fails if the pass
/// trusted the wrong one: a live container whose monitor was SIGKILLed (files say
/// started, the monitor is gone, the cgroup still holds `sleep`), one that exited
/// (exit.json), a paused one (frozen processes still count), one on a bridge
/// (its network counters read through its pid), one under its own cgroup parent
/// (its figures read there, not under the default parent).
#[test]
fn stats_lists_what_ps_calls_running() {
    let ox = new_ox().pulled();
    for name in ["orphaned", "paused", "plain"] {
        ox.detached(&["--name", name], &["sleep", "1000"]);
    }
    let parent = format!("/oxcart-test-stats-{}", std::process::id());
    ox.detached(
        &["--name", "parented", "--cgroup-parent", &parent],
        &["sleep", "1000"],
    );
    // On the default bridge (`detached` gives `--network none`).
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "bridged",
        ox.image(),
        "sleep",
        "1000",
    ]);
    ox.fail(
        3,
        &[
            "run",
            "--name",
            "exited",
            "--network",
            "none",
            ox.image(),
            "sh",
            "-c",
            "exit 3",
        ],
    );
    ox.ok(&["pause", "paused"]);
    let id = ox
        .ok(&["inspect", "--format", "{{.Id}}", "orphaned"])
        .trim()
        .to_string();
    let m: Value =
        serde_json::from_slice(&std::fs::read(ox.ctr_dir(&id).join("monitor.json")).unwrap())
            .unwrap();
    // SAFETY: the monitor is a process this test started (through oxcart).
    unsafe { libc::kill(m["pid"].as_i64().unwrap() as i32, libc::SIGKILL) };
    assert!(eventually(10, || !std::path::Path::new(&format!(
        "/proc/{}",
        m["pid"]
    ))
    .exists()));

    let names = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ox.ok(args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let running = names(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(
        running,
        ["bridged", "orphaned", "parented", "paused", "plain"]
    );
    assert_eq!(
        names(&["stats", "--no-stream", "--format", "{{.Name}}"]),
        running
    );
    let rows = names(&[
        "stats",
        "-a",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
    ]);
    assert_eq!(rows.len(), 6, "{rows:?}");
    for r in &rows {
        let zero = r.ends_with(" 0 0B / 0B");
        assert_eq!(zero, r.starts_with("exited "), "{rows:?}");
    }
    // The bridge's counters, read through the container's pid once its monitor
    // is proven alive: a knock on its gateway counts; `--network none` has none.
    let gw = ox.ok(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        "bridged",
    ]);
    // A connection attempt to the gateway (refused, but its packets count).
    let knock = format!("busybox nc -w 1 {} 9 </dev/null; true", gw.trim());
    ox.ok(&["exec", "bridged", "sh", "-c", &knock]);
    let net = ox.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.NetIO}}",
        "bridged",
        "plain",
    ]);
    let net: Vec<&str> = net.lines().collect();
    assert_ne!(net[0], "0B / 0B", "{net:?}");
    assert_eq!(net[1], "0B / 0B", "{net:?}");
    // The same in a pass over every container.
    let all = names(&["stats", "--no-stream", "--format", "{{.Name}} {{.NetIO}}"]);
    for r in &all {
        let zero = r.ends_with(" 0B / 0B");
        assert_eq!(zero, !r.starts_with("bridged "), "{all:?}");
    }
    ox.ok(&["unpause", "paused"]);
    ox.ok(&[
        "rm", "-f", "orphaned", "paused", "plain", "bridged", "exited", "parented",
    ]);
    ox.assert_clean();
    // The parent stays after its last container, as docker's does: this test made
    // it, so it removes it (empty now) from every hierarchy.
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = h.path().join(parent.trim_start_matches('/'));
        if p.exists() {
            std::fs::remove_dir(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

#[test]
fn stats_streams_and_redraws() {
    let ox = new_ox().pulled();
    ox.detached(&["--name", "busy"], &["sh", "-c", "while :; do :; done"]);
    let mut child = ox
        .cmd()
        .args(["stats", "--format", "{{.Name}} {{.CPUPerc}}", "busy"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_lines(&mut child);
    let mut frames = Vec::new();
    while frames.len() < 3 {
        let l = lines.recv_timeout(Duration::from_secs(20)).unwrap();
        frames.push(l);
    }
    let _ = child.kill();
    let _ = child.wait();
    for f in &frames {
        assert!(f.starts_with("\x1b[2J\x1b[H"), "{f:?}");
    }
    // A spinning shell uses most of a CPU between two samples.
    let pct: f64 = frames[2]
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(pct > 20.0, "{frames:?}");
}

/// Lines of a child's stdout, through a channel (so a test can time out).
fn read_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// `oxcart events ARGS` following in the background, once it has the journal open
/// (a follower reads from where the journal ended when it opened it).
fn follower(ox: &Ox, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = ox
        .cmd()
        .arg("events")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(eventually(20, || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten().any(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|p| p.ends_with("events/events.log"))
                })
            })
            .unwrap_or(false)
    }));
    let rx = read_lines(&mut child);
    (child, rx)
}

/// Lines until one satisfies `last`, or the bound passes (then the test fails on
/// what it has).
fn collect_until(rx: &mpsc::Receiver<String>, last: impl Fn(&str) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(30)) {
        let done = last(&l);
        got.push(l);
        if done {
            break;
        }
    }
    got
}

fn actions(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|_| panic!("{l}"));
            format!(
                "{} {}",
                v["Type"].as_str().unwrap(),
                v["Action"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn events_follower_sees_run_stop_rm_in_dockers_order_and_shape() {
    let ox = new_ox().pulled();
    let since = (unix_now() - 1).to_string();
    let (mut all, rx_all) = follower(&ox, &["--format", "json"]);
    let (mut ctr_only, rx_ctr) = follower(
        &ox,
        &[
            "--filter",
            "type=container",
            "--filter",
            "container=web",
            "--format",
            "{{json .}}",
        ],
    );
    let id = ox.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        ox.image(),
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    ox.ok(&["stop", "-t", "1", "web"]);
    ox.ok(&["rm", "web"]);
    let got = collect_until(&rx_ctr, |l| l.contains("\"destroy\""));
    let _ = ctr_only.kill();
    let _ = ctr_only.wait();
    // docker 20.10's sequence for run -d / stop / rm (sleep as PID 1 ignores SIGTERM:
    // the stop's SIGKILL follows).
    assert_eq!(
        actions(&got),
        [
            "container create",
            "container start",
            "container kill",
            "container kill",
            "container die",
            "container stop",
            "container destroy"
        ],
        "{got:#?}"
    );
    let v: Vec<Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for e in &v {
        assert_eq!(e["Actor"]["ID"], id);
        assert_eq!(e["id"], id);
        assert_eq!(e["status"], e["Action"]);
        assert_eq!(e["from"], ox.image());
        assert_eq!(e["scope"], "local");
        assert_eq!(e["Actor"]["Attributes"]["name"], "web");
        assert_eq!(e["Actor"]["Attributes"]["image"], ox.image());
        assert_eq!(e["Actor"]["Attributes"]["tier"], "front");
        let tn = e["timeNano"].as_i64().unwrap();
        assert_eq!(e["time"].as_i64().unwrap(), tn / 1_000_000_000);
    }
    assert_eq!(v[2]["Actor"]["Attributes"]["signal"], "15");
    assert_eq!(v[3]["Actor"]["Attributes"]["signal"], "9");
    assert_eq!(v[4]["Actor"]["Attributes"]["exitCode"], "137");

    // The unfiltered follower saw the bridge network's connect and disconnect too.
    let got = collect_until(&rx_all, |l| l.contains("\"destroy\""));
    let _ = all.kill();
    let _ = all.wait();
    let acts = actions(&got);
    assert_eq!(
        acts,
        [
            "container create",
            "network connect",
            "container start",
            "container kill",
            "container kill",
            "container die",
            "network disconnect",
            "container stop",
            "container destroy"
        ],
        "{got:#?}"
    );
    let net: Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(net["Actor"]["Attributes"]["container"], id);
    assert_eq!(net["Actor"]["Attributes"]["name"], "bridge");
    assert!(net.get("status").is_none(), "{net}");

    // The past: --since/--until return at once; filters and templates.
    let until = (unix_now() + 1).to_string();
    let out = ox.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--format",
        "{{.Status}} {{.ID}} {{.Actor.Attributes.exitCode}} {{.Type}}",
    ]);
    assert_eq!(out, format!("die {id} 137 container\n"));
    let out = ox.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "label=tier=front",
    ]);
    assert_eq!(out.lines().count(), 7, "{out}");
    let first = out.lines().next().unwrap();
    // docker's default line: time, type, action, id, sorted attributes.
    let (time, rest) = first.split_once(' ').unwrap();
    // RFC3339NanoFixed: always nine fraction digits, then the zone.
    assert_eq!(&time[19..20], ".", "{time}");
    assert!(time[20..29].bytes().all(|b| b.is_ascii_digit()), "{time}");
    assert_eq!(
        rest,
        // The image's labels are the container's too, as docker merges them.
        format!(
            "container create {id} (image={}, name=web, org.test.image=yes, tier=front)",
            ox.image()
        )
    );
    let out = ox.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=network",
    ]);
    assert_eq!(out.lines().count(), 2, "{out}");
    // An until in the past ends at once with nothing newer.
    let out = ox.ok(&["events", "--until", &since]);
    assert_eq!(out, "");
    let err = ox.fail(125, &["events", "--filter", "colour=red"]);
    assert!(err.contains("Invalid filter 'colour'"), "{err}");
}

#[test]
fn events_of_the_other_verbs() {
    let ox = new_ox().pulled();
    let (mut f, rx) = follower(&ox, &["--format", "json"]);
    ox.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "v1",
        ox.image(),
        "sleep",
        "1000",
    ]);
    ox.ok(&["pause", "v1"]);
    ox.ok(&["unpause", "v1"]);
    ox.ok(&["rename", "v1", "v2"]);
    assert_eq!(
        ox.run(&["exec", "v2", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    ox.ok(&["kill", "-s", "USR1", "v2"]);
    ox.ok(&["volume", "create", "vol1"]);
    ox.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "vol1:/v:ro",
        ox.image(),
        "true",
    ]);
    ox.ok(&["volume", "rm", "vol1"]);
    ox.ok(&["network", "create", "evnet"]);
    ox.ok(&["network", "rm", "evnet"]);
    ox.ok(&["tag", ox.image(), "evtag:1"]);
    ox.ok(&["rm", "-f", "v2"]);
    let got = collect_until(&rx, |l| {
        l.contains("\"destroy\"") && l.contains("\"name\":\"v2\"")
    });
    let _ = f.kill();
    let _ = f.wait();
    let acts = actions(&got);
    let want = [
        "container create",
        "container start",
        "container pause",
        "container unpause",
        "container rename",
        "container exec_create: sh -c exit 3",
        "container exec_start: sh -c exit 3",
        "container exec_die",
        "container kill",
        "volume create",
        "container create",
        "container attach",
        "volume mount",
        "container start",
        "container die",
        "volume unmount",
        "container destroy",
        "volume destroy",
        "network create",
        "network destroy",
        "image tag",
        "container kill",
        "container die",
        "container destroy",
    ];

    assert_eq!(acts, want, "{got:#?}");
    let mount: Value = serde_json::from_str(&got[12]).unwrap();
    assert_eq!(mount["Actor"]["ID"], "vol1");
    assert_eq!(mount["Actor"]["Attributes"]["destination"], "/v");
    assert_eq!(mount["Actor"]["Attributes"]["read/write"], "false");
    // The --rm container's events are done; the rest is as before.
    let got: Vec<String> = got[..10].iter().chain(&got[17..]).cloned().collect();
    let v: Vec<Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[4]["Actor"]["Attributes"]["oldName"], "/v1");
    assert_eq!(v[4]["Actor"]["Attributes"]["name"], "v2");
    assert_eq!(v[7]["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(
        v[5]["Actor"]["Attributes"]["execID"],
        v[7]["Actor"]["Attributes"]["execID"]
    );
    assert_eq!(v[8]["Actor"]["Attributes"]["signal"], "10");
    assert_eq!(v[9]["Actor"]["ID"], "vol1");
    assert_eq!(v[9]["Actor"]["Attributes"]["driver"], "local");
    assert_eq!(v[11]["Actor"]["Attributes"]["name"], "evnet");
    assert_eq!(v[11]["Actor"]["ID"], v[12]["Actor"]["ID"]);
    assert_eq!(v[13]["Actor"]["Attributes"]["name"], "evtag:1");
    assert!(v[13]["Actor"]["ID"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(v[14]["Actor"]["Attributes"]["signal"], "9");
    assert_eq!(
        v[15]["Actor"]["Attributes"]["name"], "v2",
        "the monitor's die names the container as renamed"
    );
    ox.ok(&["rmi", "evtag:1"]);
}

#[test]
fn events_of_the_filesystem_and_image_verbs() {
    let ox = new_ox().pulled();
    let tmp = ox.dir.path();
    let (mut f, rx) = follower(&ox, &["--format", "json"]);
    ox.detached(&["--name", "fsv"], &["sleep", "1000"]);
    ox.ok(&["top", "fsv"]);
    ox.ok(&["update", "--cpu-shares", "512", "fsv"]);
    let out = tmp.join("hostname.out");
    ox.ok(&["cp", "fsv:/etc/hostname", out.to_str().unwrap()]);
    ox.ok(&["cp", out.to_str().unwrap(), "fsv:/tmp/"]);
    let tar = tmp.join("fsv.tar");
    ox.ok(&["export", "-o", tar.to_str().unwrap(), "fsv"]);
    ox.ok(&["commit", "-m", "msg", "fsv", "evimg:1"]);
    let saved = tmp.join("saved.tar");
    ox.ok(&["save", "-o", saved.to_str().unwrap(), "evimg:1"]);
    let imported = ox.ok(&["import", tar.to_str().unwrap(), "evimp:1"]);
    ox.ok(&["rm", "-f", "fsv"]);
    let got = collect_until(&rx, |l| l.contains("\"destroy\""));
    let _ = f.kill();
    let _ = f.wait();
    let want = [
        "container create",
        "container start",
        "container top",
        "container update",
        "container archive-path",
        "container extract-to-dir",
        "container export",
        "image tag",
        "container commit",
        "image save",
        "image tag",
        "image import",
        "container kill",
        "container die",
        "container destroy",
    ];
    assert_eq!(actions(&got), want, "{got:#?}");
    let v: Vec<Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let img_id = ox.ok(&["inspect", "--format", "{{.Id}}", "evimg:1"]);
    let img_id = img_id.trim();
    assert_eq!(v[7]["Actor"]["ID"], img_id);
    assert_eq!(v[7]["Actor"]["Attributes"]["name"], "evimg:1");
    let commit = &v[8]["Actor"]["Attributes"];
    assert_eq!(commit["comment"], "msg");
    assert_eq!(commit["imageID"], img_id);
    assert_eq!(commit["imageRef"], "evimg:1");
    assert_eq!(commit["name"], "fsv");
    assert_eq!(v[9]["Actor"]["ID"], img_id);
    assert_eq!(v[11]["Actor"]["ID"], imported.trim());
    assert_eq!(v[11]["Actor"]["Attributes"]["name"], imported.trim());
    assert_eq!(v[10]["Actor"]["Attributes"]["name"], "evimp:1");
    ox.ok(&["rmi", "evimg:1", "evimp:1"]);
}

#[test]
fn the_journal_is_bounded_and_followed_across_rotations() {
    let mut ox = new_ox();
    let cfg = ox.dir.path().join("oxcart.toml");
    std::fs::write(&cfg, "[engine]\nevents_max_size = \"2k\"\n").unwrap();
    ox.runtime = None;
    let (mut f, rx) = follower(
        &ox,
        &["--filter", "type=volume", "--format", "{{.Actor.ID}}"],
    );
    let n = 40;
    for i in 0..n {
        ox.ok(&["volume", "create", &format!("v{i:02}")]);
    }
    let got = collect_until(&rx, |l| l == format!("v{:02}", n - 1));
    let _ = f.kill();
    let _ = f.wait();
    let want: Vec<String> = (0..n).map(|i| format!("v{i:02}")).collect();
    assert_eq!(
        got, want,
        "the follower lost or reordered events over rotations"
    );
    let dir = ox.root().join("events");
    let mut total = 0;
    for name in ["events.log", "events.log.1"] {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        assert!(len <= 2048 + 512, "{name}: {len}");
        total += len;
    }
    assert!(total <= 2 * (2048 + 512));
    // The past holds the newest events only, in order, the oldest dropped.
    let now = (unix_now() + 1).to_string();
    let past = ox.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &now,
        "--format",
        "{{.Actor.ID}}",
    ]);
    let past: Vec<&str> = past.lines().collect();
    assert!(past.len() < n && !past.is_empty(), "{past:?}");
    assert_eq!(*past.last().unwrap(), format!("v{:02}", n - 1));
    let mut sorted = past.clone();
    sorted.sort();
    assert_eq!(past, sorted);
    for i in 0..n {
        ox.ok(&["volume", "rm", &format!("v{i:02}")]);
    }
    let err = {
        std::fs::write(&cfg, "[engine]\nevents_max_size = \"lots\"\n").unwrap();
        ox.fail(125, &["events", "--until", "0"])
    };
    assert!(err.contains("events_max_size"), "{err}");
}

#[test]
fn an_oom_killed_container_says_so_with_137_and_an_oom_event() {
    let ox = new_ox().pulled();
    let since = (unix_now() - 1).to_string();
    // busybox tail keeps a line without a newline in memory as it grows.
    let out = ox.run(&[
        "run",
        "--name",
        "oom",
        "--network",
        "none",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        ox.image(),
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    let st = &ox.inspect("oom")["State"];
    assert_eq!(st["OOMKilled"], true, "{st}");
    assert_eq!(st["ExitCode"], 137);
    let until = (unix_now() + 1).to_string();
    let out = ox.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=oom",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(out, "create\nattach\nstart\noom\ndie\n");
    // A container that stays within its limit is not OOMKilled.
    ox.ok(&[
        "run",
        "--name",
        "fine",
        "--network",
        "none",
        "--memory",
        "16m",
        ox.image(),
        "true",
    ]);
    assert_eq!(ox.inspect("fine")["State"]["OOMKilled"], false);
}

//! Supervision without a daemon (issue 16): restart policies, healthchecks and the
//! reboot, end to end against real containers and their monitors. Timing is only
//! ever checked as order and growth, never as milliseconds.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use serde_json::Value;

fn new_ox() -> Ox {
    clean_images_at_exit();
    Ox::new().pulled()
}

fn state(ox: &Ox, name: &str) -> Value {
    ox.inspect(name)["State"].clone()
}

fn restarts(ox: &Ox, name: &str) -> i64 {
    ox.inspect(name)["RestartCount"].as_i64().unwrap()
}

fn status(ox: &Ox, name: &str) -> String {
    state(ox, name)["Status"].as_str().unwrap().to_string()
}

/// Wait (bounded) until the container's inspect satisfies `cond`; its inspect.
fn until_inspect(ox: &Ox, name: &str, secs: u64, cond: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let ok = eventually(secs, || {
        last = ox.inspect(name);
        cond(&last)
    });
    assert!(ok, "{name} never reached the expected state: {last:#}");
    last
}

/// The container's log lines (`logs -t`): (timestamp in seconds, text).
fn log_times(ox: &Ox, name: &str) -> Vec<(f64, String)> {
    ox.ok(&["logs", "-t", name])
        .lines()
        .filter_map(|l| {
            let (ts, text) = l.split_once(' ')?;
            let secs = ts.get(17..)?.trim_end_matches('Z').parse::<f64>().ok()?;
            let min = ts.get(14..16)?.parse::<f64>().ok()?;
            let hour = ts.get(11..13)?.parse::<f64>().ok()?;
            Some((hour * 3600.0 + min * 60.0 + secs, text.to_string()))
        })
        .collect()
}

/// The host pid of the container's init (SIGKILLed "from the host" by the tests).
fn pid_of(ox: &Ox, name: &str) -> i32 {
    state(ox, name)["Pid"].as_i64().unwrap() as i32
}

fn host_kill(pid: i32) {
    assert!(pid > 0);
    // SAFETY: kill(2) of a container process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

#[test]
fn on_failure_restarts_only_failures_and_stops_at_its_maximum() {
    let ox = new_ox();
    ox.detached(
        &["--name", "fails", "--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 3"],
    );
    ox.detached(
        &["--name", "succeeds", "--restart", "on-failure"],
        &["sh", "-c", "echo run; exit 0"],
    );
    let v = until_inspect(&ox, "fails", 30, |v| {
        v["State"]["Status"] == "exited" && v["RestartCount"] == 2
    });
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    // Three runs: the first and two restarts, each writing to the same log.
    assert_eq!(ox.ok(&["logs", "fails"]), "run\nrun\nrun\n");
    let v = until_inspect(&ox, "succeeds", 30, |v| v["State"]["Status"] == "exited");
    assert_eq!(
        (v["RestartCount"].as_i64(), v["State"]["ExitCode"].as_i64()),
        (Some(0), Some(0))
    );
    // A SIGKILL from the host is a failure (137): on-failure restarts it.
    ox.detached(
        &["--name", "killed", "--restart", "on-failure"],
        &["sleep", "1000"],
    );
    let pid = pid_of(&ox, "killed");
    host_kill(pid);
    let v = until_inspect(&ox, "killed", 30, |v| {
        v["RestartCount"] == 1 && v["State"]["Status"] == "running"
    });
    assert_ne!(v["State"]["Pid"].as_i64().unwrap() as i32, pid);
    // An attached run returns the first run's code, as docker's CLI; the policy
    // goes on in the background.
    let o = ox.run(&[
        "run",
        "--name",
        "att",
        "--network",
        "none",
        "--restart",
        "on-failure:1",
        ox.image(),
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    until_inspect(&ox, "att", 30, |v| {
        v["State"]["Status"] == "exited" && v["RestartCount"] == 1
    });
    ox.ok(&["rm", "-f", "fails", "succeeds", "killed", "att"]);
    ox.assert_clean();
}

#[test]
fn always_restarts_every_exit_with_a_growing_backoff_and_stop_is_final() {
    let ox = new_ox();
    ox.detached(
        &["--name", "zero", "--restart", "always"],
        &["sh", "-c", "echo up; exit 0"],
    );
    ox.detached(
        &["--name", "one", "--restart", "always"],
        &["sh", "-c", "echo up; exit 1"],
    );
    for n in ["zero", "one"] {
        until_inspect(&ox, n, 60, |v| v["RestartCount"].as_i64().unwrap() >= 5);
    }
    // docker's backoff: 100 ms, doubling — so the gaps between runs grow.
    let t: Vec<f64> = log_times(&ox, "one").iter().map(|(t, _)| *t).collect();
    assert!(t.len() >= 5, "{t:?}");
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[3] > gaps[0] * 2.0 && gaps[2] + gaps[3] > 2.0 * (gaps[0] + gaps[1]),
        "backoff did not grow: {gaps:?}"
    );
    // docker's restart manager: every exit a `die`, every restart a `start`.
    let ev = ox.ok(&[
        "events",
        "--until",
        "0s",
        "--filter",
        "container=one",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    let ev: Vec<&str> = ev.lines().map(str::trim_end).collect();
    let runs: Vec<&&str> = ev.iter().filter(|a| a.starts_with("start")).collect();
    let dies: Vec<&&str> = ev.iter().filter(|a| a.starts_with("die")).collect();
    assert!(runs.len() >= 5 && dies.len() >= 5, "{ev:?}");
    assert!(dies.iter().all(|d| **d == "die 1"), "{ev:?}");
    let firsts: Vec<&str> = ev
        .iter()
        .filter(|a| a.starts_with("start") || a.starts_with("die"))
        .map(|a| a.split(' ').next().unwrap_or(""))
        .collect();
    assert!(
        firsts.windows(2).all(|w| w[0] != w[1]),
        "start and die alternate: {ev:?}"
    );
    // A user's stop ends it, whatever the policy: no restart after it.
    ox.ok(&["stop", "zero", "one"]);
    let before = (restarts(&ox, "zero"), restarts(&ox, "one"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for n in ["zero", "one"] {
        assert_eq!(status(&ox, n), "exited", "{n}");
    }
    assert_eq!((restarts(&ox, "zero"), restarts(&ox, "one")), before);
    // A user's start begins again from 0 (docker's ResetRestartManager(true)).
    ox.ok(&["rm", "-f", "one"]);
    ox.ok(&["update", "--restart", "no", "zero"]);
    ox.ok(&["start", "zero"]);
    until_inspect(&ox, "zero", 30, |v| v["State"]["Status"] == "exited");
    assert_eq!(restarts(&ox, "zero"), 0);
    // SIGKILL from the host: always restarts it.
    ox.detached(
        &["--name", "kil", "--restart", "always"],
        &["sleep", "1000"],
    );
    host_kill(pid_of(&ox, "kil"));
    until_inspect(&ox, "kil", 30, |v| {
        v["RestartCount"] == 1 && v["State"]["Status"] == "running"
    });
    // `kill` by the user (SIGKILL) cancels the policy, as docker's ExitOnNext.
    ox.ok(&["kill", "kil"]);
    until_inspect(&ox, "kil", 30, |v| v["State"]["Status"] == "exited");
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(status(&ox, "kil"), "exited");
    assert_eq!(state(&ox, "kil")["ExitCode"], 137);
    ox.ok(&["rm", "-f", "zero", "kil"]);
    ox.assert_clean();
}

#[test]
fn unless_stopped_and_no_against_exits_and_host_kills() {
    let ox = new_ox();
    ox.detached(
        &["--name", "us", "--restart", "unless-stopped"],
        &["sleep", "1000"],
    );
    ox.detached(&["--name", "none"], &["sleep", "1000"]);
    ox.detached(
        &["--name", "us1", "--restart", "unless-stopped"],
        &["sh", "-c", "exit 1"],
    );
    host_kill(pid_of(&ox, "us"));
    host_kill(pid_of(&ox, "none"));
    until_inspect(&ox, "us", 30, |v| {
        v["RestartCount"] == 1 && v["State"]["Status"] == "running"
    });
    let v = until_inspect(&ox, "none", 30, |v| v["State"]["Status"] == "exited");
    assert_eq!(
        (v["State"]["ExitCode"].as_i64(), v["RestartCount"].as_i64()),
        (Some(137), Some(0))
    );
    until_inspect(&ox, "us1", 30, |v| v["RestartCount"].as_i64().unwrap() >= 2);
    // A user's stop is not undone.
    ox.ok(&["stop", "-t", "1", "us"]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let v = ox.inspect("us");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["RestartCount"], 1);
    ox.ok(&["rm", "-f", "us", "none", "us1"]);
    ox.assert_clean();
}

#[test]
fn restarting_shows_in_ps_inspect_and_filters_and_stop_or_start_end_it() {
    let ox = new_ox();
    ox.detached(
        &["--name", "rst", "--restart", "always"],
        &["sh", "-c", "exit 2"],
    );
    // After a few quick exits the backoff is long enough to be seen.
    let v = until_inspect(&ox, "rst", 60, |v| v["State"]["Status"] == "restarting");
    let st = &v["State"];
    assert_eq!(
        (st["Running"].as_bool(), st["Restarting"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (st["Pid"].as_i64(), st["ExitCode"].as_i64()),
        (Some(0), Some(2))
    );
    assert_ne!(st["FinishedAt"], "0001-01-01T00:00:00Z");
    let mut row = String::new();
    assert!(
        eventually(60, || {
            row = ox.ok(&[
                "ps",
                "--filter",
                "status=restarting",
                "--format",
                "{{.Names}} {{.Status}}",
            ]);
            row.starts_with("rst Restarting (2) ")
        }),
        "{row}"
    );
    assert!(row.trim_end().ends_with(" ago"), "{row}");
    // `start` of a restarting container is docker's no-op; `wait` returns at the
    // next exit with its code.
    assert_eq!(ox.ok(&["start", "rst"]), "rst\n");
    assert_eq!(ox.ok(&["wait", "rst"]), "2\n");
    // `stop` during the backoff cancels the restart at once.
    until_inspect(&ox, "rst", 60, |v| v["State"]["Status"] == "restarting");
    ox.ok(&["stop", "rst"]);
    let v = ox.inspect("rst");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 2);
    assert!(v["RestartCount"].as_i64().unwrap() >= 2);
    assert_eq!(ox.ok(&["ps", "-q", "--filter", "status=restarting"]), "");
    // A restarting container is removed by rm -f without waiting out its backoff.
    ox.ok(&["start", "rst"]);
    until_inspect(&ox, "rst", 60, |v| v["State"]["Status"] == "restarting");
    ox.ok(&["rm", "-f", "rst"]);
    ox.assert_clean();
}

#[test]
fn update_restart_applies_to_a_running_container() {
    let ox = new_ox();
    ox.detached(&["--name", "upd"], &["sleep", "1000"]);
    assert_eq!(ox.ok(&["update", "--restart", "always", "upd"]), "upd\n");
    assert_eq!(
        ox.inspect("upd")["HostConfig"]["RestartPolicy"]["Name"],
        "always"
    );
    host_kill(pid_of(&ox, "upd"));
    until_inspect(&ox, "upd", 30, |v| {
        v["RestartCount"] == 1 && v["State"]["Status"] == "running"
    });
    let err = ox.fail(125, &["update", "--restart", "sometimes", "upd"]);
    assert!(err.contains("invalid restart policy 'sometimes'"), "{err}");
    ox.ok(&["update", "--restart", "no", "upd"]);
    host_kill(pid_of(&ox, "upd"));
    let v = until_inspect(&ox, "upd", 30, |v| v["State"]["Status"] == "exited");
    assert_eq!(v["RestartCount"], 1);
    // docker's conflicts are refused before anything is made.
    let err = ox.fail(
        125,
        &["run", "--rm", "--restart", "always", ox.image(), "true"],
    );
    assert!(
        err.contains("Conflicting options: --restart and --rm"),
        "{err}"
    );
    ox.ok(&["rm", "-f", "upd"]);
    ox.assert_clean();
}

#[test]
fn kill_9_of_the_monitor_during_the_backoff_leaves_a_truthful_exited_container() {
    let ox = new_ox();
    let id = ox.detached(
        &["--name", "mon", "--restart", "always"],
        &["sh", "-c", "exit 4"],
    );
    until_inspect(&ox, "mon", 60, |v| v["State"]["Status"] == "restarting");
    let mon: Value =
        serde_json::from_slice(&std::fs::read(ox.ctr_dir(&id).join("monitor.json")).unwrap())
            .unwrap();
    host_kill(mon["pid"].as_i64().unwrap() as i32);
    let v = until_inspect(&ox, "mon", 10, |v| v["State"]["Status"] == "exited");
    assert_eq!(v["State"]["ExitCode"], 4);
    assert!(
        v["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("monitor died"),
        "{v:#}"
    );
    assert!(v["RestartCount"].as_i64().unwrap() >= 1);
    // It starts again and is removed like any other.
    ox.ok(&["start", "mon"]);
    ox.ok(&["rm", "-f", "mon"]);
    ox.assert_clean();
}

fn health(ox: &Ox, name: &str) -> Value {
    state(ox, name)["Health"].clone()
}

fn ps_status(ox: &Ox, name: &str) -> String {
    ox.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

fn ps_names(ox: &Ox, filter: &str) -> Vec<String> {
    let mut v: Vec<String> = ox
        .ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn a_container_turns_unhealthy_then_healthy_as_its_check_says() {
    let ox = new_ox();
    ox.detached(
        &[
            "--name",
            "hc",
            "--health-cmd",
            "cat /tmp/ok",
            "--health-interval",
            "300ms",
            "--health-retries",
            "2",
            "--health-timeout",
            "5s",
        ],
        &["sleep", "1000"],
    );
    ox.detached(
        &[
            "--name",
            "slow",
            "--health-cmd",
            "true",
            "--health-interval",
            "1h",
        ],
        &["sleep", "1000"],
    );
    ox.detached(&["--name", "plain"], &["sleep", "1000"]);
    // No probe yet: starting.
    assert_eq!(health(&ox, "slow")["Status"], "starting");
    assert!(
        ps_status(&ox, "slow").ends_with("(health: starting)"),
        "{}",
        ps_status(&ox, "slow")
    );
    let v = until_inspect(&ox, "hc", 30, |v| {
        v["State"]["Health"]["Status"] == "unhealthy"
    });
    let h = &v["State"]["Health"];
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h:#}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 1);
    assert!(
        last["Output"].as_str().unwrap().contains("/tmp/ok"),
        "{last:#}"
    );
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    assert!(
        ps_status(&ox, "hc").ends_with("(unhealthy)"),
        "{}",
        ps_status(&ox, "hc")
    );
    assert_eq!(ps_names(&ox, "health=unhealthy"), ["hc"]);
    assert_eq!(ps_names(&ox, "health=starting"), ["slow"]);
    assert_eq!(ps_names(&ox, "health=none"), ["plain"]);
    let o = ox.run(&["healthcheck", "run", "hc"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "unhealthy\n");
    // It flips back once the check passes.
    ox.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    let v = until_inspect(&ox, "hc", 30, |v| {
        v["State"]["Health"]["Status"] == "healthy"
    });
    let h = &v["State"]["Health"];
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(
        log.len() <= 5 && log.last().unwrap()["ExitCode"] == 0,
        "{h:#}"
    );
    assert!(ps_status(&ox, "hc").ends_with("(healthy)"));
    assert_eq!(ox.run(&["healthcheck", "run", "hc"]).status.code(), Some(0));
    // Each change of status was an event (docker's handleProbeResult), in order.
    let ev = ox.ok(&[
        "events",
        "--until",
        "0s",
        "--filter",
        "container=hc",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    let ev: Vec<&str> = ev.lines().collect();
    assert_eq!(
        ev,
        ["health_status: unhealthy", "health_status: healthy"],
        "{ev:?}"
    );
    // podman's healthcheck run on a container without a check, or not running.
    let err = ox.fail(125, &["healthcheck", "run", "plain"]);
    assert!(err.contains("has no defined healthcheck"), "{err}");
    // A stopped container keeps its log; docker shows it unhealthy.
    ox.ok(&["stop", "-t", "1", "hc"]);
    assert_eq!(health(&ox, "hc")["Status"], "unhealthy");
    assert!(!health(&ox, "hc")["Log"].as_array().unwrap().is_empty());
    ox.fail(125, &["healthcheck", "run", "hc"]);
    ox.ok(&["rm", "-f", "hc", "slow", "plain"]);
    ox.assert_clean();
}

#[test]
fn probe_timeouts_and_bad_health_flags_are_dockers() {
    let ox = new_ox();
    ox.detached(
        &[
            "--name",
            "to",
            "--health-cmd",
            "echo partial; sleep 30",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "1",
        ],
        &["sleep", "1000"],
    );
    let v = until_inspect(&ox, "to", 30, |v| {
        v["State"]["Health"]["Status"] == "unhealthy"
    });
    let last = v["State"]["Health"]["Log"].as_array().unwrap()[0].clone();
    assert_eq!(last["ExitCode"], -1);
    assert_eq!(
        last["Output"],
        "Health check exceeded timeout (300ms): partial\n"
    );
    for (flags, want) in [
        (
            &["--health-interval", "1us"][..],
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (
            &["--health-retries", "-1"][..],
            "--health-retries cannot be negative",
        ),
        (
            &["--health-on-failure", "reboot"][..],
            "invalid on-failure action",
        ),
        (
            &["--no-healthcheck", "--health-cmd", "true"][..],
            "--no-healthcheck conflicts",
        ),
    ] {
        let mut a = vec!["create", "--health-cmd", "true"];
        if flags[0] == "--no-healthcheck" {
            a.truncate(1);
        }
        a.extend_from_slice(flags);
        a.push(ox.image());
        let err = ox.fail(125, &a);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    ox.ok(&["rm", "-f", "to"]);
    ox.assert_clean();
}

#[test]
fn the_images_healthcheck_runs_and_no_healthcheck_turns_it_off() {
    let ox = new_ox();
    ox.ok(&["create", "--name", "base", ox.image(), "true"]);
    ox.ok(&[
        "commit",
        "--change",
        r#"HEALTHCHECK --interval=200ms --retries=1 CMD ["cat", "/data/hello.txt"]"#,
        "base",
        "hc-img:1",
    ]);
    ox.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "img",
        "hc-img:1",
        "sleep",
        "1000",
    ]);
    ox.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "off",
        "--no-healthcheck",
        "hc-img:1",
        "sleep",
        "1000",
    ]);
    let v = until_inspect(&ox, "img", 30, |v| {
        v["State"]["Health"]["Status"] == "healthy"
    });
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "cat", "/data/hello.txt"])
    );
    let log = &v["State"]["Health"]["Log"][0];
    assert_eq!(log["Output"], "hello from the image\n");
    assert!(health(&ox, "off").is_null());
    assert_eq!(ps_names(&ox, "health=none"), ["base", "off"]);
    ox.ok(&["rm", "-f", "img", "off", "base"]);
    ox.ok(&["rmi", "hc-img:1"]);
    ox.assert_clean();
}

#[test]
fn health_on_failure_restart_restarts_it_and_kill_ends_it_for_good() {
    let ox = new_ox();
    // /dev/shm is a new tmpfs each run: the restarted container is healthy again.
    ox.detached(
        &[
            "--name",
            "hr",
            "--health-cmd",
            "test ! -e /dev/shm/bad",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--health-on-failure",
            "restart",
            "--stop-timeout",
            "1",
        ],
        &["sh", "-c", "echo started; exec sleep 1000"],
    );
    ox.detached(
        &[
            "--name",
            "hk",
            "--restart",
            "always",
            "--health-cmd",
            "test ! -e /dev/shm/bad",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--health-on-failure",
            "kill",
        ],
        &["sleep", "1000"],
    );
    ox.detached(
        &[
            "--name",
            "hs",
            "--restart",
            "always",
            "--health-cmd",
            "test ! -e /dev/shm/bad",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "--health-on-failure",
            "stop",
            "--stop-timeout",
            "1",
        ],
        &["sleep", "1000"],
    );
    until_inspect(&ox, "hr", 30, |v| {
        v["State"]["Health"]["Status"] == "healthy"
    });
    let before = state(&ox, "hr");
    for n in ["hr", "hk", "hs"] {
        ox.ok(&["exec", n, "touch", "/dev/shm/bad"]);
    }
    let v = until_inspect(&ox, "hr", 30, |v| {
        v["State"]["StartedAt"] != before["StartedAt"]
            && v["State"]["Health"]["Status"] == "healthy"
    });
    assert_eq!(v["State"]["Status"], "running");
    assert_ne!(v["State"]["Pid"], before["Pid"]);
    assert_eq!(ox.ok(&["logs", "hr"]), "started\nstarted\n");
    // podman's kill is the user's: --restart always does not bring it back.
    let v = until_inspect(&ox, "hk", 30, |v| v["State"]["Status"] == "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(status(&ox, "hk"), "exited");
    assert_eq!(restarts(&ox, "hk"), 0);
    // stop: the stop signal, SIGKILL after the stop timeout (sleep ignores SIGTERM
    // as a namespace's init), and no restart either.
    let v = until_inspect(&ox, "hs", 30, |v| v["State"]["Status"] == "exited");
    assert_eq!(
        (v["State"]["ExitCode"].as_i64(), v["RestartCount"].as_i64()),
        (Some(137), Some(0))
    );
    ox.ok(&["rm", "-f", "hr", "hk", "hs"]);
    ox.assert_clean();
}

/// `nslookup NAME` in a running container: the addresses of the answer.
fn lookup(ox: &Ox, ctr: &str, name: &str) -> Vec<String> {
    let o = ox.run(&["exec", ctr, "busybox", "nslookup", "-type=a", name]);
    // busybox prints the server first ("Server:" / "Address: 127.0.0.11:53").
    String::from_utf8_lossy(&o.stdout)
        .split("\n\n")
        .skip(1)
        .flat_map(|b| b.lines().map(String::from).collect::<Vec<_>>())
        .filter_map(|l| l.strip_prefix("Address:").map(|a| a.trim().to_string()))
        .collect()
}

/// A host port nobody holds right now (the kernel's pick, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn read_tcp(addr: &str) -> String {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    got.trim().to_string()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn kill_and_wait(pids: &[i32]) {
    for &p in pids {
        // SAFETY: kill(2) of processes this test's engine started.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    assert!(
        eventually(10, || pids.iter().all(|&p| !alive(p))),
        "{pids:?}"
    );
}

/// Every cgroup directory of a container (v1 hierarchies and v2), as runc places it
/// under the engine's `/oxcart` parent.
fn cgroup_dirs(id: &str) -> Vec<std::path::PathBuf> {
    let mut v = vec![std::path::PathBuf::from(format!(
        "/sys/fs/cgroup/oxcart/{id}"
    ))];
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        v.push(h.path().join("oxcart").join(id));
    }
    v.into_iter().filter(|p| p.is_dir()).collect()
}

/// What a host reboot does to this engine root: every process of its containers,
/// monitors and proxies dies, its mounts go, `/run` (the runroot) is emptied, the
/// cgroups, bridges and nft table vanish. The root's files stay.
fn simulate_reboot(ox: &Ox) {
    let ids: Vec<String> = ox
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    let nets: Vec<String> = ox
        .ok(&["network", "ls", "-q", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    // Monitors first: a living monitor would see its container die and restart it.
    let mut monitors = Vec::new();
    for id in &ids {
        if let Ok(b) = std::fs::read(ox.ctr_dir(id).join("monitor.json")) {
            let m: Value = serde_json::from_slice(&b).unwrap();
            let pid = m["pid"].as_i64().unwrap() as i32;
            if alive(pid) {
                monitors.push(pid);
            }
        }
    }
    kill_and_wait(&monitors);
    let mut rest = Vec::new();
    for id in &ids {
        for d in cgroup_dirs(id) {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                rest.extend(s.lines().filter_map(|l| l.parse::<i32>().ok()));
            }
        }
        if let Ok(b) = std::fs::read(ox.runroot().join("netns").join(format!("{id}.proxy"))) {
            let p: Value = serde_json::from_slice(&b).unwrap();
            rest.push(p["pid"].as_i64().unwrap() as i32);
        }
    }
    // The root's DNS resolver (user networks) and its worker.
    for f in ["resolver.pid", "worker.pid"] {
        if let Ok(b) = std::fs::read(ox.runroot().join("dns").join(f)) {
            let p: Value = serde_json::from_slice(&b).unwrap();
            rest.push(p["pid"].as_i64().unwrap() as i32);
        }
    }
    rest.sort();
    rest.dedup();
    kill_and_wait(&rest);
    for m in ox.leftover_mounts().iter().rev() {
        let p = m.split(' ').nth(4).unwrap();
        assert!(std::process::Command::new("umount")
            .args(["-l", p])
            .status()
            .unwrap()
            .success());
    }
    std::fs::remove_dir_all(ox.runroot()).unwrap();
    for id in &ids {
        for d in cgroup_dirs(id) {
            std::fs::remove_dir(&d).unwrap();
        }
    }
    for n in &nets {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &format!("ox-{}", &n[..12])])
            .output();
    }
    let _ = std::process::Command::new("nft")
        .args(["delete", "table", "ip", &nft_table(ox)])
        .output();
}

#[test]
fn system_boot_after_a_simulated_reboot_brings_back_what_docker_would() {
    let ox = new_ox();
    let hp = free_port();
    let publish = format!("127.0.0.1:{hp}:8080");
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--restart",
        "always",
        "-p",
        &publish,
        "-v",
        "bootvol:/vol",
        ox.image(),
        "nc",
        "-ll",
        "-p",
        "8080",
        "-e",
        "cat",
        "/vol/msg",
    ]);
    ox.ok(&["exec", "web", "sh", "-c", "echo before-reboot > /vol/msg"]);
    assert!(eventually(10, || read_tcp(&format!("127.0.0.1:{hp}"))
        == "before-reboot"));
    let run = |name: &str, flags: &[&str]| {
        let mut a = vec!["run", "-d", "--name", name];
        a.extend_from_slice(flags);
        a.extend_from_slice(&[ox.image(), "sleep", "1000"]);
        ox.ok(&a);
    };
    run("us-run", &["--restart", "unless-stopped"]);
    run("us-stopped", &["--restart", "unless-stopped"]);
    run("al-stopped", &["--restart", "always", "--network", "none"]);
    run("plain", &[]);
    run("onf", &["--restart", "on-failure:3", "--network", "none"]);
    run("gone", &["--rm"]);
    ox.ok(&[
        "create",
        "--name",
        "never",
        "--restart",
        "always",
        ox.image(),
    ]);
    ox.ok(&["stop", "-t", "0", "us-stopped", "al-stopped"]);
    let old_ip = ox.ip_of("web");
    // Two containers on a user network find each other by name (its resolver).
    ox.ok(&["network", "create", "bootnet"]);
    run("named", &["--restart", "always", "--network", "bootnet"]);
    run("asker", &["--restart", "always", "--network", "bootnet"]);
    assert_eq!(lookup(&ox, "asker", "named"), [ox.ip_of("named")]);

    simulate_reboot(&ox);
    // Before boot the state is read truthfully: nothing runs.
    assert_eq!(ox.ok(&["ps", "-q"]), "");

    let out = ox.ok(&["system", "boot"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "al-stopped: started",
            "asker: started",
            "named: started",
            "onf: started",
            "plain: reclaimed",
            "us-run: started",
            "web: started"
        ],
        "{out}"
    );
    let mut running = ps_names(&ox, "status=running");
    running.sort();
    assert_eq!(
        running,
        ["al-stopped", "asker", "named", "onf", "us-run", "web"]
    );
    assert!(eventually(10, || lookup(&ox, "asker", "named") == [ox.ip_of("named")]));
    // Its port and its volume came back with it.
    assert!(eventually(10, || read_tcp(&format!("127.0.0.1:{hp}"))
        == "before-reboot"));
    assert!(!ox.ip_of("web").is_empty() && !old_ip.is_empty());
    let plain = state(&ox, "plain");
    assert_eq!(
        (plain["Status"].as_str(), plain["ExitCode"].as_i64()),
        (Some("exited"), Some(255))
    );
    assert_eq!(status(&ox, "us-stopped"), "exited");
    assert_eq!(status(&ox, "never"), "created");
    // --rm: docker removes those at daemon start.
    assert!(!ox
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains("gone"));
    // Nothing stale: only the running containers hold leases, namespaces, runtime
    // state.
    let leases = ox.inspect_network("bridge")["Containers"]
        .as_object()
        .unwrap()
        .len();
    assert_eq!(leases, 2, "web and us-run");
    let netns: Vec<_> = std::fs::read_dir(ox.runroot().join("netns"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().contains('.'))
        .collect();
    assert_eq!(netns.len(), 4, "web, us-run, named, asker");
    // A second boot in the same boot starts nothing (the user may have stopped one).
    ox.ok(&["stop", "-t", "0", "al-stopped"]);
    assert_eq!(ox.ok(&["system", "boot"]), "");
    assert_eq!(status(&ox, "al-stopped"), "exited");
    let ids = ox.ok(&["ps", "-aq"]);
    let ids: Vec<&str> = ids.lines().collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids);
    ox.ok(&rm);
    ox.ok(&["volume", "rm", "bootvol"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

/// Debian's docker CLI, else one installed by hand.
fn docker_cli() -> std::path::PathBuf {
    ["/usr/bin/docker", "/usr/local/bin/docker"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "/usr/bin/docker".into())
}

/// A private dockerd (docker.io 20.10): its own daemon.json, data and exec roots,
/// socket and pidfile; no iptables, no bridge, vfs, cgroupfs under a private cgroup
/// parent. Stopped, and its files and cgroups removed, on drop.
struct Docker {
    dir: tempfile::TempDir,
    daemon: std::process::Child,
    cgroup: String,
    made_run_docker: bool,
}

impl Docker {
    fn start() -> Docker {
        assert!(
            std::path::Path::new("/usr/sbin/dockerd").exists() && docker_cli().exists(),
            "dockerd and docker are needed (apt-get install docker.io)"
        );
        let made_run_docker = !std::path::Path::new("/run/docker").exists();
        let dir = tempfile::Builder::new()
            .prefix("oxsv")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let cgroup = format!("oxsv-{}", std::process::id());
        // deprecated-key-path: otherwise dockerd 20.10 writes /etc/docker/key.json.
        std::fs::write(
            d.join("daemon.json"),
            serde_json::json!({"deprecated-key-path": d.join("key.json")}).to_string(),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let daemon = std::process::Command::new("/usr/sbin/dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("d.sock").display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=vfs",
                "--exec-opt=native.cgroupdriver=cgroupfs",
            ])
            .arg(format!("--cgroup-parent=/{cgroup}"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let dk = Docker {
            dir,
            daemon,
            cgroup,
            made_run_docker,
        };
        assert!(
            eventually(60, || dk.run(&["version"]).status.success()),
            "dockerd did not come up: {}",
            std::fs::read_to_string(dk.dir.path().join("dockerd.log")).unwrap_or_default()
        );
        dk
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(docker_cli())
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("d.sock").display()
            ))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
        // SAFETY: SIGTERM to the dockerd this test started.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        for m in std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&*self.dir.path().to_string_lossy()))
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            let _ = std::process::Command::new("umount")
                .args(["-l", m])
                .status();
        }
        let _ = std::process::Command::new("find")
            .args(["/sys/fs/cgroup", "-depth", "-type", "d", "-path"])
            .arg(format!("*/{}*", self.cgroup))
            .args(["-exec", "rmdir", "{}", "+"])
            .output();
        if self.made_run_docker {
            let _ = std::fs::remove_dir("/run/docker/plugins");
            let _ = std::fs::remove_dir("/run/docker");
        }
    }
}

/// Both engines, the same scenario, the same restart counts, states and health.
#[test]
fn docker_agrees_on_restart_counts_states_and_health_transitions() {
    let ox = new_ox();
    let dk = Docker::start();
    let tar = ox.dir.path().join("bb.tar");
    ox.ok(&["save", "-o", tar.to_str().unwrap(), ox.image()]);
    dk.ok(&["load", "-i", tar.to_str().unwrap()]);
    let image = ox.image();
    let both = |args: &[&str]| {
        let mut a = vec!["run", "-d", "--network", "none"];
        a.extend_from_slice(args);
        let i = a.iter().position(|x| *x == "IMG").unwrap();
        a[i] = image;
        ox.ok(&a);
        dk.ok(&a);
    };
    both(&[
        "--name",
        "onf",
        "--restart",
        "on-failure:2",
        "IMG",
        "sh",
        "-c",
        "exit 3",
    ]);
    both(&[
        "--name",
        "alw",
        "--restart",
        "always",
        "IMG",
        "sh",
        "-c",
        "exit 1",
    ]);
    both(&[
        "--name",
        "kil",
        "--restart",
        "always",
        "IMG",
        "sleep",
        "1000",
    ]);
    both(&[
        "--name",
        "hc",
        "--health-cmd",
        "cat /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "IMG",
        "sleep",
        "1000",
    ]);
    // on-failure:2: exited after two restarts, the last code kept.
    let pick = |v: &Value| {
        (
            v["State"]["Status"].clone(),
            v["State"]["ExitCode"].clone(),
            v["RestartCount"].clone(),
        )
    };
    let want = pick(&until_inspect(&ox, "onf", 60, |v| {
        v["State"]["Status"] == "exited"
    }));
    assert!(
        eventually(60, || pick(&dk.inspect("onf")) == want),
        "{want:?} {:?}",
        pick(&dk.inspect("onf"))
    );
    // always + exit 1: both reach restarting, with docker's fields.
    let rs = |v: &Value| {
        (
            v["State"]["Running"].clone(),
            v["State"]["Restarting"].clone(),
            v["State"]["Pid"].clone(),
            v["State"]["ExitCode"].clone(),
        )
    };
    let ours = rs(&until_inspect(&ox, "alw", 60, |v| {
        v["State"]["Status"] == "restarting"
    }));
    let mut theirs = Value::Null;
    assert!(eventually(60, || {
        theirs = dk.inspect("alw");
        theirs["State"]["Status"] == "restarting"
    }));
    assert_eq!(ours, rs(&theirs));
    // `ps`: listed without -a, `Restarting (1) … ago` (the time varies).
    let restarting = |out: String| {
        out.lines()
            .any(|l| l.starts_with("alw Restarting (1) ") && l.ends_with(" ago"))
    };
    let fmt = ["ps", "--format", "{{.Names}} {{.Status}}"];
    assert!(eventually(60, || restarting(ox.ok(&fmt))));
    assert!(eventually(60, || restarting(dk.ok(&fmt))));
    // A user's stop of a restarting container: exited, the last code, no restart.
    ox.ok(&["stop", "alw"]);
    dk.ok(&["stop", "alw"]);
    let st = |v: &Value| (v["State"]["Status"].clone(), v["State"]["ExitCode"].clone());
    assert!(
        eventually(20, || st(&dk.inspect("alw")) == st(&ox.inspect("alw"))),
        "{:?} {:?}",
        st(&ox.inspect("alw")),
        st(&dk.inspect("alw"))
    );
    // `kill` of an always container: not restarted by either.
    ox.ok(&["kill", "kil"]);
    dk.ok(&["kill", "kil"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(pick(&ox.inspect("kil")), pick(&dk.inspect("kil")));
    assert_eq!(ox.inspect("kil")["State"]["Status"], "exited");
    // Health: unhealthy after two failures, then healthy; the same streaks and codes.
    let h = |v: &Value| {
        let h = &v["State"]["Health"];
        let last = h["Log"]
            .as_array()
            .and_then(|l| l.last().cloned())
            .unwrap_or_default();
        (
            h["Status"].clone(),
            h["FailingStreak"].as_i64().map(|n| n >= 2),
            last["ExitCode"].clone(),
            last["Output"].clone(),
        )
    };
    let ours = h(&until_inspect(&ox, "hc", 30, |v| {
        v["State"]["Health"]["Status"] == "unhealthy"
    }));
    let mut theirs = Value::Null;
    assert!(eventually(30, || {
        theirs = dk.inspect("hc");
        theirs["State"]["Health"]["Status"] == "unhealthy"
    }));
    assert_eq!(ours, h(&theirs));
    let psf = [
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}}",
    ];
    assert_eq!(ox.ok(&psf), dk.ok(&psf));
    ox.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    dk.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    let ours = h(&until_inspect(&ox, "hc", 30, |v| {
        v["State"]["Health"]["Status"] == "healthy"
    }));
    assert!(eventually(30, || {
        theirs = dk.inspect("hc");
        theirs["State"]["Health"]["Status"] == "healthy"
    }));
    assert_eq!(ours, h(&theirs));
    let status = |s: String| {
        s.split_once(" (")
            .map(|x| x.1.to_string())
            .unwrap_or_default()
    };
    let fmt = ["ps", "--filter", "name=hc", "--format", "{{.Status}}"];
    assert_eq!(status(ox.ok(&fmt)), status(dk.ok(&fmt)));
    ox.ok(&["rm", "-f", "onf", "alw", "kil", "hc"]);
    ox.assert_clean();
}

#[test]
fn kill_9_of_the_monitor_inside_a_restart_leaves_a_truthful_exited_container() {
    // A runtime whose `create` hangs once `hang` exists: the monitor is caught in a
    // restart, holding the container's lock, its new run not yet created.
    let dir = tempfile::tempdir().unwrap();
    let (hang, pidf, rt) = (
        dir.path().join("hang"),
        dir.path().join("pid"),
        dir.path().join("rt"),
    );
    std::fs::write(
        &rt,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = create ] && [ -e {h} ]; then echo $$ > {p}.tmp; mv {p}.tmp {p}; exec sleep 1000; fi\ndone\nexec {real} \"$@\"\n",
            h = hang.display(),
            p = pidf.display(),
            real = helper_bins().0.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    clean_images_at_exit();
    let ox = Ox::with_runtime(rt.to_str().unwrap()).pulled();
    let id = ox.detached(
        &["--name", "hang", "--restart", "always"],
        &["sh", "-c", "sleep 1; exit 5"],
    );
    std::fs::write(&hang, b"").unwrap();
    assert!(eventually(30, || pidf.exists()));
    assert_eq!(status(&ox, "hang"), "restarting");
    let mon: Value =
        serde_json::from_slice(&std::fs::read(ox.ctr_dir(&id).join("monitor.json")).unwrap())
            .unwrap();
    kill_and_wait(&[mon["pid"].as_i64().unwrap() as i32]);
    let creator: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill_and_wait(&[creator]);
    let v = ox.inspect("hang");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 5);
    assert!(
        v["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("died while the container was restarting"),
        "{v:#}"
    );
    // The lock died with the monitor: every verb works on it.
    std::fs::remove_file(&hang).unwrap();
    ox.ok(&["rm", "-f", "hang"]);
    ox.assert_clean();
}

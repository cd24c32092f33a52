//! The scenarios, each run once per runtime handler (`oxcart`, `runc`): what a
//! kubelet asks of containerd's CRI, checked from inside the containers.

use crate::cri::Cri;
use crate::env::Env;
use crate::pod::{eventually, namespaces, Pod, CONTAINER_EXITED, CONTAINER_RUNNING};
use k8s_cri::v1::*;
use std::collections::HashMap;
use std::io::Read;

pub type Scenario = fn(&Env, &Cri, &str);

pub fn all() -> Vec<(&'static str, Scenario)> {
    vec![
        ("lifecycle", lifecycle),
        ("exec_streaming", exec_streaming),
        ("logs_and_reopen", logs_and_reopen),
        ("pod_namespaces_and_network", pod_namespaces_and_network),
        ("share_process_namespace", share_process_namespace),
        ("resources_update_stats", resources_update_stats),
        ("security_context", security_context),
        ("privileged", privileged),
        ("seccomp", seccomp),
        ("sysctls", sysctls),
        ("missing_command", missing_command),
        ("oom_killed", oom_killed),
        ("killed_runtime", killed_runtime),
    ]
}

const SLEEP: &[&str] = &["sleep", "3600"];

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Version, PullImage, the whole pod and container lifecycle, and the List calls
/// with each kind of filter.
fn lifecycle(env: &Env, cri: &Cri, handler: &str) {
    let v = cri.version();
    assert_eq!(v.runtime_name, "containerd");
    assert_eq!(v.runtime_api_version, "v1");
    let image_ref = cri.pull(&env.busybox).unwrap();
    assert!(image_ref.starts_with("sha256:"), "image ref {image_ref}");

    let pod = Pod::run(cri, env, handler, "lifecycle", |_| {});
    list_pod_filters(cri, &pod, handler);

    // TERM ends it at once (a PID 1 shell gets no default action for TERM).
    let script = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
    let c = pod.start(&pod.container("main", &["sh", "-c", script]));
    let st = cri.status(&c);
    assert_eq!(st.state, CONTAINER_RUNNING);
    assert!(st.started_at > 0);
    // image_ref is the repo digest the image was pulled by (PullImage answers
    // with the image id).
    assert!(
        st.image_ref.contains("/oxcart/busybox@sha256:"),
        "image_ref {}",
        st.image_ref
    );
    assert_eq!(st.log_path, pod.log("main").display().to_string());

    list_container_filters(cri, &pod, &c);

    let (code, out, err) = cri.exec_sync(&c, &["sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "hi\n", "oops\n"));

    cri.stop(&c, 30).unwrap();
    let st = cri.status(&c);
    assert_eq!(st.state, CONTAINER_EXITED);
    assert_eq!((st.exit_code, st.reason.as_str()), (0, "Completed"));
    cri.remove(&c).unwrap();
    assert!(cri
        .list(ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        })
        .is_empty());

    cri.stop_pod(&pod.id).unwrap();
    let stopped = cri.list_pods(PodSandboxFilter {
        id: pod.id.clone(),
        state: Some(PodSandboxStateValue {
            state: PodSandboxState::SandboxNotready as i32,
        }),
        ..Default::default()
    });
    assert_eq!(stopped.len(), 1, "pod not NOTREADY after StopPodSandbox");
    pod.remove_and_check();
}

/// ListPodSandbox by id (READY, the handler) and by label.
fn list_pod_filters(cri: &Cri, pod: &Pod, handler: &str) {
    let by_id = cri.list_pods(PodSandboxFilter {
        id: pod.id.clone(),
        ..Default::default()
    });
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].state, PodSandboxState::SandboxReady as i32);
    assert_eq!(by_id[0].runtime_handler, handler);
    let by_label = cri.list_pods(PodSandboxFilter {
        label_selector: labels(&[("oxcri/pod", pod.uid())]),
        ..Default::default()
    });
    assert_eq!(by_label.len(), 1);
    assert_eq!(by_label[0].id, pod.id);
}

/// ListContainers by pod, by state + label, and a state that matches nothing.
fn list_container_filters(cri: &Cri, pod: &Pod, c: &str) {
    let in_pod = cri.list(ContainerFilter {
        pod_sandbox_id: pod.id.clone(),
        ..Default::default()
    });
    assert_eq!(in_pod.len(), 1);
    assert_eq!(in_pod[0].id, c);
    let by_state = cri.list(ContainerFilter {
        pod_sandbox_id: pod.id.clone(),
        state: Some(ContainerStateValue {
            state: ContainerState::ContainerRunning as i32,
        }),
        label_selector: labels(&[("oxcri/container", "main")]),
        ..Default::default()
    });
    assert_eq!(by_state.len(), 1);
    let exited = cri.list(ContainerFilter {
        pod_sandbox_id: pod.id.clone(),
        state: Some(ContainerStateValue {
            state: ContainerState::ContainerExited as i32,
        }),
        ..Default::default()
    });
    assert!(exited.is_empty());
}

/// Exec through containerd's streaming server (websocket, v4.channel.k8s.io):
/// stdout, stderr and exit code apart, and stdin.
fn exec_streaming(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "exec", |_| {});
    let c = pod.start(&pod.container("main", SLEEP));
    let url = cri.exec_url(&c, &["sh", "-c", "echo out; echo err >&2; exit 7"], false);
    let r = crate::stream::exec(&url, None);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));
    assert_eq!(r.exit_code(), 7);

    let url = cri.exec_url(&c, &["head", "-c", "5"], true);
    let r = crate::stream::exec(&url, Some(b"hello"));
    assert_eq!(r.stdout, "hello");
    assert_eq!(r.exit_code(), 0);
    pod.remove_and_check();
}

/// One CRI log line: `<RFC 3339 nano time> <stdout|stderr> <P|F> <content>`.
fn parse_log_line(line: &str) -> (&str, &str, &str) {
    let mut f = line.splitn(4, ' ');
    let (ts, stream, tag, content) = (
        f.next().unwrap(),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
    );
    let b = ts.as_bytes();
    assert!(
        b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && (ts.ends_with('Z') || ts.contains('+')),
        "not an RFC 3339 timestamp in log line {line:?}"
    );
    assert!(matches!(stream, "stdout" | "stderr"), "stream in {line:?}");
    assert!(matches!(tag, "P" | "F"), "tag in {line:?}");
    (stream, tag, content)
}

fn log_has(path: &std::path::Path, stream: &str, content: &str) -> bool {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let (s, t, c) = parse_log_line(l);
            s == stream && t == "F" && c == content
        })
}

/// The CRI log file (format and both streams), then ReopenContainerLog after the
/// kubelet's log rotation renamed the file.
fn logs_and_reopen(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "logs", |_| {});
    // Prints what an exec leaves in /tmp/say: the log only carries PID 1's output.
    let script = "echo hello-out; echo hello-err >&2; \
        while true; do if [ -e /tmp/say ]; then cat /tmp/say; rm /tmp/say; fi; sleep 0.1; done";
    let c = pod.start(&pod.container("talk", &["sh", "-c", script]));
    let log = pod.log("talk");
    eventually("the first log lines", || {
        (log_has(&log, "stdout", "hello-out") && log_has(&log, "stderr", "hello-err")).then_some(())
    });

    // A line over containerd's max_container_log_line_size (16 KiB here) is
    // split: a partial (P) entry of the limit, then the rest as the full (F) one.
    cri.sh(&c, "head -c 20000 /dev/zero | tr '\\0' a > /tmp/say.1; echo >> /tmp/say.1; mv /tmp/say.1 /tmp/say");
    let parts = eventually("the long line's entries", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let v: Vec<(String, usize)> = text
            .lines()
            .map(parse_log_line)
            .filter(|(_, _, c)| c.starts_with('a'))
            .map(|(_, t, c)| (t.to_string(), c.len()))
            .collect();
        v.iter().any(|(t, _)| t == "F").then_some(v)
    });
    assert_eq!(
        parts,
        [("P".to_string(), 16384), ("F".to_string(), 20000 - 16384)]
    );

    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    cri.reopen_log(&c).unwrap();
    cri.sh(&c, "echo after-reopen > /tmp/say");
    eventually("a line in the reopened log", || {
        log_has(&log, "stdout", "after-reopen").then_some(())
    });
    assert!(
        !log_has(&rotated, "stdout", "after-reopen"),
        "written to the rotated file"
    );

    // Reopening a stopped container's log is an error (the kubelet then skips it).
    cri.stop(&c, 0).unwrap();
    assert!(cri.reopen_log(&c).is_err());
    pod.remove_and_check();
}

fn ns_links(cri: &Cri, c: &str) -> HashMap<String, String> {
    let out = cri.sh(
        c,
        "for n in net ipc uts mnt pid; do echo $n $(readlink /proc/self/ns/$n); done",
    );
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Two containers of one pod share the network, IPC and UTS namespaces and have
/// their own mount (and, by default, PID) namespace; through the CNI bridge one
/// reaches the other's port on localhost and the host reaches the pod's IP.
fn pod_namespaces_and_network(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "net", |_| {});
    let server = "printf '#!/bin/sh\\necho hello-from-a\\n' > /tmp/h; chmod +x /tmp/h; \
        exec nc -ll -p 8080 -e /tmp/h";
    let a = pod.start(&pod.container("a", &["sh", "-c", server]));
    let b = pod.start(&pod.container("b", SLEEP));
    let (na, nb) = (ns_links(cri, &a), ns_links(cri, &b));
    for n in ["net", "ipc", "uts"] {
        assert_eq!(na[n], nb[n], "{n} namespace not shared");
    }
    for n in ["mnt", "pid"] {
        assert_ne!(na[n], nb[n], "{n} namespace shared");
    }
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        na["net"],
        host_net.display().to_string(),
        "pod in the host's netns"
    );

    let got = eventually("a's listener, from b on localhost", || {
        let (code, out, _) = cri.exec_sync(&b, &["nc", "127.0.0.1", "8080"]);
        (code == 0 && !out.is_empty()).then_some(out)
    });
    assert_eq!(got.trim(), "hello-from-a");

    let ip = pod.ip();
    assert!(
        ip.starts_with(&format!("{}.", env.subnet)),
        "pod IP {ip} not from the CNI range"
    );
    let (code, out, _) = cri.exec_sync(&b, &["ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(
        code == 0 && out.contains(&format!("{ip}/24")),
        "eth0 in the pod: {out}"
    );
    let mut s = std::net::TcpStream::connect((ip.as_str(), 8080))
        .unwrap_or_else(|e| panic!("host → pod {ip}:8080: {e}"));
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    assert_eq!(buf.trim(), "hello-from-a");
    pod.remove_and_check();
}

/// shareProcessNamespace (PID NamespaceMode POD): the pause process is PID 1 of
/// every container, which see each other's processes, and reaps the orphans.
fn share_process_namespace(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "sharepid", |c| {
        let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
        sc.namespace_options = Some(namespaces(true));
    });
    let a = pod.start(&pod.container("a", &["sleep", "3601"]));
    let b = pod.start(&pod.container("b", &["sleep", "3602"]));
    assert_eq!(ns_links(cri, &a)["pid"], ns_links(cri, &b)["pid"]);
    assert_eq!(cri.sh(&a, "cat /proc/1/cmdline"), "/pause\0");
    let ps = cri.sh(&a, "ps -o args");
    assert!(
        ps.contains("sleep 3602"),
        "b's process not visible in a: {ps}"
    );

    // An orphan of the shared namespace is reparented to the pause process (PID 1),
    // which must reap it when it exits, or it stays a zombie for the pod's life.
    let ps = cri.sh(&a, "(sleep 1 &); sleep 0.3; ps -o ppid,args");
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep", "1"]),
        "the orphan is not pause's child: {ps}"
    );
    eventually("pause to reap the orphan", || {
        let ps = cri.sh(&a, "ps -o stat,args");
        let zombies: Vec<&str> = ps
            .lines()
            .filter(|l| l.trim_start().starts_with('Z'))
            .collect();
        (zombies.is_empty() && !ps.contains("sleep 1\n")).then_some(())
    });
    pod.remove_and_check();
}

fn cg(controller: &str, cgroup: &str, file: &str) -> String {
    let p = format!("/sys/fs/cgroup/{controller}{cgroup}/{file}");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

/// CPU and memory limits land in the container's cgroups below the pod's cgroup
/// parent (cgroupfs driver); UpdateContainerResources changes the memory limit
/// and keeps everything else (the CPU limits, the device rules: /dev/null still
/// opens); ContainerStats reports usage.
fn resources_update_stats(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "res", |_| {});
    let mut cfg = pod.container("main", SLEEP);
    let res = LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 64 << 20,
        ..Default::default()
    };
    cfg.linux.as_mut().unwrap().resources = Some(res.clone());
    let c = pod.start(&cfg);
    let cgroup = format!("{}/{c}", pod.cgroup_parent);
    assert_eq!(cg("cpu", &cgroup, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", &cgroup, "cpu.cfs_period_us"), "100000");
    assert_eq!(cg("cpu", &cgroup, "cpu.shares"), "512");
    assert_eq!(
        cg("memory", &cgroup, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    // The container's own view of its cgroup (v1: its cgroup is the mount's root).
    assert_eq!(
        cri.sh(&c, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
            .trim(),
        (64u64 << 20).to_string()
    );
    let procs = cg("memory", &cgroup, "cgroup.procs");
    assert!(!procs.is_empty(), "no process in {cgroup}");
    // The sandbox (pause) sits next to it under the same parent, as the kubelet's
    // pod cgroup holds all of a pod.
    let sandbox = format!("{}/{}", pod.cgroup_parent, pod.id);
    assert!(
        !cg("pids", &sandbox, "cgroup.procs").is_empty(),
        "no pause in {sandbox}"
    );

    assert_stats(cri, &c);

    cri.update(
        &c,
        LinuxContainerResources {
            memory_limit_in_bytes: 128 << 20,
            ..res
        },
    )
    .unwrap();
    assert_eq!(
        cg("memory", &cgroup, "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        cg("cpu", &cgroup, "cpu.cfs_quota_us"),
        "50000",
        "update lost the CPU quota"
    );
    // runc's `update` semantics: device rules untouched (issue 17's known bug).
    cri.sh(&c, "echo x > /dev/null && head -c 4 /dev/zero | wc -c");

    pod.remove_and_check();
}

/// ContainerStats: CPU usage and memory working set reported, and non-zero.
fn assert_stats(cri: &Cri, c: &str) {
    let stats = cri.stats(c);
    let cpu = stats.cpu.unwrap();
    assert!(
        cpu.usage_core_nano_seconds.is_some_and(|u| u.value > 0),
        "cpu stats {cpu:?}"
    );
    let mem = stats.memory.unwrap();
    assert!(
        mem.working_set_bytes.is_some_and(|u| u.value > 0),
        "memory stats {mem:?}"
    );
}

fn cap_eff(cri: &Cri, c: &str) -> u64 {
    let s = cri.sh(c, "grep CapEff /proc/self/status");
    u64::from_str_radix(s.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

fn seccomp_mode(cri: &Cri, c: &str) -> String {
    cri.sh(c, "grep Seccomp: /proc/self/status")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// runAsUser, readOnlyRootFilesystem, capabilities drop ALL + add one.
fn security_context(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "secctx", |_| {});
    let mut cfg = pod.container("restricted", SLEEP);
    {
        let sc = cfg
            .linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap();
        sc.run_as_user = Some(Int64Value { value: 1234 });
        sc.readonly_rootfs = true;
        sc.capabilities = Some(Capability {
            drop_capabilities: vec!["ALL".into()],
            add_capabilities: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        });
    }
    let c = pod.start(&cfg);
    assert_eq!(cri.sh(&c, "id -u").trim(), "1234");
    let (code, _, err) = cri.exec_sync(&c, &["touch", "/newfile"]);
    assert!(
        code != 0 && err.contains("Read-only file system"),
        "touch /: {code} {err}"
    );
    // A non-root exec gets no effective capabilities, so read them from PID 1's
    // bounding set: exactly CAP_NET_BIND_SERVICE (10).
    let bnd = cri.sh(&c, "grep CapBnd /proc/1/status");
    let bnd = u64::from_str_radix(bnd.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(bnd, 1 << 10, "bounding set {bnd:#x}");

    // As root, the same drop/add is the effective set too, and the default set
    // (containerd's: no CAP_SYS_ADMIN, no CAP_NET_ADMIN) holds otherwise.
    let mut cfg = pod.container("caps", SLEEP);
    cfg.linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .capabilities = Some(Capability {
        add_capabilities: vec!["NET_ADMIN".into()],
        ..Default::default()
    });
    let c2 = pod.start(&cfg);
    let eff = cap_eff(cri, &c2);
    assert_ne!(eff & (1 << 12), 0, "CAP_NET_ADMIN not added: {eff:#x}");
    assert_eq!(
        eff & (1 << 21),
        0,
        "CAP_SYS_ADMIN in the default set: {eff:#x}"
    );
    // CAP_NET_ADMIN observed: the container may change its own link.
    cri.sh(&c2, "ip link set lo mtu 1500");
    let (code, _, _) = cri.exec_sync(&c, &["ip", "link", "set", "lo", "mtu", "1400"]);
    assert_ne!(code, 0, "a container without CAP_NET_ADMIN changed a link");
    pod.remove_and_check();
}

/// privileged: every capability, no seccomp, the host's devices.
fn privileged(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "priv", |c| {
        c.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .privileged = true;
    });
    let mut cfg = pod.container("priv", SLEEP);
    cfg.linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .privileged = true;
    let c = pod.start(&cfg);
    // Every capability the host has: this host's bounding set lacks
    // CAP_SYS_RESOURCE, and no container gets more than its runtime holds.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    assert_eq!(cap_eff(cri, &c), u64::from_str_radix(host_bnd, 16).unwrap());
    assert_eq!(seccomp_mode(cri, &c), "0");
    cri.sh(&c, "test -c /dev/loop-control || test -c /dev/kmsg");
    // Every device allowed by its devices cgroup (v1), as seen from inside.
    let devices = cri.sh(&c, "cat /sys/fs/cgroup/devices/devices.list");
    assert_eq!(devices.trim(), "a *:* rwm");
    let plain = pod.start(&pod.container("plain", SLEEP));
    let (code, _, _) = cri.exec_sync(&plain, &["test", "-e", "/dev/kmsg"]);
    assert_ne!(code, 0, "an unprivileged container sees /dev/kmsg");
    let devices = cri.sh(&plain, "cat /sys/fs/cgroup/devices/devices.list");
    assert!(!devices.contains("a *:* rwm"), "unprivileged: {devices}");
    pod.remove_and_check();
}

/// seccomp: unconfined by default (containerd 1.6), RuntimeDefault (filter on;
/// unshare(2) refused without CAP_SYS_ADMIN), and a Localhost profile that
/// refuses mkdir(2).
fn seccomp(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "seccomp", |_| {});
    let with = |name: &str, profile: Option<SecurityProfile>| {
        let mut cfg = pod.container(name, SLEEP);
        cfg.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .seccomp = profile;
        pod.start(&cfg)
    };
    let unconfined = with("unconfined", None);
    assert_eq!(seccomp_mode(cri, &unconfined), "0");
    // A user namespace needs no capability: only a filter stops it.
    cri.sh(&unconfined, "unshare -U true");

    let default = with("default", Some(SecurityProfile::default()));
    assert_eq!(seccomp_mode(cri, &default), "2");
    let (code, _, err) = cri.exec_sync(&default, &["unshare", "-U", "true"]);
    assert!(
        code != 0 && err.contains("Operation not permitted"),
        "unshare: {code} {err}"
    );

    let profile = env.dir.join(format!("seccomp-{handler}.json"));
    std::fs::write(
        &profile,
        serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        })
        .to_string(),
    )
    .unwrap();
    let local = with(
        "local",
        Some(SecurityProfile {
            profile_type: security_profile::ProfileType::Localhost as i32,
            localhost_ref: profile.display().to_string(),
        }),
    );
    assert_eq!(seccomp_mode(cri, &local), "2");
    let (code, _, err) = cri.exec_sync(&local, &["mkdir", "/tmp/d"]);
    assert!(
        code != 0 && err.contains("Operation not permitted"),
        "mkdir: {code} {err}"
    );
    cri.sh(&local, "touch /tmp/f");
    pod.remove_and_check();
}

/// Pod sysctls (namespaced: net.* in the pod's netns, kernel.shm* in its IPC
/// namespace) are set, and seen by the pod's containers.
fn sysctls(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "sysctl", |c| {
        c.linux.as_mut().unwrap().sysctls = labels(&[
            ("net.ipv4.ip_unprivileged_port_start", "100"),
            ("kernel.shm_rmid_forced", "1"),
        ]);
    });
    let c = pod.start(&pod.container("main", SLEEP));
    let got = cri.sh(
        &c,
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced",
    );
    assert_eq!(got.split_whitespace().collect::<Vec<_>>(), ["100", "1"]);
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_ne!(host.trim(), "100", "the sysctl reached the host");
    pod.remove_and_check();
}

/// A command that does not exist: containerd reports the runtime's message as
/// CreateContainerError (create fails) or StartError (start fails).
fn missing_command(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "nocmd", |_| {});
    let cfg = pod.container("nocmd", &["/does-not-exist"]);
    match pod.create(&cfg) {
        Err(e) => assert!(e.message().contains("/does-not-exist"), "create: {e}"),
        Ok(c) => {
            let err = cri.start(&c).expect_err("a missing command started");
            assert!(
                err.message().contains("/does-not-exist"),
                "StartContainer: {err}"
            );
            let st = cri.status(&c);
            assert_eq!(st.state, CONTAINER_EXITED);
            assert_eq!(st.reason, "StartError", "{st:?}");
            assert!(
                st.message.contains("/does-not-exist"),
                "status message: {}",
                st.message
            );
            eprintln!("{handler}: StartError: {}", st.message);
        }
    }
    pod.remove_and_check();
}

/// A container over its memory limit is OOM-killed and reported OOMKilled.
fn oom_killed(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let pod = Pod::run(cri, env, handler, "oom", |_| {});
    // Doubling a shell string outgrows 32 MiB in a few steps.
    let mut cfg = pod.container("hog", &["sh", "-c", "a=x; while true; do a=\"$a$a\"; done"]);
    cfg.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 32 << 20,
        ..Default::default()
    });
    let c = pod.create(&cfg).unwrap();
    cri.start(&c).unwrap();
    let st = pod.wait_exited(&c);
    assert_eq!(
        (st.reason.as_str(), st.exit_code),
        ("OOMKilled", 137),
        "{st:?}"
    );
    pod.remove_and_check();
}

/// The runtime SIGKILLed in the middle of an application container's create (the
/// `<handler>-killed` handler's wrapper): StartContainer (where containerd runs
/// the runtime's create) fails, and StopPodSandbox + RemovePodSandbox leave no
/// process, mount, network namespace or runtime state behind.
///
/// What they do leave, with runc as with oxcart-runtime, is the container's
/// empty cgroup directories: the runtime died before it recorded its state, so
/// the shim's `delete --force` finds no container to clean. The kubelet removes
/// the pod's cgroup tree with the pod (docs/kubernetes.md); checked here: empty,
/// then removed as the kubelet would.
fn killed_runtime(env: &Env, cri: &Cri, handler: &str) {
    cri.pull(&env.busybox).unwrap();
    let record = env.dir.join(format!("{handler}-killed.log"));
    // The kill races the runtime's create: a create that finished first is not
    // the case under test, so try again (three times at most).
    for attempt in 1..=3 {
        let _ = std::fs::remove_file(&record);
        let pod = Pod::run(cri, env, &format!("{handler}-killed"), "killed", |_| {});
        let c = pod.create(&pod.container("victim", SLEEP)).unwrap();
        let err = cri
            .start(&c)
            .expect_err("started although its runtime was killed");
        assert!(
            err.message().contains("exit status 137"),
            "StartContainer: {err}"
        );
        assert_ne!(cri.status(&c).state, CONTAINER_RUNNING);
        let killed = std::fs::read_to_string(&record)
            .unwrap_or_default()
            .contains("killed-midway");
        let netns = pod.netns();
        pod.remove_and_check_leaving_empty_cgroups(netns.as_deref());
        if killed {
            return;
        }
        eprintln!("{handler}: attempt {attempt}: create finished before the kill; again");
    }
    panic!("{handler}: the runtime's create was never killed midway in 3 attempts");
}

/// The `<handler>-killed` runtime: the real one, except that an application
/// container's `create` is SIGKILLed midway: as soon as the container's cgroup
/// holds a process (its init, not yet running the user's command). The sandbox's
/// create (and every other command) runs untouched.
pub fn killing_wrapper(real: &str) -> String {
    format!(
        r#"#!/bin/sh
real='{real}'
prev= bundle= create=
for a in "$@"; do
    [ "$prev" = --bundle ] && bundle=$a
    [ "$a" = create ] && create=1
    prev=$a
done
if [ -n "$create" ] && [ -n "$bundle" ] &&
    grep -q '"io.kubernetes.cri.container-type": *"container"' "$bundle/config.json"; then
    cg=$(sed -n 's/.*"cgroupsPath": *"\([^"]*\)".*/\1/p' "$bundle/config.json")
    "$real" "$@" &
    pid=$!
    # Builtins only (no fork per poll, to catch the window): `read` fails on an
    # empty cgroup.procs (cgroup files have no size, so `test -s` cannot tell);
    # any hierarchy, whichever the runtime joins first.
    joined() {{
        for procs in /sys/fs/cgroup/*"$cg"/cgroup.procs; do
            {{ read -r _ < "$procs"; }} 2>/dev/null && return 0
        done
        return 1
    }}
    while kill -0 "$pid" 2>/dev/null && ! joined; do :; done
    kill -KILL "$pid" 2>/dev/null && echo killed-midway >> "$0.log"
    wait "$pid"
    exit 137
fi
exec "$real" "$@"
"#
    )
}

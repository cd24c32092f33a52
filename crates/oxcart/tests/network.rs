//! Bridge networking end to end, with real traffic only to namespaces these tests make:
//! the default bridge, user networks, isolation, `--internal`, egress masquerade to a
//! "remote host" namespace, IP exhaustion, concurrent allocation, and nothing left.
#![allow(clippy::unwrap_used)]

#[path = "../../image/tests/common/mod.rs"]
mod common;
mod engine;

use engine::*;
use std::io::Read;
use std::process::{Child, Command};

/// A "remote host": its own network namespace joined to the host by a veth pair with
/// a /30 the test picks, and a TCP server on it answering `remote-ok`. Only a
/// masqueraded connection can reach it: it has no route back to container subnets.
struct Remote {
    ns: String,
    server: Child,
    pub addr: String,
}

impl Remote {
    fn new(tag: &str, third_octet: u8) -> Remote {
        let ns = format!("oxt-{tag}-{}", std::process::id());
        let host_if = format!("oxh{third_octet}x{}", std::process::id() % 10000);
        let server = [
            "busybox",
            "nc",
            "-ll",
            "-p",
            "9000",
            "-e",
            "echo",
            "remote-ok",
        ];
        Remote::serving(ns, &host_if, third_octet, &server)
    }

    /// Namespace `ns` joined to the host by a veth pair (`host_if` 10.250.N.1/30 on the
    /// host, `eth0` 10.250.N.2/30 inside), running `server` inside it.
    fn serving(ns: String, host_if: &str, third_octet: u8, server: &[&str]) -> Remote {
        let sh = |a: &str| {
            let st = Command::new("sh").arg("-c").arg(a).status().unwrap();
            assert!(st.success(), "{a}");
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(std::process::Stdio::null())
            .status();
        sh(&format!("ip netns add {ns}"));
        sh(&format!(
            "ip link add {host_if} type veth peer name eth0 netns {ns}"
        ));
        sh(&format!(
            "ip addr add 10.250.{third_octet}.1/30 dev {host_if}"
        ));
        sh(&format!("ip link set {host_if} up"));
        sh(&format!(
            "ip -n {ns} addr add 10.250.{third_octet}.2/30 dev eth0"
        ));
        sh(&format!("ip -n {ns} link set eth0 up"));
        sh(&format!("ip -n {ns} link set lo up"));
        let server = Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(server)
            .spawn()
            .unwrap();
        Remote {
            ns,
            server,
            addr: format!("10.250.{third_octet}.2"),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // Deleting the namespace deletes its veth and so the host's end too.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A server container answering every TCP connection on 8080 with its hostname.
fn server(ox: &Ox, name: &str, net: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--name", name, "--hostname", name];
    a.extend_from_slice(net);
    a.extend_from_slice(&[ox.image(), "nc", "-ll", "-p", "8080", "-e", "echo", name]);
    ox.ok(&a);
    wait_listening(ox, name, 8080);
    ox.ip_of(name)
}

/// Waits until the container's process has a TCP socket listening on `port`: `run -d`
/// and `start` return once the process is exec'd, before `nc` has bound, and a client
/// racing that bind reads nothing (so would a docker user; docker's tests wait too).
fn wait_listening(ox: &Ox, name: &str, port: u16) {
    let pid = ox.inspect(name)["State"]["Pid"].as_i64().unwrap();
    // /proc/PID/net/tcp{,6} list the sockets of PID's network namespace (busybox nc
    // binds in6addr_any when IPv6 is up); a listener is state 0A on local port PORT (hex).
    let port_hex = format!(":{port:04X}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut tables = String::new();
        for f in ["tcp", "tcp6"] {
            tables += &std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
        }
        let listening = tables.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&port_hex) && f[3] == "0A"
        });
        if listening {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never listened on {port}:\n{tables}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What a client container on `net` reads from `ip:port` (empty if unreachable).
fn fetch_from_ctr(ox: &Ox, net: &str, ip: &str, port: &str) -> String {
    let o = ox.run(&[
        "run",
        "--rm",
        "--network",
        net,
        ox.image(),
        "nc",
        "-w",
        "2",
        ip,
        port,
    ]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn default_bridge_gives_an_address_route_hosts_entry_and_is_reachable_from_the_host() {
    let ox = Ox::new().pulled();
    let ip = server(&ox, "web", &[]);
    let v = ox.inspect("web");
    assert_eq!(v["NetworkSettings"]["IPAddress"], ip.as_str());
    let gw = v["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!gw.is_empty());
    // The host reaches the container through the bridge (the gateway is the host's).
    let mut s = std::net::TcpStream::connect((ip.as_str(), 8080)).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got.trim(), "web");
    // /etc/hosts ends with the container's own address and hostname (docker's line),
    // and the default route goes through the gateway.
    let out = ox.ok(&[
        "run",
        "--rm",
        "-h",
        "me",
        "--add-host",
        "hgw:host-gateway",
        "--mac-address",
        "02:00:00:aa:bb:cc",
        ox.image(),
        "sh",
        "-c",
        "tail -n1 /etc/hosts; cat /proc/net/route; cat /sys/class/net/eth0/address; grep hgw /etc/hosts",
    ]);
    // --add-host NAME:host-gateway is the bridge's address (the host); --mac-address
    // is eth0's.
    assert!(out.contains(&format!("{gw}\thgw")), "{out}");
    assert!(out.contains("02:00:00:aa:bb:cc"), "{out}");
    let mut lines = out.lines();
    let hosts = lines.next().unwrap();
    assert!(hosts.ends_with("\tme"), "{hosts}");
    assert!(out.contains("eth0\t00000000\t"), "no default route: {out}");
    // docker's MAC: 02:42 and the address.
    let o: std::net::Ipv4Addr = ip.parse().unwrap();
    let o = o.octets();
    let mac = format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    assert_eq!(v["NetworkSettings"]["MacAddress"], mac.as_str());
    let n = ox.inspect_network("bridge");
    assert_eq!(n["Containers"].as_object().unwrap().len(), 1, "{n}");
    ox.ok(&["rm", "-f", "web"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn user_networks_connect_their_containers_and_isolate_others() {
    let ox = Ox::new().pulled();
    ox.ok(&["network", "create", "--subnet", "10.201.1.0/24", "front"]);
    ox.ok(&["network", "create", "--subnet", "10.201.2.0/24", "back"]);
    let ip = server(&ox, "api", &["--network", "front"]);
    assert!(ip.starts_with("10.201.1."), "{ip}");
    assert_eq!(fetch_from_ctr(&ox, "front", &ip, "8080"), "api");
    // From another network: no route through our table (docker's isolation).
    assert_eq!(fetch_from_ctr(&ox, "back", &ip, "8080"), "");
    let e = ox.fail(1, &["network", "rm", "front"]);
    assert!(e.contains("has active endpoints"), "{e}");
    ox.ok(&["rm", "-f", "api"]);
    ox.ok(&["network", "rm", "front", "back"]);
    let e = ox.fail(
        125,
        &["run", "--rm", "--network", "front", ox.image(), "true"],
    );
    assert!(e.contains("network front not found"), "{e}");
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn egress_is_masqueraded_and_internal_networks_have_none() {
    let ox = Ox::new().pulled();
    let remote = Remote::new("egress", 17);
    ox.ok(&["network", "create", "--subnet", "10.201.3.0/24", "out"]);
    ox.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.201.4.0/24",
        "closed",
    ]);
    assert_eq!(
        fetch_from_ctr(&ox, "out", &remote.addr, "9000"),
        "remote-ok"
    );
    assert_eq!(
        fetch_from_ctr(&ox, "bridge", &remote.addr, "9000"),
        "remote-ok"
    );
    assert_eq!(fetch_from_ctr(&ox, "closed", &remote.addr, "9000"), "");
    // An internal network's containers still reach each other.
    let ip = server(&ox, "inner", &["--network", "closed"]);
    assert_eq!(fetch_from_ctr(&ox, "closed", &ip, "8080"), "inner");
    assert_eq!(ox.inspect_network("closed")["Internal"], true);
    ox.ok(&["rm", "-f", "inner"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn a_full_slash_29_is_a_clear_error_and_leases_come_back() {
    let ox = Ox::new().pulled();
    ox.ok(&["network", "create", "--subnet", "10.201.5.0/29", "tiny"]);
    let mut ips = Vec::new();
    for i in 0..5 {
        let n = format!("t{i}");
        ox.ok(&[
            "run",
            "-d",
            "--name",
            &n,
            "--network",
            "tiny",
            ox.image(),
            "sleep",
            "60",
        ]);
        ips.push(ox.ip_of(&n));
    }
    assert_eq!(
        ips,
        [
            "10.201.5.2",
            "10.201.5.3",
            "10.201.5.4",
            "10.201.5.5",
            "10.201.5.6"
        ]
    );
    let e = ox.fail(
        125,
        &[
            "run",
            "-d",
            "--name",
            "t5",
            "--network",
            "tiny",
            ox.image(),
            "sleep",
            "60",
        ],
    );
    assert!(
        e.contains("no available IPv4 addresses on network tiny"),
        "{e}"
    );
    ox.ok(&["rm", "-f", "t5"]);
    ox.ok(&["rm", "-f", "t2"]);
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "t6",
        "--network",
        "tiny",
        ox.image(),
        "sleep",
        "60",
    ]);
    assert_eq!(ox.ip_of("t6"), "10.201.5.4");
    for n in ["t0", "t1", "t3", "t4", "t6"] {
        ox.ok(&["rm", "-f", n]);
    }
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn fifty_concurrent_runs_get_fifty_distinct_addresses() {
    let ox = Ox::new().pulled();
    ox.ok(&["network", "create", "--subnet", "10.201.6.0/24", "many"]);
    let children: Vec<_> = (0..50)
        .map(|i| {
            ox.cmd()
                .args([
                    "run",
                    "-d",
                    "--name",
                    &format!("d{i}"),
                    "--network",
                    "many",
                    ox.image(),
                    "sleep",
                    "120",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut ips: Vec<String> = (0..50).map(|i| ox.ip_of(&format!("d{i}"))).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50);
    assert_eq!(
        ox.inspect_network("many")["Containers"]
            .as_object()
            .unwrap()
            .len(),
        50
    );
    for i in 0..50 {
        ox.ok(&["rm", "-f", &format!("d{i}")]);
    }
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn a_killed_run_leaves_state_the_next_command_reclaims() {
    let ox = Ox::new().pulled();
    ox.ok(&["network", "create", "--subnet", "10.201.7.0/29", "k"]);
    let id = ox.ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "k",
        ox.image(),
        "sleep",
        "120",
    ]);
    let id = id.trim().to_string();
    // Kill the monitor and the container as a crash would: no cleanup runs.
    let v = ox.inspect("victim");
    let pid = v["State"]["Pid"].as_i64().unwrap();
    let mon: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ox.ctr_dir(&id).join("monitor.json")).unwrap())
            .unwrap();
    let _ = Command::new("kill")
        .args(["-9", &mon["pid"].to_string()])
        .status();
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(ox.runroot().join("netns").join(&id).exists());
    // A restart reclaims the namespace, veth and lease and gets the address again.
    ox.ok(&["start", "victim"]);
    assert_eq!(ox.ip_of("victim"), "10.201.7.2");
    // A "reboot" of the network state: namespace file, veth, bridge and table gone
    // behind our back, the lease still recorded. The next run reclaims the lease and
    // brings bridge and rules back.
    let mon: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ox.ctr_dir(&id).join("monitor.json")).unwrap())
            .unwrap();
    let pid = ox.inspect("victim")["State"]["Pid"].to_string();
    let _ = Command::new("kill")
        .args(["-9", &mon["pid"].to_string()])
        .status();
    let _ = Command::new("kill").args(["-9", &pid]).status();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ns = ox.runroot().join("netns").join(&id);
    assert!(Command::new("umount").arg(&ns).status().unwrap().success());
    std::fs::remove_file(&ns).unwrap();
    let br = format!(
        "ox-{}",
        &ox.inspect_network("k")["Id"].as_str().unwrap()[..12]
    );
    let _ = Command::new("ip").args(["link", "del", &br]).status();
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", &nft_table(&ox)])
        .status();
    let ip = server(&ox, "after", &["--network", "k"]);
    assert_eq!(ip, "10.201.7.2");
    assert_eq!(fetch_from_ctr(&ox, "k", &ip, "8080"), "after");
    ox.ok(&["rm", "-f", "victim", "after"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn network_verbs_speak_dockers_json_and_refuse_what_is_not_done() {
    let ox = Ox::new().pulled();
    let id = ox.ok(&[
        "network",
        "create",
        "--subnet",
        "10.201.8.0/24",
        "--gateway",
        "10.201.8.254",
        "--ip-range",
        "10.201.8.128/25",
        "--label",
        "a=b",
        "lab",
    ]);
    let v = ox.inspect_network("lab");
    assert_eq!(v["Id"], id.trim());
    assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.201.8.254");
    assert_eq!(v["IPAM"]["Config"][0]["IPRange"], "10.201.8.128/25");
    assert_eq!(v["Labels"]["a"], "b");
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(
        ox.ok(&["network", "inspect", "-f", "{{.Name}} {{.Internal}}", "lab"])
            .trim(),
        "lab false"
    );
    let ls = ox.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls, "bridge\nlab\n");
    let e = ox.fail(
        125,
        &["network", "create", "--subnet", "10.201.8.0/25", "clash"],
    );
    assert!(e.contains("overlaps network lab"), "{e}");
    let e = ox.fail(125, &["network", "create", "-d", "macvlan", "m"]);
    assert!(e.contains("only the bridge driver"), "{e}");
    let e = ox.fail(1, &["network", "rm", "bridge"]);
    assert!(e.contains("pre-defined"), "{e}");
    // --ip: the address asked for, checked against the subnet.
    let out = ox.ok(&[
        "run",
        "--rm",
        "--ip",
        "10.201.8.7",
        "--network",
        "lab",
        ox.image(),
        "sh",
        "-c",
        "tail -n1 /etc/hosts",
    ]);
    assert!(out.starts_with("10.201.8.7\t"), "{out}");
    let e = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--ip",
            "10.9.9.9",
            "--network",
            "lab",
            ox.image(),
            "true",
        ],
    );
    assert!(e.contains("--ip 10.9.9.9"), "{e}");
    let e = ox.fail(
        125,
        &["run", "--rm", "--ip", "172.17.0.9", ox.image(), "true"],
    );
    assert!(e.contains("user defined networks only"), "{e}");
    // --network-alias: user networks only (docker's error), nothing left behind.
    let e = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--network-alias",
            "x",
            "--network",
            "none",
            ox.image(),
            "true",
        ],
    );
    assert!(
        e.contains(
            "network-scoped alias is supported only for containers in user defined networks"
        ),
        "{e}"
    );
    assert_eq!(ox.ok(&["ps", "-aq"]), "");
    assert_eq!(
        ox.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\nlab\n"
    );
    assert_eq!(ox.ok(&["network", "ls", "-q"]).lines().count(), 1);
}

/// A host port nobody holds right now (the kernel's pick, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn read_tcp(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    got.trim().to_string()
}

/// A "client host": its own namespace joined to the host by a veth pair; it reaches
/// the host at `host_addr`, as another machine on the LAN would.
struct ClientHost {
    ns: String,
    host_addr: String,
}

impl ClientHost {
    fn new(tag: &str, third_octet: u8) -> ClientHost {
        let ns = format!("oxc-{tag}-{}", std::process::id());
        let host_if = format!("oxc{third_octet}x{}", std::process::id() % 10000);
        let sh = |a: &str| {
            let st = Command::new("sh").arg("-c").arg(a).status().unwrap();
            assert!(st.success(), "{a}");
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(std::process::Stdio::null())
            .status();
        sh(&format!("ip netns add {ns}"));
        sh(&format!(
            "ip link add {host_if} type veth peer name eth0 netns {ns}"
        ));
        sh(&format!(
            "ip addr add 10.250.{third_octet}.1/30 dev {host_if}"
        ));
        sh(&format!("ip link set {host_if} up"));
        sh(&format!(
            "ip -n {ns} addr add 10.250.{third_octet}.2/30 dev eth0"
        ));
        sh(&format!("ip -n {ns} link set eth0 up"));
        ClientHost {
            ns,
            host_addr: format!("10.250.{third_octet}.1"),
        }
    }

    /// What a TCP client in this namespace reads from the host's `port`.
    fn fetch(&self, port: u16) -> String {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "busybox",
                "nc",
                "-w",
                "3",
                &self.host_addr,
                &port.to_string(),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for ClientHost {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn published_ports_reach_the_container_from_localhost_and_from_another_host() {
    let ox = Ox::new().pulled();
    let client = ClientHost::new("pub", 21);
    let hp = free_port();
    let spec = format!("{hp}:8080");
    server(
        &ox,
        "pweb",
        &["-p", &spec, "-p", "8080", "--expose", "9999", "-P"],
    );
    // The fixed port: from the host's 127.0.0.1 (the proxy) and from another host (DNAT).
    assert_eq!(read_tcp(&format!("127.0.0.1:{hp}")), "pweb");
    assert_eq!(client.fetch(hp), "pweb");
    // `-p 8080` got a free port; `oxcart port` and inspect say which.
    let lines = ox.ok(&["port", "pweb", "8080"]);
    let ports: Vec<u16> = lines
        .lines()
        .map(|l| l.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 2, "{lines}");
    assert!(ports.contains(&hp), "{lines}");
    let other = *ports.iter().find(|p| **p != hp).unwrap();
    assert_eq!(read_tcp(&format!("127.0.0.1:{other}")), "pweb");
    assert_eq!(client.fetch(other), "pweb");
    let v = ox.inspect("pweb");
    let p = &v["NetworkSettings"]["Ports"];
    assert_eq!(p["8080/tcp"].as_array().unwrap().len(), 2, "{p}");
    // -P published the exposed 9999 too.
    let h9999 = p["9999/tcp"][0]["HostPort"].as_str().unwrap();
    assert_ne!(h9999, "0");
    let all = ox.ok(&["port", "pweb"]);
    assert!(all.contains(&format!("8080/tcp -> 0.0.0.0:{hp}")), "{all}");
    assert!(
        all.contains(&format!("9999/tcp -> 0.0.0.0:{h9999}")),
        "{all}"
    );
    // A stop releases the ports (the exit's cleanup kills the proxy, drops the rules);
    // a start publishes them again.
    ox.ok(&["stop", "-t", "1", "pweb"]);
    drop(std::net::TcpListener::bind(("0.0.0.0", hp)).unwrap());
    assert_eq!(
        ox.inspect("pweb")["NetworkSettings"]["Ports"]["8080/tcp"],
        serde_json::Value::Null
    );
    ox.ok(&["start", "pweb"]);
    wait_listening(&ox, "pweb", 8080);
    assert_eq!(read_tcp(&format!("127.0.0.1:{hp}")), "pweb");
    assert_eq!(client.fetch(hp), "pweb");
    ox.ok(&["rm", "-f", "pweb"]);
    // The ports are free again: nothing holds them once the container is gone.
    std::net::TcpListener::bind(("0.0.0.0", hp)).unwrap();
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn a_taken_host_port_is_a_clear_error_before_the_container_starts() {
    let ox = Ox::new().pulled();
    let held = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let hp = held.local_addr().unwrap().port();
    let spec = format!("{hp}:8080");
    let e = ox.fail(
        125,
        &[
            "run",
            "-d",
            "--name",
            "clash",
            "-p",
            &spec,
            ox.image(),
            "sleep",
            "60",
        ],
    );
    assert!(
        e.contains(&format!("Bind for 0.0.0.0:{hp}/tcp failed")),
        "{e}"
    );
    assert_eq!(ox.inspect("clash")["State"]["Status"], "created");
    // A range takes the first free port of it.
    let spec = format!("{hp}-{}:8080", hp + 1);
    let e = ox.run(&[
        "run",
        "-d",
        "--name",
        "ranged",
        "-p",
        &spec,
        ox.image(),
        "sleep",
        "60",
    ]);
    if e.status.success() {
        assert_eq!(
            ox.ok(&["port", "ranged", "8080"]).trim(),
            format!("0.0.0.0:{}", hp + 1)
        );
    }
    let e = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-p",
            "80",
            ox.image(),
            "true",
        ],
    );
    assert!(e.contains("conflicting options: port publishing"), "{e}");
    drop(held);
    let _ = ox.run(&["rm", "-f", "ranged"]);
    ox.ok(&["rm", "-f", "clash"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

/// A published port carries a conversation, not just one reply: a request answered
/// while the connection stays open, then the client's half-close (shutdown(SHUT_WR))
/// passed on to the container, which answers once it sees EOF — as docker-proxy does.
/// From 127.0.0.1 this is the kernel bypass's direct connection; the relay's own
/// half-close is checked by `the_hosts_loopback_reaches_…` (a socket bound first).
#[test]
fn the_port_proxy_relays_an_open_exchange_and_passes_on_a_half_close() {
    use std::io::{BufRead, Write};
    let ox = Ox::new().pulled();
    let hp = free_port();
    let spec = format!("{hp}:8080");
    // `read` answers the first line at once; `wc -c` counts the rest, so it prints
    // only after EOF, which reaches it only through a relayed half-close.
    let conv = r#"read l; echo "got $l"; wc -c"#;
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "conv",
        "-p",
        &spec,
        ox.image(),
        "nc",
        "-ll",
        "-p",
        "8080",
        "-e",
        "sh",
        "-c",
        conv,
    ]);
    wait_listening(&ox, "conv", 8080);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", hp)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"hello\n").unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "got hello");
    s.write_all(b"abc").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.trim(), "3");
    ox.ok(&["rm", "-f", "conv"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

/// A TCP server for the container (the host's python3, bind-mounted read-only): on
/// 8080 it answers each connection with the peer address it sees, then, after the
/// client's half-close, with the number of bytes that came; on the container's own
/// 127.0.0.1:9090, `secret`, which a published port must never reach.
/// The host's /usr and libraries, read-only, for a container that runs the host's
/// python3 (or resolves names through the host's libc) on the busybox image.
const HOST_LIBS: &[&str] = &[
    "-v",
    "/usr:/usr:ro",
    "-v",
    "/lib64:/lib64:ro",
    "-v",
    "/lib:/lib:ro",
];

const PEER_ECHO: &str = "import socket,threading\ndef sec():\n l=socket.socket();l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);l.bind(('127.0.0.1',9090));l.listen(8)\n while True:\n  c,a=l.accept();c.sendall(b'secret');c.close()\nthreading.Thread(target=sec,daemon=True).start()\nl=socket.socket();l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);l.bind(('0.0.0.0',8080));l.listen(8)\nwhile True:\n c,a=l.accept();c.sendall((a[0]+'\\n').encode());n=0\n while True:\n  b=c.recv(65536)\n  if not b:break\n  n+=len(b)\n c.sendall(str(n).encode());c.close()\n";

/// One exchange with PEER_ECHO through `s`: (the peer address the container saw, the
/// byte count it answered after our half-close).
fn peer_exchange(s: std::net::TcpStream) -> (String, String) {
    use std::io::{BufRead, Write};
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut seen = String::new();
    r.read_line(&mut seen).unwrap();
    (&s).write_all(&[7u8; 100_000]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    (seen.trim().to_string(), rest)
}

/// TCP from the host's own 127.0.0.1 goes straight to the container (the proxy's
/// kernel bypass, a cgroup connect4 program: one TCP connection from the bridge's
/// gateway, no relay) with the proxy's semantics: the container sees the gateway, as
/// under docker-proxy; the client's getpeername says what it connected to; a
/// half-close passes; the container's own 127.0.0.1 stays out of reach; a socket bound
/// to 127.0.0.1 first still works (through the relay); and nothing rewrites the port
/// once the container is gone.
#[test]
fn the_hosts_loopback_reaches_a_published_port_straight_from_the_gateway() {
    let ox = Ox::new().pulled();
    let (hp, hs) = (free_port(), free_port());
    let (p1, p2) = (format!("{hp}:8080"), format!("{hs}:9090"));
    ox.ok(&[
        &["run", "-d", "--name", "peer", "-p", &p1, "-p", &p2][..],
        HOST_LIBS,
        &[ox.image(), "/usr/bin/python3", "-c", PEER_ECHO],
    ]
    .concat());
    wait_listening(&ox, "peer", 8080);
    let gw = ox.inspect("peer")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!gw.is_empty());
    let s = std::net::TcpStream::connect(("127.0.0.1", hp)).unwrap();
    // The bypass is on: the connection is the host's, from its address on the bridge.
    assert_eq!(s.local_addr().unwrap().ip().to_string(), gw);
    assert_eq!(
        s.peer_addr().unwrap().to_string(),
        format!("127.0.0.1:{hp}")
    );
    assert_eq!(peer_exchange(s), (gw.clone(), "100000".to_string()));
    // Any 127.0.0.0/8 address reaches a port published on 0.0.0.0, as the listener.
    let s = std::net::TcpStream::connect(("127.0.0.2", hp)).unwrap();
    assert_eq!(
        s.peer_addr().unwrap().to_string(),
        format!("127.0.0.2:{hp}")
    );
    assert_eq!(peer_exchange(s), (gw.clone(), "100000".to_string()));
    // A dual-stack IPv6 socket to ::ffff:127.0.0.1 (a Java client's way) likewise.
    let mapped = format!("[::ffff:127.0.0.1]:{hp}");
    let s = std::net::TcpStream::connect(mapped.as_str()).unwrap();
    assert_eq!(
        s.local_addr().unwrap().ip().to_string(),
        format!("::ffff:{gw}")
    );
    assert_eq!(s.peer_addr().unwrap().to_string(), mapped);
    assert_eq!(peer_exchange(s), (gw.clone(), "100000".to_string()));
    // A socket bound to 127.0.0.1 cannot leave by the bridge (no route_localnet): the
    // proxy relays it, and the container still sees the gateway.
    let sock = socket_bound_to_loopback();
    let s = connect_fd(sock, hp);
    assert_eq!(s.local_addr().unwrap().ip().to_string(), "127.0.0.1");
    assert_eq!(peer_exchange(s), (gw.clone(), "100000".to_string()));
    // The container's 127.0.0.1 is its own: the published 9090 finds nothing there.
    let mut got = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", hs)) {
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = s.read_to_string(&mut got);
    }
    assert!(!got.contains("secret"), "{got}");
    let id = ox.inspect("peer")["Id"].as_str().unwrap().to_string();
    let progs = proxy_bpf_programs(&ox, &id);
    assert_eq!(progs.len(), 4, "connect4/6, getpeername4/6: {progs:?}");
    ox.ok(&["rm", "-f", "peer"]);
    // The programs went with the proxy (nothing pinned; its exit closed the links).
    assert!(
        eventually(5, || progs.iter().all(|p| !bpf_program_exists(*p))),
        "{progs:?} still loaded"
    );
    // Nothing rewrites the port any more: a listener of the host's own gets it.
    let l = std::net::TcpListener::bind(("0.0.0.0", hp)).unwrap();
    let c = std::net::TcpStream::connect(("127.0.0.1", hp)).unwrap();
    assert_eq!(c.local_addr().unwrap().ip().to_string(), "127.0.0.1");
    let (a, _) = l.accept().unwrap();
    assert_eq!(a.peer_addr().unwrap(), c.local_addr().unwrap());
    ox.assert_clean();
    ox.assert_net_clean();
}

/// The ids of the BPF programs the container's proxy holds links to (its fdinfo:
/// `prog_id:` of each `anon_inode:bpf_link`).
fn proxy_bpf_programs(ox: &Ox, id: &str) -> Vec<u32> {
    let f = ox.runroot().join("netns").join(format!("{id}.proxy"));
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
    let pid = rec["pid"].as_i64().unwrap();
    let mut ids = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let link = std::fs::read_link(e.path()).unwrap_or_default();
        if link.to_string_lossy() != "anon_inode:bpf_link" {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            e.file_name().to_string_lossy()
        ))
        .unwrap();
        ids.extend(
            info.lines()
                .filter_map(|l| l.strip_prefix("prog_id:"))
                .map(|v| v.trim().parse::<u32>().unwrap()),
        );
    }
    ids
}

/// Whether a BPF program with this id is still loaded (bpf(BPF_PROG_GET_FD_BY_ID)).
fn bpf_program_exists(id: u32) -> bool {
    let attr = [id, 0, 0];
    // SAFETY: BPF_PROG_GET_FD_BY_ID (13) reads prog_id/next_id/open_flags from attr.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            13,
            attr.as_ptr(),
            std::mem::size_of_val(&attr) as libc::c_uint,
        )
    };
    if fd >= 0 {
        // SAFETY: a fd bpf(2) just gave us.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
}

/// A TCP socket bound to 127.0.0.1 (any port), not yet connected.
fn socket_bound_to_loopback() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2)/bind(2) on a fd we own; sockaddr_in is fully initialised.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let r = libc::bind(
            fd,
            &a as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0);
        std::os::fd::OwnedFd::from_raw_fd(fd)
    }
}

fn connect_fd(fd: std::os::fd::OwnedFd, port: u16) -> std::net::TcpStream {
    use std::os::fd::AsRawFd;
    // SAFETY: connect(2) on a socket we own; sockaddr_in is fully initialised.
    unsafe {
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        a.sin_port = port.to_be();
        let r = libc::connect(
            fd.as_raw_fd(),
            &a as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    }
    std::net::TcpStream::from(fd)
}

/// A UDP echo server for the container: the host's python3, bind-mounted read-only
/// (busybox has no UDP server applet).
const UDP_ECHO: &str = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('',5353))\nwhile True:\n d,a=s.recvfrom(999)\n s.sendto(b'udp:'+d,a)\n";

/// Send `msg` to `addr` over UDP from the namespace `ns` (or the host) and return the
/// reply, retrying while the server starts.
fn udp_ask(ns: Option<&str>, host: &str, port: u16, msg: &str) -> String {
    let py = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(1)\nfor i in range(10):\n s.sendto(b'{msg}',('{host}',{port}))\n try:\n  print(s.recvfrom(999)[0].decode());break\n except Exception: pass\n"
    );
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "python3", "-c", &py]);
            c
        }
        None => {
            let mut c = Command::new("python3");
            c.args(["-c", &py]);
            c
        }
    };
    String::from_utf8_lossy(&c.output().unwrap().stdout)
        .trim()
        .to_string()
}

#[test]
fn published_udp_ports_answer_from_localhost_and_from_another_host() {
    let ox = Ox::new().pulled();
    let client = ClientHost::new("udp", 22);
    let hp = std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("{hp}:5353/udp");
    ox.ok(&[
        &["run", "-d", "--name", "udp", "-p", &spec][..],
        HOST_LIBS,
        &[ox.image(), "/usr/bin/python3", "-c", UDP_ECHO],
    ]
    .concat());
    let got = udp_ask(None, "127.0.0.1", hp, "one");
    let logs = ox.run(&["logs", "udp"]);
    assert_eq!(
        got,
        "udp:one",
        "{} {} {}",
        String::from_utf8_lossy(&logs.stderr),
        String::from_utf8_lossy(&logs.stdout),
        ox.inspect("udp")["State"]
    );
    assert_eq!(
        udp_ask(Some(&client.ns), &client.host_addr, hp, "two"),
        "udp:two"
    );
    assert_eq!(
        ox.ok(&["port", "udp"]).trim(),
        format!("5353/udp -> 0.0.0.0:{hp}")
    );
    ox.ok(&["rm", "-f", "udp"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let ox = Ox::new().pulled();
    ox.ok(&["network", "create", "--subnet", "10.201.9.0/24", "c-a"]);
    ox.ok(&["network", "create", "--subnet", "10.201.10.0/24", "c-b"]);
    let ip = server(&ox, "sa", &["--network", "c-a"]);
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "cb",
        "--network",
        "c-b",
        ox.image(),
        "sleep",
        "120",
    ]);
    let reach = || {
        let o = ox.run(&["exec", "cb", "nc", "-w", "2", &ip, "8080"]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(reach(), "");
    ox.ok(&["network", "connect", "c-a", "cb"]);
    assert_eq!(reach(), "sa");
    let v = ox.inspect("cb");
    let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
    assert!(
        nets["c-a"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.201.9."),
        "{v}"
    );
    assert!(
        nets["c-b"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.201.10."),
        "{v}"
    );
    assert_eq!(
        ox.inspect_network("c-a")["Containers"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    let e = ox.fail(125, &["network", "connect", "c-a", "cb"]);
    assert!(e.contains("already exists in network c-a"), "{e}");
    // The connection outlives a restart, as docker keeps it in the container's config.
    ox.ok(&["restart", "-t", "1", "cb"]);
    assert_eq!(reach(), "sa");
    ox.ok(&["network", "disconnect", "c-a", "cb"]);
    assert_eq!(reach(), "");
    assert_eq!(
        ox.inspect_network("c-a")["Containers"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    let e = ox.fail(125, &["network", "disconnect", "c-a", "cb"]);
    assert!(e.contains("is not connected to network c-a"), "{e}");
    let e = ox.fail(125, &["network", "disconnect", "c-b", "cb"]);
    assert!(e.contains("not supported yet"), "{e}");
    // Two --network at run: on both from the start.
    ox.ok(&[
        "run",
        "-d",
        "--name",
        "both",
        "--network",
        "c-b",
        "--network",
        "c-a",
        ox.image(),
        "sleep",
        "120",
    ]);
    let o = ox.run(&["exec", "both", "nc", "-w", "2", &ip, "8080"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "sa");
    let e = ox.fail(
        125,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--network",
            "c-a",
            ox.image(),
            "true",
        ],
    );
    assert!(e.contains("cannot be connected"), "{e}");
    ox.ok(&["rm", "-f", "sa", "cb", "both"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

/// A DNS server of the test's own in a "remote host" namespace (never the real
/// internet): `ext.test` is 192.0.2.77, every other name NXDOMAIN. Containers reach
/// it through `--dns`, which docker's resolver asks from the container's namespace.
const FAKE_DNS: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    d, a = s.recvfrom(512)
    i = 12; labels = []
    while d[i]:
        l = d[i]; labels.append(d[i+1:i+1+l].decode()); i += 1 + l
    q = d[12:i+5]; qtype = struct.unpack('>H', d[i+1:i+3])[0]
    name = '.'.join(labels).lower()
    if name == 'ext.test':
        ans = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + bytes([192, 0, 2, 77]) if qtype == 1 else b''
        r = d[:2] + struct.pack('>HHHHH', 0x8180, 1, 1 if ans else 0, 0, 0) + q + ans
    else:
        r = d[:2] + struct.pack('>HHHHH', 0x8183, 1, 0, 0, 0) + q
    s.sendto(r, a)
"#;

/// [`FAKE_DNS`] on 10.250.N.2:53 in a "remote host" namespace of its own.
fn fake_dns(third_octet: u8) -> Remote {
    let ns = format!("oxd-{third_octet}-{}", std::process::id());
    let host_if = format!("oxd{third_octet}x{}", std::process::id() % 10000);
    let addr = format!("10.250.{third_octet}.2");
    Remote::serving(
        ns,
        &host_if,
        third_octet,
        &["python3", "-c", FAKE_DNS, &addr],
    )
}

/// `nslookup NAME` in a running container: the addresses of the answer (empty when
/// the name does not resolve).
fn lookup(ox: &Ox, ctr: &str, name: &str) -> Vec<String> {
    let o = ox.run(&["exec", ctr, "busybox", "nslookup", "-type=a", name]);
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!(
        "nslookup {name}: {out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // busybox prints the server first ("Server:\t\t127.0.0.11" / "Address:\t127.0.0.11:53").
    out.split("\n\n")
        .skip(1)
        .flat_map(|b| b.lines())
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .collect()
}

/// A container that only sleeps, on `net`, asking the test's DNS server upstream.
fn sleeper(ox: &Ox, name: &str, dns: &str, extra: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--name", name, "--dns", dns];
    a.extend_from_slice(extra);
    a.extend_from_slice(&[ox.image(), "sleep", "300"]);
    ox.ok(&a).trim().to_string()
}

fn resolver_pid(ox: &Ox) -> Option<i32> {
    pid_in(ox, "resolver.pid")
}

fn worker_pid(ox: &Ox) -> Option<i32> {
    pid_in(ox, "worker.pid")
}

fn pid_in(ox: &Ox, file: &str) -> Option<i32> {
    let s = std::fs::read_to_string(ox.runroot().join("dns").join(file)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    v["pid"].as_i64().map(|p| p as i32)
}

#[test]
fn containers_resolve_each_other_by_name_alias_and_short_id() {
    let ox = Ox::new().pulled();
    let dns = fake_dns(31);
    ox.ok(&["network", "create", "--subnet", "10.201.11.0/24", "names"]);
    let ip = server(
        &ox,
        "srv",
        &[
            "--network",
            "names",
            "--network-alias",
            "web",
            "--network-alias",
            "www",
            "--dns",
            &dns.addr,
        ],
    );
    let id = ox.inspect("srv")["Id"].as_str().unwrap().to_string();
    let short = &id[..12];
    sleeper(&ox, "cli", &dns.addr, &["--network", "names"]);
    // docker's resolv.conf on a user network: the embedded resolver only, ndots:0.
    let rc = ox.ok(&["exec", "cli", "cat", "/etc/resolv.conf"]);
    assert_eq!(rc, "nameserver 127.0.0.11\noptions ndots:0\n");
    for name in ["srv", "web", "WWW", short, "srv.names"] {
        assert_eq!(lookup(&ox, "cli", name), [ip.as_str()], "{name}");
    }
    // TCP by name (busybox resolves through the libc of the host, mounted read-only).
    let mut a = vec!["run", "--rm", "--network", "names", "--dns", &dns.addr];
    a.extend_from_slice(HOST_LIBS);
    a.extend_from_slice(&[ox.image(), "sh", "-c", "nc -w 3 web 8080; nc -w 3 srv 8080"]);
    assert_eq!(
        ox.ok(&a).split_whitespace().collect::<Vec<_>>(),
        ["srv", "srv"]
    );
    // UDP by name: a python echo server behind the alias `echo`.
    let mut a = vec![
        "run",
        "-d",
        "--name",
        "udpsrv",
        "--network",
        "names",
        "--network-alias",
        "echo",
    ];
    a.extend_from_slice(HOST_LIBS);
    a.extend_from_slice(&[ox.image(), "/usr/bin/python3", "-c", UDP_ECHO]);
    ox.ok(&a);
    let ask = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(1)\nfor i in range(10):\n s.sendto(b'hi',('echo',5353))\n try:\n  print(s.recvfrom(99)[0].decode());break\n except Exception: pass\n";
    let mut a = vec!["run", "--rm", "--network", "names", "--dns", &dns.addr];
    a.extend_from_slice(HOST_LIBS);
    a.extend_from_slice(&[ox.image(), "/usr/bin/python3", "-c", ask]);
    assert_eq!(ox.ok(&a).trim(), "udp:hi");
    // DNS over TCP too (what a client does after a truncated UDP answer).
    let tcpq = "import socket,struct\nq=struct.pack('>HHHHHH',9,256,1,0,0,0)+b'\\x03www\\x00'+struct.pack('>HH',1,1)\ns=socket.create_connection(('127.0.0.11',53))\ns.sendall(struct.pack('>H',len(q))+q)\nr=s.recv(2);r=s.recv(struct.unpack('>H',r)[0])\nprint(struct.unpack('>H',r[6:8])[0],'.'.join(map(str,r[-4:])))\n";
    let mut a = vec!["run", "--rm", "--network", "names", "--dns", &dns.addr];
    a.extend_from_slice(HOST_LIBS);
    a.extend_from_slice(&[ox.image(), "/usr/bin/python3", "-c", tcpq]);
    assert_eq!(ox.ok(&a).trim(), format!("1 {ip}"));
    // --network container:cli shares cli's resolv.conf and so its resolver's answers.
    let o = ox.ok(&[
        "run",
        "--rm",
        "--network",
        "container:cli",
        ox.image(),
        "busybox",
        "nslookup",
        "-type=a",
        "web",
    ]);
    assert!(o.contains(&format!("Address: {ip}")), "{o}");
    // PTR: the container's name and network (docker's `name.network`).
    let o = ox.ok(&["exec", "cli", "busybox", "nslookup", &ip]);
    assert!(o.contains("name = srv.names"), "{o}");
    // Other names go upstream (the test's server, asked from the container's side).
    assert_eq!(lookup(&ox, "cli", "ext.test"), ["192.0.2.77"]);
    assert!(lookup(&ox, "cli", "nothing.test").is_empty());
    // inspect: the aliases as given, and every name (docker 25+'s DNSNames).
    let v = ox.inspect("srv");
    let ep = &v["NetworkSettings"]["Networks"]["names"];
    assert_eq!(ep["Aliases"], serde_json::json!(["web", "www"]));
    assert_eq!(
        ep["DNSNames"],
        serde_json::json!(["srv", "web", "www", short])
    );
    // The resolver binds nothing on the host: port 53 is in the containers only.
    let ss =
        String::from_utf8(Command::new("ss").args(["-Hlnup"]).output().unwrap().stdout).unwrap();
    let pid = worker_pid(&ox).expect("a resolver runs");
    assert!(!ss.contains(&format!("pid={pid},")), "{ss}");
    // The default bridge has no name resolution (docker): no alias, no 127.0.0.11.
    let e = ox.fail(
        125,
        &["run", "--rm", "--network-alias", "x", ox.image(), "true"],
    );
    assert!(
        e.contains(
            "network-scoped alias is supported only for containers in user defined networks"
        ),
        "{e}"
    );
    let rc = ox.ok(&[
        "run",
        "--rm",
        "--dns",
        &dns.addr,
        ox.image(),
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(rc, format!("nameserver {}\n", dns.addr));
    ox.ok(&["rm", "-f", "srv", "cli", "udpsrv"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

#[test]
fn names_follow_networks_connect_disconnect_and_a_killed_resolver() {
    let ox = Ox::new().pulled();
    let dns = fake_dns(32);
    ox.ok(&["network", "create", "--subnet", "10.201.12.0/24", "na"]);
    ox.ok(&["network", "create", "--subnet", "10.201.13.0/24", "nb"]);
    sleeper(&ox, "a1", &dns.addr, &["--network", "na"]);
    sleeper(&ox, "b1", &dns.addr, &["--network", "nb"]);
    let a1 = ox.ip_of("a1");
    // Isolation: a container gets answers for its own networks only.
    assert!(lookup(&ox, "b1", "a1").is_empty());
    assert!(lookup(&ox, "b1", "a1.na").is_empty());
    // connect --alias of a running container: it resolves na's names, and na's
    // containers resolve it by name and alias.
    ox.ok(&["network", "connect", "--alias", "bee", "na", "b1"]);
    assert_eq!(lookup(&ox, "b1", "a1"), [a1.as_str()]);
    let b1_on_na = ox.inspect("b1")["NetworkSettings"]["Networks"]["na"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(lookup(&ox, "a1", "bee"), [b1_on_na.as_str()]);
    assert_eq!(lookup(&ox, "a1", "b1"), [b1_on_na.as_str()]);
    assert_eq!(
        ox.inspect("b1")["NetworkSettings"]["Networks"]["na"]["Aliases"],
        serde_json::json!(["bee"])
    );
    // A running container on the default bridge connected to a user network asks the
    // resolver from then on (docker rewrites its resolv.conf).
    sleeper(&ox, "br", &dns.addr, &[]);
    ox.ok(&["network", "connect", "na", "br"]);
    let rc = ox.ok(&["exec", "br", "cat", "/etc/resolv.conf"]);
    assert_eq!(rc, "nameserver 127.0.0.11\noptions ndots:0\n");
    assert_eq!(lookup(&ox, "br", "a1"), [a1.as_str()]);
    ox.ok(&["rm", "-f", "br"]);
    // A container leaving takes its names along.
    sleeper(&ox, "a2", &dns.addr, &["--network", "na"]);
    let a2 = ox.ip_of("a2");
    assert_eq!(lookup(&ox, "a1", "a2"), [a2]);
    ox.ok(&["rm", "-f", "a2"]);
    assert!(lookup(&ox, "a1", "a2").is_empty());
    // kill -9 of the serving worker: its supervisor starts a new one, which binds
    // every running container's socket again, with no command run.
    let w = worker_pid(&ox).expect("a resolver worker runs");
    // SAFETY: a pid the engine recorded for this test's root.
    unsafe { libc::kill(w, libc::SIGKILL) };
    assert!(eventually(20, || worker_pid(&ox).is_some_and(|p| p != w)));
    assert!(eventually(20, || lookup(&ox, "a1", "b1") == [b1_on_na.clone()]));
    // kill -9 of supervisor and worker: lookups fail (nothing answers on
    // 127.0.0.11) until the next network change of this root starts a resolver,
    // which serves every running container again.
    let pid = resolver_pid(&ox).expect("a resolver runs");
    let w = worker_pid(&ox).unwrap();
    // SAFETY: pids the engine recorded for this test's root.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::kill(w, libc::SIGKILL);
    }
    assert!(eventually(10, || lookup(&ox, "a1", "b1").is_empty()));
    let out = ox.ok(&[
        "run",
        "--rm",
        "--network",
        "na",
        "--dns",
        &dns.addr,
        ox.image(),
        "busybox",
        "nslookup",
        "-type=a",
        "a1",
    ]);
    assert!(out.contains(&a1), "{out}");
    assert_ne!(resolver_pid(&ox), Some(pid));
    assert_eq!(lookup(&ox, "a1", "b1"), [b1_on_na.as_str()]);
    // disconnect: b1 no longer resolves na's names, nor na's containers b1.
    ox.ok(&["network", "disconnect", "na", "b1"]);
    assert!(lookup(&ox, "b1", "a1").is_empty());
    assert!(lookup(&ox, "a1", "bee").is_empty());
    assert!(lookup(&ox, "a1", "b1").is_empty());
    // A restart keeps the names (the resolver follows the new namespace).
    ox.ok(&["restart", "-t", "0", "a1"]);
    sleeper(&ox, "a3", &dns.addr, &["--network", "na"]);
    assert_eq!(lookup(&ox, "a3", "a1"), [ox.ip_of("a1")]);
    ox.ok(&["rm", "-f", "a1", "b1", "a3"]);
    ox.assert_clean();
    ox.assert_net_clean();
}

/// Every network's subnet of a root, by name.
fn subnets_of(ox: &Ox) -> Vec<(String, String)> {
    ox.ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .map(|n| {
            let v = ox.inspect_network(n);
            let s = v["IPAM"]["Config"][0]["Subnet"]
                .as_str()
                .unwrap()
                .to_string();
            (n.to_string(), s)
        })
        .collect()
}

fn cidr(s: &str) -> (u32, u32) {
    let (a, p) = s.split_once('/').unwrap();
    let a: std::net::Ipv4Addr = a.parse().unwrap();
    let p: u32 = p.parse().unwrap();
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    (u32::from(a) & mask, mask)
}

fn overlap(a: &str, b: &str) -> bool {
    let ((x, m), (y, n)) = (cidr(a), cidr(b));
    let m = m & n;
    x & m == y & m
}

/// Two engine roots (as two dockerd's on one host, or two tests of the suite) creating
/// networks and bringing up their default bridges at the same time: bridges are made
/// at a network's first start, so the routes show nothing yet; the subnets must still
/// all differ, and every network must start a container.
#[test]
fn two_roots_creating_networks_at_once_get_distinct_subnets() {
    const N: usize = 3;
    let roots = [Ox::new().pulled(), Ox::new().pulled()];
    std::thread::scope(|s| {
        let mut hs = Vec::new();
        for (r, ox) in roots.iter().enumerate() {
            for i in 0..N {
                hs.push(s.spawn(move || {
                    ox.ok(&["network", "create", &format!("par{r}x{i}")]);
                }));
            }
            // The default bridge, recorded and brought up by a root's first run.
            hs.push(s.spawn(move || {
                ox.ok(&["run", "--rm", ox.image(), "true"]);
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    let all: Vec<(usize, String, String)> = roots
        .iter()
        .enumerate()
        .flat_map(|(r, ox)| subnets_of(ox).into_iter().map(move |(n, s)| (r, n, s)))
        .collect();
    assert_eq!(all.len(), 2 * (N + 1), "{all:?}");
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(!overlap(&a.2, &b.2), "{a:?} and {b:?} overlap");
        }
    }
    // Every network comes up with a container, both roots at once.
    std::thread::scope(|s| {
        let hs: Vec<_> = all
            .iter()
            .map(|(r, n, _)| {
                let ox = &roots[*r];
                s.spawn(move || {
                    ox.ok(&["run", "--rm", "--network", n, ox.image(), "true"]);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    for ox in &roots {
        // What the runs saw is what was recorded: no default bridge had to move.
        let now = subnets_of(ox);
        assert!(
            all.iter()
                .filter(|a| std::ptr::eq(&roots[a.0], ox))
                .all(|a| now.contains(&(a.1.clone(), a.2.clone()))),
            "{now:?} / {all:?}"
        );
        ox.assert_clean();
        ox.assert_net_clean();
    }
}

/// The registrations (`/run/oxcart/network-roots/*`): the databases they name.
fn registered_roots() -> Vec<String> {
    std::fs::read_dir("/run/oxcart/network-roots")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A subnet another root's network holds is a clear error naming that network and
/// root; `network rm` releases it; a root gone with its networks still recorded (its
/// test killed and its directory cleaned, or a tmpfs emptied by a reboot) holds nothing,
/// and its registration is dropped by the next root that looks.
#[test]
fn a_subnet_is_held_by_its_network_in_any_root_until_the_network_or_root_goes() {
    let a = Ox::new();
    let b = Ox::new();
    a.ok(&["network", "create", "--subnet", "10.201.20.0/24", "held"]);
    let a_db = std::fs::canonicalize(a.root())
        .unwrap()
        .join("containers.db");
    assert!(
        registered_roots().contains(&a_db.display().to_string()),
        "{:?}",
        registered_roots()
    );
    let e = b.fail(
        125,
        &["network", "create", "--subnet", "10.201.20.128/25", "clash"],
    );
    assert!(
        e.contains("overlaps network held's 10.201.20.0/24")
            && e.contains(&a.root().display().to_string()),
        "{e}"
    );
    // Nothing was recorded by the refused create.
    assert_eq!(b.ok(&["network", "ls", "-q"]).lines().count(), 1);
    a.ok(&["network", "rm", "held"]);
    b.ok(&["network", "create", "--subnet", "10.201.20.128/25", "took"]);
    let e = a.fail(
        125,
        &["network", "create", "--subnet", "10.201.20.0/24", "back"],
    );
    assert!(
        e.contains("overlaps network took's 10.201.20.128/25"),
        "{e}"
    );
    b.ok(&["network", "rm", "took"]);
    // A root that dies with its network recorded and whose directory then goes: the
    // network, started once, is brought down as a reboot does (the bridge is the
    // host's route, which holds the subnet on its own while it exists).
    let c = Ox::new().pulled();
    c.ok(&["network", "create", "--subnet", "10.201.21.0/24", "orphan"]);
    c.ok(&["run", "--rm", "--network", "orphan", c.image(), "true"]);
    let c_db = std::fs::canonicalize(c.root())
        .unwrap()
        .join("containers.db")
        .display()
        .to_string();
    let br = format!(
        "ox-{}",
        &c.inspect_network("orphan")["Id"].as_str().unwrap()[..12]
    );
    let e = b.fail(
        125,
        &["network", "create", "--subnet", "10.201.21.0/24", "x"],
    );
    assert!(e.contains("overlaps network orphan's"), "{e}");
    assert!(Command::new("ip")
        .args(["link", "del", &br])
        .status()
        .unwrap()
        .success());
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", &nft_table(&c)])
        .status();
    // Another root's subnet check may open this database (creating its `-wal` and
    // `-shm`) while the directory is emptied; `rm -rf` is retried as a user would.
    for _ in 0..50 {
        match std::fs::remove_dir_all(c.root()) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => continue,
            r => {
                r.unwrap();
                break;
            }
        }
    }
    assert!(!c.root().exists());
    std::fs::remove_dir_all(c.runroot()).unwrap();
    assert!(registered_roots().contains(&c_db));
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.201.21.0/24",
        "reclaimed",
    ]);
    assert!(
        !registered_roots().contains(&c_db),
        "{:?}",
        registered_roots()
    );
    b.ok(&["network", "rm", "reclaimed"]);
    drop(c);
    for ox in [&a, &b] {
        ox.assert_net_clean();
    }
}

/// A root's default `bridge` whose bridge is down holds its subnet only as a
/// preference: another root may take it with `--subnet`, and the default network moves
/// when it next comes up — also when several runs bring it up at once, each seeing
/// where it moved.
#[test]
fn an_idle_default_bridge_gives_way_and_moves_at_its_next_start() {
    let a = Ox::new().pulled();
    let b = Ox::new();
    // A's default network is recorded, not up (no container ran); A is listed for the
    // other roots by its user network.
    a.ok(&["network", "create", "--subnet", "10.201.22.0/24", "listed"]);
    let was = a.inspect_network("bridge")["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    // B's own default avoids A's while other subnets are free…
    b.ok(&["network", "ls"]);
    let bs = b.inspect_network("bridge")["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!overlap(&bs, &was), "{bs} / {was}");
    // …but A's idle default holds nothing against an explicit --subnet.
    b.ok(&["network", "create", "--subnet", &was, "squat"]);
    // Each run's address (`hostname -i`: its /etc/hosts line).
    let ips: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let a = &a;
                s.spawn(move || a.ok(&["run", "--rm", a.image(), "hostname", "-i"]))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let now = a.inspect_network("bridge")["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!overlap(&now, &was), "{now} / {was}");
    for ip in &ips {
        assert!(
            overlap(&format!("{}/32", ip.trim()), &now),
            "{ips:?} / {now}"
        );
    }
    // It runs where it moved: its address is in the new subnet.
    let ip = server(&a, "moved", &[]);
    assert!(overlap(&format!("{ip}/32"), &now), "{ip} not in {now}");
    a.ok(&["rm", "-f", "moved"]);
    b.ok(&["network", "rm", "squat"]);
    a.ok(&["network", "rm", "listed"]);
    a.assert_clean();
    a.assert_net_clean();
    b.assert_net_clean();
}

/// An interface the test makes (a bridge without ports: the kernel here has no
/// `dummy` driver), with an address, so a route, of its own.
struct Dummy(String);

impl Dummy {
    fn new(tag: &str, addr: &str) -> Dummy {
        let name = format!("oxd{tag}{}", std::process::id() % 100_000);
        let ip = |a: &[&str]| assert!(Command::new("ip").args(a).status().unwrap().success());
        ip(&["link", "add", &name, "type", "bridge"]);
        let d = Dummy(name);
        ip(&["addr", "add", addr, "dev", &d.0]);
        ip(&["link", "set", &d.0, "up"]);
        d
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// What else can stand in a subnet's way: a host route (an interface that is no
/// network of ours) at create and at the first start; and, for a root not listed since
/// a reboot, another root's bridge, named with its network and root.
#[test]
fn host_routes_and_unlisted_roots_are_clear_errors_naming_what_is_in_the_way() {
    let a = Ox::new().pulled();
    let b = Ox::new().pulled();
    let d = Dummy::new("s", "10.201.23.1/24");
    let e = a.fail(
        125,
        &["network", "create", "--subnet", "10.201.23.0/24", "r"],
    );
    assert!(
        e.contains(&format!(
            "overlaps the host's route 10.201.23.0/24 on {}",
            d.0
        )),
        "{e}"
    );
    // An interface added after the network: its first start is refused, naming it.
    a.ok(&["network", "create", "--subnet", "10.201.24.0/24", "late"]);
    let d2 = Dummy::new("t", "10.201.24.1/24");
    let e = a.fail(
        125,
        &["run", "--rm", "--network", "late", a.image(), "true"],
    );
    assert!(
        e.contains(&format!(
            "network late: its subnet 10.201.24.0/24 overlaps the host's route 10.201.24.0/24 on {}",
            d2.0
        )),
        "{e}"
    );
    drop(d2);
    a.ok(&["network", "rm", "late"]);
    // A's listing lost (a reboot empties /run; A's network outlives it): until A's next
    // command, B may take A's subnet, and once B's bridge is up A's start names it.
    a.ok(&["network", "create", "--subnet", "10.201.25.0/24", "mine"]);
    let a_db = std::fs::canonicalize(a.root())
        .unwrap()
        .join("containers.db");
    let listing = std::fs::read_dir("/run/oxcart/network-roots")
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read(e.path()).unwrap_or_default() == a_db.as_os_str().as_encoded_bytes()
        })
        .unwrap()
        .path();
    std::fs::remove_file(&listing).unwrap();
    b.ok(&["network", "create", "--subnet", "10.201.25.0/24", "theirs"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "theirs",
        b.image(),
        "sleep",
        "60",
    ]);
    let e = a.fail(
        125,
        &["run", "--rm", "--network", "mine", a.image(), "true"],
    );
    assert!(
        e.contains("overlaps the host's route 10.201.25.0/24")
            && e.contains("the bridge of network theirs")
            && e.contains(&b.root().display().to_string()),
        "{e}"
    );
    // A's command listed it again.
    assert!(listing.exists());
    b.ok(&["rm", "-f", "up"]);
    b.ok(&["network", "rm", "theirs"]);
    a.ok(&["run", "--rm", "--network", "mine", a.image(), "true"]);
    a.ok(&["network", "rm", "mine"]);
    drop(d);
    for ox in [&a, &b] {
        ox.assert_clean();
        ox.assert_net_clean();
    }
}

/// `network create` killed (`kill -9`) at any point of its run: a subnet is held
/// exactly when the network was recorded, and goes with it.
#[test]
fn killed_creates_hold_a_subnet_exactly_when_their_network_was_recorded() {
    let a = Ox::new();
    let b = Ox::new();
    const K: u8 = 12;
    let subnet = |i: u8| format!("10.201.{}.0/24", 30 + i);
    for i in 0..K {
        let mut c = a.cmd();
        c.args([
            "network",
            "create",
            "--subnet",
            &subnet(i),
            &format!("k{i}"),
        ]);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(u64::from(i) * 4));
        let _ = child.kill();
        let _ = child.wait();
    }
    let recorded = a.ok(&["network", "ls", "--format", "{{.Name}}"]);
    let mut held = 0;
    for i in 0..K {
        let args = ["network", "create", "--subnet", &subnet(i), "probe"];
        if recorded.lines().any(|l| l == format!("k{i}")) {
            held += 1;
            let e = b.fail(125, &args);
            assert!(e.contains(&format!("overlaps network k{i}'s")), "{e}");
        } else {
            b.ok(&args);
            b.ok(&["network", "rm", "probe"]);
        }
    }
    // Some runs were killed before their record, some after (the timing varies; the
    // rule above holds either way).
    eprintln!("{held} of {K} killed creates had recorded their network");
    a.ok(&["network", "prune", "-f"]);
    for i in 0..K {
        b.ok(&[
            "network",
            "create",
            "--subnet",
            &subnet(i),
            &format!("p{i}"),
        ]);
    }
    b.ok(&["network", "prune", "-f"]);
    a.assert_net_clean();
    b.assert_net_clean();
}

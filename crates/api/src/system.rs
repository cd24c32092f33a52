//! `/_ping`, `/version`, `/info` and `/system/df`, `/system/prune`… as docker answers them.

use crate::http::{self, ApiError, ApiResult, Resp};
use crate::router::Req;
use crate::server::{blocking, State};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// `/_ping`: `OK` (empty for HEAD) with `API-Version` and `OSType` (added by the
/// router to every answer), and no caching, as docker sends it.
pub fn ping(head: bool) -> Resp {
    let mut r = http::response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        if head {
            http::empty()
        } else {
            http::full("OK")
        },
    );
    let h = r.headers_mut();
    h.insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        "pragma",
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    h.insert(
        "builder-version",
        hyper::header::HeaderValue::from_static("1"),
    );
    r
}

fn uname() -> (String, String, String) {
    // SAFETY: an all-zero utsname is valid; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid out pointer.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.release), s(&u.machine), s(&u.nodename))
}

/// docker's GOARCH for the machine's name.
fn go_arch(m: &str) -> &str {
    match m {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" => "arm",
        "i686" | "i386" => "386",
        o => o,
    }
}

pub async fn version() -> ApiResult {
    Ok(http::json(&version_json()))
}

/// `GET /version`'s body: the engine's version and the API it speaks. The CLI's
/// `version` prints it as its server part (the engine is the same binary).
pub fn version_json() -> Value {
    let (kernel, machine, _) = uname();
    let v = env!("CARGO_PKG_VERSION");
    json!({
        "Platform": {"Name": "oxcart"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": crate::API_VERSION,
                "MinAPIVersion": crate::MIN_API_VERSION,
                "Os": "linux",
                "Arch": go_arch(&machine),
                "KernelVersion": kernel,
                "Experimental": "false",
            },
        }],
        "Version": v,
        "ApiVersion": crate::API_VERSION,
        "MinAPIVersion": crate::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(&machine),
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

/// The filesystem under the store, by docker's names for its magic (moby's
/// graphdriver `FsNames`); `<unknown>` for one it does not name.
fn backing_fs(root: &std::path::Path) -> &'static str {
    let Ok(c) = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()) else {
        return "<unknown>";
    };
    // SAFETY: an all-zero statfs is valid; statfs fills it from a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "<unknown>";
    }
    match st.f_type as u64 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0xF2F5_2010 => "f2fs",
        0x6573_5546 => "fuseblk",
        _ => "<unknown>",
    }
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

fn os_name() -> String {
    let s = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

pub async fn info(st: Arc<State>) -> ApiResult {
    let v = blocking(move || {
        let e = st.engine()?;
        let images = st.images()?.list()?.len();
        Ok::<_, ApiError>(info_json(&e, images)?)
    })
    .await?;
    Ok(http::json(&v))
}

/// `GET /info`'s body for the engine `e` holding `images` images; the CLI's `info`
/// prints it as docker's CLI does.
pub fn info_json(e: &oxcart_engine::Engine, images: usize) -> oxcart_engine::Result<Value> {
    let (counts, runtimes, default_rt) = {
        let mut c = [0u64; 4];
        for rec in e.list()? {
            let o = e.observe(&rec)?;
            c[0] += 1;
            match o.status {
                oxcart_engine::state::Status::Running
                | oxcart_engine::state::Status::Restarting => c[1] += 1,
                oxcart_engine::state::Status::Paused => c[2] += 1,
                _ => c[3] += 1,
            }
        }
        let rt = e.config.runtime("", &e.layout)?;
        let mut runtimes = serde_json::Map::new();
        runtimes.insert(rt.name.clone(), json!({"path": rt.path}));
        for (name, r) in &e.config.runtimes {
            runtimes.insert(name.clone(), json!({"path": r.path}));
        }
        (c, runtimes, rt.name)
    };
    let (kernel, machine, host) = uname();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(json!({
        "ID": "",
        "Containers": counts[0], "ContainersRunning": counts[1],
        "ContainersPaused": counts[2], "ContainersStopped": counts[3],
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing_fs(&e.layout.root)]],
        "Plugins": {
            "Volume": ["local"], "Network": ["bridge", "host", "none"],
            "Authorization": null, "Log": ["json-file", "none"],
        },
        "MemoryLimit": true, "SwapLimit": true, "KernelMemory": false,
        "KernelMemoryTCP": false, "CpuCfsPeriod": true, "CpuCfsQuota": true,
        "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": true,
        "BridgeNfIptables": false, "BridgeNfIp6tables": false, "Debug": false,
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "OomKillDisable": true, "NGoroutines": 0,
        "SystemTime": oxcart_engine::time::now(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": kernel, "OperatingSystem": os_name(), "OSVersion": "",
        "OSType": "linux", "Architecture": machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {}, "Mirrors": [],
        },
        "NCPU": ncpu, "MemTotal": oxcart_engine::stats::mem_total(),
        "GenericResources": null,
        "DockerRootDir": e.layout.root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": host, "Labels": [], "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": runtimes, "DefaultRuntime": default_rt,
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null,
        },
        "LiveRestoreEnabled": true,
        "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=default"],
        "Warnings": [],
    }))
}

pub async fn system(st: Arc<State>, r: Req) -> ApiResult {
    match (r.seg(1), &r.method) {
        ("df", &Method::GET) => crate::images::system_df(st).await,
        _ => Err(ApiError::not_found(format!(
            "page not found: {} /{}",
            r.method,
            r.segs.join("/")
        ))),
    }
}

/// docker's `since`/`until` for events, in nanoseconds.
fn event_time(q: &crate::http::Query, k: &str) -> ApiResult<Option<i64>> {
    Ok(q.unix_time(k)?.map(|(secs, nanos)| {
        secs.saturating_mul(1_000_000_000)
            .saturating_add(i64::from(nanos))
    }))
}

/// `GET /events`: the engine's journal (docker's JSON lines), past ones from `since`,
/// then followed until `until` (or the client goes), streamed chunked.
pub fn events(st: Arc<State>, r: &Req) -> ApiResult {
    let since = event_time(&r.query, "since")?;
    let until = event_time(&r.query, "until")?;
    let mut flat = Vec::new();
    for (k, vals) in crate::http::parse_filters(&r.query)? {
        for v in vals {
            flat.push(format!("{k}={v}"));
        }
    }
    let filter = oxcart_engine::events::EventFilter::parse(&flat)?;
    let opts = oxcart_engine::events::ReadOptions {
        // docker: `until` alone lists the past events up to it.
        since: since.or(until.map(|_| 0)),
        until,
        filter,
    };
    let (tx, body) = http::channel(64);
    tokio::task::spawn_blocking(move || {
        let dir = st.opts.layout.events_dir();
        // A client that went away is noticed at the next event (the journal is
        // followed by polling it, as the CLI's `events` does).
        let _ = oxcart_engine::events::follow(&dir, &opts, |m| {
            Ok(tx
                .blocking_send(bytes::Bytes::from(format!("{}\n", m.raw)))
                .is_ok())
        });
    });
    Ok(http::response(StatusCode::OK, "application/json", body))
}

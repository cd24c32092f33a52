//! `info` and `version`: the Engine API's `/info` and `/version` bodies (one builder,
//! crates/api/src/system.rs), printed as docker's CLI prints them, or through a
//! `--format` template (`json` for the whole object).

use crate::Ctx;
use anyhow::Result;
use serde_json::{json, Value};
use std::io::Write;

/// The flags of `info`, `system info` and `version`.
#[derive(clap::Args, Clone)]
pub struct FormatArgs {
    /// Format output using a Go template, or 'json'
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `info [--format F]`.
pub fn cmd_info(ctx: &Ctx, format: Option<&str>) -> Result<()> {
    let e = ctx.engine()?;
    let images = ctx.images()?.list()?.len();
    let v = oxcart_api::system::info_json(&e, images)?;
    let text = match format {
        Some(f) => formatted(&v, f)?,
        None => info_text(&v),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// `version [--format F]`: the client (this binary) and the server — the same
/// binary, as the engine has no daemon; the server part is what `/version` says.
pub fn cmd_version(format: Option<&str>) -> Result<()> {
    let server = oxcart_api::system::version_json();
    let v = json!({
        "Client": {
            "Platform": {"Name": "oxcart"},
            "Version": server["Version"],
            "ApiVersion": server["ApiVersion"],
            "DefaultAPIVersion": server["ApiVersion"],
            "Os": server["Os"],
            "Arch": server["Arch"],
        },
        "Server": server,
    });
    let text = match format {
        Some(f) => formatted(&v, f)?,
        None => version_text(&v),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// A `--format`: `json` (or `{{json .}}`) for the object, else a Go template.
fn formatted(v: &Value, f: &str) -> Result<String> {
    if f.trim() == "json" {
        return Ok(format!("{}\n", serde_json::to_string(v)?));
    }
    let t = crate::inspect::object_template(f)?;
    Ok(format!("{}\n", t.render(v)?))
}

/// docker's CLI (28.x) `info` server section over `/info`'s fields.
fn info_text(v: &Value) -> String {
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let list = |x: &Value| -> String {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let mut o = String::from("Server:\n");
    let mut line = |t: String| {
        o.push_str(&t);
        o.push('\n');
    };
    line(format!(" Containers: {}", s("Containers")));
    line(format!("  Running: {}", s("ContainersRunning")));
    line(format!("  Paused: {}", s("ContainersPaused")));
    line(format!("  Stopped: {}", s("ContainersStopped")));
    line(format!(" Images: {}", s("Images")));
    line(format!(" Server Version: {}", s("ServerVersion")));
    line(format!(" Storage Driver: {}", s("Driver")));
    for kv in v["DriverStatus"].as_array().into_iter().flatten() {
        line(format!(
            "  {}: {}",
            kv[0].as_str().unwrap_or_default(),
            kv[1].as_str().unwrap_or_default()
        ));
    }
    line(format!(" Logging Driver: {}", s("LoggingDriver")));
    line(format!(" Cgroup Driver: {}", s("CgroupDriver")));
    line(format!(" Cgroup Version: {}", s("CgroupVersion")));
    line(" Plugins:".into());
    let p = &v["Plugins"];
    line(format!("  Volume: {}", list(&p["Volume"])));
    line(format!("  Network: {}", list(&p["Network"])));
    line(format!("  Log: {}", list(&p["Log"])));
    line(format!(
        " Swarm: {}",
        v["Swarm"]["LocalNodeState"].as_str().unwrap_or_default()
    ));
    let mut runtimes: Vec<&String> = v["Runtimes"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    runtimes.sort();
    line(format!(
        " Runtimes: {}",
        runtimes
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    line(format!(" Default Runtime: {}", s("DefaultRuntime")));
    line(format!(" Init Binary: {}", s("InitBinary")));
    for (name, k) in [
        ("containerd", "ContainerdCommit"),
        ("runc", "RuncCommit"),
        ("init", "InitCommit"),
    ] {
        line(format!(
            " {name} version: {}",
            v[k]["ID"].as_str().unwrap_or_default()
        ));
    }
    line(" Security Options:".into());
    for opt in v["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        // `name=seccomp,profile=default`: the name, then its other keys indented.
        let mut kvs = opt.split(',').filter_map(|kv| kv.split_once('='));
        if let Some((_, name)) = kvs.next() {
            line(format!("  {name}"));
        }
        for (k, val) in kvs {
            let mut k = k.to_string();
            if let Some(first) = k.get(..1) {
                k = first.to_uppercase() + &k[1..];
            }
            line(format!("   {k}: {val}"));
        }
    }
    line(format!(" Kernel Version: {}", s("KernelVersion")));
    line(format!(" Operating System: {}", s("OperatingSystem")));
    line(format!(" OSType: {}", s("OSType")));
    line(format!(" Architecture: {}", s("Architecture")));
    line(format!(" CPUs: {}", s("NCPU")));
    line(format!(
        " Total Memory: {}",
        crate::stats::binary_size(v["MemTotal"].as_u64().unwrap_or(0))
    ));
    line(format!(" Name: {}", s("Name")));
    if !s("ID").is_empty() {
        line(format!(" ID: {}", s("ID")));
    }
    line(format!(" Docker Root Dir: {}", s("DockerRootDir")));
    line(format!(" Debug Mode: {}", s("Debug")));
    line(format!(" Experimental: {}", s("ExperimentalBuild")));
    line(" Insecure Registries:".into());
    for cidr in v["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        line(format!("  {cidr}"));
    }
    line(format!(
        " Live Restore Enabled: {}",
        s("LiveRestoreEnabled")
    ));
    line(String::new());
    o
}

/// docker's `version` layout, without the Go toolchain and commit lines this
/// engine has nothing true to put in.
fn version_text(v: &Value) -> String {
    let c = &v["Client"];
    let sv = &v["Server"];
    let st = |x: &Value| x.as_str().unwrap_or_default().to_string();
    format!(
        "Client: oxcart\n Version:           {}\n API version:       {}\n OS/Arch:           {}/{}\n\nServer: oxcart\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  OS/Arch:          {}/{}\n  Experimental:     false\n",
        st(&c["Version"]),
        st(&c["ApiVersion"]),
        st(&c["Os"]),
        st(&c["Arch"]),
        st(&sv["Version"]),
        st(&sv["ApiVersion"]),
        st(&sv["MinAPIVersion"]),
        st(&sv["Os"]),
        st(&sv["Arch"]),
    )
}

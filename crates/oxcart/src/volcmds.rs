//! `volume create|ls|inspect|rm|prune` and `system df|prune`, printed as docker prints
//! them. The engine (oxcart_engine::volumes) does the work.

use crate::cmds::Exit;
use crate::table;
use crate::Ctx;
use anyhow::{bail, Result};
use clap::Subcommand;
use oxcart_engine::filters::{split_pairs, VolumeFilter};
use oxcart_engine::volumes::{Volume, VolumeCreate};
use oxcart_engine::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

#[derive(Subcommand)]
pub enum VolumeCmd {
    /// Create a volume
    Create {
        /// Specify volume name
        #[arg(long = "name")]
        name_flag: Option<String>,
        /// Specify volume driver name
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set metadata for a volume
        #[arg(long = "label", value_name = "list")]
        label: Vec<String>,
        /// Set driver specific options
        #[arg(short = 'o', long = "opt", value_name = "map")]
        opt: Vec<String>,
        /// Volume name
        name: Option<String>,
    },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls {
        /// Provide filter values (e.g. 'dangling=true')
        #[arg(short, long, value_name = "filter")]
        filter: Vec<String>,
        /// Pretty-print volumes using a Go template
        #[arg(long)]
        format: Option<String>,
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        /// Format output using a Go template
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes (and the containers using them)
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused local volumes
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short, long)]
        all: bool,
        /// Provide filter values (e.g. 'label=<label>')
        #[arg(long, value_name = "filter")]
        filter: Vec<String>,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum SystemCmd {
    /// Start the containers a reboot stopped (restart policies), reclaiming what it left
    Boot,
    /// Get real time events from the engine
    Events(crate::events::EventsArgs),
    /// Display system-wide information
    Info(crate::sysinfo::FormatArgs),
    /// Show docker disk usage
    Df {
        /// Show detailed information on space usage
        #[arg(short, long)]
        verbose: bool,
    },
    /// Remove unused data
    Prune {
        /// Remove all unused images not just dangling ones
        #[arg(short, long)]
        all: bool,
        /// Prune anonymous volumes
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// Serve docker's Engine API on a socket (docker CLI, compose, testcontainers)
    Service {
        /// Seconds without a connection before the service exits (0: never)
        #[arg(short, long, default_value_t = 5, value_name = "SECONDS")]
        time: u64,
        /// Group given access to the unix socket (mode 0660; default: root only)
        #[arg(long)]
        group: Option<String>,
        /// unix:///path (default /run/oxcart/docker.sock, or systemd's socket when
        /// activated) or tcp://127.0.0.1:PORT
        uri: Option<String>,
    },
}

fn kv_list(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for i in items {
        let (k, v) = i.split_once('=').unwrap_or((i.as_str(), ""));
        if k.is_empty() {
            bail!("invalid argument {i:?} for \"{flag}\" flag: key must not be empty");
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

fn labels_str(l: &BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn volume_row(v: &Volume, users: &HashMap<String, Vec<String>>, size: Option<u64>) -> Value {
    json!({
        "Name": v.name, "Driver": v.driver, "Scope": v.scope, "Mountpoint": v.mountpoint,
        "Labels": labels_str(&v.labels), "CreatedAt": v.created_at,
        "Links": users.get(&v.name).map(Vec::len).unwrap_or(0).to_string(),
        "Size": size.map(table::human_size).unwrap_or_else(|| "N/A".into()),
    })
}

pub fn dispatch_volume(ctx: &Ctx, cmd: &VolumeCmd) -> Result<()> {
    let mut e = ctx.engine()?;
    match cmd {
        VolumeCmd::Create {
            name_flag,
            driver,
            label,
            opt,
            name,
        } => {
            if let (Some(a), Some(b)) = (name_flag, name) {
                if a != b {
                    bail!("conflicting options: either specify --name or provide positional arg, not both");
                }
            }
            let v = e.volume_create(VolumeCreate {
                name: name.clone().or(name_flag.clone()),
                driver: driver.clone(),
                labels: kv_list("--label", label)?,
                options: kv_list("--opt", opt)?,
            })?;
            println!("{}", v.name);
        }
        VolumeCmd::Ls {
            filter,
            format,
            quiet,
        } => volume_ls(&e, filter, format.as_deref(), *quiet)?,
        VolumeCmd::Inspect { format, volumes } => volume_inspect(&e, format.as_deref(), volumes)?,
        VolumeCmd::Rm { force, volumes } => {
            let mut failed = false;
            for n in volumes {
                match e.volume_remove(n, *force) {
                    Ok(()) => println!("{n}"),
                    // docker's -f: a volume that does not exist is no error.
                    Err(oxcart_engine::EngineError::Volume(
                        oxcart_engine::volumes::VolumeError::NoSuchVolume(_),
                    )) if *force => {}
                    Err(err) => {
                        eprintln!("Error: {err}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Err(Exit(1).into());
            }
        }
        VolumeCmd::Prune { all, filter, force } => {
            let f = VolumeFilter::parse(&split_pairs(filter)?, true)?;
            let warn = if *all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !force && !crate::term::confirm(warn)? {
                return Ok(());
            }
            let none = HashMap::new();
            let (gone, bytes) = e.volume_prune(*all, |v| f.matches(v, &none))?;
            print_pruned("Deleted Volumes:", &gone, bytes);
        }
    }
    Ok(())
}

fn volume_ls(e: &Engine, filter: &[String], format: Option<&str>, quiet: bool) -> Result<()> {
    let f = VolumeFilter::parse(&split_pairs(filter)?, false)?;
    let list = e.volume_list()?;
    // Only `dangling` and `.Links` need the containers' records.
    let need_users = filter.iter().any(|f| f.starts_with("dangling="))
        || format.is_some_and(|f| f.contains("Links"));
    let users = if need_users {
        e.volume_users()?
    } else {
        HashMap::new()
    };
    let list: Vec<&Volume> = list.iter().filter(|v| f.matches(v, &users)).collect();
    let mut out = std::io::stdout().lock();
    if quiet {
        for v in list {
            writeln!(out, "{}", v.name)?;
        }
        return Ok(());
    }
    let fmt = table::list_format(format)?;
    if let table::ListFormat::Default = fmt {
        // The default table straight from the list: no JSON rows for 1,000 volumes.
        let mut lines = vec![vec!["DRIVER", "VOLUME NAME"]];
        lines.extend(
            list.iter()
                .map(|v| vec![v.driver.as_str(), v.name.as_str()]),
        );
        out.write_all(table::align(&lines).as_bytes())?;
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|v| volume_row(v, &users, None)).collect();
    let headers = json!({
        "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "CreatedAt": "CREATED", "Links": "LINKS", "Size": "SIZE",
    });
    table::print_list(&mut out, &fmt, &rows, &headers, |_| String::new())
}

fn volume_inspect(e: &Engine, format: Option<&str>, names: &[String]) -> Result<()> {
    let mut vals = Vec::new();
    let mut failed = false;
    for n in names {
        match e.volume_inspect(n) {
            Ok(v) => vals.push(serde_json::to_value(&v)?),
            Err(err) => {
                eprintln!("Error: {err}");
                failed = true;
            }
        }
    }
    match format {
        Some(f) if f != "json" => {
            let t = oxcart_template::Formatter::new(f)?;
            let mut out = std::io::stdout().lock();
            out.write_all(t.render(&vals, &Value::Null)?.as_bytes())?;
        }
        _ => println!("{}", crate::inspect::to_docker_json(&Value::Array(vals))?),
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(())
}

/// A prune's report, as docker's CLI prints it: the list (if any) and the total.
pub fn print_pruned(title: &str, names: &[String], bytes: u64) {
    print_deleted(title, names);
    println!("Total reclaimed space: {}", table::human_size(bytes));
}

fn print_deleted(title: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    println!("{title}");
    for n in names {
        println!("{n}");
    }
    println!();
}

pub fn dispatch_system(ctx: &Ctx, cmd: &SystemCmd) -> Result<()> {
    if let SystemCmd::Boot = cmd {
        let code = crate::cmds::cmd_system_boot(ctx)?;
        if code != 0 {
            return Err(crate::cmds::Exit(code).into());
        }
        return Ok(());
    }
    if let SystemCmd::Info(a) = cmd {
        return crate::sysinfo::cmd_info(ctx, a.format.as_deref());
    }
    // The service opens the engine per request; it needs no handle of its own.
    if let SystemCmd::Service { time, group, uri } = cmd {
        return crate::service::cmd_service(ctx, *time, group.clone(), uri.as_deref());
    }
    let mut e = ctx.engine()?;
    match cmd {
        SystemCmd::Boot | SystemCmd::Service { .. } | SystemCmd::Info(_) => Ok(()),
        SystemCmd::Df { verbose } => system_df(ctx, &mut e, *verbose),
        SystemCmd::Events(a) => crate::events::cmd_events(&e, a),
        SystemCmd::Prune {
            all,
            volumes,
            force,
        } => {
            let mut warn = String::from("WARNING! This will remove:\n  - all stopped containers\n");
            if *volumes {
                warn.push_str("  - all anonymous volumes not used by at least one container\n");
            }
            warn.push_str(if *all {
                "  - all images without at least one container associated to them"
            } else {
                "  - all dangling images"
            });
            if !force && !crate::term::confirm(&warn)? {
                return Ok(());
            }
            system_prune(ctx, &mut e, *all, *volumes)
        }
    }
}

/// docker's RECLAIMABLE: bytes and, when anything is counted, the share in percent.
fn reclaimable(r: u64, total: u64) -> String {
    match (r * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", table::human_size(r)),
        None => table::human_size(r),
    }
}

/// What `system df` counts: per kind, (total, active, size, reclaimable).
struct Usage {
    /// (record, containers using it, docker's SharedSize: `None` when a layer's size
    /// is not recorded, which docker shows as `N/A`).
    images: Vec<(oxcart_image::db::ImageRecord, usize, Option<u64>)>,
    /// (record, running, writable layer bytes, docker's STATUS text).
    containers: Vec<(oxcart_engine::record::Record, bool, u64, String)>,
    volumes: Vec<(Volume, usize, u64)>,
}

/// docker's SharedSize per image (daemon/images image_list.go): the unpacked sizes of
/// its layers (by ChainID) that at least one other image also has; UNIQUE is the rest.
fn shared_sizes(
    st: &oxcart_image::images::ImageStore,
    list: &[oxcart_image::db::ImageRecord],
) -> Result<Vec<Option<u64>>> {
    let mut refs: HashMap<String, usize> = HashMap::new();
    for i in list {
        for l in &i.layers {
            *refs.entry(l.chain_id.to_string()).or_default() += 1;
        }
    }
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        let mut shared = Some(0u64);
        for l in i
            .layers
            .iter()
            .filter(|l| refs[&l.chain_id.to_string()] > 1)
        {
            let size = st.layer_size(&l.chain_id)?;
            shared = shared.zip(size).map(|(a, b)| a + b);
        }
        out.push(shared);
    }
    Ok(out)
}

fn usage(ctx: &Ctx, e: &Engine) -> Result<Usage> {
    let recs = e.list()?;
    let st = ctx.images()?;
    let mut per_image: HashMap<String, usize> = HashMap::new();
    for r in &recs {
        *per_image.entry(r.image_id.clone()).or_default() += 1;
    }
    let list = st.list()?;
    let shared = shared_sizes(&st, &list)?;
    let images = list
        .into_iter()
        .zip(shared)
        .map(|(i, shared)| {
            let n = per_image.get(&i.id.to_string()).copied().unwrap_or(0);
            (i, n, shared)
        })
        .collect();
    let mut containers = Vec::new();
    let now = crate::timefmt::now();
    for r in recs {
        let obs = e.observe(&r).ok();
        let running = obs.as_ref().is_some_and(|o| o.status.is_running());
        let status = obs
            .as_ref()
            .map(|o| oxcart_engine::listing::status_text(o, now))
            .unwrap_or_default();
        let size = oxcart_engine::engine::dir_size(&e.ctr_dir(&r.id).join("upper"));
        containers.push((r, running, size, status));
    }
    let users = e.volume_users()?;
    let volumes = e
        .volume_list()?
        .into_iter()
        .map(|v| {
            let n = users.get(&v.name).map(Vec::len).unwrap_or(0);
            let size = oxcart_engine::engine::dir_size(std::path::Path::new(&v.mountpoint));
            (v, n, size)
        })
        .collect();
    Ok(Usage {
        images,
        containers,
        volumes,
    })
}

/// `system df [-v]`.
fn system_df(ctx: &Ctx, e: &mut Engine, verbose: bool) -> Result<()> {
    let u = usage(ctx, e)?;
    let isize: u64 = u.images.iter().map(|(i, _, _)| i.size).sum();
    let irec: u64 = u
        .images
        .iter()
        .filter(|(_, n, _)| *n == 0)
        .map(|(i, _, _)| i.size)
        .sum();
    let csize: u64 = u.containers.iter().map(|c| c.2).sum();
    let crec: u64 = u.containers.iter().filter(|c| !c.1).map(|c| c.2).sum();
    let vsize: u64 = u.volumes.iter().map(|v| v.2).sum();
    let vrec: u64 = u.volumes.iter().filter(|v| v.1 == 0).map(|v| v.2).sum();
    if !verbose {
        let count = |n: usize| n.to_string();
        let lines = vec![
            vec![
                "TYPE".into(),
                "TOTAL".into(),
                "ACTIVE".into(),
                "SIZE".into(),
                "RECLAIMABLE".into(),
            ],
            vec![
                "Images".into(),
                count(u.images.len()),
                count(u.images.iter().filter(|(_, n, _)| *n > 0).count()),
                table::human_size(isize),
                reclaimable(irec, isize),
            ],
            vec![
                "Containers".into(),
                count(u.containers.len()),
                count(u.containers.iter().filter(|c| c.1).count()),
                table::human_size(csize),
                reclaimable(crec, csize),
            ],
            vec![
                "Local Volumes".into(),
                count(u.volumes.len()),
                count(u.volumes.iter().filter(|v| v.1 > 0).count()),
                table::human_size(vsize),
                reclaimable(vrec, vsize),
            ],
            vec![
                "Build Cache".into(),
                "0".into(),
                "0".into(),
                "0B".into(),
                "0B".into(),
            ],
        ];
        print!("{}", table::align(&lines));
        return Ok(());
    }
    df_verbose(&u);
    Ok(())
}

/// `system df -v`: a table per kind.
fn df_verbose(u: &Usage) {
    let now = crate::timefmt::now();
    let ago = |t: Option<&str>| {
        t.and_then(crate::timefmt::parse_rfc3339)
            .map(|t| crate::timefmt::ago(now, t))
            .unwrap_or_else(|| "N/A".into())
    };
    println!("Images space usage:\n");
    let mut lines: Vec<Vec<String>> = vec![[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]
    .map(String::from)
    .to_vec()];
    for (i, n, shared) in &u.images {
        let tag = i
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| "<none>:<none>".into());
        let (repo, t) = tag.rsplit_once(':').unwrap_or((&tag, "<none>"));
        lines.push(vec![
            repo.to_string(),
            t.to_string(),
            i.id.short().to_string(),
            ago(i.created.as_deref()),
            table::human_size(i.size),
            // docker's cli formatter: N/A for both when SharedSize is unknown.
            shared.map_or_else(|| "N/A".into(), table::human_size),
            shared.map_or_else(
                || "N/A".into(),
                |s| table::human_size(i.size.saturating_sub(s)),
            ),
            n.to_string(),
        ]);
    }
    print!("{}", table::align(&lines));
    println!("\nContainers space usage:\n");
    let mut lines: Vec<Vec<String>> = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for (r, _, size, status) in &u.containers {
        lines.push(vec![
            r.id.chars().take(12).collect(),
            r.config.image.clone(),
            oxcart_engine::listing::command_text(r, true),
            r.volumes
                .iter()
                .filter(|m| m.kind == "volume")
                .count()
                .to_string(),
            table::human_size(*size),
            ago(Some(&r.created)),
            status.clone(),
            r.name.clone(),
        ]);
    }
    print!("{}", table::align(&lines));
    println!("\nLocal Volumes space usage:\n");
    let mut lines: Vec<Vec<String>> =
        vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for (v, n, size) in &u.volumes {
        lines.push(vec![
            v.name.clone(),
            n.to_string(),
            table::human_size(*size),
        ]);
    }
    print!("{}", table::align(&lines));
    println!("\nBuild cache usage: 0B");
}

/// `system prune [-a] [--volumes]`: stopped containers, then (anonymous) unused
/// volumes, then dangling (or, with `-a`, unused) images; what went is listed.
fn system_prune(ctx: &Ctx, e: &mut Engine, all: bool, volumes: bool) -> Result<()> {
    let (ctrs, mut bytes) = e.prune(|_| true)?;
    print_deleted("Deleted Containers:", &ctrs);
    if volumes {
        let (vols, b) = e.volume_prune(false, |_| true)?;
        bytes += b;
        print_deleted("Deleted Volumes:", &vols);
    }
    let (lines, b) = crate::imgcmds::prune(e, &mut ctx.images()?, all, None)?;
    bytes += b;
    print_pruned("Deleted Images:", &lines, bytes);
    Ok(())
}

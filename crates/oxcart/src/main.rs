//! `oxcart`: the daemonless engine CLI — docker's container verbs over
//! `oxcart_engine`, and the image verbs (pull, images, rmi, tag, save, load, import,
//! login, logout) over `oxcart_image`.

mod cmds;
mod ctr;
mod events;
mod fscmds;
mod imgcmds;
mod inspect;
mod logs;
mod netcmds;
mod progress;
mod ps;
mod run;
mod runopts;
mod service;
mod stats;
mod sysinfo;
mod table;
mod term;
mod timefmt;
mod volcmds;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use oxcart_image::auth::{CredentialStore, Credentials};
use oxcart_image::oci::Platform;
use oxcart_image::pull::PullOptions;
use oxcart_image::registry::{Client, Insecure};
use oxcart_image::{ImageStore, Reference};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The flags every command takes (`global`: before or after the verb).
#[derive(clap::Args, Clone)]
struct Globals {
    /// Store root (images, layers, metadata).
    #[arg(
        long,
        global = true,
        env = "OXCART_ROOT",
        default_value = "/var/lib/oxcart"
    )]
    root: PathBuf,
    /// Registry (host[:port]) to use without TLS verification or over plain HTTP
    /// (loopback registries always are).
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    insecure: Vec<String>,
    /// Verify TLS for every registry (true) or treat all as insecure (false); default:
    /// verify, except for --insecure-registry hosts and loopback.
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    tls_verify: Option<bool>,
    /// Directory of per-registry CA certificates (`DIR/host[:port]/*.crt`); default
    /// /etc/containers/certs.d and /etc/docker/certs.d.
    #[arg(long, global = true, env = "OXCART_CERTS_DIR", value_name = "DIR")]
    certs_dir: Option<PathBuf>,
    /// Credentials file written by `login` (docker's config.json format).
    #[arg(long, global = true, env = "OXCART_AUTH_FILE")]
    authfile: Option<PathBuf>,
    /// Run-time state root (the runtimes' state; emptied by a reboot).
    #[arg(
        long,
        global = true,
        env = "OXCART_RUNROOT",
        default_value = oxcart_engine::Layout::DEFAULT_RUNROOT
    )]
    runroot: PathBuf,
    /// Engine config file (runtimes, default log options); default /etc/oxcart/oxcart.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Parser)]
#[command(name = "oxcart", version, about = "A daemonless container engine")]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    cmd: Cmd,
}

impl std::ops::Deref for Cli {
    type Target = Globals;
    fn deref(&self) -> &Globals {
        &self.globals
    }
}

/// The same command line as [`Cli`] for one verb only. Building the whole command
/// tree (every verb's flags; `run`'s alone appear four times: `run`, `create`,
/// `container run|create`) is ~200 page faults of heap in a fresh process, ~0.5 ms
/// of every command (docs/benchmarks.md). The hot verbs, in the form
/// people and the engine's callers use (`[--root R] [--runroot RR] VERB …`), are
/// parsed by this with a subcommand enum of that verb alone; help, errors and exit
/// codes are the same (tests/cli.rs checks them against the whole tree).
#[derive(Parser)]
#[command(name = "oxcart", version, about = "A daemonless container engine")]
struct OneVerb<V: Subcommand> {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    cmd: V,
}

// Each enum's doc comment is the verb's `about`, as in `ctr::CtrCmd`.
#[derive(Subcommand)]
enum RunOnly {
    /// Create and run a new container from an image
    Run(Box<ctr::RunArgs>),
}
#[derive(Subcommand)]
enum RmOnly {
    /// Remove one or more containers
    Rm(ctr::RmArgs),
}
#[derive(Subcommand)]
enum PsOnly {
    /// List containers
    #[command(visible_alias = "ls", alias = "list")]
    Ps(ps::PsArgs),
}
#[derive(Subcommand)]
enum StatsOnly {
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
}
#[derive(Subcommand)]
enum LogsOnly {
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
}

/// The verb of a `[--root R] [--runroot RR] VERB …` command line, if it has that form.
fn plain_verb() -> Option<std::ffi::OsString> {
    let mut a = std::env::args_os().skip(1);
    loop {
        match a.next() {
            Some(f) if f == "--root" || f == "--runroot" => {
                a.next()?;
            }
            other => return other,
        }
    }
}

fn one<V: Subcommand>(to: impl FnOnce(V) -> ctr::CtrCmd) -> Result<Cli, clap::Error> {
    OneVerb::<V>::try_parse().map(|o| Cli {
        globals: o.globals,
        cmd: Cmd::Ctr(to(o.cmd)),
    })
}

fn parse_cli() -> Result<Cli, clap::Error> {
    let verb = plain_verb();
    match verb.as_ref().and_then(|v| v.to_str()) {
        Some("run") => one(|RunOnly::Run(a)| ctr::CtrCmd::Run(a)),
        Some("rm") => one(|RmOnly::Rm(a)| ctr::CtrCmd::Rm(a)),
        Some("ps") => one(|PsOnly::Ps(a)| ctr::CtrCmd::Ps(a)),
        Some("stats") => one(|StatsOnly::Stats(a)| ctr::CtrCmd::Stats(a)),
        Some("logs") => one(|LogsOnly::Logs(a)| ctr::CtrCmd::Logs(a)),
        _ => Cli::try_parse(),
    }
}

/// docker's exit code for a failure of the engine itself (podman's too).
pub const EXIT_ENGINE: i32 = 125;

/// What every command shares: the parsed command line, and the stores on demand.
pub struct Ctx<'a> {
    cli: &'a Cli,
}

impl Ctx<'_> {
    /// The engine over `--root`/`--runroot` with the config file's settings.
    pub fn engine(&self) -> Result<oxcart_engine::Engine> {
        let cfg = oxcart_engine::config::EngineConfig::load(self.cli.config.as_deref())?;
        let layout = oxcart_engine::Layout::new(&self.cli.root, &self.cli.runroot);
        oxcart_engine::Engine::open(layout, cfg)
            .with_context(|| format!("opening the engine at {}", self.cli.root.display()))
    }

    pub fn images(&self) -> Result<ImageStore> {
        open(self.cli)
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum SaveFmt {
    /// OCI layout plus docker's manifest.json (docker load and skopeo read it).
    DockerArchive,
    /// OCI image layout only.
    OciArchive,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pull an image from a registry.
    Pull(imgcmds::PullArgs),
    /// List images.
    Images(imgcmds::ImagesArgs),
    /// Return low-level information on containers or images
    Inspect {
        /// Format output using a Go template or 'json'
        #[arg(short, long)]
        format: Option<String>,
        /// Return JSON for specified type (container or image)
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Display total file sizes if the type is container
        #[arg(short, long)]
        size: bool,
        /// Containers or images (name, ID or ID prefix).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove images; frees layers and blobs no image uses any more.
    Rmi(imgcmds::RmiArgs),
    /// Give an image another name.
    Tag(imgcmds::TagArgs),
    /// Store registry credentials.
    Login {
        /// Registry host[:port] (default docker.io).
        registry: Option<String>,
        /// User name.
        #[arg(short, long)]
        username: Option<String>,
        /// Password (prefer --password-stdin).
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Write images to a tar archive (OCI layout; docker format adds manifest.json).
    Save(imgcmds::SaveArgs),
    /// Load images from an archive made by save, docker save, podman save or skopeo.
    Load(imgcmds::LoadArgs),
    /// Create an image from a rootfs tarball (plain, gzip or zstd; "-" for stdin).
    Import(imgcmds::ImportArgs),
    /// Remove stored registry credentials.
    Logout {
        /// Registry host[:port] (default docker.io).
        registry: Option<String>,
    },
    #[command(flatten)]
    Ctr(ctr::CtrCmd),
    /// List port mappings of a container, or the mapping of one port
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO]
        port: Option<String>,
    },
    /// The userland proxy of a container's published ports (started by `run`)
    #[command(hide = true, name = "network-proxy")]
    NetworkProxy { spec: String, pidfile: PathBuf },
    /// The DNS resolver of an engine root's user networks (started on demand)
    #[command(hide = true, name = "network-dns")]
    NetworkDns {
        /// The serving process (started by the supervisor)
        #[arg(long)]
        worker: bool,
        runroot: PathBuf,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: netcmds::NetworkCmd,
    },
    /// Manage containers
    Container {
        #[command(subcommand)]
        cmd: ctr::ContainerCmd,
    },
    /// Show the history of an image
    History(imgcmds::HistoryArgs),
    /// Display system-wide information
    Info(sysinfo::FormatArgs),
    /// Show the oxcart version information
    Version(sysinfo::FormatArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: imgcmds::ImageCmd,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: volcmds::VolumeCmd,
    },
    /// Manage healthchecks of containers
    Healthcheck {
        #[command(subcommand)]
        cmd: HealthcheckCmd,
    },
    /// Get real time events from the engine
    Events(events::EventsArgs),
    /// Manage the engine (disk usage, prune, events, boot)
    System {
        #[command(subcommand)]
        cmd: volcmds::SystemCmd,
    },
    /// Print a shell completion script (bash, zsh or fish)
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum HealthcheckCmd {
    /// Run the healthcheck of a container now: exit 0 if it passed, else 1
    Run { container: String },
}

pub(crate) fn credential_store(cli: &Cli) -> CredentialStore {
    let mut s = CredentialStore::default_locations();
    if let Some(a) = &cli.authfile {
        s.auth_file = a.clone();
    }
    s
}

pub(crate) fn insecure(cli: &Cli) -> Insecure {
    let mut v = cli.insecure.clone();
    if let Ok(e) = std::env::var("OXCART_INSECURE_REGISTRIES") {
        v.extend(
            e.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    let mut i = Insecure::new(v).with_tls_verify(cli.tls_verify);
    if let Some(d) = &cli.certs_dir {
        i = i.with_certs_dirs(vec![d.clone()]);
    }
    i
}

fn open(cli: &Cli) -> Result<ImageStore> {
    ImageStore::open(&cli.root)
        .with_context(|| format!("opening image store {}", cli.root.display()))
}

fn split_name(name: &str) -> (String, String) {
    if let Some((repo, d)) = name.split_once('@') {
        return (repo.to_string(), d.to_string());
    }
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "<none>".to_string()),
    }
}

fn cmd_images(cli: &Cli, format: Option<&str>, quiet: bool, no_trunc: bool) -> Result<()> {
    let st = open(cli)?;
    let list = st.list()?;
    let mut out = std::io::stdout().lock();
    let now = timefmt::now();
    if quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &list {
            if seen.insert(r.id.clone()) {
                let id = if no_trunc {
                    r.id.to_string()
                } else {
                    r.id.short().to_string()
                };
                writeln!(out, "{id}")?;
            }
        }
        return Ok(());
    }
    let fmt = table::list_format(format)?;
    let mut rows = Vec::new();
    for r in &list {
        let digest = r
            .digests
            .first()
            .and_then(|d| d.split_once('@').map(|x| x.1.to_string()))
            .unwrap_or_else(|| "<none>".into());
        let names: Vec<(String, String)> = if r.tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            r.tags.iter().map(|t| split_name(t)).collect()
        };
        let since = r
            .created
            .as_deref()
            .and_then(timefmt::parse_rfc3339)
            .map(|t| timefmt::ago(now, t))
            .unwrap_or_else(|| "N/A".into());
        for (repo, tag) in names {
            // docker's `images --format` fields; ID in full, as docker's JSON rows.
            rows.push(serde_json::json!({
                "ID": r.id.to_string(),
                "ShortID": r.id.short(),
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedAt": r.created,
                "CreatedSince": since,
                "Size": r.size,
                "HumanSize": table::human_size(r.size),
                "Platform": r.platform,
            }));
        }
    }
    let headers = serde_json::json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedAt": "CREATED AT", "CreatedSince": "CREATED", "Size": "SIZE",
    });
    table::print_list(&mut out, &fmt, &rows, &headers, |rows| {
        let mut lines = vec![vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()];
        for r in rows {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            let id = if no_trunc { s("ID") } else { s("ShortID") };
            lines.push(vec![
                s("Repository"),
                s("Tag"),
                id,
                s("CreatedSince"),
                s("HumanSize"),
            ]);
        }
        table::align(&lines)
    })
}

fn registry_arg(r: &Option<String>) -> String {
    oxcart_image::auth::registry_host(r.as_deref().unwrap_or(""))
}

fn cmd_login(
    cli: &Cli,
    registry: &Option<String>,
    username: &Option<String>,
    password: &Option<String>,
    password_stdin: bool,
) -> Result<()> {
    let reg = registry_arg(registry);
    let username = match username {
        Some(u) => u.clone(),
        None => {
            eprint!("Username: ");
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim().to_string()
        }
    };
    let password = if password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = password {
        p.clone()
    } else {
        bail!("no password given: use --password-stdin (or -p)");
    };
    if username.is_empty() || password.is_empty() {
        bail!("user name and password must not be empty");
    }
    let creds = Credentials { username, password };
    // Check the credentials against the registry's /v2/ before storing them, as docker does.
    let client = Client::for_login(&reg, &insecure(cli), creds.clone())?;
    client
        .ping()
        .with_context(|| format!("logging in to {reg}"))?;
    credential_store(cli).store(&reg, &creds)?;
    println!("Login Succeeded");
    Ok(())
}

/// The journal's image events for `--root` (image verbs open no engine).
fn image_events(cli: &Cli) -> oxcart_engine::events::ImageEvents {
    let cfg = oxcart_engine::config::EngineConfig::load(cli.config.as_deref()).unwrap_or_default();
    let layout = oxcart_engine::Layout::new(&cli.root, &cli.runroot);
    oxcart_engine::events::ImageEvents::new(&layout, &cfg)
}

fn cmd_rmi(cli: &Cli, force: bool, all: bool, images: &[String]) -> Result<()> {
    let mut st = open(cli)?;
    Ctx { cli }.engine()?.release_stale_holds(&mut st)?;
    if all {
        let (n, kept, freed) = st.remove_all()?;
        println!(
            "Deleted {n} images; freed {} layers, {} blobs",
            freed.layers, freed.blobs
        );
        if kept > 0 {
            println!("Kept {kept} images in use");
        }
        return Ok(());
    }
    let mut failed = 0;
    let events = image_events(cli);
    for i in images {
        let id = st.find(i).map(|r| r.id.to_string()).unwrap_or_default();
        match st.remove(i, force) {
            Ok((removed, freed)) => {
                for n in removed.untagged {
                    println!("Untagged: {n}");
                    events.untag(&id);
                }
                for d in removed.deleted {
                    println!("Deleted: {d}");
                    events.delete(&d.to_string());
                }
                if freed.layers + freed.blobs > 0 {
                    println!("Freed {} layers, {} blobs", freed.layers, freed.blobs);
                }
            }
            Err(e) => {
                eprintln!("Error: {i}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} images could not be removed", images.len());
    }
    Ok(())
}

fn cmd_save(cli: &Cli, output: &Option<PathBuf>, format: SaveFmt, images: &[String]) -> Result<()> {
    let st = open(cli)?;
    let fmt = match format {
        SaveFmt::DockerArchive => oxcart_image::archive::SaveFormat::Docker,
        SaveFmt::OciArchive => oxcart_image::archive::SaveFormat::Oci,
    };
    match output
        .as_deref()
        .filter(|p| *p != std::path::Path::new("-"))
    {
        Some(path) => {
            // Write next to the target and rename: a failed save leaves no truncated archive.
            let tmp = path.with_extension(format!("oxcart-tmp-{}", std::process::id()));
            let r = (|| -> Result<()> {
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                let mut w = std::io::BufWriter::new(f);
                st.save(images, fmt, &mut w)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("renaming to {}", path.display()))?;
                Ok(())
            })();
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?;
        }
        None => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            st.save(images, fmt, &mut out)?;
            out.flush()?;
        }
    }
    emit_saves(cli, &st, images);
    Ok(())
}

/// docker's `save` events: one per image written, by id.
fn emit_saves(cli: &Cli, st: &oxcart_image::ImageStore, images: &[String]) {
    let events = image_events(cli);
    let mut seen = std::collections::BTreeSet::new();
    for i in images {
        if let Ok(r) = st.find(i) {
            if seen.insert(r.id.to_string()) {
                events.save(&r.id.to_string());
            }
        }
    }
}

fn cmd_load(cli: &Cli, input: &Option<PathBuf>) -> Result<()> {
    let mut st = open(cli)?;
    let (reader, name): (Box<dyn Read + Send>, PathBuf) = match input
        .as_deref()
        .filter(|p| *p != std::path::Path::new("-"))
    {
        Some(p) => (
            Box::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?),
            p.to_path_buf(),
        ),
        None => (Box::new(std::io::stdin()), PathBuf::from("<stdin>")),
    };
    let reporter = progress::Reporter::new(true);
    let recs = st
        .load(reader, &name, &reporter)
        .with_context(|| format!("loading {}", name.display()))?;
    let events = image_events(cli);
    for r in recs {
        if r.tags.is_empty() {
            println!("Loaded image: {}", r.id);
        }
        for t in &r.tags {
            println!("Loaded image: {t}");
        }
        events.load(&r.id.to_string(), &r.tags);
    }
    Ok(())
}

fn cmd_import(cli: &Cli, file: &std::path::Path, reference: &Option<String>) -> Result<()> {
    let mut st = open(cli)?;
    // The events name the reference as the user wrote it (docker's FamiliarString).
    let named = reference.clone();
    let reference = reference.as_deref().map(Reference::parse).transpose()?;
    let reader: Box<dyn Read + Send> = if file == std::path::Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?)
    };
    let reporter = progress::Reporter::new(true);
    let rec = st
        .import(reader, file, reference.as_ref(), &reporter)
        .with_context(|| format!("importing {}", file.display()))?;
    image_events(cli).import(&rec.id.to_string(), named.as_deref());
    println!("{}", rec.id);
    Ok(())
}

fn run(cli: &Cli) -> Result<i32> {
    match &cli.cmd {
        Cmd::Pull(imgcmds::PullArgs {
            image,
            platform,
            quiet,
            jobs,
        }) => pull_cmd(cli, image, platform.as_deref(), *quiet, *jobs)?,
        Cmd::Images(imgcmds::ImagesArgs {
            format,
            quiet,
            no_trunc,
        }) => cmd_images(cli, format.as_deref(), *quiet, *no_trunc)?,
        Cmd::Inspect {
            format,
            kind,
            size,
            names,
        } => inspect::cmd_inspect(
            &Ctx { cli },
            names,
            format.as_deref(),
            kind.as_deref(),
            *size,
        )?,
        Cmd::Ctr(c) => return cmds::dispatch(&Ctx { cli }, c),
        Cmd::Container { cmd } => return cmds::dispatch_group(&Ctx { cli }, cmd),
        Cmd::Image { cmd } => return imgcmds::dispatch(cli, cmd),
        Cmd::History(a) => imgcmds::cmd_history(cli, a)?,
        Cmd::Info(a) => sysinfo::cmd_info(&Ctx { cli }, a.format.as_deref())?,
        Cmd::Version(a) => sysinfo::cmd_version(a.format.as_deref())?,
        Cmd::Volume { cmd } => volcmds::dispatch_volume(&Ctx { cli }, cmd)?,
        Cmd::System { cmd } => volcmds::dispatch_system(&Ctx { cli }, cmd)?,
        Cmd::Events(a) => events::cmd_events(&Ctx { cli }.engine()?, a)?,
        Cmd::Network { cmd } => return netcmds::dispatch(&Ctx { cli }, cmd),
        Cmd::Healthcheck {
            cmd: HealthcheckCmd::Run { container },
        } => return cmds::cmd_healthcheck_run(&Ctx { cli }, container),
        Cmd::Port { container, port } => {
            return netcmds::port(&Ctx { cli }, container, port.as_deref())
        }
        Cmd::NetworkProxy { spec, pidfile } => {
            oxcart_engine::network::proxy_main(spec, pidfile)?;
        }
        Cmd::NetworkDns { worker, runroot } => {
            if *worker {
                oxcart_engine::network::resolver::worker_main(runroot)?;
            } else {
                oxcart_engine::network::resolver::main(runroot)?;
            }
        }
        Cmd::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "oxcart",
                &mut std::io::stdout(),
            );
        }
        Cmd::Rmi(imgcmds::RmiArgs { force, all, images }) => cmd_rmi(cli, *force, *all, images)?,
        Cmd::Tag(imgcmds::TagArgs { source, target }) => {
            let mut st = open(cli)?;
            st.tag(source, target)?;
            let id = st
                .find(target)
                .map(|r| r.id.to_string())
                .unwrap_or_default();
            image_events(cli).tag(&id, target);
        }
        Cmd::Login {
            registry,
            username,
            password,
            password_stdin,
        } => cmd_login(cli, registry, username, password, *password_stdin)?,
        Cmd::Save(imgcmds::SaveArgs {
            output,
            format,
            images,
        }) => cmd_save(cli, output, *format, images)?,
        Cmd::Load(imgcmds::LoadArgs { input }) => cmd_load(cli, input)?,
        Cmd::Import(imgcmds::ImportArgs { file, reference }) => cmd_import(cli, file, reference)?,
        Cmd::Logout { registry } => {
            let reg = registry_arg(registry);
            if credential_store(cli).remove(&reg)? {
                println!("Removing login credentials for {reg}");
            } else {
                return Err(anyhow!("not logged in to {reg}"));
            }
        }
    }
    Ok(0)
}

/// A pull with a given progress display.
fn pull_with(
    cli: &Cli,
    image: &str,
    platform: Option<&str>,
    jobs: usize,
    reporter: &progress::Reporter,
) -> Result<(Reference, oxcart_image::db::ImageRecord)> {
    let reference = Reference::parse(image)?;
    let opts = PullOptions {
        platform: platform.map(Platform::parse).transpose()?,
        insecure: insecure(cli),
        credentials: credential_store(cli),
        jobs,
    };
    let mut st = open(cli)?;
    let rec = st
        .pull(&reference, &opts, reporter)
        .with_context(|| format!("pulling {reference}"))?;
    image_events(cli).pull(image);
    Ok((reference, rec))
}

fn pull_cmd(
    cli: &Cli,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    jobs: usize,
) -> Result<()> {
    let reporter = progress::Reporter::new(quiet);
    let (reference, rec) = pull_with(cli, image, platform, jobs, &reporter)?;
    drop(reporter);
    if quiet {
        println!("{reference}");
    } else {
        let digest = rec
            .digests
            .first()
            .and_then(|d| d.split_once('@').map(|x| x.1.to_string()))
            .unwrap_or_default();
        println!("Digest: {digest}");
        println!("Image: {} ({})", rec.id, rec.platform);
        println!("Pulled {reference}");
    }
    Ok(())
}

/// `run --pull`: the pull with its progress on stderr, so a container's output on
/// stdout stays its own.
pub fn pull_image(ctx: &Ctx, image: &str, platform: Option<&str>) -> Result<()> {
    pull_with(
        ctx.cli,
        image,
        platform,
        3,
        &progress::Reporter::to_stderr(),
    )
    .map(drop)
}

/// The monitor's exit command, exactly as the engine writes it (oxcart_engine's
/// `launch`): `--root R --runroot RR container cleanup ID`. Recognised before clap,
/// whose command tree (every verb's flags, built at each start) is most of this
/// binary's start-up cost, on a path every container's exit waits for.
fn exit_command_args() -> Option<(PathBuf, PathBuf, String)> {
    let mut a = std::env::args_os().skip(1);
    let mut next = || a.next();
    let (f1, root, f2, runroot) = (next()?, next()?, next()?, next()?);
    let (c, v, id) = (next()?, next()?, next()?);
    let shape = f1 == "--root" && f2 == "--runroot" && c == "container" && v == "cleanup";
    if !shape || next().is_some() {
        return None;
    }
    let id = id.into_string().ok().filter(|i| !i.starts_with('-'))?;
    Some((root.into(), runroot.into(), id))
}

fn cleanup_fast(root: &Path, runroot: &Path, id: &str) -> Result<i32> {
    let cfg = oxcart_engine::config::EngineConfig::load(None)?;
    let layout = oxcart_engine::Layout::new(root, runroot);
    let mut e = oxcart_engine::Engine::open(layout, cfg)
        .with_context(|| format!("opening the engine at {}", root.display()))?;
    e.cleanup(id)?;
    Ok(0)
}

fn main() {
    if let Some((root, runroot, id)) = exit_command_args() {
        exit_with(cleanup_fast(&root, &runroot, &id));
    }
    // clap's own errors exit 125 as docker's and podman's flag errors do; help and
    // version are not errors.
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ENGINE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    exit_with(run(&cli));
}

fn exit_with(r: Result<i32>) -> ! {
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            if let Some(x) = e.downcast_ref::<cmds::Exit>() {
                std::process::exit(x.0);
            }
            let code = e
                .downcast_ref::<oxcart_engine::EngineError>()
                .map(|e| e.exit_code())
                .unwrap_or(EXIT_ENGINE);
            eprintln!("Error: {e:#}");
            std::process::exit(code);
        }
    }
}

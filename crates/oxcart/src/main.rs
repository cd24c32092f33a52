//! `oxcart`: the daemonless engine CLI. This first slice manages images:
//! pull, images, inspect, rmi, tag, save, load, import, login, logout.

mod progress;
#[allow(dead_code)] // wired into `run`/`create` by the lead
mod runopts;
mod timefmt;
// The terminal for `run -it` and `attach`; wired in with the engine commands.
#[allow(dead_code)]
mod term;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use oxcart_image::auth::{CredentialStore, Credentials};
use oxcart_image::oci::Platform;
use oxcart_image::pull::PullOptions;
use oxcart_image::registry::{Client, Insecure};
use oxcart_image::{ImageStore, Reference};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "oxcart", version, about = "A daemonless container engine")]
struct Cli {
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
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Directory of per-registry CA certificates (`DIR/host[:port]/*.crt`); default
    /// /etc/containers/certs.d and /etc/docker/certs.d.
    #[arg(long, global = true, env = "OXCART_CERTS_DIR", value_name = "DIR")]
    certs_dir: Option<PathBuf>,
    /// Credentials file written by `login` (docker's config.json format).
    #[arg(long, global = true, env = "OXCART_AUTH_FILE")]
    authfile: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum ListFormat {
    Table,
    Json,
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
    Pull {
        /// Image reference, e.g. busybox or registry.example.com/app:1.0
        image: String,
        /// Platform to pick from a multi-platform image (os/arch[/variant]).
        #[arg(long)]
        platform: Option<String>,
        /// Print only the image reference when done.
        #[arg(short, long)]
        quiet: bool,
        /// Concurrent layer downloads.
        #[arg(long, default_value_t = 3)]
        jobs: usize,
    },
    /// List images.
    Images {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Only image IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Show full IDs.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show details of images as JSON.
    Inspect {
        /// Images (name, digest or ID prefix).
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images; frees layers and blobs no image uses any more.
    Rmi {
        /// Remove an image by ID even if several tags reference it.
        #[arg(short, long)]
        force: bool,
        /// Remove all images.
        #[arg(short, long, conflicts_with = "images")]
        all: bool,
        /// Images (name, digest or ID prefix).
        #[arg(required_unless_present = "all")]
        images: Vec<String>,
    },
    /// Give an image another name.
    Tag {
        /// Existing image.
        source: String,
        /// New name (registry/repo:tag).
        target: String,
    },
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
    Save {
        /// Output file ("-" or omitted: stdout, if it is not a terminal).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Archive format.
        #[arg(long, value_enum, default_value = "docker-archive")]
        format: SaveFmt,
        /// Images.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from an archive made by save, docker save, podman save or skopeo.
    Load {
        /// Input file (default: stdin).
        #[arg(short, long)]
        input: Option<PathBuf>,
    },
    /// Create an image from a rootfs tarball (plain, gzip or zstd; "-" for stdin).
    Import {
        /// Tarball path or "-".
        file: PathBuf,
        /// Name for the new image.
        reference: Option<String>,
    },
    /// Remove stored registry credentials.
    Logout {
        /// Registry host[:port] (default docker.io).
        registry: Option<String>,
    },
}

fn credential_store(cli: &Cli) -> CredentialStore {
    let mut s = CredentialStore::default_locations();
    if let Some(a) = &cli.authfile {
        s.auth_file = a.clone();
    }
    s
}

fn insecure(cli: &Cli) -> Insecure {
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

/// Docker shows sizes in decimal units with 3 significant digits.
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
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

fn cmd_images(cli: &Cli, format: ListFormat, quiet: bool, no_trunc: bool) -> Result<()> {
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
        for (repo, tag) in names {
            rows.push((repo, tag, digest.clone(), r));
        }
    }
    if format == ListFormat::Json {
        for (repo, tag, digest, r) in rows {
            let v = serde_json::json!({
                "ID": r.id.to_string(),
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedAt": r.created,
                "Size": r.size,
                "Platform": r.platform,
            });
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|(repo, tag, _, r)| {
            [
                repo.clone(),
                tag.clone(),
                if no_trunc {
                    r.id.to_string()
                } else {
                    r.id.short().to_string()
                },
                r.created
                    .as_deref()
                    .and_then(timefmt::parse_rfc3339)
                    .map(|t| timefmt::ago(now, t))
                    .unwrap_or_else(|| "N/A".into()),
                human_size(r.size),
            ]
        })
        .collect();
    let head = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
    let mut w = head.map(|h| h.len());
    for row in &table {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let print = |out: &mut dyn Write, r: [&str; 5]| -> std::io::Result<()> {
        writeln!(
            out,
            "{:<w0$}   {:<w1$}   {:<w2$}   {:<w3$}   {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
    };
    print(&mut out, head)?;
    for r in &table {
        print(&mut out, [&r[0], &r[1], &r[2], &r[3], &r[4]])?;
    }
    Ok(())
}

fn cmd_inspect(cli: &Cli, images: &[String]) -> Result<()> {
    let st = open(cli)?;
    let mut arr = Vec::new();
    for name in images {
        let r = st.find(name)?;
        let cfg: serde_json::Value = serde_json::from_slice(&st.config(&r)?)
            .with_context(|| format!("{name}: image config"))?;
        let manifest: serde_json::Value = serde_json::from_slice(&st.manifest(&r)?)
            .with_context(|| format!("{name}: manifest"))?;
        let mut dirs: Vec<String> = st
            .layer_dirs(&r)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        dirs.reverse();
        arr.push(serde_json::json!({
            "Id": r.id.to_string(),
            "RepoTags": r.tags,
            "RepoDigests": r.digests,
            "Created": cfg.get("created"),
            "Author": cfg.get("author"),
            "Architecture": cfg.get("architecture"),
            "Variant": cfg.get("variant"),
            "Os": cfg.get("os"),
            "Size": r.size,
            "Config": cfg.get("config"),
            "RootFS": { "Type": "layers", "Layers": r.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
            "GraphDriver": { "Name": "overlay", "Data": { "LowerDir": dirs.join(":") } },
            "Manifest": { "Digest": r.manifest_digest.to_string(), "MediaType": r.manifest_media_type, "Index": r.index_digest.as_ref().map(|d| d.to_string()), "Layers": manifest.get("layers") },
            "Metadata": { "ChainIDs": r.layers.iter().map(|l| l.chain_id.to_string()).collect::<Vec<_>>() },
        }));
    }
    println!("{}", serde_json::to_string_pretty(&arr)?);
    Ok(())
}

fn registry_arg(r: &Option<String>) -> String {
    match r.as_deref() {
        None
        | Some("docker.io")
        | Some("index.docker.io")
        | Some("registry-1.docker.io")
        | Some("https://index.docker.io/v1/") => "docker.io".to_string(),
        Some(s) => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
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

fn run(cli: &Cli) -> Result<()> {
    match &cli.cmd {
        Cmd::Pull {
            image,
            platform,
            quiet,
            jobs,
        } => {
            let reference = Reference::parse(image)?;
            let platform = platform.as_deref().map(Platform::parse).transpose()?;
            let opts = PullOptions {
                platform,
                insecure: insecure(cli),
                credentials: credential_store(cli),
                jobs: *jobs,
            };
            let mut st = open(cli)?;
            let reporter = progress::Reporter::new(*quiet);
            let rec = st
                .pull(&reference, &opts, &reporter)
                .with_context(|| format!("pulling {reference}"))?;
            drop(reporter);
            if *quiet {
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
        }
        Cmd::Images {
            format,
            quiet,
            no_trunc,
        } => cmd_images(cli, *format, *quiet, *no_trunc)?,
        Cmd::Inspect { images } => cmd_inspect(cli, images)?,
        Cmd::Rmi { force, all, images } => {
            let mut st = open(cli)?;
            if *all {
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
            for i in images {
                match st.remove(i, *force) {
                    Ok((removed, freed)) => {
                        for n in removed.untagged {
                            println!("Untagged: {n}");
                        }
                        for d in removed.deleted {
                            println!("Deleted: {d}");
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
        }
        Cmd::Tag { source, target } => {
            let mut st = open(cli)?;
            st.tag(source, target)?;
        }
        Cmd::Login {
            registry,
            username,
            password,
            password_stdin,
        } => cmd_login(cli, registry, username, password, *password_stdin)?,
        Cmd::Save {
            output,
            format,
            images,
        } => {
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
        }
        Cmd::Load { input } => {
            let mut st = open(cli)?;
            let (reader, name): (Box<dyn Read + Send>, PathBuf) =
                match input.as_deref().filter(|p| *p != std::path::Path::new("-")) {
                    Some(p) => (
                        Box::new(
                            std::fs::File::open(p)
                                .with_context(|| format!("opening {}", p.display()))?,
                        ),
                        p.to_path_buf(),
                    ),
                    None => (Box::new(std::io::stdin()), PathBuf::from("<stdin>")),
                };
            let reporter = progress::Reporter::new(true);
            let recs = st
                .load(reader, &name, &reporter)
                .with_context(|| format!("loading {}", name.display()))?;
            for r in recs {
                if r.tags.is_empty() {
                    println!("Loaded image: {}", r.id);
                }
                for t in &r.tags {
                    println!("Loaded image: {t}");
                }
            }
        }
        Cmd::Import { file, reference } => {
            let mut st = open(cli)?;
            let reference = reference.as_deref().map(Reference::parse).transpose()?;
            let reader: Box<dyn Read + Send> = if file == std::path::Path::new("-") {
                Box::new(std::io::stdin())
            } else {
                Box::new(
                    std::fs::File::open(file)
                        .with_context(|| format!("opening {}", file.display()))?,
                )
            };
            let reporter = progress::Reporter::new(true);
            let rec = st
                .import(reader, file, reference.as_ref(), &reporter)
                .with_context(|| format!("importing {}", file.display()))?;
            println!("{}", rec.id);
        }
        Cmd::Logout { registry } => {
            let reg = registry_arg(registry);
            if credential_store(cli).remove(&reg)? {
                println!("Removing login credentials for {reg}");
            } else {
                return Err(anyhow!("not logged in to {reg}"));
            }
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

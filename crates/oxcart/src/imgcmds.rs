//! The image verbs' arguments, shared by the top-level verbs (`pull`, `images`,
//! `rmi`, …) and docker's `image` management group (`image ls|rm|pull|…`), and the
//! group's own verbs (`image prune`, `image history`).

use crate::SaveFmt;
use anyhow::Result;
use clap::Args;
use oxcart_engine::filters::{split_pairs, LabelFilter};
use oxcart_image::ImageStore;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct PullArgs {
    /// Image reference, e.g. busybox or registry.example.com/app:1.0
    pub image: String,
    /// Platform to pick from a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image reference when done.
    #[arg(short, long)]
    pub quiet: bool,
    /// Concurrent layer downloads.
    #[arg(long, default_value_t = 3)]
    pub jobs: usize,
}

#[derive(Args, Clone)]
pub struct ImagesArgs {
    /// Format output using a Go template, 'json' or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full IDs.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Args, Clone)]
pub struct RmiArgs {
    /// Remove an image by ID even if several tags reference it.
    #[arg(short, long)]
    pub force: bool,
    /// Remove all images.
    #[arg(short, long, conflicts_with = "images")]
    pub all: bool,
    /// Images (name, digest or ID prefix).
    #[arg(required_unless_present = "all")]
    pub images: Vec<String>,
}

#[derive(Args, Clone)]
pub struct TagArgs {
    /// Existing image.
    pub source: String,
    /// New name (registry/repo:tag).
    pub target: String,
}

#[derive(Args, Clone)]
pub struct SaveArgs {
    /// Output file ("-" or omitted: stdout, if it is not a terminal).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format.
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: SaveFmt,
    /// Images.
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Clone)]
pub struct LoadArgs {
    /// Input file (default: stdin).
    #[arg(short, long)]
    pub input: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct ImportArgs {
    /// Tarball path or "-".
    pub file: PathBuf,
    /// Name for the new image.
    pub reference: Option<String>,
}

/// docker's `image` management group: the image verbs under their group names
/// (`image ls` is `images`, `image rm` is `rmi`, …) and the group's own `prune` and
/// `history`.
#[derive(clap::Subcommand, Clone)]
pub enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
}

#[derive(Args, Clone)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. 'label=<key>=<value>')
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Clone)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Clone)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a Go template, 'json' or 'table TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

/// `image VERB`: the group's own verbs here, the others as their top-level twins.
pub fn dispatch(cli: &crate::Cli, cmd: &ImageCmd) -> Result<i32> {
    let same = |cmd: crate::Cmd| {
        crate::run(&crate::Cli {
            globals: cli.globals.clone(),
            cmd,
        })
    };
    match cmd {
        ImageCmd::Ls(a) => same(crate::Cmd::Images(a.clone())),
        ImageCmd::Rm(a) => same(crate::Cmd::Rmi(a.clone())),
        ImageCmd::Pull(a) => same(crate::Cmd::Pull(a.clone())),
        ImageCmd::Tag(a) => same(crate::Cmd::Tag(a.clone())),
        ImageCmd::Save(a) => same(crate::Cmd::Save(a.clone())),
        ImageCmd::Load(a) => same(crate::Cmd::Load(a.clone())),
        ImageCmd::Import(a) => same(crate::Cmd::Import(a.clone())),
        ImageCmd::Inspect(a) => {
            let ctx = crate::Ctx { cli };
            crate::inspect::cmd_inspect(
                &ctx,
                &a.images,
                a.format.as_deref(),
                Some("image"),
                false,
            )?;
            Ok(0)
        }
        ImageCmd::Prune(a) => {
            cmd_prune(cli, a)?;
            Ok(0)
        }
        ImageCmd::History(a) => {
            cmd_history(cli, a)?;
            Ok(0)
        }
    }
}

/// `image prune`: docker's warning, list and total.
fn cmd_prune(cli: &crate::Cli, a: &PruneArgs) -> Result<()> {
    // Filters first: a bad one is an error before any question.
    let pairs = split_pairs(&a.filter)?;
    let labels = LabelFilter::for_prune(&pairs)?;
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !crate::term::confirm(warning)? {
        return Ok(());
    }
    let ctx = crate::Ctx { cli };
    let labels = (!pairs.is_empty()).then_some(&labels);
    let (lines, bytes) = prune(&ctx.engine()?, &mut ctx.images()?, a.all, labels)?;
    crate::volcmds::print_pruned("Deleted Images:", &lines, bytes);
    Ok(())
}

/// [`oxcart_engine::Engine::prune_images`] in docker's CLI words: the
/// `untagged: …`/`deleted: …` lines, and the bytes freed.
pub fn prune(
    e: &oxcart_engine::Engine,
    st: &mut ImageStore,
    all: bool,
    labels: Option<&LabelFilter>,
) -> Result<(Vec<String>, u64)> {
    let (removed, bytes) = e.prune_images(st, all, labels)?;
    let lines = removed
        .iter()
        .flat_map(|r| {
            let untagged = r.untagged.iter().map(|u| format!("untagged: {u}"));
            untagged.chain(r.deleted.iter().map(|d| format!("deleted: {d}")))
        })
        .collect();
    Ok((lines, bytes))
}

/// `image history`: the config's history, newest first, as docker prints it; the
/// top row is the image's ID, older ones `<missing>` (docker's for any image it
/// pulled rather than built).
pub fn cmd_history(cli: &crate::Cli, a: &HistoryArgs) -> Result<()> {
    let st = crate::open(cli)?;
    let img = st.find(&a.image)?;
    let now = crate::timefmt::now();
    let mut rows: Vec<Value> = st
        .history(&img)?
        .into_iter()
        .map(|h| {
            // docker's columns: the time in whole seconds, RFC 3339 in the local
            // zone (its `time.Unix(…).Format(time.RFC3339)`), and CREATED BY cut
            // unless --no-trunc, in the --format fields as in the table.
            let created = h.created.as_deref().and_then(crate::timefmt::parse_rfc3339);
            let at = created
                .map(|secs| crate::timefmt::local_rfc3339(secs, None))
                .unwrap_or_default();
            let since = match created {
                Some(t) if a.human => crate::timefmt::ago(now, t),
                _ => at.clone(),
            };
            let size = if a.human {
                crate::table::human_size(h.size)
            } else {
                h.size.to_string()
            };
            json!({
                "ID": "<missing>", "CreatedSince": since, "CreatedAt": at,
                "CreatedBy": created_by(&h.created_by, a.no_trunc), "Size": size,
                "Comment": h.comment,
            })
        })
        .collect();
    if let Some(top) = rows.first_mut() {
        top["ID"] = json!(if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        });
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(());
    }
    let headers = json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
    });
    let fmt = crate::table::list_format(a.format.as_deref())?;
    crate::table::print_list(&mut out, &fmt, &rows, &headers, |rows| {
        let mut t = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
            .map(String::from)
            .to_vec()];
        for r in rows {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            t.push(vec![
                s("ID"),
                s("CreatedSince"),
                s("CreatedBy"),
                s("Size"),
                s("Comment"),
            ]);
        }
        crate::table::align(&t)
    })
}

/// docker's CREATED BY: tabs as spaces, cut to 45 characters with an ellipsis
/// unless `--no-trunc`.
fn created_by(s: &str, no_trunc: bool) -> String {
    let s = s.replace('\t', " ");
    if no_trunc || s.chars().count() <= 45 {
        return s;
    }
    let cut: String = s.chars().take(44).collect();
    format!("{cut}…")
}

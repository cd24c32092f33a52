//! `cp`, `diff`, `export`, `commit`: the CLI side of the engine's filesystem verbs.

use anyhow::{bail, Context, Result};
use oxcart_engine::copy::{Owner, Root};
use oxcart_engine::fs::CommitRequest;
use oxcart_engine::Engine;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// docker's `CONTAINER:PATH` (a leading `/` or `.` means a local path with a colon).
fn split_container_path(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
}

pub fn cmd_cp(e: &mut Engine, src: &str, dst: &str, archive: bool, follow: bool) -> Result<()> {
    match (split_container_path(src), split_container_path(dst)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((ctr, path)), None) => e
            .with_container_root(ctr, |_, root| {
                let r = Root::open(root, ctr)?;
                if dst == "-" {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    r.copy_out_tar(path, follow, &mut out)?;
                    out.flush()
                        .map_err(oxcart_engine::error::io_err("stdout"))?;
                } else {
                    r.copy_out_to_host(path, follow, Path::new(dst))?;
                }
                Ok(())
            })
            .map(|()| e.emit_for(ctr, "archive-path"))?,
        (None, Some((ctr, path))) => {
            // docker: files copied in belong to root, unless -a keeps the source's ids.
            let owner = if archive {
                Owner::Keep
            } else {
                Owner::Set(0, 0)
            };
            e.with_container_root(ctr, |_, root| {
                let r = Root::open(root, ctr)?;
                if src == "-" {
                    let mut input = std::io::stdin().lock();
                    r.copy_in_tar(&mut input, path, owner)?;
                } else {
                    r.copy_in_from_host(Path::new(src), follow, path, owner)?;
                }
                Ok(())
            })?;
            e.emit_for(ctr, "extract-to-dir");
        }
    }
    Ok(())
}

pub fn cmd_diff(e: &mut Engine, key: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for c in e.diff(key)? {
        writeln!(out, "{c}")?;
    }
    Ok(())
}

pub fn cmd_export(e: &mut Engine, key: &str, output: Option<&Path>) -> Result<()> {
    match output.filter(|p| *p != Path::new("-")) {
        Some(path) => {
            // Written beside the target and renamed: a failed export leaves no
            // truncated archive.
            let tmp = path.with_extension(format!("oxcart-tmp-{}", std::process::id()));
            let r = e.with_rootfs(key, |_, root| {
                let f = std::fs::File::create(&tmp).map_err(oxcart_engine::error::io_err(&tmp))?;
                let mut w = std::io::BufWriter::new(f);
                Root::open(root, key)?.export(&mut w)?;
                w.flush().map_err(oxcart_engine::error::io_err(&tmp))?;
                Ok(())
            });
            if let Err(err) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(err.into());
            }
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming to {}", path.display()))?;
            e.emit_for(key, "export");
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            e.with_rootfs(key, |_, root| {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                Root::open(root, key)?.export(&mut out)?;
                out.flush()
                    .map_err(oxcart_engine::error::io_err("stdout"))?;
                Ok(())
            })?;
            e.emit_for(key, "export");
        }
    }
    Ok(())
}

pub fn cmd_commit(
    e: &mut Engine,
    key: &str,
    reference: Option<&str>,
    author: Option<&str>,
    message: Option<&str>,
    changes: &[String],
    pause: bool,
) -> Result<()> {
    let rec = e.commit(
        key,
        &CommitRequest {
            reference: reference.map(String::from),
            author: author.unwrap_or_default().to_string(),
            message: message.unwrap_or_default().to_string(),
            changes: changes.to_vec(),
            pause,
        },
    )?;
    println!("{}", rec.id);
    Ok(())
}

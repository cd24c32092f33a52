//! `inspect`: containers and images in docker's JSON (4-space indent, as docker's
//! `json.MarshalIndent`), or through `--format`.

use crate::Ctx;
use anyhow::{bail, Result};
use serde_json::Value;
use std::io::Write;

/// docker's JSON: 4-space indent.
pub fn to_docker_json(v: &Value) -> Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser)?;
    Ok(String::from_utf8(buf)?)
}

/// One container's inspect object, with `SizeRw`/`SizeRootFs` when asked.
fn container_json(e: &oxcart_engine::Engine, name: &str, size: bool) -> Result<Option<Value>> {
    let rec = match e.find(name) {
        Ok(rec) => rec,
        Err(oxcart_engine::EngineError::NoSuchContainer(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let (mut j, _) = e.inspect(&rec)?;
    if size {
        let rw = oxcart_engine::engine::dir_size(&e.ctr_dir(&rec.id).join("upper"));
        j["SizeRw"] = rw.into();
        let img = e
            .open_images()?
            .find(&rec.image_id)
            .map(|i| i.size)
            .unwrap_or(0);
        j["SizeRootFs"] = (rw + img).into();
    }
    Ok(Some(j))
}

/// A `--format` template for one object at a time (`inspect`, `network inspect`,
/// `info`), the two-character escapes `\n` and `\t` made the characters.
pub fn object_template(f: &str) -> Result<oxcart_template::Template> {
    Ok(oxcart_template::Template::parse(
        &f.replace("\\n", "\n").replace("\\t", "\t"),
    )?)
}

/// `inspect [--type container|image] [-f FORMAT] [-s] NAME...`: containers first, as
/// docker looks names up; every name is tried before a missing one fails the command.
pub fn cmd_inspect(
    ctx: &Ctx,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
    size: bool,
) -> Result<()> {
    if let Some(k) = kind {
        if k != "container" && k != "image" {
            bail!("\"{k}\" is not a valid value for --type");
        }
    }
    let engine = if kind != Some("image") {
        Some(ctx.engine()?)
    } else {
        None
    };
    let images = if kind != Some("container") {
        Some(ctx.images()?)
    } else {
        None
    };
    let tpl = format
        .filter(|f| !f.is_empty() && *f != "json")
        .map(object_template)
        .transpose()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        let mut v = match &engine {
            Some(e) => container_json(e, n, size)?,
            None => None,
        };
        if let (None, Some(st)) = (&v, &images) {
            v = oxcart_engine::inspect::image_json(st, n)?;
        }
        match v {
            Some(v) => found.push(v),
            None => missing.push(n.clone()),
        }
    }
    let mut out = std::io::stdout().lock();
    match &tpl {
        Some(t) => {
            for v in &found {
                writeln!(out, "{}", t.render(v)?)?;
            }
        }
        None => writeln!(out, "{}", to_docker_json(&Value::Array(found))?)?,
    }
    if missing.is_empty() {
        return Ok(());
    }
    let what = match kind {
        Some("container") => "container",
        Some("image") => "image",
        _ => "object",
    };
    for m in &missing {
        eprintln!("Error: No such {what}: {m}");
    }
    Err(crate::cmds::Exit(crate::EXIT_ENGINE).into())
}

//! `inspect`: containers and images in docker's JSON (4-space indent, as docker's
//! `json.MarshalIndent`), or through `--format`.

use crate::Ctx;
use anyhow::{bail, Context, Result};
use oxcart_image::ImageStore;
use serde_json::Value;
use std::io::Write;

/// An image in docker's `ImageInspect` shape, with our store's extras.
pub fn image_json(st: &ImageStore, name: &str) -> Result<Option<Value>> {
    let r = match st.find(name) {
        Ok(r) => r,
        Err(oxcart_image::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let cfg: Value =
        serde_json::from_slice(&st.config(&r)?).with_context(|| format!("{name}: image config"))?;
    let manifest: Value =
        serde_json::from_slice(&st.manifest(&r)?).with_context(|| format!("{name}: manifest"))?;
    let mut dirs: Vec<String> = st
        .layer_dirs(&r)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    dirs.reverse();
    Ok(Some(serde_json::json!({
        "Id": r.id.to_string(),
        "RepoTags": r.tags,
        "RepoDigests": r.digests,
        "Parent": "",
        "Comment": "",
        "Created": cfg.get("created"),
        // docker keeps a ContainerConfig (clients such as compose read it); an image
        // not built by docker's builder has the same config there.
        "ContainerConfig": cfg.get("container_config").or(cfg.get("config")),
        "DockerVersion": "",
        "Author": cfg.get("author").cloned().unwrap_or(Value::String(String::new())),
        "Config": cfg.get("config"),
        "Architecture": cfg.get("architecture"),
        "Variant": cfg.get("variant"),
        "Os": cfg.get("os"),
        "Size": r.size,
        "VirtualSize": r.size,
        "GraphDriver": { "Name": "overlay", "Data": { "LowerDir": dirs.join(":") } },
        "RootFS": { "Type": "layers", "Layers": r.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        "Manifest": { "Digest": r.manifest_digest.to_string(), "MediaType": r.manifest_media_type, "Index": r.index_digest.as_ref().map(|d| d.to_string()), "Layers": manifest.get("layers") },
        "ChainIDs": r.layers.iter().map(|l| l.chain_id.to_string()).collect::<Vec<_>>(),
    })))
}

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
    let tpl = match format.filter(|f| !f.is_empty() && *f != "json") {
        Some(f) => Some(oxcart_template::Template::parse(
            &f.replace("\\n", "\n").replace("\\t", "\t"),
        )?),
        None => None,
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        let mut v = match &engine {
            Some(e) => container_json(e, n, size)?,
            None => None,
        };
        if let (None, Some(st)) = (&v, &images) {
            v = image_json(st, n)?;
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

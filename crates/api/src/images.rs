//! `/images/…` and the container filesystem endpoints (`archive` for `cp`, `export`).

use crate::http::{self, parse_filters, ApiError, ApiResult, Resp};
use crate::router::{not_found_route, Req};
use crate::server::{blocking, State};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use oxcart_engine::copy::{Owner, Root};
use oxcart_engine::filters::ImageFilter;
use serde_json::json;
use std::io::{Read, Seek, Write};
use std::sync::Arc;

pub async fn route(st: Arc<State>, r: Req) -> ApiResult {
    use Method as M;
    let n = r.segs.len();
    let last = r.segs.last().map(String::as_str).unwrap_or("");
    // Image names hold slashes (`registry:5000/test/bb`): the name is every segment
    // between `images` and the verb.
    let name = |drop_last: bool| {
        let end = if drop_last { n - 1 } else { n };
        r.segs.get(1..end).map(|s| s.join("/")).unwrap_or_default()
    };
    match (&r.method, last) {
        (&M::GET, "json") if n == 2 => list(st, &r).await,
        (&M::GET, "json") if n > 2 => inspect(st, name(true)).await,
        (&M::POST, "tag") if n > 2 => tag(st, name(true), &r).await,
        (&M::GET, "history") if n > 2 => history(st, name(true)).await,
        (&M::DELETE, _) if n > 1 => remove(st, name(false), r.query.bool("force")).await,
        (&M::POST, "create") if n == 2 && r.query.get("fromSrc").is_some_and(|s| !s.is_empty()) => {
            import(st, r)
        }
        (&M::POST, "create") if n == 2 => pull(st, &r),
        (&M::POST, "load") if n == 2 => load(st, r),
        (&M::GET, "get") if n == 2 => save(st, r.query.all("names").to_vec()).await,
        (&M::GET, "get") if n > 2 => save(st, vec![name(true)]).await,
        (&M::POST, "prune") if n == 2 => prune(st, &r).await,
        _ => Err(not_found_route(&r)),
    }
}

/// `GET /images/json`, newest first, with docker's filters (`ImageFilter`): a reaper
/// removes what this lists for its session label, so a filter is never ignored.
async fn list(st: Arc<State>, r: &Req) -> ApiResult {
    let f = parse_filters(&r.query)?;
    let rows = blocking(move || {
        let imgs = st.images()?;
        let e = st.engine()?;
        let created_ns = |c: Option<&str>| {
            c.and_then(oxcart_engine::time::parse)
                .map(|(s, n)| i128::from(s) * 1_000_000_000 + i128::from(n))
                .unwrap_or(0)
        };
        let created_of = |name: &str| -> oxcart_engine::Result<i128> {
            let rec = imgs.find(name).map_err(|_| {
                oxcart_engine::EngineError::Invalid(format!("No such image: {name}"))
            })?;
            Ok(created_ns(rec.created.as_deref()))
        };
        let filter = ImageFilter::parse(&http::filter_pairs(&f), &created_of)?;
        let mut rows = Vec::new();
        for r in imgs.list()? {
            let created_at = created_ns(r.created.as_deref());
            let label_map = imgs.labels(&r)?;
            let Some(refs) = filter.select(created_at, &label_map, &r.tags, &r.digests) else {
                continue;
            };
            let users = e
                .image_users(&r.id.to_string())
                .map(|u| u.len())
                .unwrap_or(0);
            let created = created_at.div_euclid(1_000_000_000) as i64;
            let tags = if refs.tags.is_empty() {
                vec!["<none>:<none>".to_string()]
            } else {
                refs.tags
            };
            rows.push(json!({
                "Id": r.id.to_string(), "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": refs.digests, "Created": created, "Size": r.size,
                "SharedSize": -1, "VirtualSize": r.size, "Labels": label_map, "Containers": users,
            }));
        }
        // dockerd's order: newest first.
        rows.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
        Ok(rows)
    })
    .await?;
    Ok(http::json(&rows))
}

async fn inspect(st: Arc<State>, name: String) -> ApiResult {
    let v = blocking(move || {
        let imgs = st.images()?;
        oxcart_engine::inspect::image_json(&imgs, &name)?
            .ok_or_else(|| ApiError::not_found(format!("No such image: {name}")))
    })
    .await?;
    Ok(http::json(&v))
}

/// `GET /images/{name}/history`: dockerd's `HistoryResponseItem`s, newest first;
/// the top one carries the image's ID and tags, older ones `<missing>` and no tags
/// (dockerd's for layers it did not build itself).
async fn history(st: Arc<State>, name: String) -> ApiResult {
    let v = blocking(move || {
        let imgs = st.images()?;
        let rec = imgs.find(&name).map_err(|e| match e {
            oxcart_image::Error::NotFound(_) => {
                ApiError::not_found(format!("No such image: {name}"))
            }
            other => other.into(),
        })?;
        let items: Vec<serde_json::Value> = imgs
            .history(&rec)?
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let created = h
                    .created
                    .as_deref()
                    .and_then(oxcart_engine::time::parse)
                    .map(|(s, _)| s)
                    .unwrap_or(0);
                // moby's nil slice for an image without tags: null.
                let (id, tags) = if i == 0 {
                    let tags = (!rec.tags.is_empty()).then(|| json!(rec.tags));
                    (
                        json!(rec.id.to_string()),
                        tags.unwrap_or(serde_json::Value::Null),
                    )
                } else {
                    (json!("<missing>"), serde_json::Value::Null)
                };
                json!({
                    "Id": id, "Created": created, "CreatedBy": h.created_by,
                    "Tags": tags, "Size": h.size, "Comment": h.comment,
                })
            })
            .collect();
        Ok::<_, ApiError>(serde_json::Value::Array(items))
    })
    .await?;
    Ok(http::json(&v))
}

async fn tag(st: Arc<State>, name: String, r: &Req) -> ApiResult {
    let repo = r.query.get("repo").unwrap_or("").to_string();
    let t = r
        .query
        .get("tag")
        .filter(|t| !t.is_empty())
        .unwrap_or("latest")
        .to_string();
    if repo.is_empty() {
        return Err(ApiError::bad(
            "repository name must have at least one component",
        ));
    }
    blocking(move || {
        let mut imgs = st.images()?;
        let target = format!("{repo}:{t}");
        imgs.tag(&name, &target).map_err(|e| match e {
            oxcart_image::Error::NotFound(_) => {
                ApiError::not_found(format!("No such image: {name}"))
            }
            e => e.into(),
        })?;
        if let Ok(rec) = imgs.find(&target) {
            st.image_events().tag(&rec.id.to_string(), &target);
        }
        Ok(())
    })
    .await?;
    Ok(http::response(
        StatusCode::CREATED,
        "text/plain",
        http::empty(),
    ))
}

async fn remove(st: Arc<State>, name: String, force: bool) -> ApiResult {
    let v = blocking(move || {
        let mut imgs = st.images()?;
        let e = st.engine()?;
        e.release_stale_holds(&mut imgs)?;
        let id = imgs
            .find(&name)
            .map(|r| r.id.to_string())
            .unwrap_or_default();
        let (removed, _) = imgs.remove(&name, force).map_err(|e| match e {
            oxcart_image::Error::NotFound(_) => {
                ApiError::not_found(format!("No such image: {name}"))
            }
            oxcart_image::Error::Conflict(m) => ApiError::conflict(m),
            e => e.into(),
        })?;
        let mut out: Vec<serde_json::Value> = removed
            .untagged
            .iter()
            .map(|u| json!({"Untagged": u}))
            .collect();
        out.extend(removed.deleted.iter().map(|d| json!({"Deleted": d})));
        let events = st.image_events();
        for _ in &removed.untagged {
            events.untag(&id);
        }
        for d in &removed.deleted {
            events.delete(&d.to_string());
        }
        Ok(out)
    })
    .await?;
    Ok(http::json(&v))
}

/// Pull progress in docker's JSON message stream (`jsonmessage`), one object a line.
struct PullProgress {
    tx: tokio::sync::mpsc::Sender<Bytes>,
}

impl PullProgress {
    fn send(&self, v: serde_json::Value) {
        let _ = self.tx.blocking_send(Bytes::from(format!("{v}\r\n")));
    }
}

fn short(d: &oxcart_image::Digest) -> String {
    let s = d.to_string();
    s.split_once(':')
        .map(|x| x.1)
        .unwrap_or(&s)
        .chars()
        .take(12)
        .collect()
}

impl oxcart_image::pull::Progress for PullProgress {
    fn layer(&self, layer: &oxcart_image::Digest, state: oxcart_image::pull::LayerState) {
        use oxcart_image::pull::LayerState as L;
        let id = short(layer);
        let v = match state {
            L::Waiting => json!({"status": "Pulling fs layer", "progressDetail": {}, "id": id}),
            L::Exists => json!({"status": "Already exists", "progressDetail": {}, "id": id}),
            L::Downloading { done, total, .. } => json!({
                "status": "Downloading", "progressDetail": {"current": done, "total": total}, "id": id,
            }),
            L::Verifying => json!({"status": "Verifying Checksum", "progressDetail": {}, "id": id}),
            L::Done => json!({"status": "Pull complete", "progressDetail": {}, "id": id}),
        };
        self.send(v);
    }
}

/// `POST /images/create?fromImage=…&tag=…`: a pull, its progress streamed (chunked);
/// a failure after the stream began is docker's `{"errorDetail":…,"error":…}` line.
/// `POST /images/create?fromSrc=-` (`docker import`): the request body is a root
/// filesystem tar (compressed or not), imported as `oxcart import` does; `repo` and
/// `tag` name the new image.
fn import(st: Arc<State>, r: Req) -> ApiResult {
    if r.query.get("fromSrc") != Some("-") {
        return Err(ApiError::not_implemented(
            "fromSrc: importing from a URL is not supported (send the archive as the body, fromSrc=-)",
        ));
    }
    if !r.query.all("changes").iter().all(|c| c.is_empty()) {
        return Err(ApiError::not_implemented(
            "changes: Dockerfile instructions on import are not supported",
        ));
    }
    if r.query.get("message").is_some_and(|m| !m.is_empty()) {
        return Err(ApiError::not_implemented(
            "message: a commit message on import is not supported",
        ));
    }
    let repo = r.query.get("repo").unwrap_or("").to_string();
    let named = match (repo.as_str(), r.query.get("tag").unwrap_or("")) {
        ("", _) => None,
        (repo, "") => Some(repo.to_string()),
        (repo, tag) => Some(format!("{repo}:{tag}")),
    };
    let reference = named
        .as_deref()
        .map(oxcart_image::Reference::parse)
        .transpose()
        .map_err(|e| ApiError::bad(format!("repo: {e}")))?;
    stream_body(st, r, move |st, reader, prog| {
        let rec = st.images()?.import(
            reader,
            std::path::Path::new("<request body>"),
            reference.as_ref(),
            &oxcart_image::pull::NoProgress,
        )?;
        let id = rec.id.to_string();
        st.image_events().import(&id, named.as_deref());
        // docker's import stream ends with the new image's id as a status.
        prog.send(json!({"status": id}));
        Ok(())
    })
}

/// A request body consumed off the async threads by `work` (an import, a load),
/// answered at once with a stream of docker's JSON messages: what `work` sends,
/// then docker's `errorDetail` message if it fails.
fn stream_body<F>(st: Arc<State>, r: Req, work: F) -> ApiResult
where
    F: FnOnce(&State, Box<dyn std::io::Read + Send>, &PullProgress) -> Result<(), ApiError>
        + Send
        + 'static,
{
    let reader = body_reader(r.req.into_body());
    let (tx, body) = http::channel(16);
    tokio::task::spawn_blocking(move || {
        let prog = PullProgress { tx };
        if let Err(e) = work(&st, Box::new(reader), &prog) {
            prog.send(json!({"errorDetail": {"message": e.message}, "error": e.message}));
        }
    });
    Ok(http::response(StatusCode::OK, "application/json", body))
}

fn pull(st: Arc<State>, r: &Req) -> ApiResult {
    let from = r.query.get("fromImage").unwrap_or("").to_string();
    if from.is_empty() {
        return Err(ApiError::bad("fromImage is required"));
    }
    let tag = r.query.get("tag").unwrap_or("").to_string();
    let name = if tag.is_empty() {
        from
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let reference =
        oxcart_image::Reference::parse(&name).map_err(|e| ApiError::bad(e.to_string()))?;
    let platform = match r.query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => {
            Some(oxcart_image::oci::Platform::parse(p).map_err(|e| ApiError::bad(e.to_string()))?)
        }
        None => None,
    };
    let given = crate::auth::from_header(r, &reference.registry)?;
    let (tx, body) = http::channel(64);
    tokio::task::spawn_blocking(move || {
        let prog = PullProgress { tx };
        prog.send(json!({"status": format!("Pulling from {}", reference.repository), "id": reference.tag.clone().unwrap_or_else(|| "latest".into())}));
        let mut opts = st.opts.pull.clone();
        opts.platform = platform;
        // The client's credentials for this registry (docker login's), before the
        // service's own files.
        if given.is_some() {
            opts.credentials.given = given;
        }
        let res = st
            .images()
            .and_then(|mut imgs| Ok(imgs.pull(&reference, &opts, &prog)?));
        match res {
            Ok(rec) => {
                st.image_events().pull(&name);
                if let Some(d) = rec.digests.first().and_then(|d| d.split_once('@')) {
                    prog.send(json!({"status": format!("Digest: {}", d.1)}));
                }
                prog.send(
                    json!({"status": format!("Status: Downloaded newer image for {reference}")}),
                );
            }
            Err(e) => prog.send(json!({"errorDetail": {"message": e.message}, "error": e.message})),
        }
    });
    Ok(http::response(StatusCode::OK, "application/json", body))
}

async fn save(st: Arc<State>, names: Vec<String>) -> ApiResult {
    if names.is_empty() {
        return Err(ApiError::bad("names: at least one image is required"));
    }
    let f = blocking(move || {
        let imgs = st.images()?;
        for n in &names {
            imgs.find(n)
                .map_err(|_| ApiError::not_found(format!("No such image: {n}")))?;
        }
        let mut f = tempfile_in(&st.opts.layout.root)?;
        {
            let mut w = std::io::BufWriter::new(&mut f);
            imgs.save(&names, oxcart_image::archive::SaveFormat::Docker, &mut w)?;
            w.flush().map_err(|e| ApiError::internal(e.to_string()))?;
        }
        let events = st.image_events();
        let mut seen = std::collections::BTreeSet::new();
        for n in &names {
            if let Ok(r) = imgs.find(n) {
                if seen.insert(r.id.to_string()) {
                    events.save(&r.id.to_string());
                }
            }
        }
        f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(f)
    })
    .await?;
    Ok(http::response(
        StatusCode::OK,
        "application/x-tar",
        file_body(f),
    ))
}

fn load(st: Arc<State>, r: Req) -> ApiResult {
    // `quiet` only hides dockerd's progress bars, which a load here has none of: the
    // "Loaded image" lines are sent either way, as dockerd sends them.
    stream_body(st, r, |st, reader, prog| {
        let recs = st.images()?.load(
            reader,
            std::path::Path::new("<request body>"),
            &oxcart_image::pull::NoProgress,
        )?;
        let events = st.image_events();
        for rec in recs {
            events.load(&rec.id.to_string(), &rec.tags);
            if rec.tags.is_empty() {
                prog.send(json!({"stream": format!("Loaded image ID: {}\n", rec.id)}));
            }
            for t in &rec.tags {
                prog.send(json!({"stream": format!("Loaded image: {t}\n")}));
            }
        }
        Ok(())
    })
}

/// `POST /images/prune`: dangling images (untagged), or with `dangling=false` every
/// image no container uses.
async fn prune(st: Arc<State>, r: &Req) -> ApiResult {
    let f = parse_filters(&r.query)?;
    for k in f.keys() {
        if k != "dangling" {
            return Err(ApiError::bad(format!(
                "invalid filter '{k}' (image prune takes dangling=)"
            )));
        }
    }
    let all = f
        .get("dangling")
        .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
    let (deleted, bytes) = blocking(move || {
        let (removed, bytes) = st.engine()?.prune_images(&mut st.images()?, all, None)?;
        let out: Vec<serde_json::Value> = removed
            .iter()
            .flat_map(|r| {
                let untagged = r.untagged.iter().map(|u| json!({"Untagged": u}));
                untagged.chain(r.deleted.iter().map(|d| json!({"Deleted": d})))
            })
            .collect();
        Ok::<_, ApiError>((out, bytes))
    })
    .await?;
    Ok(http::json(
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": bytes}),
    ))
}

/// `GET /system/df`: images, containers and volumes with their sizes.
pub async fn system_df(st: Arc<State>) -> ApiResult {
    let v = blocking(move || {
        let imgs = st.images()?;
        let e = st.engine()?;
        let now = oxcart_engine::time::parse(&oxcart_engine::time::now()).map(|(s, _)| s).unwrap_or(0);
        let mut images = Vec::new();
        let mut layers = 0u64;
        for r in imgs.list()? {
            let id = r.id.to_string();
            layers += r.size;
            images.push(json!({
                "Id": id, "ParentId": "", "RepoTags": r.tags, "RepoDigests": r.digests,
                "Created": r.created.as_deref().and_then(oxcart_engine::time::parse).map(|x| x.0).unwrap_or(0),
                "Size": r.size, "SharedSize": -1, "VirtualSize": r.size, "Labels": {},
                "Containers": e.image_users(&id).map(|u| u.len()).unwrap_or(0),
            }));
        }
        let mut containers = Vec::new();
        for rec in e.list()? {
            let o = e.observe(&rec)?;
            let rw = oxcart_engine::engine::dir_size(&e.ctr_dir(&rec.id).join("upper"));
            containers.push(json!({
                "Id": rec.id, "Names": [format!("/{}", rec.name)], "Image": rec.config.image,
                "ImageID": rec.image_id, "Command": oxcart_engine::listing::command_line(&rec),
                "Created": oxcart_engine::time::parse(&rec.created).map(|x| x.0).unwrap_or(0),
                "State": o.status.as_str(), "Status": oxcart_engine::listing::status_text(&o, now),
                "SizeRw": rw, "SizeRootFs": rw, "Labels": rec.config.labels, "Mounts": [],
            }));
        }
        let users = e.volume_users()?;
        let mut volumes = Vec::new();
        for v in e.volume_list()? {
            let size = oxcart_engine::engine::dir_size(std::path::Path::new(&v.mountpoint));
            let n = users.get(&v.name).map(Vec::len).unwrap_or(0);
            let mut j = serde_json::to_value(&v).map_err(|e| ApiError::internal(e.to_string()))?;
            j["UsageData"] = json!({"Size": size, "RefCount": n});
            volumes.push(j);
        }
        Ok(json!({"LayersSize": layers, "Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []}))
    })
    .await?;
    Ok(http::json(&v))
}

/// Go's `os.FileMode` bits docker puts in the path stat header.
fn go_mode(mode: u32, kind: tar::EntryType) -> u32 {
    let perm = mode & 0o777;
    let extra = (if mode & 0o4000 != 0 { 1 << 23 } else { 0 })
        | (if mode & 0o2000 != 0 { 1 << 22 } else { 0 })
        | (if mode & 0o1000 != 0 { 1 << 20 } else { 0 });
    let t = match kind {
        tar::EntryType::Directory => 1 << 31,
        tar::EntryType::Symlink => 1 << 27,
        tar::EntryType::Char => (1 << 26) | (1 << 21),
        tar::EntryType::Block => 1 << 26,
        tar::EntryType::Fifo => 1 << 25,
        _ => 0,
    };
    perm | extra | t
}

/// The copy of `path` as a tar in an unlinked temporary file, and docker's stat
/// header of what it holds (the first entry).
fn archive_of(st: &State, ctr: &str, path: &str) -> ApiResult<(std::fs::File, String)> {
    let e = st.engine()?;
    let mut f = tempfile_in(&st.opts.layout.root)?;
    let r = e.with_container_root(ctr, |_, root| {
        let r = Root::open(root, ctr)?;
        let mut w = std::io::BufWriter::new(&mut f);
        r.copy_out_tar(path, false, &mut w)?;
        w.flush().map_err(oxcart_engine::error::io_err("archive"))?;
        Ok(())
    });
    match r {
        Ok(()) => {}
        Err(oxcart_engine::EngineError::Copy(c))
            if c.to_string().contains("No such file") || c.to_string().contains("not found") =>
        {
            return Err(ApiError::not_found(format!(
                "Could not find the file {path} in container {ctr}"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
    let stat = {
        let mut a = tar::Archive::new(&mut f);
        let mut entries = a.entries().map_err(|e| ApiError::internal(e.to_string()))?;
        let first = entries
            .next()
            .ok_or_else(|| {
                ApiError::not_found(format!("Could not find the file {path} in container {ctr}"))
            })?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let h = first.header();
        let name = std::path::Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        let mtime = h.mtime().unwrap_or(0) as i64;
        json!({
            "name": name, "size": h.size().unwrap_or(0),
            "mode": go_mode(h.mode().unwrap_or(0), h.entry_type()),
            "mtime": oxcart_jsonlog::Timestamp { secs: mtime, nanos: 0 }.to_string(),
            "linkTarget": h.link_name().ok().flatten().map(|l| l.to_string_lossy().into_owned()).unwrap_or_default(),
        })
    };
    f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((f, base64(stat.to_string().as_bytes())))
}

fn tempfile_in(dir: &std::path::Path) -> ApiResult<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .map_err(|e| ApiError::internal(format!("a temporary file in {}: {e}", dir.display())))
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Stream a file as the body, from the blocking pool.
fn file_body(mut f: std::fs::File) -> http::Body {
    let (tx, body) = http::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 || tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                break;
            }
        }
    });
    body
}

/// A request body as a blocking reader (for the engine's tar extraction).
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

fn body_reader(body: hyper::body::Incoming) -> BodyReader {
    use http_body_util::BodyExt;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(f) = body.frame().await {
            let msg = match f {
                Ok(f) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
                Err(e) => Err(e.to_string()),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    BodyReader {
        rx,
        cur: Bytes::new(),
    }
}

pub async fn archive(st: Arc<State>, id: String, r: Req) -> ApiResult {
    let path = r
        .query
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad("path is required"))?
        .to_string();
    match r.method {
        Method::PUT => {
            let owner = if r.query.bool("copyUIDGID") {
                Owner::Keep
            } else {
                Owner::Set(0, 0)
            };
            let mut reader = body_reader(r.req.into_body());
            blocking(move || {
                // The whole upload is spooled and its entries checked before anything
                // is written: a refused entry leaves the container untouched.
                let mut f = tempfile_in(&st.opts.layout.root)?;
                std::io::copy(&mut reader, &mut f)
                    .map_err(|e| ApiError::bad(format!("reading the archive: {e}")))?;
                f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
                check_entries(&mut f)?;
                f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
                let e = st.engine()?;
                let mut rd = std::io::BufReader::new(f);
                e.with_container_root(&id, |_, root| {
                    Ok(Root::open(root, &id)?.copy_in_tar(&mut rd, &path, owner)?)
                })?;
                e.emit_for(&id, "extract-to-dir");
                Ok(())
            })
            .await?;
            Ok(http::response(StatusCode::OK, "text/plain", http::empty()))
        }
        ref m => {
            let head = *m == Method::HEAD;
            let (f, stat) = blocking(move || {
                let r = archive_of(&st, &id, &path)?;
                // docker logs a GET's copy, not a HEAD's stat.
                if !head {
                    st.engine()?.emit_for(&id, "archive-path");
                }
                Ok(r)
            })
            .await?;
            let mut resp: Resp = http::response(
                StatusCode::OK,
                "application/x-tar",
                if head { http::empty() } else { file_body(f) },
            );
            if let Ok(v) = hyper::header::HeaderValue::from_str(&stat) {
                resp.headers_mut().insert("x-docker-container-path-stat", v);
            }
            Ok(resp)
        }
    }
}

/// Every entry of an uploaded archive stays below the destination: a `..` anywhere
/// in a name is refused, naming the entry (docker refuses breakouts too).
fn check_entries(f: &mut std::fs::File) -> ApiResult<()> {
    let mut a = tar::Archive::new(f);
    let entries = a
        .entries()
        .map_err(|e| ApiError::bad(format!("not a tar archive: {e}")))?;
    for en in entries {
        let en = en.map_err(|e| ApiError::bad(format!("not a tar archive: {e}")))?;
        let p = en
            .path()
            .map_err(|e| ApiError::bad(format!("archive entry name: {e}")))?
            .into_owned();
        if p.components().any(|c| c == std::path::Component::ParentDir) {
            return Err(ApiError::bad(format!(
                "archive entry {:?}: a path with '..' is refused (it would leave the destination)",
                p.display().to_string()
            )));
        }
    }
    Ok(())
}

pub async fn export(st: Arc<State>, id: String) -> ApiResult {
    let f = blocking(move || {
        let e = st.engine()?;
        let mut f = tempfile_in(&st.opts.layout.root)?;
        e.with_rootfs(&id, |_, root| {
            let mut w = std::io::BufWriter::new(&mut f);
            Root::open(root, &id)?.export(&mut w)?;
            w.flush().map_err(oxcart_engine::error::io_err("export"))?;
            Ok(())
        })?;
        e.emit_for(&id, "export");
        f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(f)
    })
    .await?;
    Ok(http::response(
        StatusCode::OK,
        "application/x-tar",
        file_body(f),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_is_standard() {
        assert_eq!(super::base64(b"hello"), "aGVsbG8=");
        assert_eq!(super::base64(b"hi"), "aGk=");
        assert_eq!(super::base64(b"abc"), "YWJj");
    }
}

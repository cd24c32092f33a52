//! `/containers/…`: create (docker's JSON onto the engine's create), list, inspect and
//! the state verbs. Attach, wait and logs (streams) are in attach.rs; archives below.

use crate::http::{self, parse_filters, ApiError, ApiResult};
use crate::router::{not_found_route, Req};
use crate::server::{blocking, State};
use hyper::{Method, StatusCode};
use oxcart_engine::create::CreateRequest;
use oxcart_engine::record::Record;
use oxcart_engine::start::StartOutcome;
use oxcart_engine::state::{Observed, Status};
use oxcart_engine::types::{Config, HostConfig};
use oxcart_engine::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn route(st: Arc<State>, r: Req) -> ApiResult {
    use Method as M;
    let id = r.seg(1).to_string();
    match (r.segs.len(), r.seg(2), &r.method) {
        (2, _, &M::POST) if id == "create" => create(st, r).await,
        (2, _, &M::GET) if id == "json" => list(st, r).await,
        (2, _, &M::POST) if id == "prune" => prune(st, r).await,
        (2, _, &M::DELETE) => remove(st, r).await,
        (3, "json", &M::GET) => inspect(st, id, r.query.bool("size")).await,
        (3, "start", &M::POST) => start(st, id).await,
        (3, "stop", &M::POST) => stop(st, id, r.query.int("t")?).await,
        (3, "restart", &M::POST) => restart(st, id, r.query.int("t")?).await,
        (3, "kill", &M::POST) => {
            kill(st, id, r.query.get("signal").unwrap_or("KILL").to_string()).await
        }
        (3, "pause", &M::POST) => simple(st, id, |e, id| e.pause(id).map(drop)).await,
        (3, "unpause", &M::POST) => simple(st, id, |e, id| e.unpause(id).map(drop)).await,
        (3, "rename", &M::POST) => {
            let name = r.query.get("name").unwrap_or("").to_string();
            simple(st, id, move |e, id| e.rename(id, &name).map(drop)).await
        }
        (3, "top", &M::GET) => top(st, id, r.query.get("ps_args").unwrap_or("").to_string()).await,
        (3, "resize", &M::POST) => resize(st, id, &r).await,
        (3, "update", &M::POST) => update(st, id, r).await,
        (3, "attach", &M::POST) => crate::attach::attach(st, id, r).await,
        (3, "wait", &M::POST) => crate::attach::wait(st, id, r).await,
        (3, "logs", &M::GET) => crate::attach::logs(st, id, r).await,
        (3, "exec", &M::POST) => crate::exec::create(st, id, r).await,
        (3, "archive", &M::GET) | (3, "archive", &M::HEAD) | (3, "archive", &M::PUT) => {
            crate::images::archive(st, id, r).await
        }
        (3, "export", &M::GET) => crate::images::export(st, id).await,
        (3, "stats", &M::GET) => stats(st, id, &r).await,
        _ => Err(not_found_route(&r)),
    }
}

/// docker's create body: the `Config` fields at the top level, and beside them
/// `HostConfig` and `NetworkingConfig`.
#[derive(Default)]
struct CreateBody {
    config: Config,
    host_config: HostConfig,
    networking_config: NetworkingConfig,
}

/// One part of a body, a wrong type named by its path (`HostConfig.Memory`).
fn from_value<T: serde::de::DeserializeOwned>(v: Value, prefix: &str) -> ApiResult<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, p) => p.to_string(),
            (false, ".") => prefix.to_string(),
            (false, p) => format!("{prefix}.{p}"),
        };
        ApiError::bad(format!(
            "invalid JSON body: field {field}: {}",
            e.into_inner()
        ))
    })
}

/// docker's `strslice.StrSlice` takes a string as a one-element list
/// (`"Cmd": "date"`).
fn str_slice(m: &mut serde_json::Map<String, Value>, k: &str) {
    if let Some(Value::String(s)) = m.get(k) {
        let s = s.clone();
        m.insert(k.to_string(), json!([s]));
    }
}

fn parse_create(b: &[u8]) -> ApiResult<CreateBody> {
    let mut v: Value = if b.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(b).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))?
    };
    strip_nulls(&mut v);
    let Value::Object(mut m) = v else {
        return Err(ApiError::bad("invalid JSON body: not an object"));
    };
    str_slice(&mut m, "Cmd");
    str_slice(&mut m, "Entrypoint");
    let host_config = match m.remove("HostConfig") {
        Some(h) => from_value(h, "HostConfig")?,
        None => HostConfig::default(),
    };
    let networking_config = match m.remove("NetworkingConfig") {
        Some(n) => from_value(n, "NetworkingConfig")?,
        None => NetworkingConfig::default(),
    };
    Ok(CreateBody {
        config: from_value(Value::Object(m), "")?,
        host_config,
        networking_config,
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkingConfig {
    endpoints_config: BTreeMap<String, EndpointSettings>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<IpamConfig>,
    aliases: Option<Vec<String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    ipv6_address: String,
}

/// Go's JSON decoder takes `null` as the zero value of any field; serde refuses it
/// for a list or a string. Nulls are dropped before parsing, which is the same.
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Parses a body as docker's Go decoder would take it: nulls as zero values; a wrong
/// type is a 400 naming the field.
pub fn parse_docker_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> ApiResult<T> {
    let mut v: Value = if b.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(b).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))?
    };
    strip_nulls(&mut v);
    let s = serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))?;
    http::parse_json(&s)
}

/// A network to set up after create (`""`: the first one, `NetworkMode`'s), with the
/// address and the DNS aliases asked for it.
struct ExtraNetwork {
    network: String,
    ip: Option<String>,
    aliases: Vec<String>,
}

/// What create does with a parsed body; shared with tests of the mapping.
fn create_request(
    name: Option<String>,
    body: CreateBody,
) -> ApiResult<(CreateRequest, Vec<ExtraNetwork>)> {
    let mut config = body.config;
    let mut hc = body.host_config;
    if config.image.is_empty() {
        return Err(ApiError::bad("Config.Image: an image is required"));
    }
    if hc.network_mode.is_empty() {
        hc.network_mode = "default".into();
    }
    if hc.restart_policy.name.is_empty() {
        hc.restart_policy.name = "no".into();
    }
    if hc.auto_remove && !matches!(hc.restart_policy.name.as_str(), "" | "no") {
        return Err(ApiError::bad(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    oxcart_engine::spec::apply_daemon_defaults(&mut hc);
    // The ports of the bindings are exposed, as docker's daemon does.
    for port in hc.port_bindings.keys() {
        config
            .exposed_ports
            .get_or_insert_with(Default::default)
            .entry(port.clone())
            .or_default();
    }
    let mut extra = Vec::new();
    let first = oxcart_engine::network::network_of_mode(&hc.network_mode).map(String::from);
    for (net, ep) in body.networking_config.endpoints_config {
        if ep
            .ipam_config
            .as_ref()
            .is_some_and(|i| !i.ipv6_address.is_empty())
        {
            return Err(ApiError::not_implemented(format!(
                "NetworkingConfig.EndpointsConfig.{net}.IPAMConfig.IPv6Address: IPv6 networks are not supported yet"
            )));
        }
        let ip = ep
            .ipam_config
            .map(|i| i.ipv4_address)
            .filter(|s| !s.is_empty());
        let aliases = ep.aliases.unwrap_or_default();
        let is_first = first.as_deref() == Some(net.as_str())
            || (first.is_none() && net == "bridge" && hc.network_mode == "default");
        let network = if is_first { String::new() } else { net };
        let e = ExtraNetwork {
            network,
            ip,
            aliases,
        };
        if is_first {
            extra.insert(0, e);
        } else {
            extra.push(e);
        }
    }
    config.attach_stdin = config.attach_stdin && config.open_stdin;
    Ok((
        CreateRequest {
            name,
            config,
            host_config: hc,
            // podman's own flag; docker's API has no field for it.
            health_on_failure: None,
        },
        extra,
    ))
}

async fn create(st: Arc<State>, r: Req) -> ApiResult {
    let name = r
        .query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(String::from);
    let b = http::read_body(r.req.into_body(), http::MAX_JSON_BODY).await?;
    let body = parse_create(&b)?;
    let (req, extra) = create_request(name, body)?;
    let id = blocking(move || {
        let mut e = st.engine()?;
        let rec = e.create(req)?;
        if !extra.is_empty() {
            if let Err(err) = connect_extra(&e, &rec, &extra) {
                let _ = e.remove(&rec.id, true);
                return Err(err);
            }
        }
        Ok(rec.id)
    })
    .await?;
    Ok(http::json_status(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": []}),
    ))
}

/// Further networks of `NetworkingConfig` (connected before the first start, as the
/// CLI's `run --network a --network b`), and the address and aliases asked on the
/// first (`--ip`, `--network-alias`).
fn connect_extra(e: &Engine, rec: &Record, extra: &[ExtraNetwork]) -> ApiResult<()> {
    let mut nets = oxcart_engine::network::Networks::open(&e.layout)?;
    let mode = &rec.host_config.network_mode;
    for x in extra {
        if x.network.is_empty() {
            if let Some(ip) = &x.ip {
                nets.request_ip(&rec.id, mode, ip)?;
            }
            if oxcart_engine::network::network_of_mode(mode)
                .is_some_and(|n| n != oxcart_engine::network::DEFAULT_NETWORK)
            {
                nets.add_aliases(&rec.id, mode, &x.aliases)?;
            }
            continue;
        }
        nets.connect(&rec.id, mode, &x.network, &x.aliases)?;
        if let Some(ip) = &x.ip {
            nets.request_ip(&rec.id, &x.network, ip)?;
        }
    }
    Ok(())
}

/// docker's `types.Container` (a `GET /containers/json` row).
fn summary(
    e: &Engine,
    nets: Option<&oxcart_engine::network::Networks>,
    rec: &Record,
    o: &Observed,
    now: i64,
    size: bool,
) -> Value {
    let ports = nets.and_then(|n| n.ports(&rec.id).ok()).unwrap_or_default();
    let mut port_list = Vec::new();
    for b in &ports {
        port_list.push(json!({"IP": b.host_ip.to_string(), "PrivatePort": b.ctr_port, "PublicPort": b.host_port, "Type": b.proto}));
    }
    for k in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
        let (p, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        let Ok(p) = p.parse::<u16>() else { continue };
        if !ports.iter().any(|b| b.ctr_port == p && b.proto == proto) {
            port_list.push(json!({"PrivatePort": p, "Type": proto}));
        }
    }
    let eps = nets
        .and_then(|n| n.endpoints(&rec.id).ok())
        .unwrap_or_default();
    let mut nets = serde_json::Map::new();
    for ep in &eps {
        nets.insert(
            ep.network.name.clone(),
            json!({
                "NetworkID": ep.network.id, "EndpointID": "", "Gateway": ep.network.gateway,
                "IPAddress": ep.ip.to_string(), "IPPrefixLen": ep.prefix, "MacAddress": ep.mac,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "IPAMConfig": null, "Links": null, "Aliases": null, "DriverOpts": null,
            }),
        );
    }
    let mode = match rec.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    };
    if nets.is_empty() && !mode.starts_with("container:") {
        nets.insert(mode.to_string(), json!({"NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}));
    }
    let created = oxcart_engine::time::parse(&rec.created)
        .map(|(s, _)| s)
        .unwrap_or(0);
    let mut v = json!({
        "Id": rec.id,
        "Names": [format!("/{}", rec.name)],
        "Image": rec.config.image,
        "ImageID": rec.image_id,
        "Command": oxcart_engine::listing::command_line(rec),
        "Created": created,
        "Ports": port_list,
        "Labels": rec.config.labels,
        "State": o.status.as_str(),
        "Status": oxcart_engine::listing::status_text(o, now),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": nets},
        "Mounts": oxcart_engine::inspect::mounts_json(rec),
    });
    if size {
        let rw = oxcart_engine::engine::dir_size(&e.ctr_dir(&rec.id).join("upper"));
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw);
    }
    v
}

fn filter_list(q: &crate::http::Query) -> ApiResult<oxcart_engine::listing::Filters> {
    let mut flat = Vec::new();
    for (k, vals) in parse_filters(q)? {
        for v in vals {
            flat.push(format!("{k}={v}"));
        }
    }
    Ok(oxcart_engine::listing::Filters::parse(&flat)?)
}

async fn list(st: Arc<State>, r: Req) -> ApiResult {
    let filters = filter_list(&r.query)?;
    let all = r.query.bool("all");
    let limit = r.query.int("limit")?.filter(|n| *n > 0);
    let size = r.query.bool("size");
    let rows = blocking(move || {
        let e = st.engine()?;
        let now = oxcart_engine::time::parse(&oxcart_engine::time::now())
            .map(|(s, _)| s)
            .unwrap_or(0);
        let all = all || limit.is_some() || filters.has("status") || filters.has("exited");
        let mut recs = e.list()?;
        if let Some(n) = limit {
            recs.truncate(n as usize);
        }
        // One handle on the network database for every row (opening it per
        // container was most of a listing's time).
        let nets = oxcart_engine::network::Networks::open(&e.layout).ok();
        let _snap = nets.as_ref().and_then(|n| n.read_snapshot().ok());
        let mut rows = Vec::new();
        for rec in &recs {
            let o = e.observe(rec)?;
            if (!all && !o.status.is_running()) || !filters.matches(&e, rec, &o) {
                continue;
            }
            rows.push(summary(&e, nets.as_ref(), rec, &o, now, size));
        }
        Ok(rows)
    })
    .await?;
    Ok(http::json(&rows))
}

async fn inspect(st: Arc<State>, id: String, size: bool) -> ApiResult {
    let v = blocking(move || {
        let e = st.engine()?;
        let rec = e.find(&id)?;
        let (mut v, _) = e.inspect(&rec)?;
        if size {
            let rw = oxcart_engine::engine::dir_size(&e.ctr_dir(&rec.id).join("upper"));
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw);
        }
        Ok(v)
    })
    .await?;
    Ok(http::json(&v))
}

/// Start, connecting every attach request that waits for this container to the
/// monitor before the runtime's `start` releases it. True if it started now.
pub fn start_now(st: &State, e: &mut Engine, key: &str) -> ApiResult<bool> {
    match e.start_prepare(key)? {
        StartOutcome::Starting(s) => {
            for w in st.take_waiters(&s.record.id) {
                if w.is_closed() {
                    continue;
                }
                if let Ok(c) = oxcart_engine::attach::connect(&s.ctr_dir()) {
                    let _ = w.send(c);
                }
            }
            s.finish()?;
            Ok(true)
        }
        StartOutcome::AlreadyRunning(_) => Ok(false),
    }
}

async fn start(st: Arc<State>, id: String) -> ApiResult {
    let started = blocking(move || {
        let mut e = st.engine()?;
        let r = start_now(&st, &mut e, &id);
        if r.is_err() {
            // docker's --rm removes a container whose start failed.
            if let Ok(rec) = e.find(&id) {
                if rec.host_config.auto_remove {
                    let _ = e.remove(&rec.id, true);
                    let _ = e.remove_anonymous_volumes(&rec);
                }
            }
        }
        r
    })
    .await?;
    Ok(if started {
        http::no_content()
    } else {
        http::response(StatusCode::NOT_MODIFIED, "text/plain", http::empty())
    })
}

async fn stop(st: Arc<State>, id: String, t: Option<i64>) -> ApiResult {
    let stopped = blocking(move || {
        let mut e = st.engine()?;
        let rec = e.find(&id)?;
        if !e.observe(&rec)?.status.is_running() {
            return Ok(false);
        }
        e.stop(&rec.id, t)?;
        Ok(true)
    })
    .await?;
    Ok(if stopped {
        http::no_content()
    } else {
        http::response(StatusCode::NOT_MODIFIED, "text/plain", http::empty())
    })
}

async fn restart(st: Arc<State>, id: String, t: Option<i64>) -> ApiResult {
    blocking(move || {
        let mut e = st.engine()?;
        let rec = e.find(&id)?;
        e.stop(&rec.id, t)?;
        start_now(&st, &mut e, &rec.id)?;
        Ok(())
    })
    .await?;
    Ok(http::no_content())
}

async fn kill(st: Arc<State>, id: String, signal: String) -> ApiResult {
    blocking(move || {
        let mut e = st.engine()?;
        let rec = e.find(&id)?;
        match e.kill(&rec.id, &signal) {
            // docker: "Cannot kill container: ID: Container ID is not running".
            Err(oxcart_engine::EngineError::NotRunning(_)) => Err(ApiError::conflict(format!(
                "Cannot kill container: {id}: Container {} is not running",
                rec.id
            ))),
            r => r.map(drop).map_err(Into::into),
        }
    })
    .await?;
    Ok(http::no_content())
}

async fn simple(
    st: Arc<State>,
    id: String,
    f: impl FnOnce(&mut Engine, &str) -> oxcart_engine::Result<()> + Send + 'static,
) -> ApiResult {
    blocking(move || {
        let mut e = st.engine()?;
        f(&mut e, &id)?;
        Ok(())
    })
    .await?;
    Ok(http::no_content())
}

/// docker's `UpdateConfig`: the resources `update` changes and the restart policy.
/// Zero (or absent) leaves a value as it is, as docker's daemon reads it (its CLI
/// sends every field, zero for the flags not given).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    memory: i64,
    memory_reservation: i64,
    memory_swap: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    cpu_period: i64,
    cpu_quota: i64,
    cpuset_cpus: String,
    cpuset_mems: String,
    pids_limit: Option<i64>,
    blkio_weight: u16,
    restart_policy: oxcart_engine::types::RestartPolicy,
}

async fn update(st: Arc<State>, id: String, r: Req) -> ApiResult {
    let b = http::read_body(r.req.into_body(), http::MAX_JSON_BODY).await?;
    let u: UpdateBody = parse_docker_json(&b)?;
    let set = |v: i64| (v != 0).then_some(v);
    let text = |v: String| (!v.is_empty()).then_some(v);
    let req = oxcart_engine::update::UpdateRequest {
        memory: set(u.memory),
        memory_reservation: set(u.memory_reservation),
        memory_swap: set(u.memory_swap),
        nano_cpus: set(u.nano_cpus),
        cpu_shares: set(u.cpu_shares),
        cpu_period: set(u.cpu_period),
        cpu_quota: set(u.cpu_quota),
        cpuset_cpus: text(u.cpuset_cpus),
        cpuset_mems: text(u.cpuset_mems),
        pids_limit: u.pids_limit.filter(|p| *p != 0),
        blkio_weight: (u.blkio_weight != 0).then_some(u.blkio_weight),
    };
    let restart = Some(u.restart_policy).filter(|p| !p.name.is_empty());
    blocking(move || {
        let mut e = st.engine()?;
        if !req.is_empty() {
            e.update(&id, &req)?;
        }
        if let Some(p) = &restart {
            e.update_restart(&id, p)?;
        }
        if req.is_empty() && restart.is_none() {
            // Nothing to change: docker answers 200 all the same; the container
            // must exist.
            e.find(&id)?;
        }
        Ok(())
    })
    .await?;
    Ok(http::json(&json!({"Warnings": null})))
}

async fn remove(st: Arc<State>, r: Req) -> ApiResult {
    let id = r.seg(1).to_string();
    let force = r.query.bool("force");
    let volumes = r.query.bool("v");
    if r.query.bool("link") {
        return Err(ApiError::not_implemented(
            "links are not supported (DELETE ?link=1)",
        ));
    }
    blocking(move || {
        let mut e = st.engine()?;
        let rec = e.remove(&id, force)?;
        if volumes {
            e.remove_anonymous_volumes(&rec)?;
        }
        Ok(())
    })
    .await?;
    Ok(http::no_content())
}

async fn top(st: Arc<State>, id: String, ps_args: String) -> ApiResult {
    let (titles, rows) = blocking(move || {
        let e = st.engine()?;
        let args: Vec<String> = ps_args.split_whitespace().map(String::from).collect();
        Ok(e.top(&id, &args)?)
    })
    .await?;
    Ok(http::json(&json!({"Titles": titles, "Processes": rows})))
}

/// `h` and `w` of a resize request.
pub fn resize_dims(r: &Req) -> ApiResult<(u16, u16)> {
    let dim = |k: &str| -> ApiResult<u16> {
        let v = r.query.int(k)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::bad(format!("invalid {k}: {v}")))
    };
    Ok((dim("h")?, dim("w")?))
}

async fn resize(st: Arc<State>, id: String, r: &Req) -> ApiResult {
    let (h, w) = resize_dims(r)?;
    blocking(move || {
        let e = st.engine()?;
        let rec = e.find(&id)?;
        let o = e.observe(&rec)?;
        if !o.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let c = oxcart_engine::attach::connect(&e.ctr_dir(&rec.id))
            .map_err(|err| ApiError::internal(format!("resize: {err}")))?;
        c.resize(h, w)
            .map_err(|err| ApiError::internal(format!("resize: {err}")))?;
        let (hs, ws) = (h.to_string(), w.to_string());
        e.emit_ctr(&rec, "resize", &[("height", &hs), ("width", &ws)]);
        Ok(())
    })
    .await?;
    Ok(http::response(StatusCode::OK, "text/plain", http::empty()))
}

async fn prune(st: Arc<State>, r: Req) -> ApiResult {
    let filters = parse_filters(&r.query)?;
    let labels =
        oxcart_engine::filters::LabelFilter::for_prune(&crate::http::filter_pairs(&filters))?;
    let (ids, bytes) = blocking(move || {
        let mut e = st.engine()?;
        Ok(e.prune(|rec| labels.matches(&rec.config.labels))?)
    })
    .await?;
    Ok(http::json(
        &json!({"ContainersDeleted": ids, "SpaceReclaimed": bytes}),
    ))
}

/// docker's stats JSON (`types.StatsJSON`) of a sample and the one before it.
fn stats_json(
    rec: &Record,
    pre: &oxcart_engine::stats::Sample,
    cur: &oxcart_engine::stats::Sample,
) -> Value {
    let t = |ns: i64| {
        if ns <= 0 {
            oxcart_engine::time::ZERO.to_string()
        } else {
            oxcart_jsonlog::Timestamp {
                secs: ns.div_euclid(1_000_000_000),
                nanos: ns.rem_euclid(1_000_000_000) as u32,
            }
            .to_string()
        }
    };
    let cpu = |s: &oxcart_engine::stats::Sample| {
        json!({
            "cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": s.system_ns, "online_cpus": s.online_cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        })
    };
    json!({
        "read": t(cur.at_ns), "preread": t(pre.at_ns),
        "pids_stats": {"current": cur.pids},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": cur.blk_read},
            {"major": 0, "minor": 0, "op": "write", "value": cur.blk_write},
        ]},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": cpu(cur), "precpu_stats": cpu(pre),
        // The engine's usage already has the inactive file pages out (what docker's
        // CLI subtracts), so `stats` is empty.
        "memory_stats": {"usage": cur.mem_usage, "limit": cur.mem_limit, "stats": {}},
        "name": format!("/{}", rec.name), "id": rec.id,
        "networks": {"eth0": {"rx_bytes": cur.net_rx, "tx_bytes": cur.net_tx,
            "rx_packets": 0, "tx_packets": 0, "rx_errors": 0, "tx_errors": 0,
            "rx_dropped": 0, "tx_dropped": 0}},
    })
}

/// `GET /containers/{id}/stats[?stream=0]`: a sample a second (docker's pace), each
/// with the one before it; `stream=0` answers one, after a second's sampling.
async fn stats(st: Arc<State>, id: String, r: &Req) -> ApiResult {
    let stream = r.query.bool_or("stream", true);
    let one_shot = r.query.bool("one-shot");
    let st2 = st.clone();
    let rec = blocking(move || Ok(st2.engine()?.find(&id)?)).await?;
    let (tx, body) = http::channel(4);
    tokio::task::spawn_blocking(move || {
        let Ok(e) = st.engine() else { return };
        let Ok(mut host) = oxcart_engine::stats::StatsHost::new() else {
            return;
        };
        let take = |host: &oxcart_engine::stats::StatsHost| {
            e.observe(&rec)
                .ok()
                .and_then(|o| oxcart_engine::stats::sample(host, &rec, &o).ok())
                .unwrap_or_default()
        };
        let mut pre = oxcart_engine::stats::Sample::default();
        if !stream && !one_shot {
            pre = take(&host);
            std::thread::sleep(std::time::Duration::from_secs(1));
            host.refresh();
        }
        loop {
            let cur = take(&host);
            let line = format!("{}\n", stats_json(&rec, &pre, &cur));
            if tx.blocking_send(bytes::Bytes::from(line)).is_err() || !stream {
                return;
            }
            pre = cur;
            std::thread::sleep(std::time::Duration::from_secs(1));
            host.refresh();
        }
    });
    Ok(http::response(StatusCode::OK, "application/json", body))
}

/// Whether a container is running, and its record (for the stream endpoints).
pub fn status_of(e: &Engine, key: &str) -> ApiResult<(Record, Observed)> {
    let rec = e.find(key)?;
    let o = e.observe(&rec)?;
    Ok((rec, o))
}

pub fn is_running(o: &Observed) -> bool {
    matches!(o.status, Status::Running | Status::Restarting) && o.monitor_alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_bodies_with_nulls_parse() {
        let b = br#"{"Image":"x","Cmd":null,"Env":null,"HostConfig":{"Binds":null,"Dns":null,"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":""}]},"NetworkMode":"proj_default"},"NetworkingConfig":{"EndpointsConfig":{"proj_default":{"Aliases":["web"],"IPAMConfig":null}}}}"#;
        let body = parse_create(b).expect("parses");
        let (req, extra) = create_request(Some("n".into()), body).expect("maps");
        assert!(req
            .config
            .exposed_ports
            .expect("exposed")
            .contains_key("80/tcp"));
        assert_eq!(extra.len(), 1, "the first network is NetworkMode");
        assert!(extra[0].network.is_empty());
        assert_eq!(extra[0].aliases, vec!["web".to_string()]);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse_create(br#"{"Image":"x","HostConfig":{"Memory":"lots"}}"#)
            .err()
            .expect("refused");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("HostConfig.Memory"), "{e}");
        let e = parse_create(br#"{"Image":"x","Cmd":3}"#)
            .err()
            .expect("refused");
        assert!(e.message.contains("field Cmd"), "{e}");
        assert!(parse_create(b"{nope").is_err());
        assert!(parse_create(b"[1]").is_err());
        let c = parse_create(br#"{"Image":"x","Cmd":"date"}"#).expect("a string is a list");
        assert_eq!(c.config.cmd, Some(vec!["date".to_string()]));
    }
}

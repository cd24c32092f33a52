//! `/networks/…` and `/volumes/…` over the engine's networks and volumes.

use crate::http::{self, filter_pairs as pairs, parse_filters, ApiError, ApiResult};
use crate::router::{not_found_route, Req};
use crate::server::{blocking, State};
use hyper::{Method, StatusCode};
use oxcart_engine::filters::{LabelFilter, VolumeFilter};
use oxcart_engine::network::{CreateNetwork, Networks, DEFAULT_NETWORK};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn route(st: Arc<State>, r: Req) -> ApiResult {
    match r.seg(0) {
        "networks" => networks(st, r).await,
        _ => volumes(st, r).await,
    }
}

/// The networks, with docker's `bridge` recorded (docker always lists it).
fn open(st: &State) -> ApiResult<(crate::server::PooledEngine, Networks)> {
    let e = st.engine()?;
    let mut n = Networks::open(&e.layout)?;
    n.default_network()?;
    Ok((e, n))
}

fn net_json(
    e: &oxcart_engine::Engine,
    nets: &Networks,
    n: &oxcart_engine::network::Network,
) -> ApiResult<Value> {
    let names = |id: &str| e.find(id).ok().map(|r| r.name);
    Ok(nets.inspect_json(n, &names)?)
}

/// docker's network filters: name (substring), id (prefix), label (all of them),
/// driver, type.
fn net_matches(
    f: &BTreeMap<String, Vec<String>>,
    n: &oxcart_engine::network::Network,
    v: &Value,
) -> bool {
    let mut labels = LabelFilter::default();
    for v in f.get("label").into_iter().flatten() {
        labels.take("label", v, false);
    }
    labels.matches(&n.labels)
        && f.iter().filter(|(k, _)| *k != "label").all(|(k, vals)| {
            vals.is_empty()
                || vals.iter().any(|want| match k.as_str() {
                    "name" => v["Name"]
                        .as_str()
                        .is_some_and(|n| n.contains(want.as_str())),
                    "id" => v["Id"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(want.as_str())),
                    "driver" => v["Driver"] == want.as_str(),
                    "scope" => v["Scope"] == want.as_str(),
                    "type" => (want == "builtin") == (v["Name"] == DEFAULT_NETWORK),
                    "dangling" => true,
                    _ => false,
                })
        })
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct NetCreate {
    name: String,
    driver: String,
    internal: bool,
    labels: BTreeMap<String, String>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: bool,
    check_duplicate: bool,
    attachable: bool,
    options: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    driver: String,
    config: Vec<IpamConfig>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    gateway: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Connect {
    container: String,
    endpoint_config: Option<Value>,
    force: bool,
}

async fn networks(st: Arc<State>, r: Req) -> ApiResult {
    use Method as M;
    let key = r.seg(1).to_string();
    match (r.segs.len(), r.seg(2), &r.method) {
        (1, _, &M::GET) => {
            let f = parse_filters(&r.query)?;
            let v = blocking(move || {
                let (e, nets) = open(&st)?;
                let mut out = Vec::new();
                for n in nets.list()? {
                    let v = net_json(&e, &nets, &n)?;
                    if net_matches(&f, &n, &v) {
                        out.push(v);
                    }
                }
                Ok(out)
            })
            .await?;
            Ok(http::json(&v))
        }
        (2, _, &M::POST) if key == "create" => {
            let b = http::read_body(r.req.into_body(), http::MAX_JSON_BODY).await?;
            let c: NetCreate = crate::containers::parse_docker_json(&b)?;
            if c.enable_ipv6 {
                return Err(ApiError::not_implemented(
                    "EnableIPv6: IPv6 networks are not supported yet",
                ));
            }
            if c.ipam
                .as_ref()
                .is_some_and(|i| !matches!(i.driver.as_str(), "" | "default"))
            {
                return Err(ApiError::not_implemented(
                    "IPAM.Driver: only the default IPAM driver is supported",
                ));
            }
            if let Some(k) = c.options.keys().next() {
                return Err(ApiError::not_implemented(format!(
                    "Options: network driver option {k} is not supported"
                )));
            }
            let _ = (c.check_duplicate, c.attachable);
            let cfg = c
                .ipam
                .and_then(|i| i.config.into_iter().next())
                .unwrap_or_default();
            let nonempty = |s: String| (!s.is_empty()).then_some(s);
            let id = blocking(move || {
                let (e, mut nets) = open(&st)?;
                let n = e.create_network(
                    &mut nets,
                    CreateNetwork {
                        name: c.name,
                        driver: nonempty(c.driver),
                        subnet: nonempty(cfg.subnet),
                        gateway: nonempty(cfg.gateway),
                        ip_range: nonempty(cfg.ip_range),
                        internal: c.internal,
                        labels: c.labels,
                    },
                )?;
                Ok(n.id)
            })
            .await?;
            Ok(http::json_status(
                StatusCode::CREATED,
                &json!({"Id": id, "Warning": ""}),
            ))
        }
        (2, _, &M::POST) if key == "prune" => {
            let f = parse_filters(&r.query)?;
            let gone = blocking(move || {
                let (e, mut nets) = open(&st)?;
                let labels = LabelFilter::for_prune(&pairs(&f))?;
                Ok(e.prune_networks(&mut nets, &|n| labels.matches(&n.labels))?)
            })
            .await?;
            Ok(http::json(&json!({"NetworksDeleted": gone})))
        }
        (2, _, &M::GET) => {
            let v = blocking(move || {
                let (e, nets) = open(&st)?;
                let n = nets.find(&key)?;
                net_json(&e, &nets, &n)
            })
            .await?;
            Ok(http::json(&v))
        }
        (2, _, &M::DELETE) => {
            blocking(move || {
                let (e, mut nets) = open(&st)?;
                e.remove_network(&mut nets, &key)?;
                Ok(())
            })
            .await?;
            Ok(http::no_content())
        }
        (3, verb @ ("connect" | "disconnect"), &M::POST) => {
            let verb = verb.to_string();
            let b = http::read_body(r.req.into_body(), http::MAX_JSON_BODY).await?;
            let c: Connect = crate::containers::parse_docker_json(&b)?;
            let _ = c.force;
            // docker's EndpointConfig: the DNS aliases (compose sends its service
            // names); an address is not taken here yet.
            let ec = c.endpoint_config.unwrap_or(Value::Null);
            if ec["IPAMConfig"]["IPv4Address"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
            {
                return Err(ApiError::not_implemented(
                    "EndpointConfig.IPAMConfig.IPv4Address: a chosen address on connect is not supported yet",
                ));
            }
            let aliases: Vec<String> = ec["Aliases"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            blocking(move || {
                let (mut e, mut nets) = open(&st)?;
                let mut rec = e.find(&c.container)?;
                let running = e.observe(&rec)?.status.is_running();
                let mode = rec.host_config.network_mode.clone();
                let net = nets.find(&key)?;
                let primary = oxcart_engine::network::network_of_mode(&mode)
                    .is_some_and(|m| m == net.name || m == net.id);
                // compose disconnects a created container from its first network and
                // connects it again (to set aliases): before a start that is the
                // container's NetworkMode changing, which the record can say.
                if !running && verb == "disconnect" && primary {
                    rec.host_config.network_mode = "none".into();
                    e.save(&rec)?;
                    return Ok(());
                }
                if !running && verb == "connect" && mode == "none" {
                    rec.host_config.network_mode = net.name.clone();
                    e.save(&rec)?;
                    if net.name != DEFAULT_NETWORK {
                        nets.add_aliases(&rec.id, &net.name, &aliases)?;
                    }
                    return Ok(());
                }
                if verb == "connect" {
                    e.connect_network(&mut nets, &rec, &key, &aliases)?;
                } else {
                    e.disconnect_network(&mut nets, &rec, &key)?;
                }
                Ok(())
            })
            .await?;
            Ok(http::response(StatusCode::OK, "text/plain", http::empty()))
        }
        _ => Err(not_found_route(&r)),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct VolCreate {
    name: String,
    driver: String,
    driver_opts: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

async fn volumes(st: Arc<State>, r: Req) -> ApiResult {
    use Method as M;
    let name = r.seg(1).to_string();
    match (r.segs.len(), &r.method) {
        (1, &M::GET) => {
            let f = VolumeFilter::parse(&pairs(&parse_filters(&r.query)?), false)?;
            let v = blocking(move || {
                let e = st.engine()?;
                let users = e.volume_users()?;
                let list: Vec<_> = e
                    .volume_list()?
                    .into_iter()
                    .filter(|v| f.matches(v, &users))
                    .collect();
                Ok(list)
            })
            .await?;
            Ok(http::json(&json!({"Volumes": v, "Warnings": []})))
        }
        (2, &M::POST) if name == "create" => {
            let b = http::read_body(r.req.into_body(), http::MAX_JSON_BODY).await?;
            let c: VolCreate = crate::containers::parse_docker_json(&b)?;
            let v = blocking(move || {
                let mut e = st.engine()?;
                Ok(e.volume_create(oxcart_engine::volumes::VolumeCreate {
                    name: (!c.name.is_empty()).then_some(c.name),
                    driver: c.driver,
                    labels: c.labels,
                    options: c.driver_opts,
                })?)
            })
            .await?;
            Ok(http::json_status(StatusCode::CREATED, &v))
        }
        (2, &M::POST) if name == "prune" => {
            let mut f = parse_filters(&r.query)?;
            // API 1.42's `all` filter (the CLI's `volume prune -a`).
            let all = f
                .remove("all")
                .is_some_and(|a| a.iter().any(|x| x == "true" || x == "1"));
            let vf = VolumeFilter::parse(&pairs(&f), true)?;
            let (gone, bytes) = blocking(move || {
                let mut e = st.engine()?;
                let none = std::collections::HashMap::new();
                Ok(e.volume_prune(all, |v| vf.matches(v, &none))?)
            })
            .await?;
            Ok(http::json(
                &json!({"VolumesDeleted": gone, "SpaceReclaimed": bytes}),
            ))
        }
        (2, &M::GET) => {
            let v = blocking(move || Ok(st.engine()?.volume_inspect(&name)?)).await?;
            Ok(http::json(&v))
        }
        (2, &M::DELETE) => {
            let force = r.query.bool("force");
            blocking(move || Ok(st.engine()?.volume_remove(&name, force)?)).await?;
            Ok(http::no_content())
        }
        _ => Err(not_found_route(&r)),
    }
}

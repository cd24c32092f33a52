//! Routing: `/v1.NN/` prefixes and bare paths, version checks, and docker's headers on
//! every answer. Handlers live in system.rs, containers.rs, exec.rs, images.rs and
//! objects.rs (networks, volumes).

use crate::http::{ApiError, ApiResult, Query, Resp};
use crate::server::State;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use std::sync::Arc;

/// A request as handlers see it: method, path segments after the version, query.
pub struct Req {
    pub method: Method,
    pub segs: Vec<String>,
    pub query: Query,
    pub req: Request<Incoming>,
}

impl Req {
    pub fn seg(&self, i: usize) -> &str {
        self.segs.get(i).map(String::as_str).unwrap_or("")
    }
    pub fn wants_upgrade(&self) -> bool {
        self.req.headers().get(hyper::header::UPGRADE).is_some()
    }
}

/// `(major, minor)` of a `1.NN` version string.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Splits `/v1.41/containers/json` into the version and the rest.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let v = &rest[..end];
        if parse_version(v).is_some() {
            return (Some(v), &rest[end..]);
        }
    }
    (None, path)
}

/// docker's check of the requested version (middleware/version.go).
fn check_version(v: Option<&str>) -> ApiResult<()> {
    let Some(v) = v else { return Ok(()) };
    let (Some(want), Some(max), Some(min)) = (
        parse_version(v),
        parse_version(crate::API_VERSION),
        parse_version(crate::MIN_API_VERSION),
    ) else {
        return Err(ApiError::bad(format!("invalid API version {v:?}")));
    };
    if want > max {
        return Err(ApiError::bad(format!(
            "client version {v} is too new. Maximum supported API version is {}",
            crate::API_VERSION
        )));
    }
    if want < min {
        return Err(ApiError::bad(format!(
            "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            crate::MIN_API_VERSION
        )));
    }
    Ok(())
}

fn percent_decode_path(s: &str) -> String {
    // Query decoding without '+' (a '+' in a path is itself).
    crate::http::Query::parse(Some(&format!("x={}", s.replace('+', "%2B"))))
        .get("x")
        .unwrap_or("")
        .to_string()
}

pub async fn route(st: Arc<State>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let (version, rest) = split_version(&path);
    let mut resp = match check_version(version) {
        Err(e) => e.into_response(),
        Ok(()) => {
            let segs = rest
                .split('/')
                .filter(|s| !s.is_empty())
                .map(percent_decode_path)
                .collect();
            let r = Req {
                method: req.method().clone(),
                segs,
                query: Query::parse(req.uri().query()),
                req,
            };
            match dispatch(st, r).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
    };
    let h = resp.headers_mut();
    for (k, v) in [
        ("api-version", crate::API_VERSION),
        ("docker-experimental", "false"),
        ("ostype", "linux"),
        (
            "server",
            concat!("oxcart/", env!("CARGO_PKG_VERSION"), " (linux)"),
        ),
    ] {
        h.insert(k, hyper::header::HeaderValue::from_static(v));
    }
    resp
}

async fn dispatch(st: Arc<State>, r: Req) -> ApiResult {
    use Method as M;
    let m = r.method.clone();
    let segs: Vec<&str> = r.segs.iter().map(String::as_str).collect();
    match (segs.first().copied().unwrap_or(""), &m) {
        ("_ping", &M::GET) | ("_ping", &M::HEAD) => Ok(crate::system::ping(m == M::HEAD)),
        ("version", &M::GET) => crate::system::version().await,
        ("info", &M::GET) => crate::system::info(st).await,
        ("events", &M::GET) => crate::system::events(st, &r),
        ("system", _) => crate::system::system(st, r).await,
        ("containers", _) => crate::containers::route(st, r).await,
        ("exec", _) => crate::exec::route(st, r).await,
        ("images", _) => crate::images::route(st, r).await,
        ("networks", _) | ("volumes", _) => crate::objects::route(st, r).await,
        // No builder, so no build cache: `system prune` asks to prune it anyway.
        ("build", &M::POST) if r.seg(1) == "prune" => Ok(crate::http::json(
            &serde_json::json!({"CachesDeleted": [], "SpaceReclaimed": 0}),
        )),
        ("auth", &M::POST) => crate::auth::login(st, r).await,
        _ => Err(not_found_route(&r)),
    }
}

/// docker's answer for a path it has no route for.
pub fn not_found_route(r: &Req) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {} /{}", r.method, r.segs.join("/")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_split_and_checked() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(
            split_version("/containers/json"),
            (None, "/containers/json")
        );
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
        assert_eq!(split_version("/v1.24"), (Some("1.24"), ""));
        assert!(check_version(Some("1.41")).is_ok());
        assert!(check_version(Some("1.24")).is_ok());
        let e = check_version(Some("1.45")).expect_err("too new");
        assert!(e.message.contains("too new"), "{e}");
        assert!(check_version(Some("1.12"))
            .expect_err("old")
            .message
            .contains("too old"));
    }
}

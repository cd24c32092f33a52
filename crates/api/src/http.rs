//! The HTTP edge: response bodies (whole or streamed from a channel), docker's error
//! shape, query values as docker's `httputils` reads them, and bounded request bodies.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

pub type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

/// The largest JSON body a request may carry (create configs are a few KiB; docker's
/// own daemon reads them whole). Archives (`cp`, `load`) stream and are not bound by it.
pub const MAX_JSON_BODY: usize = 4 << 20;

/// An API error: docker's `{"message": …}` with its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    /// A feature this engine does not have (yet), named.
    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, message)
    }

    pub fn into_response(self) -> Resp {
        let body = serde_json::json!({ "message": self.message });
        json_status(self.status, &body)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

pub type ApiResult<T = Resp> = Result<T, ApiError>;

/// An engine error with docker's status code for it (errdefs: not found 404,
/// conflict 409, invalid parameter 400, not implemented 501, the rest 500).
impl From<oxcart_engine::EngineError> for ApiError {
    fn from(e: oxcart_engine::EngineError) -> ApiError {
        use oxcart_engine::EngineError as E;
        let msg = e.to_string();
        let status = match &e {
            E::NoSuchContainer(_) => StatusCode::NOT_FOUND,
            E::Invalid(m) if m.starts_with("No such image") => StatusCode::NOT_FOUND,
            E::Image(oxcart_image::Error::NotFound(_)) => StatusCode::NOT_FOUND,
            E::NameInUse { .. }
            | E::NotRunning(_)
            | E::Paused(_)
            | E::NotPaused(_)
            | E::CannotRemove { .. }
            | E::WrongState { .. } => StatusCode::CONFLICT,
            E::Ambiguous(_)
            | E::InvalidName(_)
            | E::Invalid(_)
            | E::CommandNotFound(_)
            | E::CommandCannotRun(_)
            | E::Spec(_) => StatusCode::BAD_REQUEST,
            E::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            E::Volume(v) => volume_status(v),
            E::Copy(c) => match c {
                oxcart_engine::copy::CopyError::NoSuchPath { .. }
                | oxcart_engine::copy::CopyError::NoSuchHostPath(_) => StatusCode::NOT_FOUND,
                oxcart_engine::copy::CopyError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, msg)
    }
}

fn volume_status(v: &oxcart_engine::volumes::VolumeError) -> StatusCode {
    let m = v.to_string();
    if m.contains("no such volume") || m.contains("No such volume") {
        StatusCode::NOT_FOUND
    } else if m.contains("in use") {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    }
}

impl From<oxcart_engine::network::NetworkError> for ApiError {
    fn from(e: oxcart_engine::network::NetworkError) -> ApiError {
        use oxcart_engine::network::NetworkError as N;
        let status = match &e {
            N::NotFound(_) => StatusCode::NOT_FOUND,
            N::Invalid(_) => StatusCode::BAD_REQUEST,
            N::Conflict(_) | N::Exhausted(_) => StatusCode::CONFLICT,
            N::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<oxcart_image::Error> for ApiError {
    fn from(e: oxcart_image::Error) -> ApiError {
        oxcart_engine::EngineError::from(e).into()
    }
}

pub fn full(b: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(b.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn json_status(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    response(status, "application/json", full(body))
}

pub fn json(v: &impl serde::Serialize) -> Resp {
    json_status(StatusCode::OK, v)
}

pub fn response(status: StatusCode, content_type: &str, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub fn no_content() -> Resp {
    response(StatusCode::NO_CONTENT, "text/plain", empty())
}

/// A body fed by a channel: each message is one chunk, sent (and flushed) as it
/// comes; the body ends when every sender is gone.
pub struct ChanBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A streamed body and the sender that feeds it.
pub fn channel(depth: usize) -> (tokio::sync::mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel(depth);
    (tx, ChanBody { rx }.boxed())
}

/// The query string, decoded (`+` and `%XX`); a repeated key keeps every value.
#[derive(Debug, Default, Clone)]
pub struct Query(pub BTreeMap<String, Vec<String>>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for part in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            m.entry(decode(k)).or_default().push(decode(v));
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn all(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or_default()
    }

    /// docker's `since`/`until` times: unix seconds with an optional fraction of up to
    /// nine digits, as (seconds, nanoseconds); absent or empty is `None`.
    pub fn unix_time(&self, k: &str) -> ApiResult<Option<(i64, u32)>> {
        let Some(s) = self.get(k).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let bad = || {
            ApiError::bad(format!(
                "invalid value for {k}: {s:?} (unix seconds[.nanoseconds])"
            ))
        };
        let (a, b) = s.split_once('.').unwrap_or((s, ""));
        let secs: i64 = a.parse().map_err(|_| bad())?;
        let nanos: u32 = if b.is_empty() {
            0
        } else if b.len() <= 9 && b.bytes().all(|c| c.is_ascii_digit()) {
            format!("{b:0<9}").parse().map_err(|_| bad())?
        } else {
            return Err(bad());
        };
        Ok(Some((secs, nanos)))
    }

    /// docker's `httputils.BoolValue`: anything but "", "0", "no", "false" and
    /// "none" (any case, trimmed) is true.
    pub fn bool(&self, k: &str) -> bool {
        let s = self.get(k).unwrap_or("").trim().to_ascii_lowercase();
        !matches!(s.as_str(), "" | "0" | "no" | "false" | "none")
    }

    /// docker's `BoolValueOrDefault`: the default when the key is absent.
    pub fn bool_or(&self, k: &str, default: bool) -> bool {
        if self.0.contains_key(k) {
            self.bool(k)
        } else {
            default
        }
    }

    /// An integer parameter; a bad one is a 400 naming it.
    pub fn int(&self, k: &str) -> ApiResult<Option<i64>> {
        match self.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad(format!("invalid value for {k}: {s:?} is not an integer"))
            }),
        }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The request body, whole, refused past `limit` bytes (413 naming the limit).
pub async fn read_body<B>(body: B, limit: usize) -> ApiResult<Bytes>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large(limit));
    }
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(ApiError::bad(format!("reading the request body: {e}"))),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes"),
    )
}

/// A JSON body parsed into `T`; a body that is not JSON or has a field of the wrong
/// type is a 400 naming the field (docker: "json: cannot unmarshal …").
pub async fn read_json<T: serde::de::DeserializeOwned>(
    body: hyper::body::Incoming,
) -> ApiResult<T> {
    let b = read_body(body, MAX_JSON_BODY).await?;
    parse_json(&b)
}

pub fn parse_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> ApiResult<T> {
    let b = if b.iter().all(u8::is_ascii_whitespace) {
        // docker treats an empty body as an empty object.
        &b"{}"[..]
    } else {
        b
    };
    let de = &mut serde_json::Deserializer::from_slice(b);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ApiError::bad(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad(format!("invalid JSON body: field {path}: {inner}"))
        }
    })
}

/// The filters as the `(key, value)` pairs the engine's filters take.
pub fn filter_pairs(f: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    f.iter()
        .flat_map(|(k, vals)| vals.iter().map(move |v| (k.clone(), v.clone())))
        .collect()
}

/// docker's filters: `{"label":{"a=b":true}}` (the old map shape) or
/// `{"label":["a=b"]}`, key → values.
pub fn parse_filters(q: &Query) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let Some(raw) = q.get("filters").filter(|s| !s.trim().is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| ApiError::bad(format!("invalid filter: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad("invalid filter: not a JSON object"))?;
    let mut out = BTreeMap::new();
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    ApiError::bad(format!("invalid filter: {k}: not a list of strings"))
                })?,
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(s, _)| s.clone())
                .collect(),
            _ => {
                return Err(ApiError::bad(format!(
                    "invalid filter: {k}: not a list or a map"
                )))
            }
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_booleans_are_dockers() {
        let q = Query::parse(Some("a=1&b=0&c=no&d=TRUE&e=&f=yes&g=None"));
        assert!(q.bool("a") && q.bool("d") && q.bool("f"));
        assert!(!q.bool("b") && !q.bool("c") && !q.bool("e") && !q.bool("g") && !q.bool("zz"));
        assert!(q.bool_or("zz", true));
    }

    #[test]
    fn filters_take_both_shapes() {
        let a = parse_filters(&Query::parse(Some(
            "filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
        )))
        .expect("map shape");
        let b = parse_filters(&Query::parse(Some("filters={\"label\":[\"a=b\"]}"))).expect("list");
        assert_eq!(a, b);
        assert_eq!(a["label"], vec!["a=b".to_string()]);
        assert!(parse_filters(&Query::parse(Some("filters={\"label\":3}"))).is_err());
        assert!(parse_filters(&Query::parse(Some("filters=nope"))).is_err());
    }

    /// Random query strings and bodies through every parser a request reaches
    /// before a handler: none panics, and each answer is a value or a 4xx.
    #[test]
    fn parsers_take_any_input_without_panicking() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"%+=&{}[]\":,0123456789abcfxyzAB \x00\xff/v1.";
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            let q = Query::parse(Some(&s));
            let _ = q.bool("a");
            let _ = q.int("a");
            if let Err(e) = parse_filters(&Query::parse(Some(&format!("filters={s}")))) {
                assert_eq!(e.status, StatusCode::BAD_REQUEST);
            }
            let _ = crate::router::split_version(&format!("/v{s}"));
            if let Err(e) = parse_json::<serde_json::Value>(&bytes) {
                assert_eq!(e.status, StatusCode::BAD_REQUEST);
            }
        }
    }

    #[test]
    fn decoding_never_panics_on_truncated_escapes() {
        for s in ["%", "%4", "a%zz", "%41", "+%2"] {
            let _ = decode(s);
        }
        assert_eq!(decode("%41+b"), "A b");
    }
}

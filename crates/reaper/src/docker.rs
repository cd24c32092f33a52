//! The Engine API calls a reaper makes, over `DOCKER_HOST` (default
//! `unix:///var/run/docker.sock`, where testcontainers bind-mounts the socket): ping
//! with version negotiation, the four list endpoints with a filter, the four removals.

use crate::filters::{escape, Filter};
use crate::http::{exchange, Response};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The newest API version asked for; an older server's is used instead (docker's
/// client negotiates the same way). 1.41 has every call made here.
const MAX_VERSION: (u32, u32) = (1, 41);
/// What docker's client assumes of a server that names no version.
const FALLBACK_VERSION: &str = "1.24";

#[derive(Debug)]
pub enum Error {
    /// 404: the resource is already gone (not an error to a reaper).
    NotFound(String),
    /// Another non-2xx answer: docker's `message` (or the status).
    Status(String),
    Io(std::io::Error),
    /// A 2xx answer whose body is not what the endpoint returns.
    Body(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // docker's client words daemon errors this way.
            Error::NotFound(m) | Error::Status(m) => {
                write!(f, "Error response from daemon: {m}")
            }
            Error::Io(e) => write!(f, "{e}"),
            Error::Body(m) => write!(f, "{m}"),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Debug)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

pub struct Client {
    ep: Endpoint,
    version: String,
    /// A version fixed by `DOCKER_API_VERSION` is not negotiated (docker's rule).
    pinned: bool,
    timeout: Duration,
}

pub struct Container {
    pub id: String,
    pub created: i64,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub names: Vec<String>,
    pub state: String,
}

pub struct Network {
    pub id: String,
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created: i128,
}

pub struct Volume {
    pub name: String,
    pub created_at: String,
}

pub struct Image {
    pub id: String,
    pub created: i64,
}

impl Client {
    /// docker's `client.FromEnv`: `DOCKER_HOST` and `DOCKER_API_VERSION`. TLS
    /// (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`) is refused by name: this reaper talks
    /// to the socket it is given, never to a remote engine.
    pub fn from_env(timeout: Duration) -> std::result::Result<Client, String> {
        for k in ["DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
            if std::env::var_os(k).is_some_and(|v| !v.is_empty()) {
                return Err(format!("{k} is set: TLS to the engine is not supported"));
            }
        }
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let ep = parse_host(&host)?;
        let pinned = std::env::var("DOCKER_API_VERSION")
            .ok()
            .filter(|v| !v.is_empty());
        Ok(Client {
            ep,
            version: pinned
                .clone()
                .unwrap_or_else(|| format!("{}.{}", MAX_VERSION.0, MAX_VERSION.1)),
            pinned: pinned.is_some(),
            timeout,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    fn call(&self, method: &str, path: &str, versioned: bool) -> Result<Response> {
        let target = if versioned {
            format!("/v{}{path}", self.version)
        } else {
            path.to_string()
        };
        let until = Instant::now() + self.timeout;
        let r = match &self.ep {
            Endpoint::Unix(p) => {
                // The socket's path in the error: a missing bind mount is the usual cause.
                let c = UnixStream::connect(p)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                exchange(c, until, method, &target)?
            }
            Endpoint::Tcp(a) => {
                let addrs = std::net::ToSocketAddrs::to_socket_addrs(a.as_str())?;
                let mut last = None;
                let mut conn = None;
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, self.timeout) {
                        Ok(c) => {
                            conn = Some(c);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let c = conn.ok_or_else(|| {
                    last.unwrap_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("{a}: no address"),
                        )
                    })
                })?;
                exchange(c, until, method, &target)?
            }
        };
        if (200..300).contains(&r.status) {
            return Ok(r);
        }
        let msg = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&r.body).trim().to_string());
        let msg = if msg.is_empty() {
            format!("status {}", r.status)
        } else {
            msg
        };
        Err(if r.status == 404 {
            Error::NotFound(msg)
        } else {
            Error::Status(msg)
        })
    }

    /// `GET /_ping`, and the version to use from its `API-Version` header.
    pub fn ping(&mut self) -> Result<()> {
        let r = self.call("GET", "/_ping", false)?;
        if self.pinned {
            return Ok(());
        }
        let server = r
            .header("api-version")
            .filter(|v| !v.is_empty())
            .unwrap_or(FALLBACK_VERSION);
        if parse_version(server).is_some_and(|v| v < MAX_VERSION) {
            self.version = server.to_string();
        }
        Ok(())
    }

    fn list(&self, path: &str, f: &Filter) -> Result<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let q = format!("{path}{sep}filters={}", escape(&f.to_json()));
        let r = self.call("GET", &q, true)?;
        serde_json::from_slice(&r.body)
            .map_err(|e| Error::Body(format!("{path}: the answer is not JSON: {e}")))
    }

    /// All containers, stopped ones too, matching `f`.
    pub fn containers(&self, f: &Filter) -> Result<Vec<Container>> {
        let v = self.list("/containers/json?all=1", f)?;
        array(&v, "/containers/json")?
            .iter()
            .map(|c| {
                Ok(Container {
                    id: string(c, "Id")?,
                    created: int(c, "Created")?,
                    labels: labels(c)?,
                    image: string(c, "Image")?,
                    names: c["Names"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|n| n.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    state: string(c, "State")?,
                })
            })
            .collect()
    }

    pub fn networks(&self, f: &Filter) -> Result<Vec<Network>> {
        let v = self.list("/networks", f)?;
        array(&v, "/networks")?
            .iter()
            .map(|n| {
                let created = string(n, "Created")?;
                // An absent time is Go's zero time: older than any prune check.
                let created = if created.is_empty() {
                    i128::MIN
                } else {
                    crate::timefmt::parse_rfc3339(&created).ok_or_else(|| {
                        Error::Body(format!(
                            "/networks: Created {created:?} is not an RFC 3339 time"
                        ))
                    })?
                };
                Ok(Network {
                    id: string(n, "Id")?,
                    name: string(n, "Name")?,
                    created,
                })
            })
            .collect()
    }

    pub fn volumes(&self, f: &Filter) -> Result<Vec<Volume>> {
        let v = self.list("/volumes", f)?;
        let list = match &v["Volumes"] {
            Value::Null => return Ok(Vec::new()),
            l => l,
        };
        array(list, "/volumes")?
            .iter()
            .map(|x| {
                Ok(Volume {
                    name: string(x, "Name")?,
                    created_at: string(x, "CreatedAt")?,
                })
            })
            .collect()
    }

    pub fn images(&self, f: &Filter) -> Result<Vec<Image>> {
        let v = self.list("/images/json", f)?;
        array(&v, "/images/json")?
            .iter()
            .map(|i| {
                Ok(Image {
                    id: string(i, "Id")?,
                    created: int(i, "Created")?,
                })
            })
            .collect()
    }

    /// `docker rm -f -v`: a running container is killed; its anonymous volumes go too.
    pub fn remove_container(&self, id: &str) -> Result<()> {
        self.call(
            "DELETE",
            &format!("/containers/{}?force=1&v=1", escape(id)),
            true,
        )
        .map(drop)
    }

    pub fn remove_network(&self, id: &str) -> Result<()> {
        self.call("DELETE", &format!("/networks/{}", escape(id)), true)
            .map(drop)
    }

    pub fn remove_volume(&self, name: &str) -> Result<()> {
        self.call(
            "DELETE",
            &format!("/volumes/{}?force=1", escape(name)),
            true,
        )
        .map(drop)
    }

    /// Untagged parents go too (docker's default, `noprune` unset), as Ryuk asks.
    pub fn remove_image(&self, id: &str) -> Result<()> {
        self.call("DELETE", &format!("/images/{}", escape(id)), true)
            .map(drop)
    }
}

/// `unix:///path` or `tcp://host:port`, as docker's client accepts `DOCKER_HOST`.
fn parse_host(host: &str) -> std::result::Result<Endpoint, String> {
    let bad = |why: &str| format!("DOCKER_HOST {host:?}: {why}");
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            return Err(bad("no socket path"));
        }
        return Ok(Endpoint::Unix(PathBuf::from(p)));
    }
    if let Some(a) = host.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        if a.is_empty() {
            return Err(bad("no address"));
        }
        // docker's default port for plain TCP.
        let has_port = a.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        });
        let a = if has_port {
            a.to_string()
        } else {
            format!("{a}:2375")
        };
        return Ok(Endpoint::Tcp(a));
    }
    Err(bad("only unix:// and tcp:// engines are supported"))
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>> {
    v.as_array()
        .ok_or_else(|| Error::Body(format!("{what}: the answer is not a JSON list")))
}

/// A string field; absent or null is empty (Go's zero value), another type an error.
fn string(v: &Value, k: &str) -> Result<String> {
    match &v[k] {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        o => Err(Error::Body(format!("{k}: {o} is not a string"))),
    }
}

fn int(v: &Value, k: &str) -> Result<i64> {
    match &v[k] {
        Value::Null => Ok(0),
        o => o
            .as_i64()
            .ok_or_else(|| Error::Body(format!("{k}: {o} is not an integer"))),
    }
}

fn labels(v: &Value) -> Result<BTreeMap<String, String>> {
    match &v["Labels"] {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| match x {
                Value::String(s) => Ok((k.clone(), s.clone())),
                o => Err(Error::Body(format!("Labels.{k}: {o} is not a string"))),
            })
            .collect(),
        o => Err(Error::Body(format!("Labels: {o} is not an object"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn docker_host_forms() {
        assert!(
            matches!(parse_host("unix:///run/x.sock"), Ok(Endpoint::Unix(p)) if p == Path::new("/run/x.sock"))
        );
        assert!(
            matches!(parse_host("tcp://127.0.0.1:2376"), Ok(Endpoint::Tcp(a)) if a == "127.0.0.1:2376")
        );
        assert!(
            matches!(parse_host("tcp://localhost"), Ok(Endpoint::Tcp(a)) if a == "localhost:2375")
        );
        assert!(matches!(parse_host("tcp://[::1]"), Ok(Endpoint::Tcp(a)) if a == "[::1]:2375"));
        assert!(matches!(parse_host("tcp://[::1]:5"), Ok(Endpoint::Tcp(a)) if a == "[::1]:5"));
        assert!(parse_host("ssh://me@host")
            .unwrap_err()
            .contains("only unix:// and tcp://"));
        assert!(parse_host("unix://").is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.9").unwrap() < parse_version("1.41").unwrap());
        assert!(parse_version("1.44").unwrap() > MAX_VERSION);
        assert_eq!(parse_version("x"), None);
    }
}

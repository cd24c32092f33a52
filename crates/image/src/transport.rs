//! Transport policy and HTTP helpers for the registry client: which registries are
//! insecure and which CA certificates they use, `WWW-Authenticate` parsing, registry error
//! bodies, and when and how long to wait before retrying.

use crate::registry::RegistryError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use ureq::tls::{parse_pem, Certificate, PemItem};

/// TLS policy: which registries are "insecure" (HTTPS without verification, falling
/// back to plain HTTP, as docker treats them), and where per-registry CA certificates
/// live (`<dir>/<host[:port]>/*.crt`, the docker/podman `certs.d` convention).
#[derive(Debug, Clone)]
pub struct Insecure {
    hosts: Vec<String>,
    certs_dirs: Vec<PathBuf>,
    tls_verify: Option<bool>,
}

impl Default for Insecure {
    fn default() -> Self {
        Insecure::new(Vec::new())
    }
}

impl Insecure {
    /// Registries given by the user (host or host:port), plus docker's defaults, with
    /// the default certificate directories.
    pub fn new(hosts: impl IntoIterator<Item = String>) -> Insecure {
        Insecure {
            hosts: hosts.into_iter().collect(),
            certs_dirs: vec![
                "/etc/containers/certs.d".into(),
                "/etc/docker/certs.d".into(),
            ],
            tls_verify: None,
        }
    }

    /// Look for registry CA certificates in these directories instead.
    pub fn with_certs_dirs(mut self, dirs: Vec<PathBuf>) -> Insecure {
        self.certs_dirs = dirs;
        self
    }

    /// podman's `--tls-verify`: `Some(true)` verifies every registry over HTTPS (loopback
    /// included), `Some(false)` treats every registry as insecure, `None` uses the rules.
    pub fn with_tls_verify(mut self, v: Option<bool>) -> Insecure {
        self.tls_verify = v;
        self
    }

    /// Whether `registry` (host[:port]) is insecure. Like docker, loopback registries
    /// (`localhost`, `127.0.0.0/8`, `::1`) are, unless TLS verification is forced.
    pub fn allows(&self, registry: &str) -> bool {
        if let Some(v) = self.tls_verify {
            return !v;
        }
        let host = match registry.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
            _ => registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
            || self.hosts.iter().any(|h| h == registry || h == host)
    }

    /// CA certificates configured for `registry`, if any.
    pub fn ca_certs(&self, registry: &str) -> Result<Vec<Certificate<'static>>, RegistryError> {
        let mut certs = Vec::new();
        for dir in &self.certs_dirs {
            let d = dir.join(registry);
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect();
            files.sort();
            for f in files {
                let bad = |reason: String| RegistryError::Protocol {
                    registry: registry.to_string(),
                    what: format!("CA certificate {}", f.display()),
                    reason,
                };
                let pem = std::fs::read(&f).map_err(|e| bad(e.to_string()))?;
                let before = certs.len();
                for item in parse_pem(&pem) {
                    if let PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
                        certs.push(c);
                    }
                }
                if certs.len() == before {
                    return Err(bad("no PEM certificate in it".into()));
                }
            }
        }
        Ok(certs)
    }
}

/// Parse `WWW-Authenticate: Scheme k="v",k2="v2"` (RFC 6750 §3 / RFC 7235).
pub(crate) fn parse_challenge(h: &str) -> (String, HashMap<String, String>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some(eq) = s.find('=') else { break };
        let key = s[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        s = &s[eq + 1..];
        let value;
        if let Some(stripped) = s.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = stripped.char_indices();
            let mut end = stripped.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            s = &stripped[end.min(stripped.len())..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        s = s.trim_start_matches([',', ' ']);
        params.insert(key, value);
    }
    (scheme.to_ascii_lowercase(), params)
}

pub(crate) fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    if let Ok(e) = serde_json::from_slice::<Errs>(body) {
        return e
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_string()
}

pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// Network failures worth retrying. TLS failures (ureq reports rustls errors as
/// `InvalidData` I/O errors) and name-resolution failures will not fix themselves.
pub(crate) fn transient(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            K::ConnectionReset
                | K::ConnectionAborted
                | K::ConnectionRefused
                | K::BrokenPipe
                | K::TimedOut
                | K::UnexpectedEof
                | K::Interrupted
                | K::WouldBlock
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => true,
        _ => false,
    }
}

/// `Retry-After` as delay-seconds or an IMF-fixdate (RFC 9110 §10.2.3), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_retry_after(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let at = (era * 146097 + doe - 719468) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some((at - now).max(0) as u64)
}

pub(crate) fn retry_delay(attempt: u32, retry_after: Option<&str>) -> Duration {
    if let Some(secs) = retry_after.and_then(parse_retry_after) {
        // Honour the server, but do not hang a CLI for minutes on one request.
        return Duration::from_secs(secs.min(60));
    }
    Duration::from_millis(250u64 << attempt.min(6))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/alpine:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(" 7 "), Some(7));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(0),
            "past dates mean now"
        );
        let in_2100 = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT").unwrap();
        let expected = 4102444800u64.saturating_sub(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        assert!(in_2100.abs_diff(expected) <= 2, "{in_2100} vs {expected}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            retry_delay(1, Some("3600")),
            Duration::from_secs(60),
            "capped"
        );
    }

    #[test]
    fn insecure_defaults() {
        let i = Insecure::new(["myreg:5000".to_string()]);
        assert!(i.allows("localhost:5000"));
        assert!(i.allows("127.0.0.1:41234"));
        assert!(i.allows("127.9.0.1"));
        assert!(i.allows("myreg:5000"));
        assert!(!i.allows("myreg:5001"));
        assert!(!i.allows("docker.io"));
        assert_eq!(host_of("https://a.b:5/v2/x?y"), "a.b:5");
    }
}

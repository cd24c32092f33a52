//! Registry credentials: oxcart's own auth file (written by `oxcart login`) and docker's
//! `~/.docker/config.json` (`auths`, `credHelpers`, `credsStore`). Both use docker's format:
//! `{"auths": {"<host>": {"auth": base64("user:pass")}}}`.

use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Error reading or writing credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// File could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// File is not valid JSON in docker's format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A docker credential helper failed.
    #[error("credential helper docker-credential-{helper} for {host}: {reason}")]
    Helper {
        /// Helper name.
        helper: String,
        /// Registry.
        host: String,
        /// What went wrong.
        reason: String,
    },
}

/// A username and password (or identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, even in debug output.
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// Where credentials are looked up, in order.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    /// oxcart's own file (`oxcart login` writes here).
    pub auth_file: PathBuf,
    /// docker's config.json, read-only for us.
    pub docker_config: Option<PathBuf>,
    /// Credentials a client sent with one request (the Engine API's
    /// `X-Registry-Auth`), for the registry host they name: used before the files.
    pub given: Option<(String, Credentials)>,
}

/// The keys docker uses for a registry host in `auths`.
fn host_keys(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ];
    if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
        keys.insert(0, "https://index.docker.io/v1/".to_string());
        keys.push("docker.io".into());
        keys.push("index.docker.io".into());
    }
    keys
}

fn read_json(path: &Path) -> Result<Option<Map<String, Value>>, AuthError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Io {
                path: path.into(),
                source,
            })
        }
    };
    match serde_json::from_slice(&data) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(AuthError::Format {
            path: path.into(),
            reason: "not a JSON object".into(),
        }),
        Err(e) => Err(AuthError::Format {
            path: path.into(),
            reason: e.to_string(),
        }),
    }
}

fn decode_auth(path: &Path, s: &str) -> Result<Credentials, AuthError> {
    let fmt = |reason: &str| AuthError::Format {
        path: path.into(),
        reason: reason.into(),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| fmt("\"auth\" is not base64"))?;
    let text = String::from_utf8(raw).map_err(|_| fmt("\"auth\" is not UTF-8"))?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| fmt("\"auth\" is not user:password"))?;
    Ok(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

fn from_auths(
    path: &Path,
    cfg: &Map<String, Value>,
    host: &str,
) -> Result<Option<Credentials>, AuthError> {
    let Some(Value::Object(auths)) = cfg.get("auths") else {
        return Ok(None);
    };
    for key in host_keys(host) {
        if let Some(entry) = auths.get(&key) {
            if let Some(Value::String(a)) = entry.get("auth") {
                if !a.is_empty() {
                    return decode_auth(path, a).map(Some);
                }
            }
            if let (Some(Value::String(u)), Some(Value::String(p))) =
                (entry.get("username"), entry.get("password"))
            {
                return Ok(Some(Credentials {
                    username: u.clone(),
                    password: p.clone(),
                }));
            }
        }
    }
    Ok(None)
}

/// Ask `docker-credential-<helper> get` (docker-credential-helpers protocol: the server URL
/// on stdin, `{"Username","Secret"}` on stdout).
fn from_helper(helper: &str, host: &str) -> Result<Option<Credentials>, AuthError> {
    let err = |reason: String| AuthError::Helper {
        helper: helper.into(),
        host: host.into(),
        reason,
    };
    let server = if host == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        host.to_string()
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| err(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        // The protocol reports "credentials not found in native keychain" with a failure.
        if String::from_utf8_lossy(&out.stdout).contains("not found") {
            return Ok(None);
        }
        return Err(err(format!("exited with {}", out.status)));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| err(e.to_string()))?;
    match (v.get("Username"), v.get("Secret")) {
        (Some(Value::String(u)), Some(Value::String(s))) => Ok(Some(Credentials {
            username: u.clone(),
            password: s.clone(),
        })),
        _ => Err(err("answer lacks Username/Secret".into())),
    }
}

/// The registry host a login names (`docker login [SERVER]`, the Engine API's
/// `serveraddress`): docker's spellings of Docker Hub are `docker.io`, a URL loses its
/// scheme and trailing slash.
pub fn registry_host(server: &str) -> String {
    match server {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "https://index.docker.io/v1/" => "docker.io".to_string(),
        s => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

impl CredentialStore {
    /// The default locations: `$OXCART_AUTH_FILE` or `~/.config/oxcart/auth.json`, and
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub fn default_locations() -> CredentialStore {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into());
        let auth_file = std::env::var_os("OXCART_AUTH_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config/oxcart/auth.json"));
        let docker_config = Some(
            std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".docker"))
                .join("config.json"),
        );
        CredentialStore {
            auth_file,
            docker_config,
            given: None,
        }
    }

    /// Credentials for `host`, if any are configured.
    pub fn get(&self, host: &str) -> Result<Option<Credentials>, AuthError> {
        if let Some((h, c)) = &self.given {
            if h == host {
                return Ok(Some(c.clone()));
            }
        }
        if let Some(cfg) = read_json(&self.auth_file)? {
            if let Some(c) = from_auths(&self.auth_file, &cfg, host)? {
                return Ok(Some(c));
            }
        }
        let Some(dc) = &self.docker_config else {
            return Ok(None);
        };
        let Some(cfg) = read_json(dc)? else {
            return Ok(None);
        };
        if let Some(Value::Object(helpers)) = cfg.get("credHelpers") {
            for key in host_keys(host) {
                if let Some(Value::String(h)) = helpers.get(&key) {
                    return from_helper(h, host);
                }
            }
        }
        if let Some(c) = from_auths(dc, &cfg, host)? {
            return Ok(Some(c));
        }
        if let Some(Value::String(h)) = cfg.get("credsStore") {
            return from_helper(h, host);
        }
        Ok(None)
    }

    fn update(&self, f: impl FnOnce(&mut Map<String, Value>)) -> Result<(), AuthError> {
        let path = &self.auth_file;
        let mut cfg = read_json(path)?.unwrap_or_default();
        let auths = cfg
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(a) = auths {
            f(a);
        }
        let io = |source| AuthError::Io {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        // Write-then-rename so a crash never leaves a truncated auth file; 0600 because it
        // holds passwords.
        let tmp = dir.join(format!(".auth.json.{}", std::process::id()));
        let data =
            serde_json::to_vec_pretty(&Value::Object(cfg)).map_err(|e| AuthError::Format {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(&data).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Store credentials for `host` in oxcart's auth file.
    pub fn store(&self, host: &str, creds: &Credentials) -> Result<(), AuthError> {
        let enc = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        self.update(|a| {
            a.insert(host.to_string(), serde_json::json!({ "auth": enc }));
        })
    }

    /// Remove credentials for `host` from oxcart's auth file. Returns whether any existed.
    pub fn remove(&self, host: &str) -> Result<bool, AuthError> {
        let mut removed = false;
        self.update(|a| {
            for k in host_keys(host) {
                removed |= a.remove(&k).is_some();
            }
        })?;
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn store_get_remove_and_docker_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        std::fs::write(
            &docker,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"ZG9jazpodWI="},"q.io":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let s = CredentialStore {
            auth_file: dir.path().join("sub/auth.json"),
            docker_config: Some(docker),
            given: None,
        };
        assert_eq!(s.get("docker.io").unwrap().unwrap().username, "dock");
        assert_eq!(s.get("q.io").unwrap().unwrap().password, "b");
        assert!(s.get("other.io").unwrap().is_none());
        let c = Credentials {
            username: "me".into(),
            password: "p:w".into(),
        };
        s.store("q.io", &c).unwrap();
        assert_eq!(s.get("q.io").unwrap().unwrap(), c);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.auth_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(s.remove("q.io").unwrap());
        assert!(!s.remove("q.io").unwrap());
        // Back to docker's entry.
        assert_eq!(s.get("q.io").unwrap().unwrap().username, "a");
    }
}

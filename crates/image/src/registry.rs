//! Distribution-spec client (`spec.md`): `/v2/` probe, manifest and blob fetches, the
//! Docker token flow (`auth/token.md`), Basic auth, retries on 429/5xx honouring
//! `Retry-After`, and redirects followed without leaking credentials to another host.
//!
//! Blocking I/O on `ureq`; parallelism comes from the caller's threads (one client is
//! shared by reference across them).

use crate::auth::{AuthError, CredentialStore, Credentials};
use crate::digest::Digest;
use crate::oci::MANIFEST_ACCEPT;
use crate::reference::Reference;
pub use crate::transport::Insecure;
use crate::transport::{error_message, host_of, parse_challenge, retry_delay, transient};
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::Body;

/// Largest manifest we accept (containerd uses 4 MiB too).
const MAX_MANIFEST: u64 = 4 << 20;
const MAX_ATTEMPTS: u32 = 5;

/// Registry errors, each naming the registry and what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Network-level failure.
    #[error("{registry}: {what}: {source}")]
    Transport {
        /// Registry host.
        registry: String,
        /// Request description.
        what: String,
        /// Cause.
        source: Box<ureq::Error>,
    },
    /// Reading a body failed.
    #[error("{registry}: {what}: {source}")]
    Io {
        /// Registry host.
        registry: String,
        /// Request description.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The registry answered with an error status.
    #[error("{registry}: {what}: HTTP {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status {
        /// Registry host.
        registry: String,
        /// Request description.
        what: String,
        /// HTTP status.
        status: u16,
        /// Registry error codes/messages (`{"errors":[…]}`), or the body's start.
        message: String,
    },
    /// Authentication failed or the auth challenge was unusable.
    #[error("{registry}: authentication failed: {reason}")]
    Auth {
        /// Registry host.
        registry: String,
        /// Why.
        reason: String,
    },
    /// Credentials could not be loaded.
    #[error(transparent)]
    Credentials(#[from] AuthError),
    /// The registry sent something that contradicts what we asked for.
    #[error("{registry}: {what}: {reason}")]
    Protocol {
        /// Registry host.
        registry: String,
        /// Request description.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Clone)]
enum AuthState {
    None,
    Basic(String),
    Bearer { token: String, expires: Instant },
}

/// A client bound to one repository on one registry.
pub struct Client {
    /// For the registry's own host (its CA certificates; no verification if insecure).
    agent: ureq::Agent,
    /// For any other host (token realms, blob storage redirects): verified HTTPS.
    other: ureq::Agent,
    insecure: bool,
    registry: String,
    /// `scheme://host`; an insecure registry starts at https and may fall back to http.
    base: Mutex<String>,
    /// Whether any request reached the registry (no scheme fallback after that).
    connected: std::sync::atomic::AtomicBool,
    repository: String,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// Bearer tokens by scope (token.md: cache per registry and scope).
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Client {
    /// A client for `reference`'s repository, using `creds` for authentication.
    pub fn new(
        reference: &Reference,
        insecure: &Insecure,
        store: &CredentialStore,
    ) -> Result<Client, RegistryError> {
        let creds = store.get(&reference.registry)?;
        Self::with_credentials(reference, insecure, creds)
    }

    /// A client with explicit credentials (used by `login` to check them).
    pub fn with_credentials(
        reference: &Reference,
        insecure: &Insecure,
        creds: Option<Credentials>,
    ) -> Result<Client, RegistryError> {
        let is_insecure = insecure.allows(&reference.registry);
        let cas = insecure.ca_certs(&reference.registry)?;
        let mut tls = TlsConfig::builder();
        if !cas.is_empty() {
            tls = tls.root_certs(RootCerts::new_with_certs(&cas));
        }
        if is_insecure {
            // docker's "insecure registry": HTTPS without certificate verification,
            // else plain HTTP. Only for this registry's own host (see `other`).
            tls = tls.disable_verification(true);
        }
        let agent = |tls: TlsConfig| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                // Redirects are followed by hand so Authorization never crosses hosts.
                .max_redirects(0)
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_recv_response(Some(Duration::from_secs(120)))
                // ureq has no idle timeout: bound a whole body read so a stalled registry
                // cannot hang a pull forever (an hour covers ~1 GB at 300 kB/s).
                .timeout_recv_body(Some(Duration::from_secs(3600)))
                .user_agent("oxcart/0.1")
                .max_idle_connections_per_host(8)
                .tls_config(tls)
                .build()
                .into()
        };
        Ok(Client {
            agent: agent(tls.build()),
            other: agent(TlsConfig::default()),
            insecure: is_insecure,
            registry: reference.registry.clone(),
            base: Mutex::new(format!("https://{}", reference.api_host())),
            connected: std::sync::atomic::AtomicBool::new(false),
            repository: reference.repository.clone(),
            creds,
            auth: Mutex::new(AuthState::None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn base(&self) -> String {
        self.base.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// The agent for `url`: the registry's own for its host, a verifying one otherwise.
    fn agent_for(&self, url: &str) -> &ureq::Agent {
        if host_of(url) == host_of(&self.base()) {
            &self.agent
        } else {
            &self.other
        }
    }

    /// Registry host this client talks to.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    fn scope(&self) -> String {
        // A login probe has no repository: docker asks for a token without scope then.
        if self.repository.is_empty() {
            String::new()
        } else {
            format!("repository:{}:pull", self.repository)
        }
    }

    /// A client for checking credentials against `registry`'s `/v2/` (`oxcart login`).
    pub fn for_login(
        registry: &str,
        insecure: &Insecure,
        creds: Credentials,
    ) -> Result<Client, RegistryError> {
        let probe = Reference::parse(&format!("{registry}/probe")).map_err(|e| {
            RegistryError::Protocol {
                registry: registry.to_string(),
                what: "login".into(),
                reason: e.to_string(),
            }
        })?;
        let mut c = Self::with_credentials(&probe, insecure, Some(creds))?;
        c.repository = String::new();
        Ok(c)
    }

    fn authorization(&self) -> Option<String> {
        let st = self
            .auth
            .lock()
            .map(|g| g.clone())
            .unwrap_or(AuthState::None);
        match st {
            AuthState::None => None,
            AuthState::Basic(b) => Some(format!("Basic {b}")),
            AuthState::Bearer { token, expires } => {
                (Instant::now() < expires).then(|| format!("Bearer {token}"))
            }
        }
    }

    fn set_auth(&self, st: AuthState) {
        if let Ok(mut g) = self.auth.lock() {
            *g = st;
        }
    }

    fn basic(&self) -> Option<String> {
        self.creds.as_ref().map(|c| {
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password))
        })
    }

    /// Answer a 401 challenge. Returns an error if we cannot satisfy it.
    fn authenticate(&self, challenge: &str, what: &str) -> Result<(), RegistryError> {
        let (scheme, params) = parse_challenge(challenge);
        match scheme.as_str() {
            "basic" => match self.basic() {
                Some(b) => {
                    self.set_auth(AuthState::Basic(b));
                    Ok(())
                }
                None => Err(RegistryError::Auth {
                    registry: self.registry.clone(),
                    reason: format!(
                        "{what}: registry requires a login (oxcart login {})",
                        self.registry
                    ),
                }),
            },
            "bearer" => {
                let scope = params.get("scope").cloned().unwrap_or_else(|| self.scope());
                if let Some((tok, exp)) =
                    self.tokens.lock().ok().and_then(|t| t.get(&scope).cloned())
                {
                    if Instant::now() < exp {
                        self.set_auth(AuthState::Bearer {
                            token: tok,
                            expires: exp,
                        });
                        return Ok(());
                    }
                }
                let realm = params.get("realm").ok_or_else(|| RegistryError::Auth {
                    registry: self.registry.clone(),
                    reason: format!("Bearer challenge without realm: {challenge}"),
                })?;
                let (token, expires) = self.fetch_token(realm, params.get("service"), &scope)?;
                if let Ok(mut t) = self.tokens.lock() {
                    t.insert(scope, (token.clone(), expires));
                }
                self.set_auth(AuthState::Bearer { token, expires });
                Ok(())
            }
            other => Err(RegistryError::Auth {
                registry: self.registry.clone(),
                reason: format!("unsupported authentication scheme {other:?}"),
            }),
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&String>,
        scope: &str,
    ) -> Result<(String, Instant), RegistryError> {
        let auth_err = |reason: String| RegistryError::Auth {
            registry: self.registry.clone(),
            reason,
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(auth_err(format!(
                "token realm {realm:?} is not an http(s) URL"
            )));
        }
        // Sending a password over plain HTTP is only acceptable for a registry the user
        // has allowed HTTP for anyway (an insecure one).
        if realm.starts_with("http://") && !self.insecure {
            return Err(auth_err(format!(
                "token realm {realm} is plain HTTP while the registry uses HTTPS"
            )));
        }
        let mut req = self.agent_for(realm).get(realm);
        if !scope.is_empty() {
            req = req.query("scope", scope);
        }
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(b) = self.basic() {
            req = req.header("Authorization", format!("Basic {b}"));
        }
        let mut resp = req
            .call()
            .map_err(|e| auth_err(format!("token request to {realm}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| auth_err(format!("token response from {realm}: {e}")))?;
        if status != 200 {
            return Err(auth_err(format!(
                "token server {realm} answered HTTP {status}: {}",
                error_message(&body)
            )));
        }
        #[derive(serde::Deserialize)]
        struct Tok {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let t: Tok = serde_json::from_slice(&body)
            .map_err(|e| auth_err(format!("token response from {realm} is not JSON: {e}")))?;
        // token.md: `token` and `access_token` are equivalent; default lifetime 60 s.
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_err(format!("token response from {realm} has no token")))?;
        let life = t.expires_in.unwrap_or(60).max(10);
        // Renew a little early so a token does not expire mid-request.
        Ok((token, Instant::now() + Duration::from_secs(life - 5)))
    }

    /// GET `path` (relative to the registry base, or an absolute URL) with retries, auth
    /// and redirects. Returns a 2xx (or 206) response.
    fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        range_from: Option<u64>,
        what: &str,
    ) -> Result<Response<Body>, RegistryError> {
        let mut attempt = 0u32;
        let mut authed = false;
        loop {
            attempt += 1;
            let mut url = if path.starts_with("http") {
                path.to_string()
            } else {
                format!("{}{}", self.base(), path)
            };
            let base = self.base();
            let origin = host_of(&base).to_string();
            let mut redirects = 0;
            let resp = loop {
                let mut req = self.agent_for(&url).get(&url);
                if let Some(a) = accept {
                    req = req.header("Accept", a);
                }
                if let Some(off) = range_from.filter(|o| *o > 0) {
                    req = req.header("Range", format!("bytes={off}-"));
                }
                // spec.md "API": never forward Authorization to another host.
                if host_of(&url) == origin {
                    if let Some(a) = self.authorization() {
                        req = req.header("Authorization", a);
                    }
                }
                let r = req.call();
                let resp = match r {
                    Ok(r) => r,
                    Err(e) => {
                        // An insecure registry that does not speak TLS: plain HTTP, as
                        // docker falls back (only before anything has worked over HTTPS).
                        if self.insecure
                            && url.starts_with("https://")
                            && host_of(&url) == origin
                            && !self.connected.load(std::sync::atomic::Ordering::SeqCst)
                        {
                            if let Ok(mut b) = self.base.lock() {
                                *b = format!("http://{origin}");
                            }
                            self.connected
                                .store(true, std::sync::atomic::Ordering::SeqCst);
                            attempt -= 1;
                            break None;
                        }
                        if attempt < MAX_ATTEMPTS && transient(&e) {
                            std::thread::sleep(retry_delay(attempt, None));
                            break None;
                        }
                        return Err(RegistryError::Transport {
                            registry: self.registry.clone(),
                            what: what.to_string(),
                            source: Box::new(e),
                        });
                    }
                };
                if host_of(&url) == origin {
                    self.connected
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let st = resp.status().as_u16();
                if matches!(st, 301 | 302 | 303 | 307 | 308) {
                    redirects += 1;
                    let loc = header(&resp, "location").ok_or_else(|| RegistryError::Protocol {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                        reason: format!("HTTP {st} redirect without Location"),
                    })?;
                    if redirects > 10 {
                        return Err(RegistryError::Protocol {
                            registry: self.registry.clone(),
                            what: what.to_string(),
                            reason: "more than 10 redirects".into(),
                        });
                    }
                    url = if loc.starts_with("http://") || loc.starts_with("https://") {
                        loc
                    } else if loc.starts_with('/') {
                        let scheme = url.split_once("://").map(|x| x.0).unwrap_or("https");
                        format!("{scheme}://{}{loc}", host_of(&url))
                    } else {
                        let dir = url.rsplit_once('/').map(|x| x.0).unwrap_or(&url);
                        format!("{dir}/{loc}")
                    };
                    continue;
                }
                break Some(resp);
            };
            let Some(mut resp) = resp else { continue };
            let st = resp.status().as_u16();
            match st {
                200..=299 => return Ok(resp),
                401 if !authed => {
                    authed = true;
                    let ch =
                        header(&resp, "www-authenticate").ok_or_else(|| RegistryError::Auth {
                            registry: self.registry.clone(),
                            reason: format!("{what}: HTTP 401 without WWW-Authenticate"),
                        })?;
                    self.authenticate(&ch, what)?;
                    attempt -= 1;
                    continue;
                }
                429 | 500..=599 if attempt < MAX_ATTEMPTS => {
                    let ra = header(&resp, "retry-after");
                    std::thread::sleep(retry_delay(attempt, ra.as_deref()));
                    continue;
                }
                _ => {
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(64 << 10)
                        .read_to_vec()
                        .unwrap_or_default();
                    if st == 401 {
                        return Err(RegistryError::Auth {
                            registry: self.registry.clone(),
                            reason: format!("{what}: {}", error_message(&body)),
                        });
                    }
                    return Err(RegistryError::Status {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                        status: st,
                        message: error_message(&body),
                    });
                }
            }
        }
    }

    /// Probe `GET /v2/` (end-1), authenticating if the registry asks. Used by `login`.
    pub fn ping(&self) -> Result<(), RegistryError> {
        self.get("/v2/", None, None, "GET /v2/").map(|_| ())
    }

    /// Fetch a manifest or index by tag or digest (end-3). Returns the bytes, the
    /// `Content-Type`, and the digest of the bytes; a digest reference or a
    /// `Docker-Content-Digest` header is verified against the bytes.
    pub fn manifest(
        &self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Digest), RegistryError> {
        let what = format!(
            "manifest {}/{}:{}",
            self.registry, self.repository, reference
        );
        let path = format!("/v2/{}/manifests/{}", self.repository, reference);
        let mut resp = self.get(&path, Some(MANIFEST_ACCEPT), None, &what)?;
        let ct = header(&resp, "content-type");
        let dcd = header(&resp, "docker-content-digest");
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| RegistryError::Protocol {
                registry: self.registry.clone(),
                what: what.clone(),
                reason: format!("reading body: {e}"),
            })?;
        let actual = Digest::sha256_of(&body);
        let mismatch = |expected: String| RegistryError::Protocol {
            registry: self.registry.clone(),
            what: what.clone(),
            reason: format!("content digest {actual} does not match {expected}"),
        };
        if reference.contains(':') {
            let want = Digest::parse(reference).map_err(|e| RegistryError::Protocol {
                registry: self.registry.clone(),
                what: what.clone(),
                reason: e.to_string(),
            })?;
            let mut h = crate::digest::Hasher::new(want.algorithm());
            h.update(&body);
            if h.finish() != want {
                return Err(mismatch(want.to_string()));
            }
        }
        if let Some(d) = dcd {
            if let Ok(d) = Digest::parse(&d) {
                let mut h = crate::digest::Hasher::new(d.algorithm());
                h.update(&body);
                if h.finish() != d {
                    return Err(mismatch(d.to_string()));
                }
            }
        }
        Ok((body, ct, actual))
    }

    /// Open a blob (end-2), resuming at `offset` with a `Range` request if non-zero.
    /// Returns the reader and the offset the body actually starts at (0 if the server
    /// ignored the range).
    pub fn blob(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Box<dyn Read + Send>, u64), RegistryError> {
        let what = format!("blob {digest} of {}/{}", self.registry, self.repository);
        let path = format!("/v2/{}/blobs/{}", self.repository, digest);
        let resp = self.get(&path, None, Some(offset), &what)?;
        let start = if resp.status().as_u16() == 206 {
            offset
        } else {
            0
        };
        Ok((Box::new(resp.into_body().into_reader()), start))
    }
}

/// A blob reader that transparently resumes with `Range` requests after a broken
/// connection (spec.md end-2 supports `Range`), up to a few times.
pub struct ResumingBlob<'a> {
    client: &'a Client,
    digest: Digest,
    inner: Box<dyn Read + Send>,
    offset: u64,
    resumes: u32,
}

impl<'a> ResumingBlob<'a> {
    /// Start reading `digest` from the beginning.
    pub fn open(client: &'a Client, digest: &Digest) -> Result<ResumingBlob<'a>, RegistryError> {
        let (inner, _) = client.blob(digest, 0)?;
        Ok(ResumingBlob {
            client,
            digest: digest.clone(),
            inner,
            offset: 0,
            resumes: 0,
        })
    }
}

impl Read for ResumingBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if self.resumes < 3 && e.kind() != std::io::ErrorKind::Interrupted => {
                    self.resumes += 1;
                    std::thread::sleep(retry_delay(self.resumes, None));
                    let (inner, start) =
                        self.client.blob(&self.digest, self.offset).map_err(|re| {
                            std::io::Error::other(format!("{e}; resuming failed: {re}"))
                        })?;
                    if start != self.offset {
                        // The server ignored Range: we cannot splice, report the original error.
                        return Err(e);
                    }
                    self.inner = inner;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

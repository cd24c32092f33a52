//! Registry behaviour the client must cope with: 429/503 with Retry-After, blob
//! redirects to another host (which must not receive our credentials), and a
//! registry that lies about content.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oxcart_image::auth::{CredentialStore, Credentials};
use oxcart_image::pull::{NoProgress, PullOptions};
use oxcart_image::registry::Insecure;
use oxcart_image::{ImageStore, Reference};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Log {
    /// (path, status we answered)
    requests: Vec<(String, u16)>,
    /// Authorization headers seen by the redirect target ("storage").
    storage_auth: Vec<String>,
    storage_hits: usize,
    /// Range requests seen by the storage host (resumed downloads).
    ranges: usize,
    seen: HashMap<String, usize>,
}

struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

fn read_req(s: &TcpStream) -> Option<Req> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut it = line.split_whitespace();
    let method = it.next()?.to_string();
    let path = it.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some(Req {
        method,
        path,
        headers,
    })
}

fn respond(mut s: &TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes());
    let _ = s.write_all(body);
}

/// Forward a request to the real registry (with the registry's own Basic credentials).
fn upstream(addr: &str, req: &Req, auth: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut rb = agent.get(format!("http://{addr}{}", req.path));
    if req.method == "HEAD" {
        rb = agent.head(format!("http://{addr}{}", req.path));
    }
    for (k, v) in &req.headers {
        if k == "accept" {
            rb = rb.header("Accept", v);
        }
        if k == "range" {
            rb = rb.header("Range", v);
        }
    }
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    let mut resp = rb.call().unwrap();
    let status = resp.status().as_u16();
    let mut hs = Vec::new();
    for k in [
        "content-type",
        "docker-content-digest",
        "www-authenticate",
        "location",
        "content-range",
    ] {
        if let Some(v) = resp.headers().get(k) {
            hs.push((k.to_string(), v.to_str().unwrap().to_string()));
        }
    }
    let mut body = Vec::new();
    resp.body_mut().as_reader().read_to_end(&mut body).unwrap();
    (status, hs, body)
}

struct Proxy {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handler: impl Fn(&TcpStream, Req) + Send + Sync + 'static,
) {
    listener.set_nonblocking(true).unwrap();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let h = handler.clone();
                    std::thread::spawn(move || {
                        if let Some(req) = read_req(&s) {
                            h(&s, req);
                        }
                    });
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
}

/// A front for `reg`: the first request for each manifest gets 429 + Retry-After, the
/// first for each blob 503; blobs are then redirected to a "storage" server on another
/// loopback address, which records any Authorization header it receives.
#[derive(Clone, Copy, PartialEq)]
enum Blobs {
    /// Serve them as they are.
    Intact,
    /// Flip a bit in each.
    Corrupt,
    /// Send half of each (non-Range) blob response, then close the connection.
    Cut,
}

fn proxy(reg: &Registry, log: Arc<Mutex<Log>>, blobs: Blobs) -> Proxy {
    let stop = Arc::new(AtomicBool::new(false));
    let storage = TcpListener::bind("127.0.0.2:0").unwrap();
    let storage_addr = storage.local_addr().unwrap().to_string();
    let upstream_addr = reg.addr.clone();
    let basic = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
        )
    };
    let (l2, b2, u2) = (log.clone(), basic.clone(), upstream_addr.clone());
    serve(storage, stop.clone(), move |s, req| {
        {
            let mut g = l2.lock().unwrap();
            g.storage_hits += 1;
            if let Some((_, v)) = req.headers.iter().find(|(k, _)| k == "authorization") {
                g.storage_auth.push(v.clone());
            }
        }
        let (st, hs, mut body) = upstream(&u2, &req, Some(&b2));
        let ranged = req.headers.iter().any(|(k, _)| k == "range");
        if ranged {
            l2.lock().unwrap().ranges += 1;
        }
        if blobs == Blobs::Corrupt && !body.is_empty() {
            let n = body.len() - 1;
            body[n] ^= 0x55;
        }
        if blobs == Blobs::Cut && !ranged && body.len() > 1000 {
            // Promise the whole body, deliver half, hang up: a broken connection.
            let mut out = format!(
                "HTTP/1.1 {st} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(&body[..body.len() / 2]);
            let mut w = s;
            let _ = w.write_all(&out);
            let _ = w.flush();
            let _ = s.shutdown(std::net::Shutdown::Both);
            return;
        }
        respond(s, st, &hs, &body);
    });
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = front.local_addr().unwrap().to_string();
    serve(front, stop.clone(), move |s, req| {
        let client_auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|x| x.1.clone());
        let n = {
            let mut g = log.lock().unwrap();
            let c = g.seen.entry(req.path.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let answer = |st: u16, log: &Arc<Mutex<Log>>| {
            log.lock().unwrap().requests.push((req.path.clone(), st))
        };
        if req.path.contains("/manifests/") && n == 1 {
            answer(429, &log);
            return respond(
                s,
                429,
                &[("Retry-After".into(), "1".into())],
                br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
            );
        }
        if req.path.contains("/blobs/") && n == 1 {
            answer(503, &log);
            return respond(s, 503, &[], b"");
        }
        if req.path.contains("/blobs/") && client_auth.is_some() {
            answer(307, &log);
            return respond(
                s,
                307,
                &[(
                    "Location".into(),
                    format!("http://{storage_addr}{}", req.path),
                )],
                b"",
            );
        }
        let (st, hs, body) = upstream(&upstream_addr, &req, client_auth.as_deref());
        answer(st, &log);
        respond(s, st, &hs, &body);
    });
    Proxy { addr, stop }
}

/// Incompressible bytes, so blobs are big enough to cut in half.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn setup() -> (Registry, BuiltImage, tempfile::TempDir) {
    let reg = Registry::start(Auth::Basic);
    let mut layout = Layout::new();
    let img = layout.image(
        &[
            (
                tar_of(&[E::File("one", noise(1, 100_000), 0o644, 0, 0)]),
                Comp::Gzip,
            ),
            (
                tar_of(&[E::File("two", noise(2, 100_000), 0o644, 0, 0)]),
                Comp::Zstd,
            ),
        ],
        "amd64",
    );
    layout.tag_manifest(&img, "v1");
    reg.push(layout.path(), "v1", "quirks/app", false);
    let dir = tempfile::tempdir().unwrap();
    (reg, img, dir)
}

fn opts(dir: &std::path::Path, with_creds: bool) -> PullOptions {
    let creds = CredentialStore {
        auth_file: dir.join("auth.json"),
        docker_config: None,
        given: None,
    };
    if with_creds {
        creds
            .store(
                "127.0.0.1",
                &Credentials {
                    username: USER.into(),
                    password: PASS.into(),
                },
            )
            .unwrap();
    }
    PullOptions {
        platform: None,
        insecure: Insecure::default(),
        credentials: creds,
        jobs: 2,
    }
}

#[test]
fn retries_on_429_and_503_and_never_sends_credentials_to_a_redirect_host() {
    let (reg, img, dir) = setup();
    let log = Arc::new(Mutex::new(Log::default()));
    let px = proxy(&reg, log.clone(), Blobs::Intact);
    let o = opts(dir.path(), false);
    // Credentials are keyed by host:port of the proxy.
    o.credentials
        .store(
            &px.addr,
            &Credentials {
                username: USER.into(),
                password: PASS.into(),
            },
        )
        .unwrap();
    let mut st = ImageStore::open(&dir.path().join("store")).unwrap();
    let r = Reference::parse(&format!("{}/quirks/app:v1", px.addr)).unwrap();
    let rec = st.pull(&r, &o, &NoProgress).unwrap();
    assert_eq!(rec.id, img.config_digest);
    let g = log.lock().unwrap();
    assert!(g.requests.iter().any(|(_, s)| *s == 429), "429 was served");
    assert!(
        g.requests.iter().filter(|(_, s)| *s == 503).count() >= 3,
        "503 was served for config and layers"
    );
    assert!(
        g.requests.iter().any(|(_, s)| *s == 307),
        "blobs were redirected"
    );
    assert!(
        g.storage_hits >= 3,
        "blobs fetched from the redirect target"
    );
    assert!(
        g.storage_auth.is_empty(),
        "credentials leaked to another host: {:?}",
        g.storage_auth
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_not_stored() {
    let (reg, img, dir) = setup();
    let log = Arc::new(Mutex::new(Log::default()));
    let px = proxy(&reg, log, Blobs::Corrupt);
    let o = opts(dir.path(), false);
    o.credentials
        .store(
            &px.addr,
            &Credentials {
                username: USER.into(),
                password: PASS.into(),
            },
        )
        .unwrap();
    let store = dir.path().join("store");
    let mut st = ImageStore::open(&store).unwrap();
    let r = Reference::parse(&format!("{}/quirks/app:v1", px.addr)).unwrap();
    let e = st.pull(&r, &o, &NoProgress).unwrap_err().to_string();
    assert!(
        e.contains(&img.config_digest.to_string())
            || img.layer_digests.iter().any(|d| e.contains(&d.to_string())),
        "names the blob: {e}"
    );
    assert!(
        e.contains("expected") || e.contains("digest") || e.contains("layer"),
        "{e}"
    );
    for sub in ["layers", "tmp", "ingest"] {
        assert_eq!(
            std::fs::read_dir(store.join(sub)).unwrap().count(),
            0,
            "{sub} not empty"
        );
    }
    for b in &img.layer_digests {
        assert!(!store.join("blobs/sha256").join(b.hex()).exists());
    }
}

#[test]
fn a_broken_blob_download_resumes_with_range() {
    let (reg, img, dir) = setup();
    let log = Arc::new(Mutex::new(Log::default()));
    let px = proxy(&reg, log.clone(), Blobs::Cut);
    let o = opts(dir.path(), false);
    o.credentials
        .store(
            &px.addr,
            &Credentials {
                username: USER.into(),
                password: PASS.into(),
            },
        )
        .unwrap();
    let mut st = ImageStore::open(&dir.path().join("store")).unwrap();
    let r = Reference::parse(&format!("{}/quirks/app:v1", px.addr)).unwrap();
    let rec = st.pull(&r, &o, &NoProgress).unwrap();
    assert_eq!(rec.id, img.config_digest);
    assert!(
        log.lock().unwrap().ranges >= 2,
        "both layers resumed with Range"
    );
    for d in &img.layer_digests {
        let data = std::fs::read(dir.path().join("store/blobs/sha256").join(d.hex())).unwrap();
        assert_eq!(&oxcart_image::Digest::sha256_of(&data), d);
    }
}

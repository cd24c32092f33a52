//! Test harness: a real `docker-registry` on 127.0.0.1 (plain, htpasswd, or behind a
//! small bearer-token server), OCI image layouts built from tar entries we control, pushed
//! with `skopeo copy`, and tree dumps for differential comparison with `umoci unpack`.
#![allow(dead_code, clippy::unwrap_used)]

use oxcart_image::digest::Digest;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const USER: &str = "tester";
pub const PASS: &str = "s3cret-pass";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Inodes of the TCP sockets listening on `port` (any local address, v4 or v6),
/// from /proc/net/tcp{,6}.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut v = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for l in text.lines().skip(1) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if cols.len() < 10 || cols[3] != "0A" {
                continue;
            }
            let p = cols[1]
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if p == Some(port) {
                if let Ok(ino) = cols[9].parse() {
                    v.push(ino);
                }
            }
        }
    }
    v
}

/// Whether process `pid` holds one of the sockets listening on `port`: `None` when
/// nothing listens on it (any more), so the answer is not known yet.
fn listener_is(pid: u32, port: u16) -> Option<bool> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let mine = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten().any(|e| {
                std::fs::read_link(e.path()).is_ok_and(|t| {
                    let t = t.to_string_lossy();
                    inodes.iter().any(|i| t == format!("socket:[{i}]"))
                })
            })
        })
        .unwrap_or(false);
    Some(mine)
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[derive(Clone, Copy, PartialEq)]
pub enum Auth {
    None,
    Basic,
    Token,
}

/// A docker-registry process (and token server thread), killed on drop.
pub struct Registry {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
    token_stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    pub auth: Auth,
    /// CA certificate (PEM) of a TLS registry.
    pub ca: Option<PathBuf>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(s) = &self.token_stop {
            s.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        Self::start_with(auth, false)
    }

    /// A registry serving HTTPS with a certificate for 127.0.0.1 from a fresh test CA.
    pub fn start_tls(auth: Auth) -> Registry {
        Self::start_with(auth, true)
    }

    fn start_with(auth: Auth, tls: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut tls_cfg = String::new();
        let mut ca = None;
        if tls {
            let d = dir.path();
            run(Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=oxcart-test-ca",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ])
                .arg("-keyout")
                .arg(d.join("ca.key"))
                .arg("-out")
                .arg(d.join("ca.pem")));
            run(Command::new("openssl")
                .args([
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                ])
                .arg("-keyout")
                .arg(d.join("srv.key"))
                .arg("-out")
                .arg(d.join("srv.csr")));
            std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
            run(Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                .arg("-in")
                .arg(d.join("srv.csr"))
                .arg("-CA")
                .arg(d.join("ca.pem"))
                .arg("-CAkey")
                .arg(d.join("ca.key"))
                .arg("-extfile")
                .arg(d.join("ext.cnf"))
                .arg("-out")
                .arg(d.join("srv.pem")));
            tls_cfg = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("srv.pem").display(),
                d.join("srv.key").display()
            );
            ca = Some(d.join("ca.pem"));
        }
        let mut auth_cfg = String::new();
        let mut token_stop = None;
        match auth {
            Auth::None => {}
            Auth::Basic => {
                let h = run(Command::new("htpasswd").args(["-Bbn", USER, PASS]));
                std::fs::write(dir.path().join("htpasswd"), h).unwrap();
                auth_cfg = format!(
                    "auth:\n  htpasswd:\n    realm: oxcart-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                );
            }
            Auth::Token => {
                let (realm, stop) = TokenServer::start(dir.path());
                token_stop = Some(stop);
                auth_cfg = format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: oxcart-test\n    issuer: oxcart-test-issuer\n    rootcertbundle: {}\n",
                    dir.path().join("cert.pem").display()
                );
            }
        }
        // The free port may be taken again before the registry binds it (tests run in
        // parallel, each starting registries): if the registry exits, or the port
        // answers but the listener is another process (our registry is about to fail
        // its bind), try another port. A connect alone could reach another test's
        // registry.
        for _attempt in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let cfg = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{tls_cfg}{auth_cfg}",
                dir.path().join("data").display()
            );
            let cfg_path = dir.path().join("config.yml");
            std::fs::write(&cfg_path, cfg).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry (apt install docker-registry)");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    eprintln!(
                        "docker-registry on {addr} exited ({status}), retrying: {}",
                        std::fs::read_to_string(dir.path().join("registry.log"))
                            .unwrap_or_default()
                    );
                    break;
                }
                if TcpStream::connect(&addr).is_ok() {
                    // Still running after the connect, and holding the listener itself.
                    let alive = child.try_wait().unwrap().is_none();
                    match listener_is(child.id(), port) {
                        Some(true) if alive => {
                            return Registry {
                                addr,
                                child,
                                _dir: dir,
                                token_stop,
                                auth,
                                ca,
                            };
                        }
                        Some(false) => {
                            eprintln!("port {port} is another process's; retrying");
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        // Exited (reported at the top of the loop) or the listener
                        // just went away: look again.
                        _ => {}
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("registry did not start on {addr}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("docker-registry failed to start 5 times");
    }

    /// Push an OCI layout `dir:tag` to `<addr>/<repo>:<tag>` with skopeo.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str, all: bool) {
        self.push_as(layout, tag, repo, all, None)
    }

    /// Push, optionally converting to a manifest format (`v2s2` = Docker media types).
    pub fn push_as(&self, layout: &Path, tag: &str, repo: &str, all: bool, format: Option<&str>) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some(f) = format {
            c.arg(format!("--format={f}"));
        }
        if all {
            c.arg("--all");
        }
        if self.auth != Auth::None {
            c.arg(format!("--dest-creds={USER}:{PASS}"));
        }
        // Keep our compression exactly as built (zstd stays zstd).
        if format.is_none() {
            c.arg("--preserve-digests");
        }
        c.arg(format!("oci:{}:{tag}", layout.display()));
        c.arg(format!("docker://{}/{repo}:{tag}", self.addr));
        run(&mut c);
    }
}

// ---------------------------------------------------------------- token server

struct TokenServer;

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenServer {
    /// Generate a P-256 key and self-signed cert, and serve `/token` (Docker token
    /// spec): ES256 JWTs with the cert in `x5c`, granting what was asked for only to
    /// requests carrying the right Basic credentials.
    fn start(dir: &Path) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=oxcart-token",
            ])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")));
        run(Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"])
            .arg("-in")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("key.der")));
        run(Command::new("openssl")
            .args(["x509", "-outform", "DER"])
            .arg("-in")
            .arg(dir.join("cert.pem"))
            .arg("-out")
            .arg(dir.join("cert.der")));
        let key_der = std::fs::read(dir.join("key.der")).unwrap();
        let cert_der = std::fs::read(dir.join("cert.der")).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_der,
            &rng,
        )
        .unwrap();
        use base64::Engine as _;
        let x5c = base64::engine::general_purpose::STANDARD.encode(&cert_der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                let (stream, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                n += 1;
                let _ = stream.set_nonblocking(false);
                let _ = Self::serve(stream, &key, &rng, &x5c, n);
            }
        });
        (realm, stop)
    }

    fn serve(
        stream: TcpStream,
        key: &ring::signature::EcdsaKeyPair,
        rng: &ring::rand::SystemRandom,
        x5c: &str,
        n: u64,
    ) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut r = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut authorized = false;
        let mut bad_credentials = false;
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            if h.trim().is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or(("", ""));
            if k.eq_ignore_ascii_case("authorization") {
                use base64::Engine as _;
                let v = v.trim();
                if let Some(b) = v.strip_prefix("Basic ") {
                    let dec = base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .unwrap_or_default();
                    authorized = dec == format!("{USER}:{PASS}").as_bytes();
                    bad_credentials = !authorized;
                }
            }
        }
        if bad_credentials {
            // Like real token servers: wrong credentials are an error, not anonymous access.
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
            let mut w = stream;
            write!(w, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
            return Ok(());
        }
        let query = target.split_once('?').map(|x| x.1).unwrap_or("");
        let mut service = String::new();
        let mut access = Vec::new();
        for kv in query.split('&') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = pct_decode(v);
            match k {
                "service" => service = v,
                "scope" if authorized => {
                    for scope in v.split(' ') {
                        let parts: Vec<&str> = scope.split(':').collect();
                        if parts.len() == 3 {
                            access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                        }
                    }
                }
                _ => {}
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": "oxcart-test-issuer", "sub": if authorized { USER } else { "" }, "aud": service,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("t{n}"), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = key.sign(rng, signing_input.as_bytes()).unwrap();
        let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
        let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
        let mut w = stream;
        write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
        Ok(())
    }
}

// ---------------------------------------------------------------- image building

#[derive(Clone)]
pub enum E {
    Dir(&'static str, u32, u32, u32),
    File(&'static str, Vec<u8>, u32, u32, u32),
    FileX(
        &'static str,
        Vec<u8>,
        u32,
        Vec<(&'static str, &'static [u8])>,
    ),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    Char(&'static str, u32, u32),
    Fifo(&'static str),
    /// A raw name and type with no validation, for malicious layers.
    Raw(Vec<u8>, tar::EntryType, Vec<u8>, Vec<u8>),
}

fn header(
    name: &[u8],
    ty: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    link: &[u8],
) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let g = h.as_gnu_mut().unwrap();
        assert!(name.len() < 100 && link.len() < 100);
        g.name[..name.len()].copy_from_slice(name);
        g.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_uid(uid as u64);
    h.set_gid(gid as u64);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

pub fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(p, m, u, g) => b
                .append(
                    &header(p.as_bytes(), tar::EntryType::Directory, *m, *u, *g, 0, b""),
                    &[][..],
                )
                .unwrap(),
            E::File(p, data, m, u, g) => b
                .append(
                    &header(
                        p.as_bytes(),
                        tar::EntryType::Regular,
                        *m,
                        *u,
                        *g,
                        data.len() as u64,
                        b"",
                    ),
                    &data[..],
                )
                .unwrap(),
            E::FileX(p, data, m, x) => {
                let pax: Vec<(String, &[u8])> = x
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                    .collect();
                b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                    .unwrap();
                b.append(
                    &header(
                        p.as_bytes(),
                        tar::EntryType::Regular,
                        *m,
                        0,
                        0,
                        data.len() as u64,
                        b"",
                    ),
                    &data[..],
                )
                .unwrap()
            }
            E::Symlink(p, t) => b
                .append(
                    &header(
                        p.as_bytes(),
                        tar::EntryType::Symlink,
                        0o777,
                        0,
                        0,
                        0,
                        t.as_bytes(),
                    ),
                    &[][..],
                )
                .unwrap(),
            E::Hardlink(p, t) => b
                .append(
                    &header(
                        p.as_bytes(),
                        tar::EntryType::Link,
                        0o644,
                        0,
                        0,
                        0,
                        t.as_bytes(),
                    ),
                    &[][..],
                )
                .unwrap(),
            E::Char(p, maj, min) => {
                let mut h = header(p.as_bytes(), tar::EntryType::Char, 0o666, 0, 0, 0, b"");
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap()
            }
            E::Fifo(p) => b
                .append(
                    &header(p.as_bytes(), tar::EntryType::Fifo, 0o640, 0, 0, 0, b""),
                    &[][..],
                )
                .unwrap(),
            E::Raw(name, ty, link, data) => b
                .append(
                    &header(name, *ty, 0o644, 0, 0, data.len() as u64, link),
                    &data[..],
                )
                .unwrap(),
        }
    }
    b.into_inner().unwrap()
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Comp {
    Plain,
    Gzip,
    Zstd,
}

pub fn compress(data: &[u8], c: Comp) -> (Vec<u8>, &'static str) {
    match c {
        Comp::Plain => (data.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            (
                e.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Comp::Zstd => (
            zstd::encode_all(data, 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// An OCI image layout on disk.
pub struct Layout {
    pub dir: tempfile::TempDir,
    index: Vec<serde_json::Value>,
}

pub struct BuiltImage {
    pub manifest: serde_json::Value,
    pub manifest_digest: Digest,
    pub manifest_size: usize,
    pub config_digest: Digest,
    pub layer_digests: Vec<Digest>,
    pub diff_ids: Vec<Digest>,
}

impl Layout {
    pub fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout {
            dir,
            index: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob(&self, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        std::fs::write(self.dir.path().join("blobs/sha256").join(d.hex()), data).unwrap();
        d
    }

    /// Write an image (layers as raw tars, compressed as given) and return its manifest.
    pub fn image(&self, layers: &[(Vec<u8>, Comp)], arch: &str) -> BuiltImage {
        self.image_with(
            layers,
            arch,
            serde_json::json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}),
        )
    }

    /// The same with a given image `config` section (Env, Cmd, User, Labels, …).
    pub fn image_with(
        &self,
        layers: &[(Vec<u8>, Comp)],
        arch: &str,
        image_config: serde_json::Value,
    ) -> BuiltImage {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        let mut layer_digests = Vec::new();
        for (tar, c) in layers {
            diff_ids.push(Digest::sha256_of(tar));
            let (blob, mt) = compress(tar, *c);
            let d = self.blob(&blob);
            layer_digests.push(d.clone());
            descs.push(
                serde_json::json!({"mediaType": mt, "digest": d.to_string(), "size": blob.len()}),
            );
        }
        let config = serde_json::json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": arch, "os": "linux",
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
            "history": [],
        });
        let cb = serde_json::to_vec(&config).unwrap();
        let cd = self.blob(&cb);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cb.len()},
            "layers": descs,
        });
        let mb = serde_json::to_vec(&manifest).unwrap();
        let md = self.blob(&mb);
        BuiltImage {
            manifest,
            manifest_digest: md,
            manifest_size: mb.len(),
            config_digest: cd,
            layer_digests,
            diff_ids,
        }
    }

    pub fn tag_manifest(&mut self, img: &BuiltImage, tag: &str) {
        self.index.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.manifest_digest.to_string(), "size": img.manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
    }

    /// Tag a nested image index over several platform images.
    pub fn tag_index(&mut self, imgs: &[(&BuiltImage, &str, Option<&str>)], tag: &str) -> Digest {
        let manifests: Vec<_> = imgs
            .iter()
            .map(|(i, arch, variant)| {
                let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
                if let Some(v) = variant {
                    p["variant"] = serde_json::json!(v);
                }
                serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": i.manifest_digest.to_string(), "size": i.manifest_size, "platform": p})
            })
            .collect();
        let idx = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let b = serde_json::to_vec(&idx).unwrap();
        let d = self.blob(&b);
        self.index.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d.to_string(), "size": b.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
        d
    }

    fn write_index(&self) {
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": self.index});
        std::fs::write(
            self.dir.path().join("index.json"),
            serde_json::to_vec(&idx).unwrap(),
        )
        .unwrap();
    }
}

/// busybox from busybox-static, for a realistic base layer.
pub fn busybox() -> Vec<u8> {
    std::fs::read("/bin/busybox").expect("/bin/busybox (apt install busybox-static)")
}

// ---------------------------------------------------------------- tree dumps

/// One line per path: type, mode, owner, size/content hash, link target, device, xattrs.
/// Overlay's own xattrs are excluded (the merged view hides them anyway).
pub fn dump_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 65536];
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut v = Vec::new();
    for name in buf[..n as usize]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
    {
        let key = String::from_utf8_lossy(name).into_owned();
        if key.starts_with("trusted.overlay.") {
            continue;
        }
        let kc = std::ffi::CString::new(name).unwrap();
        let mut val = vec![0u8; 65536];
        let m =
            unsafe { libc::lgetxattr(c.as_ptr(), kc.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        if m >= 0 {
            val.truncate(m as usize);
            v.push((key, val));
        }
    }
    v.sort();
    v
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let kind = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("symlink->{}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let mut f = std::fs::File::open(&p).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            format!(
                "file size={} {}",
                data.len(),
                Digest::sha256_of(&data).short()
            )
        } else if ft.is_char_device() {
            format!("char {}:{}", libc::major(md.rdev()), libc::minor(md.rdev()))
        } else if ft.is_block_device() {
            format!(
                "block {}:{}",
                libc::major(md.rdev()),
                libc::minor(md.rdev())
            )
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            md.mode() & 0o7777
        };
        let xa: Vec<String> = xattrs(&p)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(&v)))
            .collect();
        out.insert(
            rel,
            format!(
                "{kind} mode={mode:o} owner={}:{} xattrs=[{}]",
                md.uid(),
                md.gid(),
                xa.join(",")
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Mount the layers (base first) with overlayfs in a private mount namespace owned by
/// a helper thread, dump the merged tree, and return it. The namespace (and the mount)
/// disappear with the thread, so nothing leaks into the host's mount table.
pub fn overlay_dump(layers: &[PathBuf]) -> BTreeMap<String, String> {
    let layers = layers.to_vec();
    std::thread::spawn(move || {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, work, merged) = (
            tmp.path().join("u"),
            tmp.path().join("w"),
            tmp.path().join("m"),
        );
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d).unwrap();
        }
        unsafe {
            // unshare(CLONE_NEWNS) affects only this thread (it also unshares CLONE_FS).
            assert_eq!(
                libc::unshare(libc::CLONE_NEWNS),
                0,
                "unshare: {}",
                std::io::Error::last_os_error()
            );
            let root = std::ffi::CString::new("/").unwrap();
            assert_eq!(
                libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0
            );
        }
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        let src = std::ffi::CString::new("overlay").unwrap();
        let tgt = std::ffi::CString::new(merged.as_os_str().as_bytes()).unwrap();
        let o = std::ffi::CString::new(opts).unwrap();
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                tgt.as_ptr(),
                src.as_ptr(),
                0,
                o.as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mount overlay: {}", std::io::Error::last_os_error());
        let d = dump_tree(&merged);
        unsafe {
            libc::umount2(tgt.as_ptr(), libc::MNT_DETACH);
        }
        d
    })
    .join()
    .unwrap()
}

/// `umoci unpack` of `layout:tag`, dumped.
pub fn umoci_dump(layout: &Path, tag: &str) -> BTreeMap<String, String> {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle));
    dump_tree(&bundle.join("rootfs"))
}

pub fn assert_same_tree(ours: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) {
    let mut diffs = Vec::new();
    for (k, v) in theirs {
        match ours.get(k) {
            None => diffs.push(format!("missing in ours: {k} ({v})")),
            Some(o) if o != v => diffs.push(format!("{k}:\n   ours:  {o}\n   umoci: {v}")),
            _ => {}
        }
    }
    for k in ours.keys() {
        if !theirs.contains_key(k) {
            diffs.push(format!("extra in ours: {k} ({})", ours[k]));
        }
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
}

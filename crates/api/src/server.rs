//! The accept loop: one hyper HTTP/1 connection per client (upgrades allowed, for
//! attach and exec), the idle timer of `--time`, and the state requests share.

use crate::http::{ApiError, ApiResult};
use crate::listen::{self, Listen, ListenError};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use oxcart_engine::{Engine, Layout};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `oxcart system service` was told.
#[derive(Clone)]
pub struct ServiceOptions {
    pub listen: Listen,
    /// Exit after this long without a connection; `None`: never.
    pub idle: Option<Duration>,
    /// The group the unix socket is given (mode 0660); else root's.
    pub group: Option<String>,
    pub layout: Layout,
    /// The engine's config file (`--config`), read per request as the CLI reads it.
    pub config_file: Option<PathBuf>,
    /// Registries and credentials for pulls.
    pub pull: oxcart_image::pull::PullOptions,
}

/// Shared by every request.
pub struct State {
    pub opts: ServiceOptions,
    /// Attach (and wait) requests for a container that is not running yet, by id:
    /// `start` connects each to the monitor before releasing the container, so none
    /// loses output (docker's attach-before-start).
    pub waiters: Mutex<
        HashMap<String, Vec<tokio::sync::oneshot::Sender<oxcart_engine::attach::AttachConn>>>,
    >,
    /// Exec instances (docker keeps them in the daemon's memory too).
    pub execs: Mutex<HashMap<String, Arc<crate::exec::ExecInstance>>>,
    active: AtomicUsize,
    idle_changed: tokio::sync::Notify,
    /// Engines (their database connections) idle between requests.
    pool: Arc<Mutex<Vec<Engine>>>,
}

/// Engines kept idle at most: the blocking pool rarely runs more at once.
const POOL_MAX: usize = 4;

/// An engine lent to one request; back to the pool when dropped.
pub struct PooledEngine {
    engine: Option<Engine>,
    pool: Arc<Mutex<Vec<Engine>>>,
}

impl std::ops::Deref for PooledEngine {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        // Some until drop.
        self.engine.as_ref().expect("engine present until drop")
    }
}

impl std::ops::DerefMut for PooledEngine {
    fn deref_mut(&mut self) -> &mut Engine {
        self.engine.as_mut().expect("engine present until drop")
    }
}

impl Drop for PooledEngine {
    fn drop(&mut self) {
        // A request that panicked may have left its connection mid-transaction.
        if std::thread::panicking() {
            return;
        }
        if let (Some(e), Ok(mut p)) = (self.engine.take(), self.pool.lock()) {
            if p.len() < POOL_MAX {
                p.push(e);
            }
        }
    }
}

impl State {
    pub fn new(opts: ServiceOptions) -> State {
        State {
            opts,
            waiters: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            idle_changed: tokio::sync::Notify::new(),
            pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The engine, with the config read now as the CLI reads it per command. Its
    /// database connection is reused from an earlier request when one is idle:
    /// opening one (WAL mode, schema check) was a sixth of a 100-container listing.
    pub fn engine(&self) -> ApiResult<PooledEngine> {
        let cfg = oxcart_engine::config::EngineConfig::load(self.opts.config_file.as_deref())?;
        let idle = self.pool.lock().ok().and_then(|mut p| p.pop());
        let engine = match idle {
            Some(mut e) => {
                e.recycle(cfg);
                e
            }
            None => Engine::open(self.opts.layout.clone(), cfg)?,
        };
        Ok(PooledEngine {
            engine: Some(engine),
            pool: self.pool.clone(),
        })
    }

    /// The journal's image events (as the CLI's image verbs write them).
    pub fn image_events(&self) -> oxcart_engine::events::ImageEvents {
        let cfg = oxcart_engine::config::EngineConfig::load(self.opts.config_file.as_deref())
            .unwrap_or_default();
        oxcart_engine::events::ImageEvents::new(&self.opts.layout, &cfg)
    }

    pub fn images(&self) -> ApiResult<oxcart_image::ImageStore> {
        Ok(oxcart_image::ImageStore::open(&self.opts.layout.root)?)
    }

    /// The attach requests waiting for this container to start.
    pub fn take_waiters(
        &self,
        id: &str,
    ) -> Vec<tokio::sync::oneshot::Sender<oxcart_engine::attach::AttachConn>> {
        self.waiters
            .lock()
            .map(|mut w| w.remove(id).unwrap_or_default())
            .unwrap_or_default()
    }
}

/// Run `f` (engine work: files, SQLite, processes) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("internal error: {e}")))?
}

/// Counts a connection as active while it lives.
struct ActiveGuard(Arc<State>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle_changed.notify_one();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("starting the service's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("accepting a connection: {0}")]
    Accept(#[source] std::io::Error),
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    fn open(opts: &ServiceOptions) -> Result<Listener, ServeError> {
        let io = |source| ListenError::Io {
            path: PathBuf::from("listener"),
            source,
        };
        Ok(match &opts.listen {
            Listen::Unix(p) => {
                let l = listen::bind_unix(p, opts.group.as_deref())?;
                l.set_nonblocking(true).map_err(io)?;
                Listener::Unix(tokio::net::UnixListener::from_std(l).map_err(io)?)
            }
            Listen::Tcp(a) => {
                let l = std::net::TcpListener::bind(a).map_err(|source| ListenError::Io {
                    path: PathBuf::from(a.to_string()),
                    source,
                })?;
                l.set_nonblocking(true).map_err(io)?;
                Listener::Tcp(tokio::net::TcpListener::from_std(l).map_err(io)?)
            }
            Listen::Activated => {
                let fd = listen::take_activated()?;
                if listen::is_unix_socket(&fd) {
                    let l = std::os::unix::net::UnixListener::from(fd);
                    l.set_nonblocking(true).map_err(io)?;
                    Listener::Unix(tokio::net::UnixListener::from_std(l).map_err(io)?)
                } else {
                    let l = std::net::TcpListener::from(fd);
                    l.set_nonblocking(true).map_err(io)?;
                    Listener::Tcp(tokio::net::TcpListener::from_std(l).map_err(io)?)
                }
            }
        })
    }
}

/// Serve until idle for `opts.idle` (never, if `None`). Binds before returning any
/// error, so a caller knows the socket is taken.
pub fn serve(opts: ServiceOptions) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(128)
        .build()
        .map_err(ServeError::Runtime)?;
    rt.block_on(async move {
        let listener = Listener::open(&opts)?;
        let idle = opts.idle;
        tokio::spawn(reap_proxies());
        let state = Arc::new(State::new(opts));
        loop {
            let idle_sleep = async {
                match idle {
                    Some(d) if state.active.load(Ordering::SeqCst) == 0 => {
                        tokio::time::sleep(d).await
                    }
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                r = accept(&listener) => {
                    let Some(io) = r? else { continue };
                    state.active.fetch_add(1, Ordering::SeqCst);
                    let guard = ActiveGuard(state.clone());
                    tokio::spawn(connection(io, state.clone(), guard));
                }
                () = idle_sleep => {
                    if state.active.load(Ordering::SeqCst) == 0 {
                        return Ok(());
                    }
                }
                () = state.idle_changed.notified() => {}
            }
        }
    })
}

/// The port proxies `start` spawns (`oxcart network-proxy`) and the trash removers
/// a removal spawns (`oxcart-trash`, crates/engine/src/trash.rs) are this process's
/// children, never waited for. The CLI exits and init reaps them; a long-lived
/// service must, or each would stay a zombie. Only children with those names are
/// reaped: the runtimes and monitors the engine waits for itself, and the execs
/// tokio waits for, are left alone.
async fn reap_proxies() {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let _ = tokio::task::spawn_blocking(reap_once).await;
    }
}

fn reap_once() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[a + 1..b];
            let zombie = stat[b + 1..].trim_start().starts_with('Z');
            if zombie && (comm == "oxcart" || comm == oxcart_engine::trash::REMOVER_COMM) {
                // SAFETY: a zombie child of ours, found by pid; WNOHANG never blocks.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
    }
}

/// A connection from either listener, boxed to one type for hyper.
type Conn = Box<dyn AsyncIo>;
trait AsyncIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> AsyncIo for T {}

async fn accept(l: &Listener) -> Result<Option<Conn>, ServeError> {
    let r: std::io::Result<Conn> = match l {
        Listener::Unix(u) => u.accept().await.map(|(s, _)| Box::new(s) as Conn),
        Listener::Tcp(t) => t.accept().await.map(|(s, _)| Box::new(s) as Conn),
    };
    match r {
        Ok(c) => Ok(Some(c)),
        // A client that gave up before we took it, or a momentary fd shortage: the
        // service goes on.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ECONNABORTED | libc::EMFILE | libc::ENFILE | libc::EINTR)
            ) =>
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(None)
        }
        Err(e) => Err(ServeError::Accept(e)),
    }
}

/// Request headers beyond this are refused (hyper answers 431): docker's clients
/// send a few hundred bytes; an attacker's megabyte of headers costs nothing.
const MAX_HEADER_BUF: usize = 64 * 1024;

async fn connection(io: Conn, state: Arc<State>, _guard: ActiveGuard) {
    let svc = service_fn(move |req| {
        let st = state.clone();
        async move { Ok::<_, std::convert::Infallible>(crate::router::route(st, req).await) }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.max_header_size(MAX_HEADER_BUF).max_headers(128);
    let _ = b
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await;
}

//! Pull: resolve a reference to a manifest (picking a platform from an index), fetch the
//! config, then fetch and unpack layers concurrently. Each layer is streamed once:
//! the compressed bytes are teed into the blob store while being decompressed and
//! extracted, and nothing is made visible until the blob digest, its size and the
//! DiffID all check out.

use crate::auth::CredentialStore;
use crate::db::{Db, ImageRecord, LayerRef};
use crate::digest::{chain_ids, Digest};
use crate::images::{Error, ImageStore};
use crate::oci::{self, Compression, Descriptor, ImageConfig, Manifest, ManifestKind, Platform};
use crate::reference::Reference;
use crate::registry::{Client, Insecure, ResumingBlob};
use crate::store::{Ingest, Store};
use crate::unpack::{remove_tree, unpack_layer};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a layer is doing, for progress display.
#[derive(Debug, Clone, Copy)]
pub enum LayerState {
    /// Queued.
    Waiting,
    /// Already in the layer store; nothing to do.
    Exists,
    /// Bytes flowing: read (and unpacked as they arrive) so far, of total.
    Downloading {
        /// Compressed bytes read so far.
        done: u64,
        /// Compressed size.
        total: u64,
        /// From the registry (false: the blob was already stored, only unpacking).
        remote: bool,
    },
    /// Checking size, digest and DiffID, then moving into place.
    Verifying,
    /// Stored and unpacked.
    Done,
}

/// Receives progress events; called from several threads.
pub trait Progress: Sync {
    /// The reference resolved to a manifest.
    fn resolved(&self, _reference: &str, _manifest: &Digest, _platform: &str) {}
    /// The layer list is known.
    fn layers(&self, _layers: &[Descriptor]) {}
    /// A layer changed state.
    fn layer(&self, _layer: &Digest, _state: LayerState) {}
}

/// Progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Options for a pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Platform to pick from an index (default: the host).
    pub platform: Option<Platform>,
    /// Registries allowed over plain HTTP.
    pub insecure: Insecure,
    /// Where credentials come from.
    pub credentials: CredentialStore,
    /// Concurrent layer downloads (docker uses 3).
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            insecure: Insecure::default(),
            credentials: CredentialStore::default_locations(),
            jobs: 3,
        }
    }
}

/// Removes a temporary directory unless disarmed.
struct TmpDir(Option<PathBuf>);
impl Drop for TmpDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = remove_tree(&p);
        }
    }
}

/// Reads the blob source and tees the bytes into the blob store, reporting progress.
struct Tee<'a> {
    src: Box<dyn Read + Send + 'a>,
    sink: Option<Ingest>,
    done: u64,
    total: u64,
    reported: u64,
    progress: &'a dyn Progress,
    digest: &'a Digest,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read(buf)?;
        if let Some(s) = &mut self.sink {
            s.write_all(&buf[..n])?;
        }
        self.done += n as u64;
        if self.done - self.reported >= (512 << 10) || (n == 0 && self.done != self.reported) {
            self.reported = self.done;
            self.progress.layer(
                self.digest,
                LayerState::Downloading {
                    done: self.done,
                    total: self.total,
                    remote: self.sink.is_some(),
                },
            );
        }
        Ok(n)
    }
}

/// A function giving a reader over a blob's (compressed) bytes.
pub type BlobSource<'a> =
    dyn Fn(&Descriptor) -> Result<Box<dyn Read + Send + 'a>, Error> + Sync + 'a;

struct LayerJob<'a> {
    desc: &'a Descriptor,
    compression: Compression,
    diff_id: &'a Digest,
    chain: &'a Digest,
    parent: Option<&'a Digest>,
}

/// Fetch (if needed) and unpack (if needed) one layer. Returns its unpacked size.
fn install_layer(
    store: &Store,
    db: &Mutex<&mut Db>,
    job: &LayerJob<'_>,
    source: &BlobSource<'_>,
    progress: &dyn Progress,
    image: &str,
) -> Result<u64, Error> {
    let d = &job.desc.digest;
    // One process, one thread unpacks a given ChainID at a time; the others wait and
    // then find it done (the "two concurrent pulls store each layer once").
    let _k = store.key_lock(job.chain.hex())?;
    let dbl = |f: &mut dyn FnMut(&mut Db) -> Result<(), Error>| -> Result<(), Error> {
        let mut g = db
            .lock()
            .map_err(|_| Error::Conflict("database lock poisoned".into()))?;
        f(&mut g)
    };
    let mut exists = false;
    dbl(&mut |db| {
        exists = db.has_layer(job.chain)?;
        Ok(())
    })?;
    let dir = store.layer_path(job.chain);
    if exists && dir.is_dir() {
        if !store.has_blob(d) {
            // Keep the distributed blob too, so `save` can write the image back out.
            let mut r = source(job.desc)?;
            store.put_reader(d, Some(job.desc.size), &mut r)?;
        }
        progress.layer(d, LayerState::Exists);
        let mut size = 0;
        dbl(&mut |db| {
            size = db.layer_size(job.chain)?.unwrap_or(0);
            Ok(())
        })?;
        return Ok(size);
    }
    let tmp_path = store.tmp_path("layer");
    std::fs::create_dir(&tmp_path).map_err(crate::store::io_err(&tmp_path))?;
    // The layer root becomes the container's `/` unless the tar says otherwise: 0755
    // regardless of our umask.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(0o755))
            .map_err(crate::store::io_err(&tmp_path))?;
    }
    let mut tmp = TmpDir(Some(tmp_path.clone()));
    let have_blob = store.has_blob(d);
    let (src, sink): (Box<dyn Read + Send>, Option<Ingest>) = if have_blob {
        let p = store.blob_path(d);
        let f = std::fs::File::open(&p).map_err(crate::store::io_err(&p))?;
        (Box::new(f), None)
    } else {
        (
            source(job.desc)?,
            Some(store.ingest(d, Some(job.desc.size))?),
        )
    };
    let mut tee = Tee {
        src,
        sink,
        done: 0,
        total: job.desc.size,
        reported: 0,
        progress,
        digest: d,
    };
    let layer_name = format!("{d} of {image}");
    let unpacked = unpack_layer(Box::new(&mut tee), job.compression, &tmp_path, &layer_name)?;
    // The decompressor may stop before the end of the blob (trailing bytes after the
    // last frame): the blob digest covers every byte, so read the rest.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| crate::store::StoreError::Copy {
        what: format!("layer {layer_name}"),
        source: e,
    })?;
    progress.layer(d, LayerState::Verifying);
    if let Some(ing) = tee.sink.take() {
        ing.commit()?;
    }
    if &unpacked.diff_id != job.diff_id {
        return Err(Error::Invalid {
            image: image.to_string(),
            reason: format!(
                "layer {d}: uncompressed digest {} does not match the config's diff_id {}",
                unpacked.diff_id, job.diff_id
            ),
        });
    }
    if dir.exists() {
        // A directory without a database row: a previous run died between the rename
        // and the record. It is not trusted; replace it.
        remove_tree(&dir).map_err(crate::store::io_err(&dir))?;
    }
    std::fs::rename(&tmp_path, &dir).map_err(crate::store::io_err(&dir))?;
    tmp.0 = None;
    dbl(&mut |db| Ok(db.record_layer(job.chain, job.diff_id, job.parent, unpacked.size)?))?;
    progress.layer(d, LayerState::Done);
    Ok(unpacked.size)
}

/// What an image to be installed consists of.
pub(crate) struct NewImage<'a> {
    pub image: String,
    pub manifest: &'a Manifest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub index_digest: Option<Digest>,
    pub config: &'a [u8],
    pub names: Vec<(String, &'static str)>,
}

impl ImageStore {
    /// Install an image whose manifest and config are known: fetch/unpack the layers
    /// with up to `jobs` threads and record everything.
    pub(crate) fn install(
        &mut self,
        img: NewImage<'_>,
        source: &BlobSource<'_>,
        progress: &dyn Progress,
        jobs: usize,
    ) -> Result<ImageRecord, Error> {
        let invalid = |reason: String| Error::Invalid {
            image: img.image.clone(),
            reason,
        };
        let cfg: ImageConfig = serde_json::from_slice(img.config)
            .map_err(|e| invalid(format!("image config: {e}")))?;
        if cfg.rootfs.kind != "layers" {
            return Err(invalid(format!(
                "rootfs.type {:?} is not \"layers\"",
                cfg.rootfs.kind
            )));
        }
        if cfg.rootfs.diff_ids.len() != img.manifest.layers.len() {
            return Err(invalid(format!(
                "manifest has {} layers but the config lists {} diff_ids",
                img.manifest.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let config_digest = img.manifest.config.digest.clone();
        self.store.put_bytes(&config_digest, img.config)?;
        let mut comps = Vec::new();
        for l in &img.manifest.layers {
            comps.push(oci::layer_compression(&l.media_type).ok_or_else(|| {
                invalid(format!(
                    "layer {} has unsupported media type {:?}",
                    l.digest, l.media_type
                ))
            })?);
        }
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        let jobs_list: Vec<LayerJob> = (0..chains.len())
            .map(|i| LayerJob {
                desc: &img.manifest.layers[i],
                compression: comps[i],
                diff_id: &cfg.rootfs.diff_ids[i],
                chain: &chains[i],
                parent: i.checked_sub(1).map(|p| &chains[p]),
            })
            .collect();
        progress.layers(&img.manifest.layers);
        for j in &jobs_list {
            progress.layer(&j.desc.digest, LayerState::Waiting);
        }
        let sizes: Vec<Mutex<Option<Result<u64, Error>>>> =
            jobs_list.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        {
            let db = Mutex::new(&mut self.db);
            let store = &self.store;
            std::thread::scope(|s| {
                for _ in 0..jobs.clamp(1, jobs_list.len().max(1)) {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= jobs_list.len() || failed.load(Ordering::SeqCst) {
                            break;
                        }
                        let r =
                            install_layer(store, &db, &jobs_list[i], source, progress, &img.image);
                        if r.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        if let Ok(mut g) = sizes[i].lock() {
                            *g = Some(r);
                        }
                    });
                }
            });
        }
        let mut total = 0;
        for m in sizes {
            match m.into_inner().ok().flatten() {
                Some(Ok(s)) => total += s,
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if failed.load(Ordering::SeqCst) {
            return Err(invalid("a layer failed".into()));
        }
        let mut platform = format!("{}/{}", cfg.os, cfg.architecture);
        if let Some(v) = &cfg.variant {
            platform.push('/');
            platform.push_str(v);
        }
        let rec = ImageRecord {
            id: config_digest,
            manifest_digest: img.manifest_digest,
            manifest_media_type: img.manifest_media_type,
            index_digest: img.index_digest,
            platform,
            created: cfg.created.clone(),
            size: total,
            added: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            layers: jobs_list
                .iter()
                .map(|j| LayerRef {
                    chain_id: j.chain.clone(),
                    diff_id: j.diff_id.clone(),
                    blob: j.desc.digest.clone(),
                    media_type: j.desc.media_type.clone(),
                    blob_size: j.desc.size,
                })
                .collect(),
            tags: Vec::new(),
            digests: Vec::new(),
        };
        let names: Vec<(String, &str)> = img.names.iter().map(|(n, k)| (n.clone(), *k)).collect();
        self.db.put_image(&rec, &names)?;
        self.find(&rec.id.to_string())
    }

    /// Pull `reference` from its registry.
    pub fn pull(
        &mut self,
        reference: &Reference,
        opts: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<ImageRecord, Error> {
        let client = Client::new(reference, &opts.insecure, &opts.credentials)?;
        let want = opts.platform.clone().unwrap_or_else(Platform::host);
        let image = reference.to_string();
        let (mut bytes, mut ct, top) = client.manifest(&reference.manifest_ref())?;
        let mut digest = top.clone();
        let mut index_digest = None;
        // Nested indexes are allowed (image-index.md); bound the depth against loops.
        let mut depth = 0;
        loop {
            depth += 1;
            self.store.put_bytes(&digest, &bytes)?;
            let (kind, mt) =
                oci::parse_manifest(&bytes, ct.as_deref()).map_err(|source| Error::Manifest {
                    what: format!("{image} ({digest})"),
                    source,
                })?;
            match kind {
                ManifestKind::Manifest(m) => {
                    progress.resolved(&image, &digest, &want.to_string());
                    let config = self.fetch_config(&client, &m, &image)?;
                    if let Some(want) = &opts.platform {
                        // A single-platform image must still be what was asked for
                        // (docker: "does not match the specified platform").
                        if let Ok(c) = serde_json::from_slice::<ImageConfig>(&config) {
                            let have = Platform {
                                architecture: c.architecture,
                                os: c.os,
                                variant: c.variant,
                                os_version: None,
                                os_features: Vec::new(),
                            };
                            if !want.matches(&have) {
                                return Err(Error::Invalid {
                                    image,
                                    reason: format!(
                                        "image is for {have}, not the requested platform {want}"
                                    ),
                                });
                            }
                        }
                    }
                    let mut names = Vec::new();
                    if let Some(t) = reference.tagged() {
                        names.push((t, "tag"));
                    }
                    names.push((format!("{}@{}", reference.name(), top), "digest"));
                    let src = |d: &Descriptor| -> Result<Box<dyn Read + Send + '_>, Error> {
                        Ok(Box::new(ResumingBlob::open(&client, &d.digest)?))
                    };
                    let img = NewImage {
                        image: image.clone(),
                        manifest: &m,
                        manifest_digest: digest.clone(),
                        manifest_media_type: mt,
                        index_digest,
                        config: &config,
                        names,
                    };
                    return self.install(img, &src, progress, opts.jobs);
                }
                ManifestKind::Index(idx) => {
                    if depth > 4 {
                        return Err(Error::Invalid {
                            image,
                            reason: "index nesting deeper than 4".into(),
                        });
                    }
                    let pick = oci::select_platform(&idx, &want).ok_or_else(|| {
                        let have: Vec<String> = idx
                            .manifests
                            .iter()
                            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                            .collect();
                        Error::Invalid {
                            image: image.clone(),
                            reason: format!(
                                "no manifest for platform {want} (index offers: {})",
                                have.join(", ")
                            ),
                        }
                    })?;
                    if index_digest.is_none() {
                        index_digest = Some(digest.clone());
                    }
                    let (b, c, d) = client.manifest(&pick.digest.to_string())?;
                    if b.len() as u64 != pick.size {
                        return Err(Error::Invalid {
                            image,
                            reason: format!(
                                "manifest {} is {} bytes, the index says {}",
                                pick.digest,
                                b.len(),
                                pick.size
                            ),
                        });
                    }
                    bytes = b;
                    // Trust the descriptor's media type when the digest matched
                    // (media-types.md "Media Type Conflicts").
                    ct = Some(pick.media_type.clone()).or(c);
                    digest = d;
                }
            }
        }
    }

    fn fetch_config(&self, client: &Client, m: &Manifest, image: &str) -> Result<Vec<u8>, Error> {
        let d = &m.config;
        match d.media_type.as_str() {
            oci::OCI_CONFIG | oci::DOCKER_CONFIG => {}
            other => {
                return Err(Error::Invalid {
                    image: image.to_string(),
                    reason: format!("not a container image: config media type {other:?}"),
                })
            }
        }
        if self.store.has_blob(&d.digest) {
            return Ok(self.store.read_blob(&d.digest)?);
        }
        if d.size > (16 << 20) {
            return Err(Error::Invalid {
                image: image.to_string(),
                reason: format!("config of {} bytes is too large", d.size),
            });
        }
        let (r, _) = client.blob(&d.digest, 0)?;
        let mut buf = Vec::with_capacity(d.size as usize);
        r.take(d.size + 1)
            .read_to_end(&mut buf)
            .map_err(|e| crate::store::StoreError::Copy {
                what: format!("config {} of {image}", d.digest),
                source: e,
            })?;
        self.store.put_bytes_sized(&d.digest, d.size, &buf)?;
        Ok(buf)
    }
}

//! Archives in and out: `save` (OCI image layout in a tar, optionally with docker's
//! `manifest.json` so `docker load` reads it too), `load` (either format), and `import`
//! (a rootfs tarball becomes a one-layer image). image-spec `image-layout.md`; docker's
//! format is the `docker save` convention (manifest.json with Config/RepoTags/Layers).

use crate::db::ImageRecord;
use crate::digest::{Algorithm, Digest, HashingReader, HashingWriter};
use crate::images::{Error, ImageStore};
use crate::oci::{self, Compression, Descriptor, ManifestKind, Platform};
use crate::pull::{NewImage, Progress};
use crate::reference::Reference;
use crate::unpack::{decompressor, remove_tree, unpack_layer};
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// Output format of `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// OCI image layout only.
    Oci,
    /// OCI image layout plus docker's `manifest.json` (what docker 25+ writes).
    Docker,
}

fn arch_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Archive {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Docker's short form of a name (`docker.io/library/x:t` → `x:t`), for manifest.json.
fn familiar(name: &str) -> String {
    let n = name.strip_prefix("docker.io/").unwrap_or(name);
    if name.starts_with("docker.io/") {
        n.strip_prefix("library/").unwrap_or(n).to_string()
    } else {
        name.to_string()
    }
}

struct TmpDir(PathBuf);
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = remove_tree(&self.0);
    }
}

/// Open `rel` inside an extracted archive without following any symlink: the archive
/// is untrusted, and a planted `blobs -> /etc` must not make us read host files.
fn open_in(dir: &Path, rel: &Path) -> io::Result<std::fs::File> {
    crate::unpack::open_beneath(dir, rel)
}

fn read_in(dir: &Path, rel: &Path) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    open_in(dir, rel)?.read_to_end(&mut v)?;
    Ok(v)
}

/// Sniff gzip/zstd magic numbers.
fn sniff(r: &mut io::BufReader<Box<dyn Read + Send>>) -> io::Result<Compression> {
    let b = r.fill_buf()?;
    Ok(if b.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

fn media_for(c: Compression) -> &'static str {
    match c {
        Compression::None => oci::OCI_LAYER_TAR,
        Compression::Gzip => oci::OCI_LAYER_GZIP,
        Compression::Zstd => oci::OCI_LAYER_ZSTD,
    }
}

impl ImageStore {
    /// Write `images` to `out` as a tar archive.
    pub fn save(
        &self,
        images: &[String],
        format: SaveFormat,
        out: &mut dyn Write,
    ) -> Result<(), Error> {
        let mut recs: Vec<(ImageRecord, Vec<String>)> = Vec::new();
        for name in images {
            let rec = self.find(name)?;
            // Saving by name keeps only that name; by ID keeps all its tags (docker).
            let cands = crate::images::candidate_names(name);
            let tags: Vec<String> = match cands.iter().find(|c| rec.tags.contains(c)) {
                Some(t) => vec![t.clone()],
                None => rec.tags.clone(),
            };
            match recs.iter_mut().find(|(r, _)| r.id == rec.id) {
                Some((_, t)) => t.extend(tags),
                None => recs.push((rec, tags)),
            }
        }
        let mut tar = tar::Builder::new(out);
        let mut written = std::collections::HashSet::new();
        let mut index = Vec::new();
        let mut docker = Vec::new();
        let put = |tar: &mut tar::Builder<&mut dyn Write>,
                   name: &str,
                   data: &mut dyn Read,
                   size: u64|
         -> io::Result<()> {
            let mut h = tar::Header::new_ustar();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, data)
        };
        let werr = |e: io::Error| arch_err(Path::new("<output>"), e);
        put(
            &mut tar,
            "oci-layout",
            &mut &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
            30,
        )
        .map_err(werr)?;
        for (rec, tags) in &recs {
            let mut blobs = vec![rec.manifest_digest.clone(), rec.id.clone()];
            blobs.extend(rec.layers.iter().map(|l| l.blob.clone()));
            for b in &blobs {
                if !written.insert(b.clone()) {
                    continue;
                }
                let p = self.store.blob_path(b);
                let f = std::fs::File::open(&p)
                    .map_err(|e| arch_err(&p, format!("blob of image {}: {e}", rec.id.short())))?;
                let size = f.metadata().map_err(|e| arch_err(&p, e))?.len();
                put(
                    &mut tar,
                    &format!("blobs/{}/{}", b.algorithm().name(), b.hex()),
                    &mut io::BufReader::new(f),
                    size,
                )
                .map_err(werr)?;
            }
            let msize = std::fs::metadata(self.store.blob_path(&rec.manifest_digest))
                .map(|m| m.len())
                .unwrap_or(0);
            let desc = |ann: BTreeMap<String, String>| Descriptor {
                media_type: rec.manifest_media_type.clone(),
                digest: rec.manifest_digest.clone(),
                size: msize,
                platform: Platform::parse(&rec.platform).ok(),
                annotations: ann,
                urls: Vec::new(),
            };
            if tags.is_empty() {
                index.push(desc(BTreeMap::new()));
            }
            for t in tags {
                let tag = Reference::parse(t)
                    .ok()
                    .and_then(|r| r.tag)
                    .unwrap_or_else(|| "latest".into());
                let mut ann = BTreeMap::new();
                ann.insert("io.containerd.image.name".to_string(), t.clone());
                ann.insert("org.opencontainers.image.ref.name".to_string(), tag);
                index.push(desc(ann));
            }
            docker.push(serde_json::json!({
                "Config": format!("blobs/sha256/{}", rec.id.hex()),
                "RepoTags": tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
                "Layers": rec.layers.iter().map(|l| format!("blobs/{}/{}", l.blob.algorithm().name(), l.blob.hex())).collect::<Vec<_>>(),
            }));
        }
        let idx = serde_json::json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": index});
        let ib = serde_json::to_vec(&idx).map_err(|e| arch_err(Path::new("index.json"), e))?;
        put(&mut tar, "index.json", &mut &ib[..], ib.len() as u64).map_err(werr)?;
        if format == SaveFormat::Docker {
            let mb =
                serde_json::to_vec(&docker).map_err(|e| arch_err(Path::new("manifest.json"), e))?;
            put(&mut tar, "manifest.json", &mut &mb[..], mb.len() as u64).map_err(werr)?;
        }
        tar.into_inner().map_err(werr)?.flush().map_err(werr)?;
        Ok(())
    }

    /// Load an archive written by `save`, `docker save`, `podman save` or
    /// `skopeo copy … oci-archive:`/`docker-archive:` (optionally gzip/zstd compressed).
    pub fn load(
        &mut self,
        input: Box<dyn Read + Send>,
        source: &Path,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, Error> {
        let tmp = TmpDir(self.store.tmp_path("load"));
        std::fs::create_dir(&tmp.0).map_err(|e| arch_err(&tmp.0, e))?;
        let mut br = io::BufReader::with_capacity(1 << 20, input);
        let comp = sniff(&mut br).map_err(|e| arch_err(source, e))?;
        // The archive itself is untrusted input: extract it with the same confined
        // extractor as layers (no '..', no absolute names, nothing through symlinks).
        unpack_layer(Box::new(br), comp, &tmp.0, &source.display().to_string())?;
        let dir = tmp.0.clone();
        let index_path = dir.join("index.json");
        if index_path.exists() && dir.join("blobs").is_dir() {
            self.load_oci(&dir, source, progress)
        } else if dir.join("manifest.json").exists() {
            self.load_docker(&dir, source, progress)
        } else {
            Err(arch_err(
                source,
                "neither index.json (OCI layout) nor manifest.json (docker save) found",
            ))
        }
    }

    /// A blob's path inside an extracted layout (relative: open it with `open_in`).
    fn blob_file(_dir: &Path, d: &Digest) -> PathBuf {
        Path::new("blobs").join(d.algorithm().name()).join(d.hex())
    }

    fn load_oci(
        &mut self,
        dir: &Path,
        source: &Path,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, Error> {
        let ib = read_in(dir, Path::new("index.json"))
            .map_err(|e| arch_err(source, format!("index.json: {e}")))?;
        let idx: oci::Index = serde_json::from_slice(&ib)
            .map_err(|e| arch_err(source, format!("index.json: {e}")))?;
        let want = Platform::host();
        let mut out = Vec::new();
        for entry in &idx.manifests {
            let mut desc = entry.clone();
            let mut index_digest = None;
            let name = entry
                .annotations
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| {
                    entry
                        .annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains('/') || n.contains('.'))
                        .cloned()
                });
            let image = name
                .clone()
                .unwrap_or_else(|| format!("{} in {}", entry.digest, source.display()));
            let mut depth = 0;
            let manifest = loop {
                let p = Self::blob_file(dir, &desc.digest);
                let bytes = read_in(dir, &p)
                    .map_err(|e| arch_err(source, format!("{}: {e}", desc.digest)))?;
                let mut h = crate::digest::Hasher::new(desc.digest.algorithm());
                h.update(&bytes);
                if h.finish() != desc.digest || bytes.len() as u64 != desc.size {
                    return Err(arch_err(
                        source,
                        format!("blob {} does not match its descriptor", desc.digest),
                    ));
                }
                self.store.put_bytes(&desc.digest, &bytes)?;
                let (kind, _) =
                    oci::parse_manifest(&bytes, Some(&desc.media_type)).map_err(|s| {
                        Error::Manifest {
                            what: image.clone(),
                            source: s,
                        }
                    })?;
                match kind {
                    ManifestKind::Manifest(m) => break m,
                    ManifestKind::Index(i) => {
                        depth += 1;
                        if depth > 4 {
                            return Err(arch_err(source, "index nesting deeper than 4"));
                        }
                        index_digest.get_or_insert(desc.digest.clone());
                        desc = oci::select_platform(&i, &want).cloned().ok_or_else(|| {
                            arch_err(source, format!("{image}: no manifest for platform {want}"))
                        })?;
                    }
                }
            };
            let cp = Self::blob_file(dir, &manifest.config.digest);
            let config = read_in(dir, &cp)
                .map_err(|e| arch_err(source, format!("config {}: {e}", manifest.config.digest)))?;
            self.store
                .put_bytes_sized(&manifest.config.digest, manifest.config.size, &config)?;
            let mut names = Vec::new();
            if let Some(n) = &name {
                let r = Reference::parse(n)?;
                if let Some(t) = r.tagged() {
                    names.push((t, "tag"));
                }
            }
            let src = |d: &Descriptor| -> Result<Box<dyn Read + Send>, Error> {
                let p = Self::blob_file(dir, &d.digest);
                Ok(Box::new(open_in(dir, &p).map_err(|e| {
                    arch_err(source, format!("layer {}: {e}", d.digest))
                })?))
            };
            let img = NewImage {
                image,
                manifest: &manifest,
                manifest_digest: desc.digest.clone(),
                manifest_media_type: desc.media_type.clone(),
                index_digest,
                config: &config,
                names,
            };
            out.push(self.install(img, &src, progress, 2)?);
        }
        Ok(out)
    }

    fn load_docker(
        &mut self,
        dir: &Path,
        source: &Path,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let mb = read_in(dir, Path::new("manifest.json"))
            .map_err(|e| arch_err(source, format!("manifest.json: {e}")))?;
        let entries: Vec<Entry> = serde_json::from_slice(&mb)
            .map_err(|e| arch_err(source, format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        // Paths come from the archive: resolve them only inside the extracted tree.
        let inside = |rel: &str| -> Result<PathBuf, Error> {
            if rel.split('/').any(|c| c == "..") || rel.starts_with('/') {
                return Err(arch_err(
                    source,
                    format!("manifest.json path {rel:?} leaves the archive"),
                ));
            }
            Ok(PathBuf::from(rel))
        };
        for e in entries {
            let config = read_in(dir, &inside(&e.config)?)
                .map_err(|er| arch_err(source, format!("{}: {er}", e.config)))?;
            let config_digest = Digest::sha256_of(&config);
            let mut layers = Vec::new();
            for l in &e.layers {
                let p = inside(l)?;
                let f = open_in(dir, &p).map_err(|er| arch_err(source, format!("{l}: {er}")))?;
                let mut br = io::BufReader::new(Box::new(f) as Box<dyn Read + Send>);
                let comp = sniff(&mut br).map_err(|er| arch_err(source, format!("{l}: {er}")))?;
                let mut hr = HashingReader::new(br, Algorithm::Sha256);
                io::copy(&mut hr, &mut io::sink())
                    .map_err(|er| arch_err(source, format!("{l}: {er}")))?;
                let (digest, size) = hr.finish();
                layers.push((
                    p,
                    Descriptor {
                        media_type: media_for(comp).to_string(),
                        digest,
                        size,
                        platform: None,
                        annotations: BTreeMap::new(),
                        urls: Vec::new(),
                    },
                ));
            }
            let manifest = oci::Manifest {
                schema_version: 2,
                media_type: Some(oci::OCI_MANIFEST.to_string()),
                config: Descriptor {
                    media_type: oci::OCI_CONFIG.to_string(),
                    digest: config_digest.clone(),
                    size: config.len() as u64,
                    platform: None,
                    annotations: BTreeMap::new(),
                    urls: Vec::new(),
                },
                layers: layers.iter().map(|(_, d)| d.clone()).collect(),
                annotations: BTreeMap::new(),
            };
            let mjson = serde_json::to_vec(&manifest).map_err(|er| arch_err(source, er))?;
            let mdigest = Digest::sha256_of(&mjson);
            self.store.put_bytes(&mdigest, &mjson)?;
            let mut names = Vec::new();
            for t in e.repo_tags.unwrap_or_default() {
                let r = Reference::parse(&t)?;
                if let Some(t) = r.tagged() {
                    names.push((t, "tag"));
                }
            }
            let files: BTreeMap<Digest, PathBuf> =
                layers.into_iter().map(|(p, d)| (d.digest, p)).collect();
            let src = |d: &Descriptor| -> Result<Box<dyn Read + Send>, Error> {
                let p = files
                    .get(&d.digest)
                    .ok_or_else(|| arch_err(source, format!("no file for layer {}", d.digest)))?;
                Ok(Box::new(open_in(dir, p).map_err(|er| arch_err(p, er))?))
            };
            let img = NewImage {
                image: format!("{} in {}", config_digest.short(), source.display()),
                manifest: &manifest,
                manifest_digest: mdigest,
                manifest_media_type: oci::OCI_MANIFEST.to_string(),
                index_digest: None,
                config: &config,
                names,
            };
            out.push(self.install(img, &src, progress, 2)?);
        }
        Ok(out)
    }

    /// `import`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image for
    /// the host platform, optionally named `reference`.
    pub fn import(
        &mut self,
        input: Box<dyn Read + Send>,
        source: &Path,
        reference: Option<&Reference>,
        progress: &dyn Progress,
    ) -> Result<ImageRecord, Error> {
        let mut br = io::BufReader::with_capacity(1 << 20, input);
        let comp = sniff(&mut br).map_err(|e| arch_err(source, e))?;
        // Store the layer uncompressed: its digest is then its DiffID, computed in one pass.
        let tmpf = self.store.tmp_path("import");
        let _guard = TmpDir(tmpf.clone());
        let f = std::fs::File::create(&tmpf).map_err(|e| arch_err(&tmpf, e))?;
        let mut hw = HashingWriter::new(io::BufWriter::new(f), Algorithm::Sha256);
        let mut dec = decompressor(Box::new(br), comp).map_err(|e| arch_err(source, e))?;
        io::copy(&mut dec, &mut hw).map_err(|e| arch_err(source, e))?;
        let (w, diff_id, size) = hw.finish();
        w.into_inner()
            .map_err(|e| arch_err(&tmpf, e.into_error()))?;
        let host = Platform::host();
        let now = crate::archive::rfc3339_now();
        let mut cfg = serde_json::json!({
            "created": now,
            "architecture": host.architecture,
            "os": host.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": now, "created_by": format!("oxcart import {}", source.display()), "comment": "Imported from tarball"}],
        });
        if let Some(v) = &host.variant {
            cfg["variant"] = serde_json::json!(v);
        }
        let config = serde_json::to_vec(&cfg).map_err(|e| arch_err(source, e))?;
        let layer = Descriptor {
            media_type: oci::OCI_LAYER_TAR.into(),
            digest: diff_id.clone(),
            size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        };
        let manifest = oci::Manifest {
            schema_version: 2,
            media_type: Some(oci::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: oci::OCI_CONFIG.into(),
                digest: Digest::sha256_of(&config),
                size: config.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
                urls: Vec::new(),
            },
            layers: vec![layer],
            annotations: BTreeMap::new(),
        };
        let mjson = serde_json::to_vec(&manifest).map_err(|e| arch_err(source, e))?;
        let mdigest = Digest::sha256_of(&mjson);
        self.store.put_bytes(&mdigest, &mjson)?;
        let names = reference
            .and_then(|r| r.tagged())
            .map(|t| vec![(t, "tag")])
            .unwrap_or_default();
        let src = |_: &Descriptor| -> Result<Box<dyn Read + Send>, Error> {
            Ok(Box::new(
                std::fs::File::open(&tmpf).map_err(|e| arch_err(&tmpf, e))?,
            ))
        };
        let img = NewImage {
            image: reference
                .map(|r| r.to_string())
                .unwrap_or_else(|| source.display().to_string()),
            manifest: &manifest,
            manifest_digest: mdigest,
            manifest_media_type: oci::OCI_MANIFEST.into(),
            index_digest: None,
            config: &config,
            names,
        };
        self.install(img, &src, progress, 1)
    }
}

/// The current time as RFC 3339 UTC (for configs we create).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil_from_days (Howard Hinnant).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

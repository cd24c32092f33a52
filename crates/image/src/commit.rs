//! `commit`: a new image made of a parent image's layers plus one layer given as a tar
//! stream (the engine builds it from a container's upper directory), with a config the
//! caller has already worked out. The layer is gzip-compressed while both digests are
//! computed in one pass, stored as a blob, then installed like any pulled image: the
//! parent's layers are found in the store by ChainID, the new one is unpacked from its
//! blob and checked against its DiffID. The manifest is OCI; so `save` writes the image
//! like any other (its blobs are all in the store; it has no registry digest).

use crate::db::ImageRecord;
use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::images::{Error, ImageStore};
use crate::oci::{self, Descriptor};
use crate::pull::{NewImage, NoProgress};
use crate::reference::Reference;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

/// What `commit` records besides the layer.
#[derive(Debug, Clone)]
pub struct CommitSpec<'a> {
    /// The new image's `config` object (the run defaults: docker's container Config
    /// fields `Cmd`, `Env`, … as JSON).
    pub config: serde_json::Value,
    /// `--author`.
    pub author: Option<&'a str>,
    /// `--message`: the history entry's comment.
    pub comment: Option<&'a str>,
    /// The history entry's `created_by` (docker: the container's command).
    pub created_by: &'a str,
    /// A name to tag the new image with.
    pub reference: Option<&'a Reference>,
}

struct TmpFile(PathBuf);
impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Docker's layer media types have OCI twins with the same bytes; the new manifest is
/// OCI, so it names the parent's layers the OCI way.
fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        oci::DOCKER_LAYER_GZIP | oci::DOCKER_FOREIGN_GZIP => oci::OCI_LAYER_GZIP,
        oci::DOCKER_LAYER_ZSTD => oci::OCI_LAYER_ZSTD,
        other => other,
    }
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        platform: None,
        annotations: BTreeMap::new(),
        urls: Vec::new(),
    }
}

impl ImageStore {
    /// Make a new image: `parent`'s layers plus the uncompressed layer tar `layer`,
    /// described by `spec`. Returns the new image's record.
    pub fn commit(
        &mut self,
        parent: &ImageRecord,
        layer: &mut dyn Read,
        spec: &CommitSpec<'_>,
    ) -> Result<ImageRecord, Error> {
        let what = format!("commit on {}", parent.id.short());
        let (diff_id, blob, blob_size) =
            self.store_layer(layer).map_err(|reason| Error::Invalid {
                image: what.clone(),
                reason,
            })?;
        let config = self.commit_config(parent, &diff_id, spec)?;
        let config_digest = Digest::sha256_of(&config);
        let mut layers: Vec<Descriptor> = parent
            .layers
            .iter()
            .map(|l| descriptor(oci_layer_type(&l.media_type), l.blob.clone(), l.blob_size))
            .collect();
        layers.push(descriptor(oci::OCI_LAYER_GZIP, blob, blob_size));
        let manifest = oci::Manifest {
            schema_version: 2,
            media_type: Some(oci::OCI_MANIFEST.into()),
            config: descriptor(oci::OCI_CONFIG, config_digest, config.len() as u64),
            layers,
            annotations: BTreeMap::new(),
        };
        let mjson = serde_json::to_vec(&manifest).map_err(|e| Error::Invalid {
            image: what.clone(),
            reason: format!("manifest: {e}"),
        })?;
        let mdigest = Digest::sha256_of(&mjson);
        self.store.put_bytes(&mdigest, &mjson)?;
        let names = spec
            .reference
            .and_then(|r| r.tagged())
            .map(|t| vec![(t, "tag")])
            .unwrap_or_default();
        // Every blob is in the store now: the parent's from its pull, ours just above.
        let paths: BTreeMap<Digest, PathBuf> = manifest
            .layers
            .iter()
            .map(|l| (l.digest.clone(), self.store.blob_path(&l.digest)))
            .collect();
        let src = |d: &Descriptor| -> Result<Box<dyn Read + Send>, Error> {
            let p = paths.get(&d.digest).ok_or_else(|| Error::Invalid {
                image: what.clone(),
                reason: format!("no blob for layer {}", d.digest),
            })?;
            Ok(Box::new(
                std::fs::File::open(p).map_err(crate::store::io_err(p))?,
            ))
        };
        let img = NewImage {
            image: what.clone(),
            manifest: &manifest,
            manifest_digest: mdigest,
            manifest_media_type: oci::OCI_MANIFEST.into(),
            index_digest: None,
            config: &config,
            names,
        };
        self.install(img, &src, &NoProgress, 1)
    }

    /// Gzip `layer` into a blob of the store, hashing the tar (DiffID) and the blob in
    /// the same pass. Returns (DiffID, blob digest, blob size).
    fn store_layer(&self, layer: &mut dyn Read) -> Result<(Digest, Digest, u64), String> {
        let tmp = TmpFile(self.store.tmp_path("commit"));
        let e = |e: io::Error| format!("layer {}: {e}", tmp.0.display());
        let f = std::fs::File::create_new(&tmp.0).map_err(e)?;
        let blob_w = HashingWriter::new(io::BufWriter::new(f), Algorithm::Sha256);
        let gz = flate2::write::GzEncoder::new(blob_w, flate2::Compression::default());
        let mut diff_w = HashingWriter::new(gz, Algorithm::Sha256);
        io::copy(layer, &mut diff_w).map_err(e)?;
        let (gz, diff_id, _) = diff_w.finish();
        let (buf, blob, size) = gz.finish().map_err(e)?.finish();
        buf.into_inner()
            .map_err(|x| e(x.into_error()))?
            .sync_all()
            .map_err(e)?;
        let mut f = std::fs::File::open(&tmp.0).map_err(e)?;
        self.store
            .put_reader(&blob, Some(size), &mut f)
            .map_err(|x| x.to_string())?;
        Ok((diff_id, blob, size))
    }

    /// The parent's config with `spec.config`, the new DiffID, a history entry, and
    /// `created`/`author` (image-spec `config.md`).
    fn commit_config(
        &self,
        parent: &ImageRecord,
        diff_id: &Digest,
        spec: &CommitSpec<'_>,
    ) -> Result<Vec<u8>, Error> {
        let bad = |reason: String| Error::Invalid {
            image: parent.id.to_string(),
            reason,
        };
        let raw = self.config(parent)?;
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| bad(format!("image config: {e}")))?;
        let obj = cfg
            .as_object_mut()
            .ok_or_else(|| bad("image config is not a JSON object".into()))?;
        let now = crate::archive::rfc3339_now();
        obj.insert("config".into(), spec.config.clone());
        obj.insert("created".into(), now.clone().into());
        match spec.author {
            Some(a) if !a.is_empty() => {
                obj.insert("author".into(), a.into());
            }
            _ => {
                obj.remove("author");
            }
        }
        let rootfs = obj
            .get_mut("rootfs")
            .and_then(|r| r.get_mut("diff_ids"))
            .and_then(|d| d.as_array_mut())
            .ok_or_else(|| bad("image config has no rootfs.diff_ids".into()))?;
        rootfs.push(diff_id.to_string().into());
        let mut h = serde_json::Map::new();
        h.insert("created".into(), now.into());
        if let Some(a) = spec.author.filter(|a| !a.is_empty()) {
            h.insert("author".into(), a.into());
        }
        h.insert("created_by".into(), spec.created_by.into());
        if let Some(c) = spec.comment.filter(|c| !c.is_empty()) {
            h.insert("comment".into(), c.into());
        }
        match obj.get_mut("history").and_then(|v| v.as_array_mut()) {
            Some(hist) => hist.push(h.into()),
            None => {
                obj.insert("history".into(), vec![serde_json::Value::from(h)].into());
            }
        }
        serde_json::to_vec(&cfg).map_err(|e| bad(format!("image config: {e}")))
    }
}

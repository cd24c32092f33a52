//! The parts of the OCI image-spec (and Docker's v2 schema 2) we read. Unknown fields are
//! ignored, as `manifest.md`/`config.md` require; the raw bytes are what we store.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker (containerd) zstd layer.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Legacy schema 1, which we refuse by name (removed from containerd 2.1 and Docker 28.2).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// `Accept` header for manifest requests: indexes and manifests, OCI and Docker.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// The compression a layer media type declares, or `None` if it is not a layer type we know.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_TAR | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
            Some(Compression::None)
        }
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_FOREIGN_GZIP
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Some(Compression::Gzip),
        OCI_LAYER_ZSTD
        | DOCKER_LAYER_ZSTD
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Content descriptor (`descriptor.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Alternative download URLs (non-distributable layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// Platform of an index entry (`image-index.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// CPU architecture (GOARCH values).
    pub architecture: String,
    /// Operating system (GOOS values).
    pub os: String,
    /// CPU variant, e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
}

/// Error parsing a platform string.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64/v8")]
pub struct PlatformError(pub String);

impl Platform {
    /// The platform this process runs on, in GOARCH terms.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = (arch == "arm64").then(|| "v8".to_string());
        Platform {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            variant,
            os_version: None,
            os_features: Vec::new(),
        }
    }

    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError(s.to_string()));
        }
        let mut arch = parts[1].to_string();
        // containerd's platforms.Normalize aliases.
        if arch == "x86_64" || arch == "x86-64" {
            arch = "amd64".into();
        } else if arch == "aarch64" {
            arch = "arm64".into();
        }
        let mut variant = parts.get(2).map(|v| v.to_string());
        if arch == "arm64" && variant.is_none() {
            variant = Some("v8".into());
        }
        Ok(Platform {
            architecture: arch,
            os: parts[0].to_string(),
            variant,
            os_version: None,
            os_features: Vec::new(),
        })
    }

    /// Whether an index entry's platform satisfies this wanted platform. A missing variant
    /// in the entry matches (arm64 images often omit `v8`); a wanted amd64 matches any
    /// declared amd64 variant only if it is exactly equal or absent.
    pub fn matches(&self, entry: &Platform) -> bool {
        if entry.os != self.os || entry.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &entry.variant) {
            (Some(w), Some(e)) => w == e,
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Image index / manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Entries.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Image manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Config blob.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The `rootfs` section of an image config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootFs {
    /// Must be `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// DiffIDs, base first.
    pub diff_ids: Vec<Digest>,
}

/// The image config fields we need; the raw JSON stays the source of truth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Architecture.
    pub architecture: String,
    /// OS.
    pub os: String,
    /// Variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Layer diff IDs.
    pub rootfs: RootFs,
}

/// A manifest or index, as decided by its media type.
#[derive(Debug, Clone)]
pub enum ManifestKind {
    /// Index or manifest list.
    Index(Index),
    /// Single-platform manifest.
    Manifest(Box<Manifest>),
}

/// Error interpreting a manifest document.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Schema 1 or an unknown type.
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedType(String),
    /// `Content-Type` and the `mediaType` field disagree.
    #[error("manifest mediaType field {field:?} disagrees with its content type {header:?}")]
    TypeMismatch {
        /// From the body.
        field: String,
        /// From the response.
        header: String,
    },
    /// Bad JSON.
    #[error("malformed {kind}: {source}")]
    Json {
        /// What we were parsing.
        kind: &'static str,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// `schemaVersion` not 2.
    #[error("schemaVersion {0} is not supported (must be 2)")]
    SchemaVersion(u32),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parse a manifest document. `content_type` is the response header (or descriptor media
/// type), if known; when it is missing or generic the body's `mediaType` or shape decides.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<(ManifestKind, String), ManifestError> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
        kind: "manifest",
        source,
    })?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "application/octet-stream");
    if let (Some(h), Some(f)) = (&header, &probe.media_type) {
        // distribution-spec: clients SHOULD reject a mismatch.
        if h != f {
            return Err(ManifestError::TypeMismatch {
                field: f.clone(),
                header: h.clone(),
            });
        }
    }
    let mt = header.or(probe.media_type).unwrap_or_else(|| {
        // OCI allows omitting mediaType; guess from the shape.
        if probe.manifests.is_some() {
            OCI_INDEX.to_string()
        } else if probe.config.is_some() {
            OCI_MANIFEST.to_string()
        } else {
            String::new()
        }
    });
    match mt.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            let idx: Index =
                serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                    kind: "image index",
                    source,
                })?;
            if idx.schema_version != 2 {
                return Err(ManifestError::SchemaVersion(idx.schema_version));
            }
            Ok((ManifestKind::Index(idx), mt))
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let m: Manifest =
                serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                    kind: "image manifest",
                    source,
                })?;
            if m.schema_version != 2 {
                return Err(ManifestError::SchemaVersion(m.schema_version));
            }
            Ok((ManifestKind::Manifest(Box::new(m)), mt))
        }
        other => Err(ManifestError::UnsupportedType(other.to_string())),
    }
}

/// Pick the first index entry matching `want` (`image-index.md`: first match wins).
/// Entries that are not manifests or indexes (e.g. attestations) are skipped.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| {
        matches!(
            d.media_type.as_str(),
            OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_LIST
        ) && d.platform.as_ref().is_some_and(|p| want.matches(p))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn platform_selection() {
        let d = |arch: &str, variant: Option<&str>| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: crate::digest::Digest::sha256_of(arch.as_bytes()),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
                os_version: None,
                os_features: vec![],
            }),
            annotations: Default::default(),
            urls: vec![],
        };
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![d("arm", Some("v7")), d("arm64", None), d("amd64", None)],
            annotations: Default::default(),
        };
        let pick = |s: &str| {
            select_platform(&idx, &Platform::parse(s).unwrap())
                .map(|d| d.platform.clone().unwrap().architecture)
        };
        assert_eq!(pick("linux/arm64").as_deref(), Some("arm64"));
        assert_eq!(pick("linux/amd64").as_deref(), Some("amd64"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("arm"));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("linux/s390x"), None);
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn manifest_type_mismatch_is_refused() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(matches!(
            parse_manifest(body, Some(OCI_MANIFEST)),
            Err(ManifestError::TypeMismatch { .. })
        ));
        assert!(matches!(
            parse_manifest(body, None),
            Ok((ManifestKind::Index(_), _))
        ));
        assert!(matches!(
            parse_manifest(b"{}", Some(DOCKER_SCHEMA1)),
            Err(ManifestError::UnsupportedType(_))
        ));
    }
}

//! Manifest documents as ECR stores them, reduced to what decides where an image can run.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::platform::Platform;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What BatchGetImage is told we accept; without it ECR converts or refuses some documents.
pub const ACCEPTED_MEDIA_TYPES: [&str; 5] = [
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_SCHEMA1_SIGNED,
];

const DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Largest manifest we parse. ECR's own limit is 4 MiB; anything bigger is not from ECR.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    NotJson(String),
    #[error("manifest is {0} bytes, larger than the 4 MiB ECR allows")]
    TooLarge(usize),
    #[error("unknown manifest schemaVersion {0}: expected 1 or 2")]
    UnknownSchemaVersion(String),
    #[error("document has no schemaVersion: not a manifest (an image config goes with --config)")]
    NoSchemaVersion,
    #[error("unknown manifest media type {0:?}")]
    UnknownMediaType(String),
    #[error("manifest has neither `config` nor `manifests`: not an image manifest or index")]
    UnknownShape,
    #[error("manifest field `{field}` is invalid: {detail}")]
    InvalidField { field: &'static str, detail: String },
    #[error("image config is not valid JSON: {0}")]
    ConfigNotJson(String),
    #[error("image config has no `architecture` or `os`")]
    ConfigWithoutPlatform,
}

/// A content descriptor: enough of it to fetch and verify the blob it points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
}

/// The platforms a document declares, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// A multi-platform index or manifest list. `platforms` excludes attestations and children that
    /// carry no platform.
    Index {
        media_type: String,
        platforms: Vec<Platform>,
    },
    /// A single image; its platform is in the config blob.
    Image { media_type: String, config: Descriptor },
    /// Docker v2 schema 1 carries the platform inline.
    Schema1 { media_type: String, platform: Platform },
    /// An OCI artifact (Helm chart, SBOM, signature...): nothing runs it.
    Artifact {
        media_type: String,
        artifact_type: String,
    },
}

impl Manifest {
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Index { .. } => "index",
            Manifest::Image { .. } => "manifest",
            Manifest::Schema1 { .. } => "schema1",
            Manifest::Artifact { .. } => "artifact",
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Index { media_type, .. }
            | Manifest::Image { media_type, .. }
            | Manifest::Schema1 { media_type, .. }
            | Manifest::Artifact { media_type, .. } => media_type,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default, rename = "os.version")]
    os_version: Option<String>,
}

impl RawPlatform {
    fn into_platform(self) -> Option<Platform> {
        if self.architecture.is_empty() || self.os.is_empty() {
            return None;
        }
        Some(
            Platform::new(&self.os, &self.architecture, self.variant.as_deref())
                .with_os_version(self.os_version.as_deref()),
        )
    }
}

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(default)]
    platform: Option<RawPlatform>,
    #[serde(default)]
    annotations: Option<serde_json::Map<String, Value>>,
}

impl IndexEntry {
    fn is_attestation(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.get("vnd.docker.reference.type"))
            .and_then(Value::as_str)
            == Some("attestation-manifest")
    }
}

/// Parses a manifest, index or schema 1 document. `declared_media_type` is what the registry said
/// (ECR's `imageManifestMediaType`); documents may omit their own `mediaType`.
pub fn parse(bytes: &[u8], declared_media_type: Option<&str>) -> Result<Manifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge(bytes.len()));
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    let object = doc.as_object().ok_or(ManifestError::UnknownShape)?;
    let own_media_type = string_field(object, "mediaType")?;
    let media_type = own_media_type
        .or(declared_media_type.filter(|m| !m.is_empty()))
        .map(str::to_string);

    match object.get("schemaVersion") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => return parse_schema1(object),
        Some(Value::Number(n)) if n.as_u64() == Some(2) => {}
        Some(other) => return Err(ManifestError::UnknownSchemaVersion(other.to_string())),
        None => return Err(ManifestError::NoSchemaVersion),
    }

    let is_index = match media_type.as_deref() {
        Some(DOCKER_MANIFEST_LIST | OCI_INDEX) => true,
        Some(DOCKER_MANIFEST | OCI_MANIFEST) => false,
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED) => {
            return Err(ManifestError::InvalidField {
                field: "schemaVersion",
                detail: "schema 1 media type on a schemaVersion 2 document".into(),
            })
        }
        Some(other) => return Err(ManifestError::UnknownMediaType(other.to_string())),
        // No media type at all: an OCI document written by an older tool. Its shape decides.
        None if object.contains_key("manifests") => true,
        None if object.contains_key("config") => false,
        None => return Err(ManifestError::UnknownShape),
    };
    let media_type =
        media_type.unwrap_or_else(|| if is_index { OCI_INDEX } else { OCI_MANIFEST }.to_string());
    let artifact_type = string_field(object, "artifactType")?.map(str::to_string);

    if is_index {
        let entries: Vec<IndexEntry> = field(object, "manifests")?;
        let platforms: Vec<Platform> = entries
            .into_iter()
            .filter(|e| !e.is_attestation())
            .filter_map(|e| e.platform.and_then(RawPlatform::into_platform))
            .filter(|p| !p.is_unknown())
            .collect();
        if let Some(artifact_type) = artifact_type.filter(|_| platforms.is_empty()) {
            return Ok(Manifest::Artifact {
                media_type,
                artifact_type,
            });
        }
        if platforms.is_empty() {
            return Ok(Manifest::Artifact {
                media_type,
                artifact_type: "index whose children carry no platform".into(),
            });
        }
        return Ok(Manifest::Index {
            media_type,
            platforms,
        });
    }

    let config: Descriptor = field(object, "config")?;
    let config_type = config.media_type.as_deref().unwrap_or(OCI_IMAGE_CONFIG);
    if let Some(artifact_type) = artifact_type {
        return Ok(Manifest::Artifact {
            media_type,
            artifact_type,
        });
    }
    if config_type != DOCKER_IMAGE_CONFIG && config_type != OCI_IMAGE_CONFIG {
        return Ok(Manifest::Artifact {
            media_type,
            artifact_type: config_type.to_string(),
        });
    }
    Ok(Manifest::Image { media_type, config })
}

fn parse_schema1(object: &serde_json::Map<String, Value>) -> Result<Manifest, ManifestError> {
    let architecture = string_field(object, "architecture")?.unwrap_or_default();
    if architecture.is_empty() {
        return Err(ManifestError::InvalidField {
            field: "architecture",
            detail: "missing from a schema 1 manifest".into(),
        });
    }
    // Schema 1 has no top-level os; the newest history entry's v1Compatibility (a JSON string)
    // records it. Linux is what every schema 1 registry served.
    let os = object
        .get("history")
        .and_then(Value::as_array)
        .and_then(|h| h.first())
        .and_then(|entry| entry.get("v1Compatibility"))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|v| v.get("os").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "linux".to_string());
    let signed = object.contains_key("signatures");
    Ok(Manifest::Schema1 {
        media_type: if signed {
            DOCKER_SCHEMA1_SIGNED
        } else {
            DOCKER_SCHEMA1
        }
        .to_string(),
        platform: Platform::new(&os, architecture, None),
    })
}

fn string_field<'a>(
    object: &'a serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, ManifestError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ManifestError::InvalidField {
            field: name,
            detail: "expected a string".into(),
        }),
    }
}

fn field<T: serde::de::DeserializeOwned>(
    object: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<T, ManifestError> {
    let value = object.get(name).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| ManifestError::InvalidField {
        field: name,
        detail: e.to_string(),
    })
}

/// The content digest of `bytes`, as registries name blobs: `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Reads os, architecture, variant and `os.version` from an image config blob.
pub fn parse_config(bytes: &[u8]) -> Result<Platform, ManifestError> {
    let raw: RawPlatform =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::ConfigNotJson(e.to_string()))?;
    raw.into_platform().ok_or(ManifestError::ConfigWithoutPlatform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_decides_when_media_type_is_missing() {
        let index = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:aa","size":1,
            "platform":{"os":"linux","architecture":"arm64"}}]}"#;
        assert_eq!(parse(index, None).unwrap().kind(), "index");
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json",
            "digest":"sha256:bb","size":2},"layers":[]}"#;
        assert_eq!(parse(image, None).unwrap().kind(), "manifest");
    }

    #[test]
    fn declared_media_type_fills_in_for_the_document() {
        let image = br#"{"schemaVersion":2,"config":{"digest":"sha256:bb","size":2},"layers":[]}"#;
        let parsed = parse(image, Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(parsed.media_type(), DOCKER_MANIFEST);
    }

    #[test]
    fn helm_chart_is_an_artifact() {
        let chart = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json",
            "digest":"sha256:cc","size":3},"layers":[]}"#;
        let parsed = parse(chart, None).unwrap();
        assert_eq!(
            parsed,
            Manifest::Artifact {
                media_type: OCI_MANIFEST.into(),
                artifact_type: "application/vnd.cncf.helm.config.v1+json".into()
            }
        );
    }

    #[test]
    fn unknown_media_type_and_schema_are_errors() {
        let doc = br#"{"schemaVersion":2,"mediaType":"application/x-nope","config":{"digest":"d"}}"#;
        assert_eq!(
            parse(doc, None),
            Err(ManifestError::UnknownMediaType("application/x-nope".into()))
        );
        assert!(matches!(
            parse(br#"{"schemaVersion":"2"}"#, None),
            Err(ManifestError::UnknownSchemaVersion(_))
        ));
        assert!(matches!(parse(b"[1,2]", None), Err(ManifestError::UnknownShape)));
        assert!(matches!(parse(b"{", None), Err(ManifestError::NotJson(_))));
    }

    #[test]
    fn wrong_field_types_are_reported_by_name() {
        let doc =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}}"#;
        assert!(matches!(
            parse(doc, None),
            Err(ManifestError::InvalidField {
                field: "manifests",
                ..
            })
        ));
    }

    #[test]
    fn unsigned_schema1_reads_top_level_architecture() {
        let doc =
            br#"{"schemaVersion":1,"name":"x","tag":"y","architecture":"arm64","fsLayers":[],"history":[]}"#;
        let parsed = parse(doc, None).unwrap();
        assert_eq!(
            parsed,
            Manifest::Schema1 {
                media_type: DOCKER_SCHEMA1.into(),
                platform: Platform::linux("arm64")
            }
        );
    }

    #[test]
    fn config_without_architecture_is_refused() {
        assert_eq!(
            parse_config(br#"{"os":"linux"}"#),
            Err(ManifestError::ConfigWithoutPlatform)
        );
        assert_eq!(
            parse_config(br#"{"os":"linux","architecture":"arm","variant":"v7"}"#).unwrap(),
            Platform::new("linux", "arm", Some("v7"))
        );
    }
}

//! Parsing and validation of pushed manifests: OCI image manifest, OCI index, Docker schema2 manifest and list.
//!
//! The registry stores the pushed bytes unchanged (their digest is the manifest's identity); this module only
//! decides whether they are acceptable and extracts what the registry needs: which blobs and child manifests must
//! exist, the `subject` and `artifactType` for the referrers API, and the descriptors for platform selection.
//!
//! Media type resolution: the `Content-Type` header of the PUT and the body's `mediaType` must agree when both are
//! present. A missing header (or a generic `application/json` / `application/octet-stream`) defers to the body; a
//! body without `mediaType` is taken as OCI (an index if it has `manifests` and no `config`, else an image manifest),
//! which the image spec allows for OCI but not for Docker schema2.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::media_types::{self, is_valid_media_type};
use crate::{Descriptor, Digest, OciError};

/// Largest manifest accepted, in bytes. The distribution spec asks registries to accept at least 4 MiB.
pub const MANIFEST_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// Which of the four supported formats a manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManifestKind {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
}

impl ManifestKind {
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciManifest => media_types::OCI_MANIFEST,
            ManifestKind::OciIndex => media_types::OCI_INDEX,
            ManifestKind::DockerManifest => media_types::DOCKER_MANIFEST,
            ManifestKind::DockerManifestList => media_types::DOCKER_MANIFEST_LIST,
        }
    }

    pub fn from_media_type(media_type: &str) -> Option<ManifestKind> {
        match media_type {
            media_types::OCI_MANIFEST => Some(ManifestKind::OciManifest),
            media_types::OCI_INDEX => Some(ManifestKind::OciIndex),
            media_types::DOCKER_MANIFEST => Some(ManifestKind::DockerManifest),
            media_types::DOCKER_MANIFEST_LIST => Some(ManifestKind::DockerManifestList),
            _ => None,
        }
    }

    /// An index or manifest list (has `manifests`), as opposed to an image manifest (has `config` and `layers`).
    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerManifestList)
    }
}

/// A manifest that passed validation, with the fields the registry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
    kind: ManifestKind,
    config: Option<Descriptor>,
    layers: Vec<Descriptor>,
    manifests: Vec<Descriptor>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Every field any of the four formats has; which are required is checked after deserializing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

fn invalid(message: impl Into<String>) -> OciError {
    OciError::ManifestInvalid(message.into())
}

impl ParsedManifest {
    /// Validates `bytes` as pushed with the `Content-Type` header `media_type_header`.
    pub fn parse(
        media_type_header: Option<&str>,
        bytes: &[u8],
    ) -> Result<ParsedManifest, OciError> {
        if bytes.len() > MANIFEST_SIZE_LIMIT {
            return Err(OciError::ManifestTooLarge {
                size: bytes.len(),
                limit: MANIFEST_SIZE_LIMIT,
            });
        }
        let header = media_type_header
            .map(media_types::essence)
            .filter(|header| !is_generic_content_type(header));
        if let Some(header) = &header {
            reject_unsupported_media_type(header)?;
        }
        // serde would also accept a JSON array as a struct (in field order); a manifest must be an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(invalid("manifest is not a JSON object"));
        }
        let raw: RawManifest = serde_json::from_slice(bytes)
            .map_err(|error| invalid(format!("malformed manifest JSON: {error}")))?;
        match raw.schema_version {
            Some(2) => {}
            Some(1) => return Err(invalid("Docker schema1 manifests are not supported")),
            Some(other) => return Err(invalid(format!("unsupported schemaVersion {other}"))),
            None => return Err(invalid("missing schemaVersion")),
        }
        if let Some(body_media_type) = &raw.media_type {
            reject_unsupported_media_type(body_media_type)?;
        }
        let media_type = match (header, raw.media_type.as_deref()) {
            (Some(header), Some(body)) if header != body => {
                return Err(invalid(format!(
                    "Content-Type `{header}` does not match mediaType `{body}`"
                )))
            }
            (Some(header), _) => header,
            (None, Some(body)) => body.to_owned(),
            (None, None) if raw.manifests.is_some() && raw.config.is_none() => {
                media_types::OCI_INDEX.to_owned()
            }
            (None, None) => media_types::OCI_MANIFEST.to_owned(),
        };
        let kind = ManifestKind::from_media_type(&media_type)
            .ok_or_else(|| invalid(format!("unsupported manifest media type `{media_type}`")))?;
        let is_oci = matches!(kind, ManifestKind::OciManifest | ManifestKind::OciIndex);
        if !is_oci && raw.media_type.is_none() {
            return Err(invalid("Docker schema2 manifests must carry mediaType"));
        }
        let manifest = if kind.is_index() {
            let manifests = raw.manifests.ok_or_else(|| invalid("index lacks `manifests`"))?;
            let artifact_type =
                if is_oci { raw.artifact_type.filter(|value| !value.is_empty()) } else { None };
            ParsedManifest {
                kind,
                config: None,
                layers: Vec::new(),
                manifests,
                subject: if is_oci { raw.subject } else { None },
                artifact_type,
                annotations: raw.annotations,
            }
        } else {
            let config = raw.config.ok_or_else(|| invalid("manifest lacks `config`"))?;
            let layers = raw.layers.ok_or_else(|| invalid("manifest lacks `layers`"))?;
            // Referrers rule: an image manifest without artifactType reports its config's media type instead.
            let artifact_type = if is_oci {
                raw.artifact_type
                    .filter(|value| !value.is_empty())
                    .or_else(|| Some(config.media_type.clone()))
            } else {
                None
            };
            ParsedManifest {
                kind,
                config: Some(config),
                layers,
                manifests: Vec::new(),
                subject: if is_oci { raw.subject } else { None },
                artifact_type,
                annotations: raw.annotations,
            }
        };
        manifest.check_media_types()?;
        Ok(manifest)
    }

    fn check_media_types(&self) -> Result<(), OciError> {
        if let Some(artifact_type) = &self.artifact_type {
            if !is_valid_media_type(artifact_type) {
                return Err(invalid(format!(
                    "artifactType `{artifact_type}` is not a valid media type"
                )));
            }
        }
        let descriptors = self
            .config
            .iter()
            .chain(&self.layers)
            .chain(&self.manifests)
            .chain(self.subject.as_ref());
        for descriptor in descriptors {
            if !is_valid_media_type(&descriptor.media_type) {
                return Err(invalid(format!(
                    "descriptor `{}` has invalid mediaType `{}`",
                    descriptor.digest, descriptor.media_type
                )));
            }
            if let Some(artifact_type) = &descriptor.artifact_type {
                if !is_valid_media_type(artifact_type) {
                    return Err(invalid(format!(
                        "descriptor `{}` has invalid artifactType",
                        descriptor.digest
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn kind(&self) -> ManifestKind {
        self.kind
    }

    /// The resolved media type (header, body or inferred), one of [`media_types::SUPPORTED_MANIFESTS`].
    pub fn media_type(&self) -> &'static str {
        self.kind.media_type()
    }

    /// The config descriptor; present exactly for image manifests.
    pub fn config(&self) -> Option<&Descriptor> {
        self.config.as_ref()
    }

    /// Layers of an image manifest, in order; empty for indexes.
    pub fn layers(&self) -> &[Descriptor] {
        &self.layers
    }

    /// Entries of an index or manifest list; empty for image manifests.
    pub fn manifests(&self) -> &[Descriptor] {
        &self.manifests
    }

    /// The manifest this one refers to (OCI only), for the referrers API. Need not exist in the registry.
    pub fn subject(&self) -> Option<&Descriptor> {
        self.subject.as_ref()
    }

    /// The artifact type the referrers API reports: `artifactType`, else (image manifests only) `config.mediaType`.
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref()
    }

    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.annotations.as_ref()
    }

    /// Blobs that must exist in the repository before this manifest is accepted: the config and every layer,
    /// except foreign / non-distributable layers that name external `urls`. Duplicates removed, order kept.
    pub fn referenced_blobs(&self) -> Vec<&Digest> {
        let required = self.config.iter().chain(self.layers.iter().filter(|layer| {
            !(layer.has_urls() && media_types::is_foreign_layer(&layer.media_type))
        }));
        dedup(required.map(|descriptor| &descriptor.digest))
    }

    /// Manifests an index or list points at, which the registry may require to exist. Duplicates removed.
    pub fn referenced_manifests(&self) -> Vec<&Digest> {
        dedup(self.manifests.iter().map(|descriptor| &descriptor.digest))
    }
}

fn dedup<'a>(digests: impl Iterator<Item = &'a Digest>) -> Vec<&'a Digest> {
    let mut seen = std::collections::HashSet::new();
    digests.filter(|digest| seen.insert(*digest)).collect()
}

fn is_generic_content_type(essence: &str) -> bool {
    essence.is_empty() || essence == "application/json" || essence == "application/octet-stream"
}

fn reject_unsupported_media_type(media_type: &str) -> Result<(), OciError> {
    if media_type == media_types::DOCKER_SCHEMA1_MANIFEST
        || media_type == media_types::DOCKER_SCHEMA1_SIGNED_MANIFEST
    {
        return Err(invalid("Docker schema1 manifests are not supported"));
    }
    if ManifestKind::from_media_type(media_type).is_none() {
        return Err(invalid(format!("unsupported manifest media type `{media_type}`")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types::*;
    use crate::ErrorCode;
    use proptest::prelude::*;

    fn digest(seed: &str) -> Digest {
        Digest::sha256_of(seed.as_bytes())
    }

    fn image_manifest(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
              "config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":10}},
              "layers":[{{"mediaType":"{OCI_LAYER_TAR_GZIP}","digest":"{}","size":20}},
                        {{"mediaType":"{OCI_LAYER_TAR_GZIP}","digest":"{}","size":20}}]{extra}}}"#,
            digest("config"),
            digest("layer"),
            digest("layer"),
        )
    }

    #[test]
    fn parses_oci_image_manifest() {
        let manifest =
            ParsedManifest::parse(Some(OCI_MANIFEST), image_manifest("").as_bytes()).unwrap();
        assert_eq!(manifest.kind(), ManifestKind::OciManifest);
        assert_eq!(manifest.media_type(), OCI_MANIFEST);
        assert_eq!(manifest.config().unwrap().digest, digest("config"));
        assert_eq!(manifest.layers().len(), 2);
        assert_eq!(manifest.referenced_blobs(), [&digest("config"), &digest("layer")]);
        assert!(manifest.referenced_manifests().is_empty());
        assert_eq!(manifest.artifact_type(), Some(OCI_CONFIG)); // falls back to config.mediaType
        assert_eq!(manifest.subject(), None);
    }

    #[test]
    fn artifact_with_subject_and_annotations() {
        let extra = format!(
            r#","artifactType":"application/vnd.example.sbom","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}},"annotations":{{"org.example":"x"}}"#,
            digest("subject")
        );
        let manifest = ParsedManifest::parse(None, image_manifest(&extra).as_bytes()).unwrap();
        assert_eq!(manifest.artifact_type(), Some("application/vnd.example.sbom"));
        assert_eq!(manifest.subject().unwrap().digest, digest("subject"));
        assert_eq!(manifest.annotations().unwrap()["org.example"], "x");
        // The subject need not exist, so it is not a referenced blob or manifest.
        assert!(!manifest.referenced_blobs().contains(&&digest("subject")));
    }

    #[test]
    fn empty_artifact_type_means_missing() {
        let manifest =
            ParsedManifest::parse(None, image_manifest(r#","artifactType":"""#).as_bytes())
                .unwrap();
        assert_eq!(manifest.artifact_type(), Some(OCI_CONFIG));
    }

    #[test]
    fn parses_oci_index_with_platforms() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.20348.1"}}}}]}}"#,
            digest("linux"),
            digest("windows")
        );
        let manifest =
            ParsedManifest::parse(Some(&format!("{OCI_INDEX}; charset=utf-8")), body.as_bytes())
                .unwrap();
        assert_eq!(manifest.kind(), ManifestKind::OciIndex);
        assert_eq!(manifest.referenced_manifests(), [&digest("linux"), &digest("windows")]);
        assert!(manifest.referenced_blobs().is_empty());
        assert_eq!(manifest.artifact_type(), None);
        let windows = manifest.manifests()[1].platform.as_ref().unwrap();
        assert_eq!(windows.os_version.as_deref(), Some("10.0.20348.1"));
    }

    #[test]
    fn index_without_media_type_is_inferred() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1}}],"artifactType":"application/x.y"}}"#,
            digest("a")
        );
        let manifest = ParsedManifest::parse(None, body.as_bytes()).unwrap();
        assert_eq!(manifest.kind(), ManifestKind::OciIndex);
        assert_eq!(manifest.artifact_type(), Some("application/x.y"));
    }

    #[test]
    fn parses_docker_schema2_and_list() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
              "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":10}},
              "layers":[{{"mediaType":"{DOCKER_LAYER}","digest":"{}","size":20}},
                        {{"mediaType":"{DOCKER_FOREIGN_LAYER}","digest":"{}","size":20,"urls":["https://example.com/l"]}}]}}"#,
            digest("config"),
            digest("layer"),
            digest("foreign")
        );
        let manifest = ParsedManifest::parse(Some(DOCKER_MANIFEST), body.as_bytes()).unwrap();
        assert_eq!(manifest.kind(), ManifestKind::DockerManifest);
        // The foreign layer lives at its URL and is not required in the registry.
        assert_eq!(manifest.referenced_blobs(), [&digest("config"), &digest("layer")]);
        assert_eq!(manifest.artifact_type(), None);

        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
                {{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}}]}}"#,
            digest("arm")
        );
        let parsed = ParsedManifest::parse(None, list.as_bytes()).unwrap();
        assert_eq!(parsed.kind(), ManifestKind::DockerManifestList);
        assert_eq!(parsed.referenced_manifests(), [&digest("arm")]);
    }

    fn assert_invalid(header: Option<&str>, body: &str, needle: &str) {
        let error = ParsedManifest::parse(header, body.as_bytes()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::ManifestInvalid, "{body}");
        assert!(error.to_string().contains(needle), "`{error}` lacks `{needle}`");
    }

    #[test]
    fn rejects_invalid_manifests() {
        assert_invalid(None, "", "not a JSON object");
        assert_invalid(None, "[2]", "not a JSON object");
        assert_invalid(None, "{", "malformed manifest JSON");
        assert_invalid(None, r#"{"schemaVersion":2,"schemaVersion":2}"#, "malformed");
        assert_invalid(
            None,
            r#"{"schemaVersion":2,"mediaType":"x/y"}"#,
            "unsupported manifest media type",
        );
        assert_invalid(
            None,
            &image_manifest("").replace("\"schemaVersion\":2,", ""),
            "missing schemaVersion",
        );
        assert_invalid(
            None,
            &image_manifest("").replace("\"schemaVersion\":2", "\"schemaVersion\":3"),
            "3",
        );
        assert_invalid(
            None,
            &image_manifest("").replace("\"schemaVersion\":2", "\"schemaVersion\":\"2\""),
            "JSON",
        );
        assert_invalid(Some(OCI_INDEX), &image_manifest(""), "does not match");
        assert_invalid(Some("text/html"), &image_manifest(""), "unsupported manifest media type");
        assert_invalid(
            None,
            &format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
            "config",
        );
        let no_layers = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}}}}"#,
            digest("c")
        );
        assert_invalid(None, &no_layers, "layers");
        assert_invalid(
            None,
            &format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}"}}"#),
            "manifests",
        );
        assert_invalid(
            None,
            &image_manifest("").replace(OCI_LAYER_TAR_GZIP, "not a media type"),
            "mediaType",
        );
        assert_invalid(None, &image_manifest(r#","artifactType":"nope""#), "artifactType");
        assert_invalid(None, &image_manifest("").replace("\"size\":20", "\"size\":-20"), "JSON");
        assert_invalid(None, &image_manifest("").replace("\"size\":20", "\"size\":\"20\""), "JSON");
        assert_invalid(
            None,
            &image_manifest("").replace(&digest("layer").to_string(), "sha256:abc"),
            "digest",
        );
        let docker_without_media_type = image_manifest("").replace(OCI_MANIFEST, DOCKER_MANIFEST);
        assert_invalid(
            Some(DOCKER_MANIFEST),
            &docker_without_media_type.replace(
                ",\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\"",
                "",
            ),
            "mediaType",
        );
    }

    #[test]
    fn rejects_schema1() {
        assert_invalid(Some(DOCKER_SCHEMA1_SIGNED_MANIFEST), r#"{"schemaVersion":1}"#, "schema1");
        assert_invalid(
            None,
            r#"{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[]}"#,
            "schema1",
        );
    }

    #[test]
    fn size_limit() {
        let padded = format!("{}{}", " ".repeat(MANIFEST_SIZE_LIMIT), image_manifest(""));
        let error = ParsedManifest::parse(None, padded.as_bytes()).unwrap_err();
        assert!(matches!(error, OciError::ManifestTooLarge { .. }));
        // Exactly at the limit is fine.
        let body = image_manifest("");
        let at_limit = format!("{}{body}", " ".repeat(MANIFEST_SIZE_LIMIT - body.len()));
        assert!(ParsedManifest::parse(None, at_limit.as_bytes()).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ParsedManifest::parse(None, &bytes);
            let _ = ParsedManifest::parse(Some(OCI_MANIFEST), &bytes);
        }

        #[test]
        fn never_panics_on_mutated_manifests(position in 0usize..600, byte in any::<u8>(), header in prop_oneof![
            Just(None), Just(Some(OCI_MANIFEST)), Just(Some(OCI_INDEX)), Just(Some(DOCKER_MANIFEST))]) {
            let mut bytes = image_manifest(r#","annotations":{"a":"b"}"#).into_bytes();
            let position = position % bytes.len();
            bytes[position] = byte;
            let _ = ParsedManifest::parse(header, &bytes);
        }
    }
}

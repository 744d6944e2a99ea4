//! Content descriptors and platforms as the OCI image spec defines them (`descriptor.md`, `image-index.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Digest;

/// A reference to content: media type, digest and size, plus optional metadata.
///
/// Unknown fields are ignored on input, as the spec requires. Absent optional fields stay absent on output, so a
/// descriptor serialises to what the referrers API expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    /// Size in bytes. The spec types it int64; a negative size fails to deserialize.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Embedded content, base64 (image-spec 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Only meaningful in an index's `manifests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A descriptor with just the three required fields.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            data: None,
            artifact_type: None,
            platform: None,
        }
    }

    /// Whether the descriptor lists external `urls` to fetch the content from.
    pub fn has_urls(&self) -> bool {
        self.urls.as_ref().is_some_and(|urls| !urls.is_empty())
    }
}

/// The platform an image in an index runs on (`image-index.md`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    /// Windows build, e.g. `10.0.17763.1234`.
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// e.g. `["win32k"]`.
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    /// CPU variant, e.g. `v7` for `arm`, `v8` for `arm64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Reserved by the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_spec_example_and_omits_absent_fields() {
        let digest = Digest::sha256_of(b"m");
        let json = format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":7143,
                "platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1234",
                "os.features":["win32k"]}},"unknownField":true}}"#
        );
        let descriptor: Descriptor = serde_json::from_str(&json).unwrap();
        let platform = descriptor.platform.clone().unwrap();
        assert_eq!(platform.os_version.as_deref(), Some("10.0.17763.1234"));
        assert_eq!(platform.os_features.as_deref(), Some(&["win32k".to_owned()][..]));
        let out = serde_json::to_string(&Descriptor::new("text/plain", digest.clone(), 1)).unwrap();
        assert_eq!(out, format!(r#"{{"mediaType":"text/plain","digest":"{digest}","size":1}}"#));
    }

    #[test]
    fn rejects_negative_size_and_bad_digest() {
        let digest = Digest::sha256_of(b"m");
        let negative = format!(r#"{{"mediaType":"a/b","digest":"{digest}","size":-1}}"#);
        assert!(serde_json::from_str::<Descriptor>(&negative).is_err());
        assert!(serde_json::from_str::<Descriptor>(
            r#"{"mediaType":"a/b","digest":"sha256:x","size":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Descriptor>(&format!(
            r#"{{"digest":"{digest}","size":1}}"#
        ))
        .is_err());
    }
}

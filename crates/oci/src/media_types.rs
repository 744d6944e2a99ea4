//! Media-type constants of the OCI image spec (v1.1) and Docker image manifest v2 schema 2, and media-type checks.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The empty descriptor's media type (`{}`), used as config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer, uncompressed (deprecated in image-spec 1.1 but still accepted).
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable layer, gzip.
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable layer, zstd.
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// The artifact manifest of the image-spec 1.1 release candidates, removed before 1.1.0; rejected as a manifest.
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer (gzip).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign layer (Windows base layers), fetched from its `urls` rather than from the registry.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker plugin config.
pub const DOCKER_PLUGIN_CONFIG: &str = "application/vnd.docker.plugin.v1+json";
/// Docker schema 1 manifest (unsigned); rejected.
pub const DOCKER_SCHEMA1_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1 manifest (signed); rejected.
pub const DOCKER_SCHEMA1_SIGNED_MANIFEST: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The four manifest media types berth stores.
pub const SUPPORTED_MANIFESTS: [&str; 4] =
    [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/// Whether a manifest of this media type describes one image (as opposed to an index or list).
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether this media type is an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a layer of this media type may live outside the registry (its blob need not be pushed).
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type == DOCKER_FOREIGN_LAYER
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
}

/// Strips parameters and whitespace from a `Content-Type` value and lowercases it:
/// `Application/JSON; charset=utf-8` becomes `application/json`.
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Whether `text` is a syntactically valid media type per RFC 6838 (`type/subtype`, restricted names of at most
/// 127 characters each), which is what the image spec requires of `mediaType` and `artifactType`.
pub fn is_valid_media_type(text: &str) -> bool {
    fn is_restricted_name(name: &str) -> bool {
        let bytes = name.as_bytes();
        match bytes.split_first() {
            Some((first, rest)) => {
                bytes.len() <= 127
                    && first.is_ascii_alphanumeric()
                    && rest.iter().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(b))
            }
            None => false,
        }
    }
    match text.split_once('/') {
        Some((kind, subtype)) => is_restricted_name(kind) && is_restricted_name(subtype),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_syntax() {
        for valid in
            [OCI_MANIFEST, DOCKER_FOREIGN_LAYER, "application/vnd.example+type", "text/plain"]
        {
            assert!(is_valid_media_type(valid), "{valid}");
        }
        for invalid in
            ["", "application", "application/", "/json", "a/b/c", "a b/c", "application/json; x=y"]
        {
            assert!(!is_valid_media_type(invalid), "{invalid}");
        }
    }

    #[test]
    fn essence_strips_parameters() {
        assert_eq!(essence("Application/JSON; charset=utf-8"), "application/json");
        assert_eq!(essence(" application/vnd.oci.image.index.v1+json "), OCI_INDEX);
    }

    #[test]
    fn classification() {
        assert!(is_image_manifest(OCI_MANIFEST) && is_image_manifest(DOCKER_MANIFEST));
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_MANIFEST_LIST));
        assert!(!is_index(OCI_MANIFEST));
        assert!(
            is_foreign_layer(DOCKER_FOREIGN_LAYER)
                && is_foreign_layer(OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP)
        );
        assert!(!is_foreign_layer(OCI_LAYER_TAR_GZIP));
    }
}

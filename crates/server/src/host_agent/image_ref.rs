//! A site's image reference (`host[:port]/repository[:tag][@digest]`, as in `DOCKER|<image>`), parsed and checked.

use std::fmt;

use berth_oci::{Digest, RepositoryName, Tag};

/// An image reference that names its registry host, as a site's `linuxFxVersion` must.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host` or `host:port`, lower-cased.
    pub host: String,
    pub repository: RepositoryName,
    pub tag: Option<Tag>,
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses `host/repository[:tag][@digest]`; the tag defaults to `latest` when neither is given.
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        let text = text.trim();
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(
                    Digest::parse(digest)
                        .map_err(|e| format!("'{digest}' is not a digest: {e}"))?,
                ),
            ),
            None => (text, None),
        };
        let (host, path) = rest.split_once('/').ok_or_else(|| {
            format!(
                "'{text}' does not name its registry: write <login server>/<repository>:<tag>, for example \
                 myacr.example.com/myimage:mytag"
            )
        })?;
        let host_is_registry = host.contains('.') || host.contains(':') || host == "localhost";
        if host.is_empty() || !host_is_registry {
            return Err(format!(
                "'{text}' does not name its registry ('{host}' is not a host name): write <login server>/<repository>:<tag>"
            ));
        }
        // A tag's colon comes after the last slash; a port's comes before it.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (path, None),
        };
        let repository = RepositoryName::parse(repository)
            .map_err(|e| format!("'{repository}' is not a repository name: {e}"))?;
        let tag = match tag {
            Some(tag) => Some(Tag::parse(tag).map_err(|e| format!("'{tag}' is not a tag: {e}"))?),
            None if digest.is_none() => Some(Tag::parse("latest").map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(ImageRef { host: host.to_ascii_lowercase(), repository, tag, digest })
    }

    /// The reference to ask the registry for: the digest when given, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.as_str().to_string(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository.as_str())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{}", tag.as_str())?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The image of a `DOCKER|<image>` fx version (the prefix is case-insensitive), or why it is not one.
pub fn image_of_fx_version(fx: &str) -> Result<ImageRef, String> {
    let Some((kind, image)) = fx.split_once('|') else {
        return Err(format!("'{fx}' is not of the form DOCKER|<image>"));
    };
    if !kind.eq_ignore_ascii_case("docker") {
        return Err(format!(
            "'{fx}' names the runtime stack '{kind}'; berth runs containers only: use DOCKER|<image>"
        ));
    }
    ImageRef::parse(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r = ImageRef::parse("127.0.0.1:8443/myacr/myimage:mytag").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference().as_str()),
            ("127.0.0.1:8443", "myacr/myimage", "mytag")
        );
        let r = ImageRef::parse("myacr.example.com/app").unwrap();
        assert_eq!(r.reference(), "latest");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("Myacr.Example.com/team/app@{digest}")).unwrap();
        assert_eq!((r.host.as_str(), r.reference()), ("myacr.example.com", digest.clone()));
        assert_eq!(r.to_string(), format!("myacr.example.com/team/app@{digest}"));
        for bad in [
            "nginx",
            "library/nginx",
            "host.com/UPPER",
            "host.com/app:bad tag",
            "host.com/a@sha256:1",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
        assert!(image_of_fx_version("docker|h.com/a:b").is_ok());
        assert!(image_of_fx_version("NODE|18-lts").is_err());
        assert!(image_of_fx_version("h.com/a:b").is_err());
    }
}

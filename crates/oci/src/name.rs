//! Repository names, tags and references (tag or digest) with hand-written matchers for the distribution grammars.
//!
//! Repository name (distribution `reference` package, also the OCI distribution spec's `<name>`):
//! ```text
//! name      ::= component ("/" component)*
//! component ::= [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
//! ```
//! at most [`REPOSITORY_NAME_MAX_LEN`] bytes. The limit applies to the name as the registry receives it in the URL;
//! in berth's path-routing mode that name starts with the registry's own name (`myacr/team/app`), so the registry
//! prefix counts against the limit, as a client's `host/name` limit would.
//!
//! Tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Digest, OciError};

/// Longest accepted repository name, in bytes.
pub const REPOSITORY_NAME_MAX_LEN: usize = 255;
/// Longest accepted tag, in bytes.
pub const TAG_MAX_LEN: usize = 128;

/// A validated repository name such as `library/ubuntu` or `team-a/app.web`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(Box<str>);

impl RepositoryName {
    pub fn parse(text: &str) -> Result<RepositoryName, OciError> {
        let invalid = |reason| OciError::InvalidRepositoryName { value: text.to_owned(), reason };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if text.len() > REPOSITORY_NAME_MAX_LEN {
            return Err(invalid("longer than 255 characters"));
        }
        if !text.split('/').all(is_valid_path_component) {
            return Err(invalid(
                "each `/`-separated component must be lowercase alphanumerics joined by `.`, `_`, `__` or dashes",
            ));
        }
        Ok(RepositoryName(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated components, first to last.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`.
fn is_valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut index = 0;
    loop {
        let run_start = index;
        while index < bytes.len() && matches!(bytes[index], b'a'..=b'z' | b'0'..=b'9') {
            index += 1;
        }
        if index == run_start {
            return false; // a component and every separator must be followed by an alphanumeric run
        }
        let Some(&separator) = bytes.get(index) else {
            return true;
        };
        let separator_start = index;
        match separator {
            b'.' => index += 1,
            b'_' => {
                while index < bytes.len() && bytes[index] == b'_' {
                    index += 1;
                }
                if index - separator_start > 2 {
                    return false;
                }
            }
            b'-' => {
                while index < bytes.len() && bytes[index] == b'-' {
                    index += 1;
                }
            }
            _ => return false,
        }
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryName({})", self.0)
    }
}

impl FromStr for RepositoryName {
    type Err = OciError;
    fn from_str(text: &str) -> Result<RepositoryName, OciError> {
        RepositoryName::parse(text)
    }
}

/// A validated tag such as `latest` or `v1.2.3-rc_1`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Box<str>);

impl Tag {
    pub fn parse(text: &str) -> Result<Tag, OciError> {
        let bytes = text.as_bytes();
        let valid = match bytes.split_first() {
            Some((first, rest)) => {
                bytes.len() <= TAG_MAX_LEN
                    && (first.is_ascii_alphanumeric() || *first == b'_')
                    && rest.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
            }
            None => false,
        };
        if valid {
            Ok(Tag(text.into()))
        } else {
            Err(OciError::InvalidTag(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl FromStr for Tag {
    type Err = OciError;
    fn from_str(text: &str) -> Result<Tag, OciError> {
        Tag::parse(text)
    }
}

/// The `<reference>` of `/v2/<name>/manifests/<reference>`: a tag or a digest. Tags cannot contain `:` and digests
/// must, so the two never overlap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, OciError> {
        if text.contains(':') {
            Digest::parse(text).map(Reference::Digest)
        } else {
            Tag::parse(text).map(Reference::Tag)
        }
    }

    pub fn as_tag(&self) -> Option<&Tag> {
        match self {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        }
    }

    pub fn as_digest(&self) -> Option<&Digest> {
        match self {
            Reference::Digest(digest) => Some(digest),
            Reference::Tag(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => tag.fmt(f),
            Reference::Digest(digest) => fmt::Display::fmt(digest, f),
        }
    }
}

impl FromStr for Reference {
    type Err = OciError;
    fn from_str(text: &str) -> Result<Reference, OciError> {
        Reference::parse(text)
    }
}

macro_rules! string_serde {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$type, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                <$type>::from_str(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(RepositoryName);
string_serde!(Tag);
string_serde!(Reference);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_repository_names() {
        for name in [
            "a",
            "library/ubuntu",
            "team-a/app.web",
            "a__b",
            "a_b",
            "a---b",
            "a.b.c/d-e/f__g",
            "0/1/2",
            "myacr/team/sub/deep/app",
        ] {
            let parsed = RepositoryName::parse(name).unwrap();
            assert_eq!(parsed.as_str(), name);
        }
        assert_eq!(
            RepositoryName::parse("a/b/c").unwrap().components().collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn rejects_invalid_repository_names() {
        for name in [
            "",
            "A",
            "Library/ubuntu",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a.",
            "_a",
            "a_",
            "a:b",
            "a b",
            "a/.b",
            "a/b@c",
            "ä",
        ] {
            let error = RepositoryName::parse(name).unwrap_err();
            assert_eq!(error.code(), ErrorCode::NameInvalid, "{name:?}");
        }
    }

    #[test]
    fn repository_name_length_limit() {
        let longest = format!("{}/{}", "a".repeat(127), "b".repeat(127));
        assert_eq!(longest.len(), 255);
        assert!(RepositoryName::parse(&longest).is_ok());
        assert!(RepositoryName::parse(&format!("{longest}c")).is_err());
    }

    #[test]
    fn tags() {
        for tag in ["latest", "v1.2.3", "_private", "A-b_c.d", "0"] {
            assert_eq!(Tag::parse(tag).unwrap().as_str(), tag);
        }
        assert!(Tag::parse(&"a".repeat(128)).is_ok());
        for tag in ["", ".a", "-a", "a:b", "a/b", "a b", &"a".repeat(129), "é"] {
            assert_eq!(Tag::parse(tag).unwrap_err().code(), ErrorCode::TagInvalid, "{tag:?}");
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            Reference::parse("latest").unwrap(),
            Reference::Tag(Tag::parse("latest").unwrap())
        );
        let digest = Digest::sha256_of(b"x");
        let reference = Reference::parse(digest.as_str()).unwrap();
        assert_eq!(reference.as_digest(), Some(&digest));
        assert_eq!(reference.to_string(), digest.to_string());
        assert!(Reference::parse("sha256:short").is_err());
        assert!(Reference::parse("").is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let name: RepositoryName = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"a/b\"");
        assert!(serde_json::from_str::<RepositoryName>("\"A\"").is_err());
        assert!(serde_json::from_str::<Tag>("\".x\"").is_err());
    }

    fn component_strategy() -> impl Strategy<Value = String> {
        let run = "[a-z0-9]{1,6}";
        let separator = prop_oneof![
            Just(".".to_owned()),
            Just("_".to_owned()),
            Just("__".to_owned()),
            "-{1,3}"
        ];
        (run, proptest::collection::vec((separator, run), 0..3)).prop_map(|(first, rest)| {
            let mut component = first;
            for (separator, run) in rest {
                component.push_str(&separator);
                component.push_str(&run);
            }
            component
        })
    }

    proptest! {
        #[test]
        fn repository_name_round_trip(components in proptest::collection::vec(component_strategy(), 1..5)) {
            let text = components.join("/");
            let name = RepositoryName::parse(&text).unwrap();
            prop_assert_eq!(RepositoryName::parse(&name.to_string()).unwrap(), name);
        }

        #[test]
        fn tag_round_trip(text in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
            let tag = Tag::parse(&text).unwrap();
            prop_assert_eq!(Tag::parse(&tag.to_string()).unwrap(), tag);
        }

        #[test]
        fn parsers_never_panic(text in "\\PC{0,300}") {
            if let Ok(name) = RepositoryName::parse(&text) {
                prop_assert_eq!(name.as_str(), text.as_str());
            }
            let _ = Tag::parse(&text);
            let _ = Reference::parse(&text);
        }
    }
}

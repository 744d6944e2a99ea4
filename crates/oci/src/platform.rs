//! Choosing the image manifest for a platform from an index's `manifests`, the way container runtimes do.
//!
//! Rules (after containerd's `platforms` matcher, simplified):
//! - only image manifests (OCI or Docker schema2) are candidates; nested indexes and artifacts are skipped;
//! - `os` and `architecture` must match after normalisation (`x86_64` → `amd64`, `aarch64` → `arm64`, lowercase);
//! - variants normalise too (`arm64` without a variant means `v8`; `arm` without a variant means `v7`); a wanted
//!   variant matches exactly, and for `arm` an older variant is the fallback (`v7` can run `v6` and `v5`);
//! - on Windows with a wanted `os.version`, an image of the same build (`major.minor.build`) wins, highest revision
//!   first; without one, the newest image older than the host's build (runnable under Hyper-V isolation) is taken;
//!   images newer than the host are never chosen.
//!
//! Among equally good candidates the first in the index wins.

use crate::media_types;
use crate::Descriptor;

/// The platform a client wants. Build one with [`PlatformWanted::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformWanted {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// Windows host build, e.g. `10.0.20348.2113`.
    pub os_version: Option<String>,
}

impl PlatformWanted {
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> PlatformWanted {
        PlatformWanted {
            os: os.into(),
            architecture: architecture.into(),
            variant: None,
            os_version: None,
        }
    }

    pub fn with_variant(mut self, variant: impl Into<String>) -> PlatformWanted {
        self.variant = Some(variant.into());
        self
    }

    pub fn with_os_version(mut self, os_version: impl Into<String>) -> PlatformWanted {
        self.os_version = Some(os_version.into());
        self
    }
}

/// The best image manifest in `manifests` for `wanted`, or `None` if nothing runs there.
pub fn select_platform_manifest<'a>(
    manifests: &'a [Descriptor],
    wanted: &PlatformWanted,
) -> Option<&'a Descriptor> {
    let wanted_os = wanted.os.to_ascii_lowercase();
    let wanted_architecture = normalize_architecture(&wanted.architecture);
    let wanted_variant = normalize_variant(&wanted_architecture, wanted.variant.as_deref());
    let wanted_build = wanted.os_version.as_deref().and_then(parse_windows_version);

    let mut best: Option<(Score, &Descriptor)> = None;
    for descriptor in manifests {
        if !media_types::is_image_manifest(&descriptor.media_type) {
            continue;
        }
        let Some(platform) = &descriptor.platform else { continue };
        if platform.os.to_ascii_lowercase() != wanted_os
            || normalize_architecture(&platform.architecture) != wanted_architecture
        {
            continue;
        }
        let variant = normalize_variant(&wanted_architecture, platform.variant.as_deref());
        let Some(variant_score) =
            variant_score(&wanted_architecture, wanted_variant.as_deref(), variant.as_deref())
        else {
            continue;
        };
        let version_score = match (wanted_os.as_str(), wanted_build) {
            ("windows", Some(host)) => {
                match windows_version_score(
                    host,
                    platform.os_version.as_deref().and_then(parse_windows_version),
                ) {
                    Some(score) => score,
                    None => continue,
                }
            }
            _ => VersionScore::default(),
        };
        let score = Score { version: version_score, variant: variant_score };
        if best.as_ref().is_none_or(|(best_score, _)| score > *best_score) {
            best = Some((score, descriptor));
        }
    }
    best.map(|(_, descriptor)| descriptor)
}

/// Higher is better; compared version first, then variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    version: VersionScore,
    variant: u32,
}

/// (same build as the host, the image's version); derived `Ord` compares in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct VersionScore {
    same_build: bool,
    version: [u64; 4],
}

fn normalize_architecture(architecture: &str) -> String {
    match architecture.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        "i386" | "i686" => "386".to_owned(),
        other => other.to_owned(),
    }
}

fn normalize_variant(architecture: &str, variant: Option<&str>) -> Option<String> {
    let variant = variant.filter(|value| !value.is_empty()).map(str::to_ascii_lowercase);
    match (architecture, variant.as_deref()) {
        ("arm64", None | Some("8")) => Some("v8".to_owned()),
        ("arm", None) => Some("v7".to_owned()),
        ("arm", Some(number @ ("5" | "6" | "7" | "8"))) => Some(format!("v{number}")),
        _ => variant,
    }
}

/// `None` if the candidate's variant cannot run on the wanted one.
fn variant_score(architecture: &str, wanted: Option<&str>, candidate: Option<&str>) -> Option<u32> {
    let Some(wanted) = wanted else {
        return Some(1); // no preference
    };
    if candidate == Some(wanted) {
        return Some(10);
    }
    if architecture == "arm" {
        // An older ARM variant runs on a newer CPU; prefer the newest that does.
        let wanted_level = arm_level(wanted)?;
        let candidate_level = arm_level(candidate?)?;
        if candidate_level < wanted_level {
            return Some(candidate_level);
        }
    }
    None
}

fn arm_level(variant: &str) -> Option<u32> {
    variant.strip_prefix('v')?.parse().ok().filter(|level| (5..=8).contains(level))
}

fn parse_windows_version(text: &str) -> Option<[u64; 4]> {
    let mut parts = [0u64; 4];
    let mut count = 0;
    for (slot, piece) in parts.iter_mut().zip(text.split('.')) {
        *slot = piece.parse().ok()?;
        count += 1;
    }
    (count >= 3 && text.split('.').count() <= 4).then_some(parts)
}

fn windows_version_score(host: [u64; 4], image: Option<[u64; 4]>) -> Option<VersionScore> {
    let Some(image) = image else {
        // No os.version on the image: usable, but worse than any versioned match.
        return Some(VersionScore::default());
    };
    if image[..3] == host[..3] {
        return Some(VersionScore { same_build: true, version: image });
    }
    (image[..3] < host[..3]).then_some(VersionScore { same_build: false, version: image })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types::{OCI_INDEX, OCI_MANIFEST};
    use crate::{Digest, Platform};

    fn entry(
        seed: &str,
        os: &str,
        architecture: &str,
        variant: Option<&str>,
        os_version: Option<&str>,
    ) -> Descriptor {
        let mut descriptor = Descriptor::new(OCI_MANIFEST, Digest::sha256_of(seed.as_bytes()), 1);
        descriptor.platform = Some(Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
            os_version: os_version.map(Into::into),
            ..Platform::default()
        });
        descriptor
    }

    fn pick<'a>(manifests: &'a [Descriptor], wanted: &PlatformWanted) -> Option<&'a Digest> {
        select_platform_manifest(manifests, wanted).map(|descriptor| &descriptor.digest)
    }

    #[test]
    fn linux_architectures_and_variants() {
        let mut nested_index = entry("nested", "linux", "amd64", None, None);
        nested_index.media_type = OCI_INDEX.into();
        let manifests = [
            nested_index,
            entry("amd64", "linux", "amd64", None, None),
            entry("arm64", "linux", "arm64", Some("v8"), None),
            entry("armv6", "linux", "arm", Some("v6"), None),
            entry("armv7", "linux", "arm", Some("v7"), None),
            entry("attestation", "unknown", "unknown", None, None),
        ];
        let digest = |seed: &str| Digest::sha256_of(seed.as_bytes());
        assert_eq!(
            pick(&manifests, &PlatformWanted::new("linux", "x86_64")),
            Some(&digest("amd64"))
        );
        assert_eq!(
            pick(&manifests, &PlatformWanted::new("Linux", "arm64")),
            Some(&digest("arm64"))
        );
        assert_eq!(
            pick(&manifests, &PlatformWanted::new("linux", "aarch64")),
            Some(&digest("arm64"))
        );
        assert_eq!(pick(&manifests, &PlatformWanted::new("linux", "arm")), Some(&digest("armv7")));
        assert_eq!(
            pick(&manifests, &PlatformWanted::new("linux", "arm").with_variant("v6")),
            Some(&digest("armv6"))
        );
        // v8 32-bit ARM falls back to the newest older variant.
        assert_eq!(
            pick(&manifests, &PlatformWanted::new("linux", "arm").with_variant("v8")),
            Some(&digest("armv7"))
        );
        assert_eq!(pick(&manifests, &PlatformWanted::new("linux", "arm").with_variant("v5")), None);
        assert_eq!(pick(&manifests, &PlatformWanted::new("linux", "s390x")), None);
        assert_eq!(pick(&manifests, &PlatformWanted::new("windows", "amd64")), None);
    }

    #[test]
    fn windows_builds() {
        let manifests = [
            entry("ltsc2019", "windows", "amd64", None, Some("10.0.17763.5000")),
            entry("ltsc2022-old", "windows", "amd64", None, Some("10.0.20348.100")),
            entry("ltsc2022-new", "windows", "amd64", None, Some("10.0.20348.2113")),
            entry("future", "windows", "amd64", None, Some("10.0.26100.1")),
        ];
        let digest = |seed: &str| Digest::sha256_of(seed.as_bytes());
        let host = |version: &str| PlatformWanted::new("windows", "amd64").with_os_version(version);
        assert_eq!(pick(&manifests, &host("10.0.20348.1")), Some(&digest("ltsc2022-new")));
        assert_eq!(pick(&manifests, &host("10.0.17763.1")), Some(&digest("ltsc2019")));
        // A host between builds gets the newest older build; a host older than every image gets nothing.
        assert_eq!(pick(&manifests, &host("10.0.22000.1")), Some(&digest("ltsc2022-new")));
        assert_eq!(pick(&manifests, &host("10.0.14393.1")), None);
        // Without a host version the first Windows image wins.
        assert_eq!(
            pick(&manifests, &PlatformWanted::new("windows", "amd64")),
            Some(&digest("ltsc2019"))
        );
    }
}

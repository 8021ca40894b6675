//! Platforms (`os/architecture[/variant]`) and the rule for "can this host run that image".
//!
//! Normalisation follows containerd's `platforms` package, because that is what the ECS agent and
//! Docker use when they pick a manifest from an index: whatever they consider the same platform, so
//! do we.

use std::fmt;

use serde::{Serialize, Serializer};

/// A platform as a document declared it. Comparisons go through [`Platform::normalized`], display
/// keeps the declared spelling so users recognise what their build produced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// Windows build number (`10.0.20348.469`); decides which Windows hosts can run the image.
    pub os_version: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
            os_version: None,
        }
    }

    pub fn linux(architecture: &str) -> Self {
        Platform::new("linux", architecture, None)
    }

    pub fn with_os_version(mut self, os_version: Option<&str>) -> Self {
        self.os_version = os_version.filter(|v| !v.is_empty()).map(str::to_string);
        self
    }

    /// Parses `os[(os.version)]/arch[/variant]`, the containerd notation.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.trim().split('/');
        let os_part = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let (os, os_version) = match os_part.split_once('(') {
            Some((os, rest)) => (os, Some(rest.strip_suffix(')')?)),
            None => (os_part, None),
        };
        if os.is_empty() {
            return None;
        }
        Some(Platform::new(os, architecture, variant).with_os_version(os_version))
    }

    /// The canonical form used for every comparison.
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let (architecture, variant) = normalize_arch(&arch, variant.as_deref());
        Platform {
            os: if os == "macos" { "darwin".into() } else { os },
            architecture,
            variant,
            os_version: self.os_version.clone(),
        }
    }

    /// True for the placeholder buildx writes on attestation manifests.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }

    /// Can a host of platform `self` run an image built for `image`?
    pub fn can_run(&self, image: &Platform) -> bool {
        let host = self.normalized();
        let image = image.normalized();
        if host.os != image.os {
            return false;
        }
        if host.os == "windows" {
            if let (Some(host_build), Some(image_build)) = (&host.os_version, &image.os_version) {
                // Windows containers must match the host's build (major.minor.build); the revision
                // after it may differ.
                if windows_build(host_build) != windows_build(image_build) {
                    return false;
                }
            }
        }
        match (host.architecture.as_str(), image.architecture.as_str()) {
            // x86-64 kernels run 32-bit x86 binaries, and every amd64 microarchitecture level
            // (v2, v3) runs on the hosts AWS offers; flagging those would be a false alarm.
            ("amd64", "amd64") | ("amd64", "386") => true,
            // 32-bit ARM images do not run on Graviton: it has no AArch32 execution state.
            ("arm", "arm") => arm_level(&host.variant) >= arm_level(&image.variant),
            (h, i) => h == i && (host.variant.is_none() || host.variant == image.variant),
        }
    }
}

fn windows_build(version: &str) -> &str {
    let mut end = version.len();
    let mut dots = 0;
    for (i, c) in version.char_indices() {
        if c == '.' {
            dots += 1;
            if dots == 3 {
                end = i;
                break;
            }
        }
    }
    &version[..end]
}

fn arm_level(variant: &Option<String>) -> u8 {
    match variant.as_deref() {
        Some("v5") => 5,
        Some("v6") => 6,
        Some("v8") => 8,
        // containerd treats a bare `arm` as v7.
        _ => 7,
    }
}

/// containerd's `normalizeArch`, plus the `uname -m` spellings people paste into configuration.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.filter(|v| !v.is_empty());
    let (a, v): (&str, Option<&str>) = match arch {
        "x86_64" | "x86-64" | "amd64" | "x64" => ("amd64", variant.filter(|v| *v != "v1")),
        "i386" | "i686" | "x86" | "386" => ("386", None),
        "aarch64" | "arm64" | "arm64v8" => ("arm64", variant.filter(|v| *v != "v8" && *v != "8")),
        "armhf" | "armv7" | "armv7l" | "arm32v7" => ("arm", Some("v7")),
        "armel" | "armv6" | "armv6l" | "arm32v6" => ("arm", Some("v6")),
        "armv5" | "armv5l" | "armv5tel" | "arm32v5" => ("arm", Some("v5")),
        "arm" => {
            let v = match variant {
                None | Some("7") | Some("v7") => "v7",
                Some("5") | Some("v5") => "v5",
                Some("6") | Some("v6") => "v6",
                Some("8") | Some("v8") => "v8",
                Some(other) => return ("arm".into(), Some(other.into())),
            };
            ("arm", Some(v))
        }
        other => (other, variant),
    };
    (a.to_string(), v.map(str::to_string))
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.os)?;
        if let Some(version) = &self.os_version {
            write!(f, "({version})")?;
        }
        write!(f, "/{}", self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Which of `required` cannot run any of `image`: empty means the consumer can run the image.
pub fn unmet<'a>(required: &'a [Platform], image: &[Platform]) -> Vec<&'a Platform> {
    required
        .iter()
        .filter(|host| !image.iter().any(|p| host.can_run(p)))
        .collect()
}

/// `linux/amd64, linux/arm64` for messages.
pub fn join(platforms: &[Platform]) -> String {
    let names: Vec<String> = platforms.iter().map(ToString::to_string).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    #[test]
    fn parses_and_displays_containerd_notation() {
        for text in ["linux/amd64", "linux/arm/v7", "windows(10.0.20348.469)/amd64"] {
            assert_eq!(p(text).to_string(), text);
        }
        assert_eq!(Platform::parse("linux"), None);
        assert_eq!(Platform::parse("linux/amd64/v2/x"), None);
        assert_eq!(Platform::parse("/amd64"), None);
    }

    #[test]
    fn normalises_architecture_spellings() {
        let cases = [
            ("linux/x86_64", "linux/amd64"),
            ("linux/x86-64", "linux/amd64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armv7", "linux/arm/v7"),
            ("linux/armv7l", "linux/arm/v7"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("Linux/AMD64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
        ];
        for (input, expected) in cases {
            assert_eq!(p(input).normalized().to_string(), expected, "{input}");
        }
    }

    #[test]
    fn same_platform_in_any_spelling_is_compatible() {
        assert!(p("linux/arm64").can_run(&p("linux/arm64/v8")));
        assert!(p("linux/arm64").can_run(&p("linux/aarch64")));
        assert!(p("linux/amd64").can_run(&p("linux/x86_64")));
    }

    #[test]
    fn arm64_image_does_not_run_on_amd64_and_back() {
        assert!(!p("linux/amd64").can_run(&p("linux/arm64")));
        assert!(!p("linux/arm64").can_run(&p("linux/amd64")));
    }

    #[test]
    fn arm_v7_image_does_not_run_on_arm64() {
        assert!(!p("linux/arm64").can_run(&p("linux/arm/v7")));
    }

    #[test]
    fn windows_image_does_not_run_on_linux() {
        assert!(!p("linux/amd64").can_run(&p("windows/amd64")));
        assert!(!p("windows/amd64").can_run(&p("linux/amd64")));
    }

    #[test]
    fn windows_build_must_match_when_both_are_known() {
        let host_2022 = p("windows(10.0.20348)/amd64");
        assert!(host_2022.can_run(&p("windows(10.0.20348.469)/amd64")));
        assert!(!host_2022.can_run(&p("windows(10.0.17763.2452)/amd64")));
        assert!(host_2022.can_run(&p("windows/amd64")));
    }

    #[test]
    fn older_arm_levels_run_on_newer_arm_hosts() {
        assert!(p("linux/arm/v7").can_run(&p("linux/arm/v6")));
        assert!(!p("linux/arm/v6").can_run(&p("linux/arm/v7")));
    }

    #[test]
    fn amd64_hosts_run_386_and_microarchitecture_levels() {
        assert!(p("linux/amd64").can_run(&p("linux/386")));
        assert!(p("linux/amd64").can_run(&p("linux/amd64/v3")));
        assert!(!p("linux/386").can_run(&p("linux/amd64")));
    }

    #[test]
    fn unmet_lists_hosts_no_image_platform_serves() {
        let required = [p("linux/amd64"), p("linux/arm64")];
        let image = [p("linux/arm64")];
        let missing = unmet(&required, &image);
        assert_eq!(missing, vec![&required[0]]);
        assert!(unmet(&required, &[p("linux/amd64"), p("linux/arm64/v8")]).is_empty());
    }
}

//! ECR image references (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]`) and how a
//! consumer's reference relates to a push.

use std::fmt;

use serde::Serialize;

/// An image in one ECR repository, as a push event or a CLI call names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageId {
    pub registry_id: String,
    pub region: String,
    pub repository: String,
    /// None for an untagged push (the children of a multi-platform push).
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageId {
    /// `repo:tag@digest` for messages.
    pub fn display_name(&self) -> String {
        let mut name = self.repository.clone();
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(digest);
        }
        name
    }
}

/// A parsed ECR image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrReference {
    pub registry_id: String,
    pub region: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// How a consumer's image reference relates to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// It runs the pushed tag or digest: the next deployment picks this image up.
    Affected,
    /// It names the repository with another tag or digest.
    Related,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Relation::Affected => "affected",
            Relation::Related => "related",
        })
    }
}

impl EcrReference {
    /// Parses an ECR reference; anything else (Docker Hub, ECR Public, other registries) is None.
    pub fn parse(text: &str) -> Option<EcrReference> {
        let text = text.trim();
        let (host, path) = text.split_once('/')?;
        let (registry_id, region) = parse_host(host)?;
        // The digest, when present, is what the runtime pulls; a tag beside it is decoration.
        let (name_and_tag, digest) = match path.split_once('@') {
            Some((name, digest)) if is_digest(digest) => (name, Some(digest.to_string())),
            Some(_) => return None,
            None => (path, None),
        };
        // A colon after the last slash separates the tag; repository names cannot contain one.
        let (repository, tag) = match name_and_tag.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (name_and_tag, None),
        };
        if !is_repository_name(repository) || tag.as_deref().is_some_and(|t| !is_tag(t)) {
            return None;
        }
        Some(EcrReference {
            registry_id: registry_id.to_string(),
            region: region.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// None when the reference names another repository (or the same name in another account or
    /// region, which is a different repository).
    pub fn relation_to(&self, push: &ImageId) -> Option<Relation> {
        if self.registry_id != push.registry_id
            || self.region != push.region
            || self.repository != push.repository
        {
            return None;
        }
        if let Some(digest) = &self.digest {
            return Some(if Some(digest) == push.digest.as_ref() {
                Relation::Affected
            } else {
                Relation::Related
            });
        }
        // An untagged reference means `latest`, as `docker pull` reads it.
        let tag = self.tag.as_deref().unwrap_or("latest");
        Some(if Some(tag) == push.tag.as_deref() {
            Relation::Affected
        } else {
            Relation::Related
        })
    }
}

impl fmt::Display for EcrReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.dkr.ecr.{}.amazonaws.com/{}",
            self.registry_id, self.region, self.repository
        )?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]` or `ACCOUNT.dkr-ecr[-fips].REGION.on.aws`.
fn parse_host(host: &str) -> Option<(&str, &str)> {
    let host = host.split(':').next()?;
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let region_and_suffix = ["dkr.ecr.", "dkr.ecr-fips.", "dkr-ecr.", "dkr-ecr-fips."]
        .iter()
        .find_map(|prefix| rest.strip_prefix(prefix))?;
    let region = [".amazonaws.com", ".amazonaws.com.cn", ".on.aws"]
        .iter()
        .find_map(|suffix| region_and_suffix.strip_suffix(suffix))?;
    let valid_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid_region.then_some((account, region))
}

/// ECR's repository name rule: lowercase path components separated by `/`.
pub fn is_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name.split('/').all(|component| {
            !component.is_empty()
                && component
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// Docker's tag grammar, with ECR's 300-character limit.
pub fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 300
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `sha256:` followed by 64 lowercase hex digits (the only algorithm ECR uses).
pub fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn push(tag: Option<&str>) -> ImageId {
        ImageId {
            registry_id: "123456789012".into(),
            region: "us-east-1".into(),
            repository: "shop/web".into(),
            tag: tag.map(str::to_string),
            digest: Some(DIGEST.into()),
        }
    }

    #[test]
    fn parses_every_host_form() {
        for host in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn",
            "123456789012.dkr-ecr.us-east-1.on.aws",
        ] {
            let r = EcrReference::parse(&format!("{host}/shop/web:v1")).unwrap();
            assert_eq!(r.registry_id, "123456789012", "{host}");
            assert_eq!(r.region, "us-east-1", "{host}");
            assert_eq!(r.repository, "shop/web");
            assert_eq!(r.tag.as_deref(), Some("v1"));
        }
    }

    #[test]
    fn parses_digest_untagged_and_tag_with_digest() {
        let base = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web";
        let r = EcrReference::parse(&format!("{base}@{DIGEST}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(DIGEST)));
        let r = EcrReference::parse(base).unwrap();
        assert_eq!((r.tag, r.digest), (None, None));
        let r = EcrReference::parse(&format!("{base}:v2@{DIGEST}")).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("v2"), Some(DIGEST))
        );
    }

    #[test]
    fn non_ecr_and_malformed_references_are_not_ours() {
        for text in [
            "nginx:latest",
            "docker.io/library/nginx",
            "public.ecr.aws/nginx/nginx:latest",
            "12345.dkr.ecr.us-east-1.amazonaws.com/web",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/Web",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:short",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/../web",
            "123456789012.dkr.ecr.us-east-1.example.com/web",
        ] {
            assert_eq!(EcrReference::parse(text), None, "{text}");
        }
    }

    #[test]
    fn relation_follows_tag_digest_and_latest_default() {
        let base = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web";
        let rel = |text: &str, tag| EcrReference::parse(text).unwrap().relation_to(&push(tag));
        assert_eq!(rel(&format!("{base}:v1"), Some("v1")), Some(Relation::Affected));
        assert_eq!(rel(&format!("{base}:v2"), Some("v1")), Some(Relation::Related));
        assert_eq!(rel(base, Some("latest")), Some(Relation::Affected));
        assert_eq!(rel(base, Some("v1")), Some(Relation::Related));
        assert_eq!(rel(&format!("{base}@{DIGEST}"), None), Some(Relation::Affected));
        assert_eq!(rel(&format!("{base}:v1"), None), Some(Relation::Related));
    }

    #[test]
    fn same_name_in_another_account_or_region_is_another_repository() {
        let other_account = "210987654321.dkr.ecr.us-east-1.amazonaws.com/shop/web:v1";
        let other_region = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:v1";
        for text in [other_account, other_region] {
            assert_eq!(
                EcrReference::parse(text).unwrap().relation_to(&push(Some("v1"))),
                None
            );
        }
    }

    #[test]
    fn display_round_trips() {
        let text = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:v1@{DIGEST}");
        let parsed = EcrReference::parse(&text).unwrap();
        assert_eq!(parsed.to_string(), text);
        assert_eq!(EcrReference::parse(&parsed.to_string()), Some(parsed));
    }
}

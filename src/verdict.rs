//! Image platforms × consumers → [`Report`], the JSON the CLI prints and the Lambda returns.

use std::fmt;

use serde::Serialize;

use crate::consumer::{Consumer, Kind, Requirement};
use crate::platform::{self, Platform};
use crate::reference::{EcrReference, ImageId, Relation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Compatible,
    Unknown,
    Incompatible,
    Skipped,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Compatible => "compatible",
            Verdict::Unknown => "unknown",
            Verdict::Incompatible => "incompatible",
            Verdict::Skipped => "skipped",
        })
    }
}

/// How soon a broken consumer hurts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Breaks only when someone promotes the tag or updates the function.
    Warning,
    /// Breaks at the next deployment.
    High,
    /// Deploys the bad image now.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// What was read from ECR about the pushed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    pub registry_id: String,
    pub region: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    /// `index`, `manifest`, `schema1` or `artifact`.
    pub kind: Option<&'static str>,
    pub platforms: Vec<Platform>,
    /// Why the platforms could not be read (bad config blob...), when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_error: Option<String>,
}

impl ImageReport {
    pub fn from_id(id: &ImageId) -> ImageReport {
        ImageReport {
            registry_id: id.registry_id.clone(),
            region: id.region.clone(),
            repository: id.repository.clone(),
            tag: id.tag.clone(),
            digest: id.digest.clone(),
            media_type: None,
            kind: None,
            platforms: Vec::new(),
            platform_error: None,
        }
    }

    pub fn id(&self) -> ImageId {
        ImageId {
            registry_id: self.registry_id.clone(),
            region: self.region.clone(),
            repository: self.repository.clone(),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
    }

    pub fn is_index(&self) -> bool {
        self.kind == Some("index")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerReport {
    pub kind: Kind,
    pub name: String,
    pub arn: String,
    /// The ECS cluster name; null for other kinds.
    pub cluster: Option<String>,
    /// The reference that ties it to this repository.
    pub image: String,
    pub relation: Relation,
    pub requires: Vec<Platform>,
    pub source: Option<&'static str>,
    pub verdict: Verdict,
    pub severity: Option<Severity>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// `sns-alert` or `tag`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Set on a dry run: the action was not taken.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub severity: Option<Severity>,
    pub image: Option<ImageReport>,
    pub consumers: Vec<ConsumerReport>,
    pub actions: Vec<Action>,
    /// Lookups that failed without deciding any consumer (App Runner not offered in the region...).
    pub warnings: Vec<String>,
    /// Why the push was skipped, or why the verdict is unknown.
    pub reason: Option<String>,
}

impl Report {
    pub fn skipped(image: Option<ImageReport>, reason: impl ToString) -> Report {
        Report {
            verdict: Verdict::Skipped,
            severity: None,
            image,
            consumers: Vec::new(),
            actions: Vec::new(),
            warnings: Vec::new(),
            reason: Some(reason.to_string()),
        }
    }

    pub fn incompatible_consumers(&self) -> impl Iterator<Item = &ConsumerReport> {
        self.consumers
            .iter()
            .filter(|c| c.verdict == Verdict::Incompatible)
    }
}

/// The consumers whose image references name the pushed repository, with their relation. An
/// untagged push is only checked against consumers that pin its digest. Only those are copied out
/// of the account-wide list.
pub fn relate(image: &ImageId, consumers: &[Consumer]) -> Vec<(Consumer, String, Relation)> {
    consumers
        .iter()
        .filter_map(|consumer| {
            if consumer.images.is_empty() && matches!(consumer.requirement, Requirement::Unknown { .. }) {
                return (image.tag.is_some())
                    .then(|| (consumer.clone(), "(unknown)".to_string(), Relation::Related));
            }
            let (reference, relation) = consumer
                .images
                .iter()
                .filter_map(|text| {
                    let relation = EcrReference::parse(text)?.relation_to(image)?;
                    Some((text.clone(), relation))
                })
                .min_by_key(|(_, relation)| *relation)?;
            if image.tag.is_none() && relation != Relation::Affected {
                return None;
            }
            Some((consumer.clone(), reference, relation))
        })
        .collect()
}

/// Decides each related consumer against the image and rolls the verdicts up.
pub fn decide(
    image: ImageReport,
    related: Vec<(Consumer, String, Relation)>,
    warnings: Vec<String>,
) -> Report {
    let mut consumers: Vec<ConsumerReport> = related
        .into_iter()
        .map(|(consumer, reference, relation)| judge(&image, consumer, reference, relation))
        .collect();
    consumers.sort_by(|a, b| {
        (b.verdict == Verdict::Incompatible, a.relation, a.kind, &a.name).cmp(&(
            a.verdict == Verdict::Incompatible,
            b.relation,
            b.kind,
            &b.name,
        ))
    });

    let verdict = if consumers.iter().any(|c| c.verdict == Verdict::Incompatible) {
        Verdict::Incompatible
    } else if consumers.iter().any(|c| c.verdict == Verdict::Unknown) || !warnings_are_benign(&warnings) {
        Verdict::Unknown
    } else {
        Verdict::Compatible
    };
    let severity = consumers.iter().filter_map(|c| c.severity).max();
    let reason = match verdict {
        Verdict::Unknown => Some(match &image.platform_error {
            Some(error) => format!("image platforms could not be read: {error}"),
            None => "some consumers could not be checked; see their reasons".to_string(),
        }),
        _ if consumers.is_empty() => {
            Some("no ECS service, App Runner service or Lambda function uses this repository".into())
        }
        _ => None,
    };
    Report {
        verdict,
        severity,
        image: Some(image),
        consumers,
        actions: Vec::new(),
        warnings,
        reason,
    }
}

/// Warnings that mean "there was nothing to find", not "we could not look".
pub const BENIGN_WARNING_PREFIX: &str = "note: ";

fn warnings_are_benign(warnings: &[String]) -> bool {
    warnings.iter().all(|w| w.starts_with(BENIGN_WARNING_PREFIX))
}

fn judge(image: &ImageReport, consumer: Consumer, reference: String, relation: Relation) -> ConsumerReport {
    let mut report = ConsumerReport {
        kind: consumer.kind,
        name: consumer.name,
        arn: consumer.arn,
        cluster: consumer.cluster,
        image: reference,
        relation,
        requires: Vec::new(),
        source: None,
        verdict: Verdict::Unknown,
        severity: None,
        reason: String::new(),
    };
    let (platforms, source, runs_on, rejects_index) = match consumer.requirement {
        Requirement::Unknown { reason } => {
            report.reason = reason;
            return report;
        }
        Requirement::ClusterInstances { facts } => {
            report.reason = format!(
                "container instances of cluster {} were not looked up",
                facts.cluster
            );
            return report;
        }
        Requirement::Platforms {
            platforms,
            source,
            runs_on,
            rejects_index,
        } => (platforms, source, runs_on, rejects_index),
    };
    report.requires = platforms;
    report.source = Some(source);
    if let Some(error) = &image.platform_error {
        report.reason = format!("image platforms could not be read: {error}");
        return report;
    }
    let image_platforms = platform::join(&image.platforms);
    let only = if image.platforms.len() == 1 { " only" } else { "" };
    if rejects_index && image.is_index() {
        report.verdict = Verdict::Incompatible;
        report.reason = format!(
            "image is a multi-platform index ({image_platforms}); Lambda accepts only a single-platform manifest"
        );
    } else {
        let unmet = platform::unmet(&report.requires, &image.platforms);
        if unmet.is_empty() {
            report.verdict = Verdict::Compatible;
            report.reason = format!(
                "image has {image_platforms}; {runs_on} runs {}",
                platform::join(&report.requires)
            );
        } else {
            report.verdict = Verdict::Incompatible;
            let missing: Vec<Platform> = unmet.into_iter().cloned().collect();
            report.reason = format!(
                "image has {image_platforms}{only}; {} runs {} ({runs_on})",
                noun(consumer.kind),
                platform::join(&missing)
            );
        }
    }
    if report.verdict == Verdict::Incompatible {
        report.severity = Some(match (relation, consumer.kind) {
            (Relation::Affected, Kind::ApprunnerService) if consumer.auto_deploys => Severity::Critical,
            (Relation::Affected, Kind::EcsService | Kind::ApprunnerService) => Severity::High,
            _ => Severity::Warning,
        });
    }
    report
}

fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::EcsService | Kind::ApprunnerService => "service",
        Kind::LambdaFunction => "function",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::{apprunner_service, lambda_function, EcsServiceFacts};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web";

    fn image(tag: Option<&str>, platforms: &[&str], kind: &'static str) -> ImageReport {
        ImageReport {
            kind: Some(kind),
            platforms: platforms.iter().map(|p| Platform::parse(p).unwrap()).collect(),
            ..ImageReport::from_id(&ImageId {
                registry_id: "123456789012".into(),
                region: "us-east-1".into(),
                repository: "web".into(),
                tag: tag.map(str::to_string),
                digest: Some(DIGEST.into()),
            })
        }
    }

    fn fargate(name: &str, reference: &str, cpu: Option<&str>) -> Consumer {
        EcsServiceFacts {
            name: name.into(),
            arn: format!("arn:aws:ecs:us-east-1:123456789012:service/prod/{name}"),
            cluster: "prod".into(),
            launch_type: Some("FARGATE".into()),
            images: vec![reference.into()],
            cpu_architecture: cpu.map(str::to_string),
            ..Default::default()
        }
        .into_consumer()
    }

    fn run(image: ImageReport, consumers: Vec<Consumer>) -> Report {
        let related = relate(&image.id(), &consumers);
        decide(image, related, Vec::new())
    }

    #[test]
    fn seed_story_arm64_image_on_default_fargate() {
        let report = run(
            image(Some("latest"), &["linux/arm64"], "manifest"),
            vec![fargate("checkout", &format!("{REPO}:latest"), None)],
        );
        assert_eq!(report.verdict, Verdict::Incompatible);
        assert_eq!(report.severity, Some(Severity::High));
        let c = &report.consumers[0];
        assert_eq!(c.relation, Relation::Affected);
        assert_eq!(
            c.reason,
            "image has linux/arm64 only; service runs linux/amd64 (Fargate)"
        );
    }

    #[test]
    fn multi_platform_index_serves_both() {
        let report = run(
            image(Some("latest"), &["linux/amd64", "linux/arm64"], "index"),
            vec![
                fargate("x86", &format!("{REPO}:latest"), None),
                fargate("graviton", &format!("{REPO}:latest"), Some("ARM64")),
            ],
        );
        assert_eq!(report.verdict, Verdict::Compatible);
        assert_eq!(report.severity, None);
    }

    #[test]
    fn lambda_rejects_an_index_even_with_its_platform() {
        let f = lambda_function("resize", "arn:f", &format!("{REPO}:latest"), &["x86_64".into()]);
        let report = run(
            image(Some("latest"), &["linux/amd64", "linux/arm64"], "index"),
            vec![f],
        );
        assert_eq!(report.verdict, Verdict::Incompatible);
        assert_eq!(report.severity, Some(Severity::Warning));
        assert!(report.consumers[0]
            .reason
            .contains("Lambda accepts only a single-platform manifest"));
    }

    #[test]
    fn apprunner_auto_deploy_is_critical_and_related_is_warning() {
        let report = run(
            image(Some("latest"), &["linux/arm64"], "manifest"),
            vec![
                apprunner_service("shop", "arn:s", &format!("{REPO}:latest"), true),
                fargate("staging", &format!("{REPO}:v1"), None),
            ],
        );
        assert_eq!(report.severity, Some(Severity::Critical));
        let staging = report.consumers.iter().find(|c| c.name == "staging").unwrap();
        assert_eq!(
            (staging.relation, staging.severity),
            (Relation::Related, Some(Severity::Warning))
        );
    }

    #[test]
    fn untagged_push_only_meets_digest_consumers() {
        let by_tag = fargate("tagged", &format!("{REPO}:latest"), None);
        let by_digest = fargate("pinned", &format!("{REPO}@{DIGEST}"), Some("ARM64"));
        let report = run(image(None, &["linux/arm64"], "manifest"), vec![by_tag, by_digest]);
        assert_eq!(report.consumers.len(), 1);
        assert_eq!(report.consumers[0].name, "pinned");
        assert_eq!(report.verdict, Verdict::Compatible);
    }

    #[test]
    fn unknown_requirement_makes_unknown_verdict() {
        let unknown = Consumer {
            requirement: Requirement::Unknown {
                reason: "access denied on cluster prod".into(),
            },
            ..fargate("checkout", &format!("{REPO}:latest"), None)
        };
        let report = run(image(Some("latest"), &["linux/amd64"], "manifest"), vec![unknown]);
        assert_eq!(report.verdict, Verdict::Unknown);
        assert_eq!(report.consumers[0].reason, "access denied on cluster prod");
    }

    #[test]
    fn no_consumers_is_compatible_with_a_reason() {
        let report = run(image(Some("latest"), &["linux/arm64"], "manifest"), vec![]);
        assert_eq!(report.verdict, Verdict::Compatible);
        assert!(report.reason.unwrap().contains("no ECS service"));
    }
}

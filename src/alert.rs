//! Report → SNS message: a plain-text body for email, the AWS Chatbot / Amazon Q Developer custom
//! notification for Slack, and message attributes subscribers can filter on.

use std::collections::BTreeSet;

use serde_json::json;

use crate::consumer::Kind;
use crate::platform::Platform;
use crate::verdict::{ConsumerReport, Report, Verdict};

/// SNS refuses subjects of 100 characters or more.
const MAX_SUBJECT: usize = 99;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub subject: String,
    /// The `MessageStructure=json` document: `default`, `email` and `https` (what Chatbot receives).
    pub message: String,
    /// (name, value) String attributes.
    pub attributes: Vec<(&'static str, String)>,
    /// The plain text, also inside `message`.
    pub text: String,
}

pub fn render(report: &Report, marker_tag: Option<&str>) -> Alert {
    let text = text_body(report, marker_tag);
    let chat = chat_body(report);
    let message = json!({ "default": text, "email": text, "https": chat.to_string() }).to_string();
    let repository = report
        .image
        .as_ref()
        .map(|i| i.repository.clone())
        .unwrap_or_default();
    let mut attributes = vec![
        ("verdict", report.verdict.to_string()),
        ("repository", repository),
    ];
    if let Some(severity) = report.severity {
        attributes.push(("severity", severity.to_string()));
    }
    Alert {
        subject: subject(report),
        message,
        attributes,
        text,
    }
}

fn image_name(report: &Report) -> String {
    match &report.image {
        Some(image) => match (&image.tag, &image.digest) {
            (Some(tag), _) => format!("{}:{tag}", image.repository),
            (None, Some(digest)) => format!("{}@{}", image.repository, short_digest(digest)),
            (None, None) => image.repository.clone(),
        },
        None => "(unknown image)".into(),
    }
}

fn short_digest(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    &digest[..end]
}

fn platforms_text(report: &Report) -> String {
    match &report.image {
        Some(image) if image.platform_error.is_none() && !image.platforms.is_empty() => {
            let names: Vec<String> = image.platforms.iter().map(ToString::to_string).collect();
            names.join(", ")
        }
        _ => "unknown".into(),
    }
}

/// ASCII only, one line, under 100 characters: SNS rejects anything else.
pub fn subject(report: &Report) -> String {
    let verdict = report.verdict.to_string().to_ascii_uppercase();
    let broken = report.incompatible_consumers().count();
    let tail = match report.verdict {
        Verdict::Incompatible => format!(
            " - {broken} consumer{} cannot run it",
            if broken == 1 { "" } else { "s" }
        ),
        _ => String::new(),
    };
    let raw = format!(
        "{verdict} image {} ({}){tail}",
        image_name(report),
        platforms_text(report)
    );
    let mut subject: String = raw
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect();
    if subject.len() > MAX_SUBJECT {
        subject.truncate(MAX_SUBJECT - 3);
        subject.push_str("...");
    }
    subject
}

fn consumer_line(c: &ConsumerReport) -> String {
    let cluster = c
        .cluster
        .as_deref()
        .map(|c| format!(" (cluster {c})"))
        .unwrap_or_default();
    let requires: Vec<String> = c.requires.iter().map(ToString::to_string).collect();
    let requires = if requires.is_empty() {
        "unknown".into()
    } else {
        requires.join(", ")
    };
    let source = c.source.map(|s| format!(", from {s}")).unwrap_or_default();
    format!(
        "  - {} {}{cluster} [{}, {}]: requires {requires}{source}\n    {}\n    {}\n",
        c.kind, c.name, c.relation, c.verdict, c.reason, c.arn
    )
}

fn text_body(report: &Report, marker_tag: Option<&str>) -> String {
    let mut out = String::new();
    let image = report.image.as_ref();
    out.push_str(&format!(
        "ecr-platform-guard: {} image pushed to Amazon ECR\n\n",
        report.verdict.to_string().to_ascii_uppercase()
    ));
    if let Some(image) = image {
        out.push_str(&format!(
            "Image:     {}.dkr.ecr.{}.amazonaws.com/{}\n",
            image.registry_id,
            image.region,
            image_name(report)
        ));
        if let Some(digest) = &image.digest {
            out.push_str(&format!("Digest:    {digest}\n"));
        }
        out.push_str(&format!(
            "Platforms: {}{}\n",
            platforms_text(report),
            image.kind.map(|k| format!(" ({k})")).unwrap_or_default()
        ));
        if let Some(error) = &image.platform_error {
            out.push_str(&format!("           could not read them: {error}\n"));
        }
    }
    if let Some(severity) = report.severity {
        out.push_str(&format!("Severity:  {severity}\n"));
    }
    let (broken, others): (Vec<&ConsumerReport>, Vec<&ConsumerReport>) = report
        .consumers
        .iter()
        .partition(|c| c.verdict == Verdict::Incompatible);
    if !broken.is_empty() {
        out.push_str("\nConsumers that cannot run this image:\n");
        broken.iter().for_each(|c| out.push_str(&consumer_line(c)));
    }
    if !others.is_empty() {
        out.push_str("\nOther consumers of the repository:\n");
        others.iter().for_each(|c| out.push_str(&consumer_line(c)));
    }
    if !report.warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        report
            .warnings
            .iter()
            .for_each(|w| out.push_str(&format!("  - {w}\n")));
    }
    let fixes = fixes(report);
    if !fixes.is_empty() {
        out.push_str("\nHow to fix:\n");
        fixes.iter().for_each(|f| out.push_str(&format!("  - {f}\n")));
    }
    if let Some(tag) = marker_tag {
        out.push_str(&format!(
            "\nThe image was tagged {tag} so pipelines can refuse it.\n"
        ));
    }
    out
}

/// Fix suggestions for what is actually broken, most useful first.
pub fn fixes(report: &Report) -> Vec<String> {
    let Some(image) = &report.image else {
        return Vec::new();
    };
    let broken: Vec<&ConsumerReport> = report.incompatible_consumers().collect();
    if broken.is_empty() {
        return Vec::new();
    }
    let reference = format!(
        "{}.dkr.ecr.{}.amazonaws.com/{}:{}",
        image.registry_id,
        image.region,
        image.repository,
        image.tag.as_deref().unwrap_or("TAG")
    );
    let required: Vec<&Platform> = broken.iter().flat_map(|c| c.requires.iter()).collect();
    let required_os: BTreeSet<String> = required.iter().map(|p| p.normalized().os).collect();
    // The image's own platforms stay in the build list only where they serve the same OS: a
    // Windows image for Linux services needs a Linux build, not a second Windows one.
    let needed: BTreeSet<String> = required
        .iter()
        .copied()
        .chain(
            image
                .platforms
                .iter()
                .filter(|p| required_os.contains(&p.normalized().os)),
        )
        .map(linux_or_declared)
        .collect();
    let needed: Vec<String> = needed.into_iter().collect();
    let missing: BTreeSet<String> = broken
        .iter()
        .filter(|c| c.kind != Kind::LambdaFunction || !image.is_index())
        .flat_map(|c| c.requires.iter().map(linux_or_declared))
        .collect();
    let mut fixes = Vec::new();
    let other_os = image
        .platforms
        .iter()
        .all(|p| !required_os.contains(&p.normalized().os));
    if other_os && !image.platforms.is_empty() {
        fixes.push(format!(
            "The image is built for {}, but its consumers run {}: build it from a base image for {} (FROM ... in the Dockerfile)",
            crate::platform::join(&image.platforms),
            needed.join(", "),
            required_os.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !missing.is_empty() {
        fixes.push(format!(
            "Rebuild for every platform that runs it and push again: docker buildx build --platform {} -t {reference} --push .",
            needed.join(",")
        ));
        let first = missing.iter().next().cloned().unwrap_or_default();
        fixes.push(format!(
            "Or, if the image was pulled elsewhere, re-pull the right platform before re-pushing: docker pull --platform {first} SOURCE_IMAGE && docker tag SOURCE_IMAGE {reference} && docker push {reference}"
        ));
        if broken.iter().any(|c| c.kind == Kind::EcsService)
            && image
                .platforms
                .iter()
                .any(|p| p.normalized().architecture == "arm64")
        {
            fixes.push(
                "Or, if the ECS service should run on Graviton: set runtimePlatform.cpuArchitecture to ARM64 (and operatingSystemFamily LINUX) in its task definition, then deploy it"
                    .into(),
            );
        }
    }
    if image.is_index() && broken.iter().any(|c| c.kind == Kind::LambdaFunction) {
        let arch = broken
            .iter()
            .filter(|c| c.kind == Kind::LambdaFunction)
            .flat_map(|c| c.requires.iter())
            .map(linux_or_declared)
            .next()
            .unwrap_or_else(|| "linux/amd64".into());
        fixes.push(format!(
            "For the Lambda function: push a single-platform manifest, not an index: docker buildx build --platform {arch} --provenance=false --sbom=false -t {reference} --push . (Lambda rejects image indexes: aws/aws-lambda-roadmap#82)"
        ));
    }
    fixes
}

fn linux_or_declared(platform: &Platform) -> String {
    let p = platform.normalized();
    match &p.variant {
        Some(variant) => format!("{}/{}/{variant}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// Escapes text for Slack's markdown; names come from users and must not turn into markup.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Inline code for a name, so `*`, `_` and `~` in it stay literal.
fn slack_code(text: &str) -> String {
    format!("`{}`", slack_escape(&text.replace('`', "'")))
}

/// The custom notification schema AWS Chatbot / Amazon Q Developer renders in Slack.
fn chat_body(report: &Report) -> serde_json::Value {
    let mut lines = Vec::new();
    lines.push(format!("*Platforms:* {}", slack_code(&platforms_text(report))));
    for c in report.incompatible_consumers() {
        let cluster = c
            .cluster
            .as_deref()
            .map(|c| format!(" in {}", slack_code(c)))
            .unwrap_or_default();
        lines.push(format!(
            "• {} {}{cluster} ({}): {}",
            c.kind,
            slack_code(&c.name),
            c.relation,
            slack_escape(&c.reason)
        ));
    }
    let unknown = report
        .consumers
        .iter()
        .filter(|c| c.verdict == Verdict::Unknown)
        .count();
    if unknown > 0 {
        lines.push(format!("{unknown} consumer(s) could not be checked."));
    }
    let next_steps: Vec<String> = fixes(report).iter().map(|f| slack_escape(f)).collect();
    let repository = report
        .image
        .as_ref()
        .map(|i| i.repository.as_str())
        .unwrap_or_default();
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!(":warning: {}", slack_escape(&subject(report))),
            "description": lines.join("\n"),
            "nextSteps": next_steps,
            "keywords": [report.verdict.to_string(), report.severity.map(|s| s.to_string()).unwrap_or_default(), slack_escape(repository)],
        },
        "metadata": {
            "summary": slack_escape(&subject(report)),
            "eventType": "ecr-platform-guard",
            "additionalContext": {"repository": repository, "verdict": report.verdict.to_string()},
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::EcsServiceFacts;
    use crate::reference::ImageId;
    use crate::verdict::{decide, relate, ImageReport};

    fn report(repository: &str, service: &str) -> Report {
        let image = ImageReport {
            kind: Some("manifest"),
            platforms: vec![Platform::linux("arm64")],
            ..ImageReport::from_id(&ImageId {
                registry_id: "123456789012".into(),
                region: "us-east-1".into(),
                repository: repository.into(),
                tag: Some("latest".into()),
                digest: Some(
                    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
                ),
            })
        };
        let consumer = EcsServiceFacts {
            name: service.into(),
            arn: "arn:aws:ecs:us-east-1:123456789012:service/prod/x".into(),
            cluster: "prod".into(),
            launch_type: Some("FARGATE".into()),
            images: vec![format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}"
            )],
            ..Default::default()
        }
        .into_consumer();
        let related = relate(&image.id(), &[consumer]);
        decide(image, related, Vec::new())
    }

    #[test]
    fn text_names_consumers_and_fixes() {
        let alert = render(&report("web", "checkout"), Some("incompatible-latest"));
        assert!(alert
            .text
            .contains("ECS service checkout (cluster prod) [affected, incompatible]"));
        assert!(alert
            .text
            .contains("docker buildx build --platform linux/amd64,linux/arm64"));
        assert!(alert.text.contains("docker pull --platform linux/amd64"));
        assert!(alert.text.contains("runtimePlatform.cpuArchitecture"));
        assert!(alert.text.contains("incompatible-latest"));
        let message: serde_json::Value = serde_json::from_str(&alert.message).unwrap();
        assert_eq!(message["default"], message["email"]);
        let chat: serde_json::Value = serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert!(alert.attributes.contains(&("severity", "high".into())));
    }

    #[test]
    fn windows_image_for_linux_services_asks_for_a_linux_build() {
        let mut report = report("web", "checkout");
        if let Some(image) = report.image.as_mut() {
            image.platforms = vec![Platform::parse("windows(10.0.20348.1)/amd64").unwrap()];
        }
        let fixes = fixes(&report);
        assert!(
            fixes[0].contains("build it from a base image for linux"),
            "{}",
            fixes[0]
        );
        assert!(fixes.iter().all(|f| !f.contains("windows/amd64,")), "{fixes:?}");
        assert!(fixes[1].contains("--platform linux/amd64 "), "{}", fixes[1]);
    }

    #[test]
    fn subject_is_short_ascii() {
        let long = "a".repeat(200);
        let subject = subject(&report(&long, "checkout"));
        assert!(subject.len() < 100, "{}", subject.len());
        assert!(subject.is_ascii());
        assert!(subject.starts_with("INCOMPATIBLE image "));
    }

    #[test]
    fn names_cannot_inject_slack_markup() {
        let alert = render(&report("web", "<!channel>*bold*`x`"), None);
        let message: serde_json::Value = serde_json::from_str(&alert.message).unwrap();
        let chat = message["https"].as_str().unwrap();
        assert!(!chat.contains("<!channel>"));
        assert!(chat.contains("`&lt;!channel&gt;*bold*'x'`"));
    }
}

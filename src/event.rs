//! The EventBridge `ECR Image Action` envelope, and the skip rules that need no AWS call.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::config::Config;
use crate::reference::{is_digest, is_repository_name, is_tag, ImageId};

pub const DETAIL_TYPE: &str = "ECR Image Action";
pub const SOURCE: &str = "aws.ecr";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    #[error("event is not an EventBridge envelope: {0}")]
    NotAnEnvelope(String),
    #[error("ECR Image Action event has an invalid `detail`: {0}")]
    InvalidDetail(String),
    #[error("ECR Image Action event has no `{0}`")]
    Missing(&'static str),
    #[error("ECR Image Action event field `{field}` is invalid: {value:?}")]
    InvalidField { field: &'static str, value: String },
}

/// `detail` of an ECR Image Action event.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub repository_name: Option<String>,
    #[serde(default)]
    pub image_digest: Option<String>,
    #[serde(default)]
    pub action_type: Option<String>,
    /// Missing or empty for the untagged children of a multi-platform push.
    #[serde(default)]
    pub image_tag: Option<String>,
    #[serde(default)]
    pub manifest_media_type: Option<String>,
    #[serde(default)]
    pub artifact_media_type: Option<String>,
}

/// A push worth validating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub image: ImageId,
    pub manifest_media_type: Option<String>,
}

/// Why an event is not validated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("not an ECR Image Action event (source {event_source:?}, detail-type {detail_type:?})")]
    NotEcrImageAction {
        event_source: String,
        detail_type: String,
    },
    #[error("action {0} is not a push")]
    NotAPush(String),
    #[error("push did not succeed (result {0})")]
    FailedPush(String),
    #[error("tag {0:?} is one of our own marker tags")]
    MarkerTag(String),
    #[error("repository {0} is outside REPOSITORY_FILTER")]
    FilteredRepository(String),
    #[error("untagged push that no consumer references by digest")]
    UntaggedWithoutDigestConsumer,
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("image no longer exists in ECR (deleted after the push): {0}")]
    ImageDeleted(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Validate(Push),
    /// The image, when the event names one, so the report can still say what was skipped.
    Skip(Option<ImageId>, SkipReason),
}

/// Parses raw event bytes (a file, or what the runtime handed us) and applies the skip rules.
pub fn parse(bytes: &[u8], config: &Config) -> Result<Disposition, EventError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| EventError::NotJson(one_line(&e)))?;
    dispose(value, config)
}

/// The skip rules on an already-decoded envelope.
pub fn dispose(value: Value, config: &Config) -> Result<Disposition, EventError> {
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(value).map_err(|e| EventError::NotAnEnvelope(one_line(&e)))?;
    if envelope.source != SOURCE || envelope.detail_type != DETAIL_TYPE {
        return Ok(Disposition::Skip(
            None,
            SkipReason::NotEcrImageAction {
                event_source: envelope.source,
                detail_type: envelope.detail_type,
            },
        ));
    }
    let detail: EcrImageAction =
        serde_json::from_value(envelope.detail).map_err(|e| EventError::InvalidDetail(one_line(&e)))?;

    let repository = detail
        .repository_name
        .filter(|r| !r.is_empty())
        .ok_or(EventError::Missing("detail.repository-name"))?;
    check("detail.repository-name", &repository, is_repository_name)?;
    let registry_id = envelope
        .account
        .filter(|a| !a.is_empty())
        .ok_or(EventError::Missing("account"))?;
    check("account", &registry_id, |a| {
        a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
    })?;
    let region = envelope
        .region
        .filter(|r| !r.is_empty())
        .ok_or(EventError::Missing("region"))?;
    check("region", &region, |r| {
        r.len() <= 32
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })?;
    let tag = detail.image_tag.filter(|t| !t.is_empty());
    if let Some(tag) = &tag {
        check("detail.image-tag", tag, is_tag)?;
    }
    let digest = detail.image_digest.filter(|d| !d.is_empty());
    if let Some(digest) = &digest {
        check("detail.image-digest", digest, is_digest)?;
    }
    let image = ImageId {
        registry_id,
        region,
        repository,
        tag,
        digest,
    };

    let action = detail.action_type.unwrap_or_default();
    if action != "PUSH" {
        return Ok(Disposition::Skip(Some(image), SkipReason::NotAPush(action)));
    }
    let result = detail.result.unwrap_or_default();
    if result != "SUCCESS" {
        return Ok(Disposition::Skip(Some(image), SkipReason::FailedPush(result)));
    }
    if let Some(tag) = image.tag.as_deref().filter(|t| config.is_marker_tag(t)) {
        let reason = SkipReason::MarkerTag(tag.to_string());
        return Ok(Disposition::Skip(Some(image), reason));
    }
    if !config.validates_repository(&image.repository) {
        let reason = SkipReason::FilteredRepository(image.repository.clone());
        return Ok(Disposition::Skip(Some(image), reason));
    }
    if image.tag.is_none() && image.digest.is_none() {
        return Err(EventError::Missing("detail.image-digest"));
    }
    Ok(Disposition::Validate(Push {
        image,
        manifest_media_type: detail.manifest_media_type.filter(|m| !m.is_empty()),
    }))
}

fn check(field: &'static str, value: &str, valid: impl Fn(&str) -> bool) -> Result<(), EventError> {
    if valid(value) {
        Ok(())
    } else {
        Err(EventError::InvalidField {
            field,
            value: value.chars().take(80).collect(),
        })
    }
}

/// serde errors can quote multi-line input; our errors stay on one line.
fn one_line(error: &impl std::fmt::Display) -> String {
    error.to_string().replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn event(detail: Value) -> Value {
        json!({
            "version": "0", "id": "1", "detail-type": "ECR Image Action", "source": "aws.ecr",
            "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail
        })
    }

    fn push_detail(tag: Value) -> Value {
        json!({"result": "SUCCESS", "repository-name": "shop/web", "image-digest": DIGEST,
               "action-type": "PUSH", "image-tag": tag})
    }

    fn dispose_default(value: Value) -> Result<Disposition, EventError> {
        dispose(value, &Config::default())
    }

    #[test]
    fn tagged_push_is_validated() {
        let Disposition::Validate(push) = dispose_default(event(push_detail(json!("latest")))).unwrap()
        else {
            panic!("expected a push")
        };
        assert_eq!(push.image.tag.as_deref(), Some("latest"));
        assert_eq!(push.image.digest.as_deref(), Some(DIGEST));
        assert_eq!(push.image.registry_id, "123456789012");
    }

    #[test]
    fn empty_or_missing_tag_is_untagged() {
        for tag in [json!(""), Value::Null] {
            let Disposition::Validate(push) = dispose_default(event(push_detail(tag))).unwrap() else {
                panic!("expected a push")
            };
            assert_eq!(push.image.tag, None);
        }
    }

    #[test]
    fn skip_rules() {
        let mut delete = push_detail(json!("latest"));
        delete["action-type"] = json!("DELETE");
        let mut failed = push_detail(json!("latest"));
        failed["result"] = json!("FAILURE");
        let marker = push_detail(json!("incompatible-latest"));
        let config = Config {
            repository_filter: vec!["other/*".into()],
            ..Config::default()
        };
        let reason = |value, config: &Config| match dispose(value, config).unwrap() {
            Disposition::Skip(_, reason) => reason,
            other => panic!("expected a skip, got {other:?}"),
        };
        assert_eq!(
            reason(event(delete), &Config::default()),
            SkipReason::NotAPush("DELETE".into())
        );
        assert_eq!(
            reason(event(failed), &Config::default()),
            SkipReason::FailedPush("FAILURE".into())
        );
        assert_eq!(
            reason(event(marker), &Config::default()),
            SkipReason::MarkerTag("incompatible-latest".into())
        );
        assert_eq!(
            reason(event(push_detail(json!("v1"))), &config),
            SkipReason::FilteredRepository("shop/web".into())
        );
        let mut other = event(push_detail(json!("v1")));
        other["detail-type"] = json!("ECR Image Scan");
        assert!(matches!(
            reason(other, &Config::default()),
            SkipReason::NotEcrImageAction { .. }
        ));
    }

    #[test]
    fn malformed_events_are_one_line_errors() {
        let mut no_detail = event(Value::Null);
        no_detail.as_object_mut().unwrap().remove("detail");
        let mut bad_digest = push_detail(json!("v1"));
        bad_digest["image-digest"] = json!("sha256:../../etc");
        let mut tricky_repo = push_detail(json!("v1"));
        tricky_repo["repository-name"] = json!("../web");
        let cases = [
            (b"{\"detail\":".to_vec(), "not valid JSON"),
            (
                serde_json::to_vec(&no_detail).unwrap(),
                "not an EventBridge envelope",
            ),
            (
                serde_json::to_vec(&event(json!("text"))).unwrap(),
                "invalid `detail`",
            ),
            (
                serde_json::to_vec(&event(bad_digest)).unwrap(),
                "detail.image-digest",
            ),
            (
                serde_json::to_vec(&event(tricky_repo)).unwrap(),
                "detail.repository-name",
            ),
        ];
        for (bytes, expected) in cases {
            let err = parse(&bytes, &Config::default()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}

//! Lambda mode: one event in, the JSON report out; a retryable failure is an error, so the
//! asynchronous invocation is retried and, in the end, kept by the dead-letter queue.

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::validate::{ValidateError, Validator};
use crate::verdict::Report;

pub async fn handle(validator: &Validator, event: LambdaEvent<Value>) -> Result<Report, ValidateError> {
    let request_id = event.context.request_id.clone();
    let result = validator.handle_event(event.payload, false).await;
    match &result {
        Ok(report) => log_report(report, &request_id),
        Err(error) => tracing::error!(
            request_id = %request_id,
            error_type = error.error_type(),
            retryable = error.is_retryable(),
            "{error}"
        ),
    }
    result
}

/// One structured line per event: what CloudWatch Logs Insights queries.
pub fn log_report(report: &Report, request_id: &str) {
    let image = report.image.as_ref();
    tracing::info!(
        request_id = %request_id,
        verdict = %report.verdict,
        severity = report.severity.map(|s| s.to_string()).unwrap_or_default(),
        repository = image.map(|i| i.repository.as_str()).unwrap_or_default(),
        tag = image.and_then(|i| i.tag.as_deref()).unwrap_or_default(),
        digest = image.and_then(|i| i.digest.as_deref()).unwrap_or_default(),
        consumers = report.consumers.len(),
        incompatible = report.incompatible_consumers().count(),
        actions = report.actions.len(),
        reason = report.reason.as_deref().unwrap_or_default(),
        "validated push"
    );
}

impl From<ValidateError> for Diagnostic {
    fn from(error: ValidateError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

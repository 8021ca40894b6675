//! One adapter per AWS service, each behind a small trait the pipeline is written against.
//!
//! Every AWS operation the code calls is named in [`op`]; the adapters use those names when they
//! report errors, and the IAM drift test compares the list with what `template.yaml` grants.

pub mod apprunner;
pub mod ecr;
pub mod ecs;
pub mod lambda;
pub mod sns;

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use tokio::sync::{Semaphore, SemaphorePermit};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The AWS operations this product calls, as IAM names them.
pub mod op {
    pub const ECR_BATCH_GET_IMAGE: &str = "ecr:BatchGetImage";
    pub const ECR_GET_DOWNLOAD_URL_FOR_LAYER: &str = "ecr:GetDownloadUrlForLayer";
    pub const ECR_PUT_IMAGE: &str = "ecr:PutImage";
    pub const ECS_LIST_CLUSTERS: &str = "ecs:ListClusters";
    pub const ECS_LIST_SERVICES: &str = "ecs:ListServices";
    pub const ECS_DESCRIBE_SERVICES: &str = "ecs:DescribeServices";
    pub const ECS_DESCRIBE_TASK_DEFINITION: &str = "ecs:DescribeTaskDefinition";
    pub const ECS_LIST_ATTRIBUTES: &str = "ecs:ListAttributes";
    pub const APPRUNNER_LIST_SERVICES: &str = "apprunner:ListServices";
    pub const APPRUNNER_DESCRIBE_SERVICE: &str = "apprunner:DescribeService";
    pub const LAMBDA_LIST_FUNCTIONS: &str = "lambda:ListFunctions";
    pub const LAMBDA_GET_FUNCTION: &str = "lambda:GetFunction";
    pub const SNS_PUBLISH: &str = "sns:Publish";

    /// Every operation above; what the deployed role must be granted, and nothing more.
    pub const ALL: [&str; 13] = [
        ECR_BATCH_GET_IMAGE,
        ECR_GET_DOWNLOAD_URL_FOR_LAYER,
        ECR_PUT_IMAGE,
        ECS_LIST_CLUSTERS,
        ECS_LIST_SERVICES,
        ECS_DESCRIBE_SERVICES,
        ECS_DESCRIBE_TASK_DEFINITION,
        ECS_LIST_ATTRIBUTES,
        APPRUNNER_LIST_SERVICES,
        APPRUNNER_DESCRIBE_SERVICE,
        LAMBDA_LIST_FUNCTIONS,
        LAMBDA_GET_FUNCTION,
        SNS_PUBLISH,
    ];
}

/// What went wrong, in the terms that decide what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    AccessDenied,
    NotFound,
    /// Throttled even after the SDK's own retries.
    Throttled,
    /// Timeouts and 5xx: AWS may answer next time.
    Unavailable,
    /// The endpoint could not be reached at all (DNS, connection refused): for App Runner this
    /// means the region does not offer it.
    Unreachable,
    /// Any other refusal (validation, missing parameter...): retrying will not help.
    Rejected,
}

/// A failed AWS call, named by its IAM operation so the message says what to grant or check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.operation)?;
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        match self.kind {
            ErrorKind::AccessDenied => write!(f, " (grant {} to the function's role)", self.operation),
            ErrorKind::Throttled => f.write_str(" (still throttled after retries)"),
            ErrorKind::Unavailable => f.write_str(" (AWS unavailable after retries)"),
            ErrorKind::Unreachable => f.write_str(" (endpoint unreachable)"),
            _ => Ok(()),
        }
    }
}

impl StdError for AwsError {}

impl AwsError {
    pub fn new(operation: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        AwsError {
            operation,
            kind,
            code: None,
            message: one_line(&message.into()),
        }
    }

    /// Classifies an SDK error. The SDK has already retried throttling and transient errors.
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let status = error.raw_response().map(|r| r.status().as_u16());
        let (kind, code, message) = match &error {
            SdkError::TimeoutError(_) => (ErrorKind::Unavailable, None, "timed out".to_string()),
            SdkError::DispatchFailure(failure) => {
                let (kind, detail) = if failure.is_timeout() {
                    (ErrorKind::Unavailable, "timed out")
                } else if failure.is_io() {
                    (ErrorKind::Unreachable, "could not connect")
                } else {
                    (ErrorKind::Unavailable, "request could not be sent")
                };
                (kind, None, format!("{detail}: {}", source_chain(&error)))
            }
            SdkError::ConstructionFailure(_) => (
                ErrorKind::Rejected,
                None,
                format!("request could not be built: {}", source_chain(&error)),
            ),
            _ => {
                let code = error.code().map(str::to_string);
                let message = error.message().unwrap_or_default().to_string();
                (classify(code.as_deref(), status), code, message)
            }
        };
        AwsError {
            operation,
            kind,
            code,
            message: one_line(&message),
        }
    }

    /// Whether EventBridge should deliver the event again: the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::Unavailable | ErrorKind::Unreachable
        )
    }
}

/// Bounds the AWS requests in flight across every adapter, so a 2,000-service account does not
/// trip ECS rate limits; the SDK's retry absorbs the throttling that still happens.
#[derive(Clone)]
pub struct Limiter {
    semaphore: Arc<Semaphore>,
    width: usize,
}

impl Limiter {
    pub fn new(width: usize) -> Limiter {
        let width = width.max(1);
        Limiter {
            semaphore: Arc::new(Semaphore::new(width)),
            width,
        }
    }

    /// How many requests may be in flight.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Held while one request (or one sequence of pages) is in flight.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed, so this only fails if that changes; then run unbounded.
        self.semaphore.acquire().await.ok()
    }
}

fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    match code.unwrap_or_default() {
        "AccessDeniedException"
        | "AccessDenied"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidSignatureException" => ErrorKind::AccessDenied,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException" => ErrorKind::Throttled,
        "ServerException"
        | "ServiceUnavailableException"
        | "InternalServerException"
        | "InternalFailure"
        | "ServiceException"
        | "InternalServiceError"
        | "InternalError" => ErrorKind::Unavailable,
        "ClusterNotFoundException"
        | "ResourceNotFoundException"
        | "RepositoryNotFoundException"
        | "ImageNotFoundException"
        | "NotFound" => ErrorKind::NotFound,
        _ => match status {
            Some(403) => ErrorKind::AccessDenied,
            Some(429) => ErrorKind::Throttled,
            Some(s) if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Rejected,
        },
    }
}

fn source_chain(error: &dyn StdError) -> String {
    let mut parts = Vec::new();
    let mut current = error.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    parts.join(": ")
}

pub(crate) fn one_line(text: &str) -> String {
    let line = text.replace(['\n', '\r'], " ");
    if line.len() > 500 {
        let mut end = 500;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &line[..end])
    } else {
        line
    }
}

/// Builds every adapter from one loaded SDK configuration; called once per cold start.
pub fn ports(sdk: &aws_config::SdkConfig, config: &crate::config::Config) -> crate::validate::Ports {
    let limiter = Limiter::new(config.max_concurrency);
    // A local emulator serves blobs over plain http; real ECR always hands out https URLs.
    let emulated = sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_ECR").is_some();
    let http = reqwest::Client::builder()
        .https_only(!emulated)
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap_or_default();
    let ecr = Arc::new(ecr::Ecr::new(aws_sdk_ecr::Client::new(sdk), http, emulated));
    let ecs = Arc::new(ecs::Ecs::new(aws_sdk_ecs::Client::new(sdk), limiter.clone()));
    crate::validate::Ports {
        images: ecr.clone(),
        tagger: ecr,
        notifier: Arc::new(sns::Sns::new(aws_sdk_sns::Client::new(sdk))),
        finders: vec![
            ecs.clone(),
            Arc::new(apprunner::AppRunner::new(
                aws_sdk_apprunner::Client::new(sdk),
                limiter.clone(),
            )),
            Arc::new(lambda::Lambda::new(aws_sdk_lambda::Client::new(sdk), limiter)),
        ],
        clusters: ecs,
    }
}

/// The SDK configuration from the standard chain, with timeouts shorter than the Lambda's own so
/// a hung call ends as a retryable error instead of a timeout kill.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use std::time::Duration;

    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(25))
            .build(),
    );
    // Five attempts ride out a burst of ECS throttling; AWS_MAX_ATTEMPTS still wins when set.
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
        loader = loader.retry_config(RetryConfig::standard().with_max_attempts(5));
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            classify(Some("AccessDeniedException"), Some(400)),
            ErrorKind::AccessDenied
        );
        assert_eq!(
            classify(Some("ThrottlingException"), Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            classify(Some("ServerException"), Some(500)),
            ErrorKind::Unavailable
        );
        assert_eq!(classify(None, Some(503)), ErrorKind::Unavailable);
        assert_eq!(
            classify(Some("InvalidParameterException"), Some(400)),
            ErrorKind::Rejected
        );
    }

    #[test]
    fn message_names_the_operation_and_what_to_do() {
        let e = AwsError {
            operation: op::ECS_LIST_SERVICES,
            kind: ErrorKind::AccessDenied,
            code: Some("AccessDeniedException".into()),
            message: "not authorized".into(),
        };
        assert_eq!(
            e.to_string(),
            "ecs:ListServices failed: AccessDeniedException: not authorized (grant ecs:ListServices to the function's role)"
        );
        assert!(!e.is_retryable());
    }
}

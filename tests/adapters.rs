//! Adapter error paths at the SDK layer (aws-smithy-mocks): throttling, ImageNotFound, access
//! denied on one cluster, App Runner absent from the region, paging and batching.

use std::time::Duration;

use aws_smithy_mocks::{mock, Rule, RuleMode};
use ecr_platform_guard::aws::apprunner::AppRunner;
use ecr_platform_guard::aws::ecr::Ecr;
use ecr_platform_guard::aws::ecs::Ecs;
use ecr_platform_guard::aws::{ErrorKind, Limiter};
use ecr_platform_guard::consumer::Requirement;
use ecr_platform_guard::reference::ImageId;
use ecr_platform_guard::validate::{ConsumerFinder, ImageReader};

/// A client of `$krate` answering from `$rules`, with fast retries so retry paths run quickly.
macro_rules! mock_client {
    ($krate:ident, $rules:expr) => {{
        let mut interceptor = aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = $krate::Config::builder()
            .behavior_version($krate::config::BehaviorVersion::latest())
            .region($krate::config::Region::new("us-east-1"))
            .credentials_provider($krate::config::Credentials::new(
                "AKID", "SECRET", None, None, "test",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .retry_config(
                aws_smithy_types::retry::RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .interceptor(interceptor)
            .build();
        $krate::Client::from_conf(config)
    }};
}

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
const DENIED: &str =
    r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: ecs:ListServices"}"#;

fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:cluster/{name}")
}

mod ecs_rules {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::operation::list_clusters::ListClustersOutput;
    use aws_sdk_ecs::operation::list_services::ListServicesOutput;
    use aws_sdk_ecs::types::{ContainerDefinition, LaunchType, Service, TaskDefinition};
    use aws_sdk_ecs::Client;

    pub fn clusters(names: &[&str]) -> Rule {
        let arns: Vec<String> = names.iter().map(|n| cluster_arn(n)).collect();
        mock!(Client::list_clusters).then_output(move || {
            ListClustersOutput::builder()
                .set_cluster_arns(Some(arns.clone()))
                .build()
        })
    }

    /// `count` services in `cluster`, served two pages at a time.
    pub fn services(cluster: &'static str, count: usize) -> Vec<Rule> {
        let arns: Vec<String> = (0..count)
            .map(|i| format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/svc-{i}"))
            .collect();
        let half = count / 2;
        let (first, second) = (arns[..half].to_vec(), arns[half..].to_vec());
        let page_two = mock!(Client::list_services)
            .match_requests(move |r| {
                r.cluster() == Some(&cluster_arn(cluster)) && r.next_token() == Some("p2")
            })
            .then_output(move || {
                ListServicesOutput::builder()
                    .set_service_arns(Some(second.clone()))
                    .build()
            });
        let page_one = mock!(Client::list_services)
            .match_requests(move |r| r.cluster() == Some(&cluster_arn(cluster)) && r.next_token().is_none())
            .then_output(move || {
                ListServicesOutput::builder()
                    .set_service_arns(Some(first.clone()))
                    .next_token("p2")
                    .build()
            });
        let describe = mock!(Client::describe_services)
            .match_requests(move |r| r.cluster() == Some(&cluster_arn(cluster)))
            .then_compute_output(move |r| describe_output(cluster, r.services()));
        vec![page_two, page_one, describe]
    }

    pub fn describe_output(cluster: &str, arns: &[String]) -> DescribeServicesOutput {
        let services = arns
            .iter()
            .map(|arn| {
                Service::builder()
                    .service_arn(arn)
                    .service_name(arn.rsplit('/').next().unwrap_or_default())
                    .cluster_arn(cluster_arn(cluster))
                    .launch_type(LaunchType::Fargate)
                    .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1")
                    .status("ACTIVE")
                    .build()
            })
            .collect();
        DescribeServicesOutput::builder()
            .set_services(Some(services))
            .build()
    }

    pub fn task_definition() -> Rule {
        mock!(Client::describe_task_definition).then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1")
                        .container_definitions(
                            ContainerDefinition::builder()
                                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:latest")
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
    }
}

#[tokio::test]
async fn ecs_pages_services_and_describes_them_ten_at_a_time_once_per_task_definition() {
    let clusters = ecs_rules::clusters(&["prod"]);
    let services = ecs_rules::services("prod", 23);
    let task_definition = ecs_rules::task_definition();
    let mut rules: Vec<&Rule> = vec![&clusters, &task_definition];
    rules.extend(services.iter());
    let ecs = Ecs::new(mock_client!(aws_sdk_ecs, rules), Limiter::new(8));

    let found = ecs.find().await.unwrap();

    assert_eq!(found.consumers.len(), 23);
    assert_eq!(
        services[0].num_calls() + services[1].num_calls(),
        2,
        "two ListServices pages"
    );
    assert_eq!(
        services[2].num_calls(),
        3,
        "23 services need 3 DescribeServices calls"
    );
    assert_eq!(
        task_definition.num_calls(),
        1,
        "the shared task definition is described once"
    );
    let Requirement::Platforms { platforms, .. } = &found.consumers[0].requirement else {
        panic!()
    };
    assert_eq!(platforms[0].to_string(), "linux/amd64");
}

#[tokio::test]
async fn ecs_throttling_is_retried_to_the_same_result() {
    let clusters = ecs_rules::clusters(&["prod"]);
    let services = ecs_rules::services("prod", 4);
    let task_definition = ecs_rules::task_definition();
    // The SDK's retries of one call are answered by one rule, in sequence.
    let arns: Vec<String> = (0..4)
        .map(|i| format!("arn:aws:ecs:us-east-1:123456789012:service/prod/svc-{i}"))
        .collect();
    let throttled = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(move || ecs_rules::describe_output("prod", &arns))
        .build();
    let mut rules: Vec<&Rule> = vec![&clusters, &task_definition, &throttled];
    rules.extend(services.iter());
    let ecs = Ecs::new(mock_client!(aws_sdk_ecs, rules), Limiter::new(1));

    let found = ecs.find().await.unwrap();

    assert_eq!(
        throttled.num_calls(),
        3,
        "two throttled answers, then the retry got the real one"
    );
    assert_eq!(services[2].num_calls(), 0);
    assert_eq!(found.consumers.len(), 4);
}

#[tokio::test]
async fn ecs_access_denied_on_one_cluster_reports_it_unknown_and_keeps_the_others() {
    let clusters = ecs_rules::clusters(&["prod", "secret"]);
    let denied = mock!(aws_sdk_ecs::Client::list_services)
        .match_requests(|r| r.cluster() == Some(&cluster_arn("secret")))
        .sequence()
        .http_status(400, Some(DENIED.into()))
        .repeatedly()
        .build();
    let services = ecs_rules::services("prod", 2);
    let task_definition = ecs_rules::task_definition();
    let mut rules: Vec<&Rule> = vec![&clusters, &denied, &task_definition];
    rules.extend(services.iter());
    let ecs = Ecs::new(mock_client!(aws_sdk_ecs, rules), Limiter::new(8));

    let found = ecs.find().await.unwrap();

    assert_eq!(denied.num_calls(), 1, "access denied is not retried");
    let secret: Vec<_> = found
        .consumers
        .iter()
        .filter(|c| c.cluster.as_deref() == Some("secret"))
        .collect();
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0].name, "*");
    let Requirement::Unknown { reason } = &secret[0].requirement else {
        panic!()
    };
    assert!(reason.contains("AccessDeniedException"), "{reason}");
    assert!(reason.contains("grant ecs:ListServices"), "{reason}");
    assert_eq!(
        found
            .consumers
            .iter()
            .filter(|c| c.cluster.as_deref() == Some("prod"))
            .count(),
        2
    );
}

#[tokio::test]
async fn ecs_persistent_throttling_is_a_retryable_error() {
    let throttled = mock!(aws_sdk_ecs::Client::list_clusters)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let ecs = Ecs::new(mock_client!(aws_sdk_ecs, [&throttled]), Limiter::new(8));

    let error = ecs.find().await.unwrap_err();

    assert_eq!(throttled.num_calls(), 4, "the SDK tried max_attempts times");
    assert_eq!(error.kind, ErrorKind::Throttled);
    assert!(error.is_retryable());
    assert!(
        error
            .to_string()
            .starts_with("ecs:ListClusters failed: ThrottlingException"),
        "{error}"
    );
}

fn web_image() -> ImageId {
    ImageId {
        registry_id: "123456789012".into(),
        region: "us-east-1".into(),
        repository: "web".into(),
        tag: Some("latest".into()),
        digest: Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into()),
    }
}

#[tokio::test]
async fn ecr_image_not_found_is_none_not_an_error() {
    use aws_sdk_ecr::operation::batch_get_image::BatchGetImageOutput;
    use aws_sdk_ecr::types::{ImageFailure, ImageFailureCode};
    let not_found = mock!(aws_sdk_ecr::Client::batch_get_image).then_output(|| {
        BatchGetImageOutput::builder()
            .failures(
                ImageFailure::builder()
                    .failure_code(ImageFailureCode::ImageNotFound)
                    .failure_reason("Requested image not found")
                    .build(),
            )
            .build()
    });
    let ecr = Ecr::new(
        mock_client!(aws_sdk_ecr, [&not_found]),
        reqwest::Client::new(),
        false,
    );

    assert_eq!(ecr.image(&web_image()).await.unwrap(), None);
}

#[tokio::test]
async fn ecr_asks_for_every_manifest_type() {
    use aws_sdk_ecr::operation::batch_get_image::BatchGetImageOutput;
    use aws_sdk_ecr::types::{Image, ImageIdentifier};
    let found = mock!(aws_sdk_ecr::Client::batch_get_image)
        .match_requests(|r| {
            let accepted = r.accepted_media_types();
            accepted.len() == 5
                && accepted
                    .iter()
                    .any(|m| m == "application/vnd.oci.image.index.v1+json")
        })
        .then_output(|| {
            BatchGetImageOutput::builder()
                .images(
                    Image::builder()
                        .registry_id("123456789012")
                        .image_id(ImageIdentifier::builder().image_digest("sha256:abc").build())
                        .image_manifest("{}")
                        .image_manifest_media_type("application/vnd.oci.image.index.v1+json")
                        .build(),
                )
                .build()
        });
    let ecr = Ecr::new(mock_client!(aws_sdk_ecr, [&found]), reqwest::Client::new(), false);

    let stored = ecr.image(&web_image()).await.unwrap().unwrap();
    assert_eq!(
        stored.media_type.as_deref(),
        Some("application/vnd.oci.image.index.v1+json")
    );
}

#[tokio::test]
async fn ecr_5xx_is_retried_then_retryable() {
    let failing = mock!(aws_sdk_ecr::Client::batch_get_image)
        .sequence()
        .http_status(
            500,
            Some(r#"{"__type":"ServerException","message":"boom"}"#.into()),
        )
        .repeatedly()
        .build();
    let ecr = Ecr::new(
        mock_client!(aws_sdk_ecr, [&failing]),
        reqwest::Client::new(),
        false,
    );

    let error = ecr.image(&web_image()).await.unwrap_err();
    assert_eq!(failing.num_calls(), 4);
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn ecr_refuses_plain_http_download_urls_outside_an_emulator() {
    use aws_sdk_ecr::operation::get_download_url_for_layer::GetDownloadUrlForLayerOutput;
    let url = mock!(aws_sdk_ecr::Client::get_download_url_for_layer).then_output(|| {
        GetDownloadUrlForLayerOutput::builder()
            .download_url("http://example.invalid/blob?X-Amz-Signature=secret")
            .build()
    });
    let ecr = Ecr::new(mock_client!(aws_sdk_ecr, [&url]), reqwest::Client::new(), false);

    let error = ecr.blob(&web_image(), "sha256:abc", 1024).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "config blob download URL is not https; refusing it"
    );
    assert!(!error.to_string().contains("secret"));
}

/// App Runner is offered in a handful of regions; elsewhere its endpoint does not answer.
#[tokio::test]
async fn apprunner_unreachable_is_a_note_not_a_failure() {
    let config = aws_sdk_apprunner::Config::builder()
        .behavior_version(aws_sdk_apprunner::config::BehaviorVersion::latest())
        .region(aws_sdk_apprunner::config::Region::new("eu-north-1"))
        .credentials_provider(aws_sdk_apprunner::config::Credentials::new(
            "AKID", "SECRET", None, None, "test",
        ))
        // Nothing listens on the discard port.
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .build();
    let apprunner = AppRunner::new(aws_sdk_apprunner::Client::from_conf(config), Limiter::new(8));

    let found = apprunner.find().await.unwrap();

    assert!(found.consumers.is_empty());
    assert_eq!(found.warnings.len(), 1);
    assert!(
        found.warnings[0].starts_with("note: App Runner is not reachable"),
        "{}",
        found.warnings[0]
    );
}

#[tokio::test]
async fn apprunner_access_denied_is_a_warning_that_makes_the_verdict_unknown() {
    let denied = mock!(aws_sdk_apprunner::Client::list_services)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"AccessDeniedException","message":"no"}"#.into()),
        )
        .repeatedly()
        .build();
    let apprunner = AppRunner::new(mock_client!(aws_sdk_apprunner, [&denied]), Limiter::new(8));

    let found = apprunner.find().await.unwrap();

    assert_eq!(found.warnings.len(), 1);
    assert!(!found.warnings[0].starts_with("note: "), "{}", found.warnings[0]);
    assert!(found.warnings[0].contains("grant apprunner:ListServices"));
}

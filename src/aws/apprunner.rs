//! App Runner: services whose source is an ECR image.

use aws_sdk_apprunner::types::{ImageRepositoryType, ServiceStatus};
use aws_sdk_apprunner::Client;
use futures_util::future::BoxFuture;
use futures_util::{stream, FutureExt, StreamExt};

use super::{op, AwsError, ErrorKind, Limiter};
use crate::config::ConsumerKind;
use crate::consumer::{self, Consumer};
use crate::validate::{ConsumerFinder, Found};
use crate::verdict::BENIGN_WARNING_PREFIX;

pub struct AppRunner {
    client: Client,
    limiter: Limiter,
}

impl AppRunner {
    pub fn new(client: Client, limiter: Limiter) -> AppRunner {
        AppRunner { client, limiter }
    }

    async fn find_all(&self) -> Result<Found, AwsError> {
        let arns = match self.list_services().await {
            Ok(arns) => arns,
            // App Runner is offered in a few regions only; elsewhere its endpoint does not resolve,
            // and there is nothing to check.
            Err(e) if e.kind == ErrorKind::Unreachable => {
                return Ok(Found {
                    consumers: Vec::new(),
                    warnings: vec![format!("{BENIGN_WARNING_PREFIX}App Runner is not reachable in this region; no App Runner services checked ({e})")],
                })
            }
            // Throttling passes with time: fail so the event is retried.
            Err(e) if e.kind == ErrorKind::Throttled => return Err(e),
            // Anything else (access denied, a dropped connection, a timeout from a VPC with no
            // route) must not cost the ECS and Lambda verdicts: report it, and let the verdict
            // say it is unknown unless something is already incompatible.
            Err(e) => {
                return Ok(Found {
                    consumers: Vec::new(),
                    warnings: vec![format!("App Runner services not checked: {e}")],
                })
            }
        };
        let described: Vec<Result<Option<Consumer>, AwsError>> = stream::iter(arns)
            .map(|arn| async move { self.describe_service(&arn).await })
            .buffer_unordered(self.limiter.width())
            .collect()
            .await;
        let mut found = Found::default();
        for result in described {
            if let Some(consumer) = result? {
                found.consumers.push(consumer);
            }
        }
        Ok(found)
    }

    async fn list_services(&self) -> Result<Vec<String>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let mut pages = self
            .client
            .list_services()
            .max_results(20)
            .into_paginator()
            .send();
        let mut arns = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(op::APPRUNNER_LIST_SERVICES, e))?;
            arns.extend(
                page.service_summary_list()
                    .iter()
                    .filter(|s| s.status() != Some(&ServiceStatus::Deleted))
                    .filter_map(|s| s.service_arn())
                    .map(str::to_string),
            );
        }
        Ok(arns)
    }

    async fn describe_service(&self, arn: &str) -> Result<Option<Consumer>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let output = match self.client.describe_service().service_arn(arn).send().await {
            Ok(output) => output,
            Err(e) => {
                let error = AwsError::from_sdk(op::APPRUNNER_DESCRIBE_SERVICE, e);
                return match error.kind {
                    // Deleted between the list and the describe.
                    ErrorKind::NotFound => Ok(None),
                    _ if error.is_retryable() => Err(error),
                    _ => Ok(Some(Consumer::unreadable(
                        crate::consumer::Kind::ApprunnerService,
                        name_from_arn(arn),
                        arn,
                        None,
                        error.to_string(),
                    ))),
                };
            }
        };
        let Some(service) = output.service() else {
            return Ok(None);
        };
        let Some(source) = service.source_configuration() else {
            return Ok(None);
        };
        let Some(repository) = source.image_repository() else {
            return Ok(None);
        };
        if repository.image_repository_type() != &ImageRepositoryType::Ecr {
            return Ok(None);
        }
        Ok(Some(consumer::apprunner_service(
            service.service_name(),
            service.service_arn(),
            repository.image_identifier(),
            source.auto_deployments_enabled().unwrap_or(false),
        )))
    }
}

/// `arn:aws:apprunner:us-east-1:123456789012:service/shop/8fe1e10304f84fd2b0df550fe98a71fa` → `shop`.
fn name_from_arn(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

impl ConsumerFinder for AppRunner {
    fn kind(&self) -> ConsumerKind {
        ConsumerKind::AppRunner
    }

    fn find(&self) -> BoxFuture<'_, Result<Found, AwsError>> {
        self.find_all().boxed()
    }
}

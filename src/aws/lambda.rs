//! Lambda: functions of package type Image.

use aws_sdk_lambda::types::PackageType;
use aws_sdk_lambda::Client;
use futures_util::future::BoxFuture;
use futures_util::{stream, FutureExt, StreamExt};

use super::{op, AwsError, ErrorKind, Limiter};
use crate::config::ConsumerKind;
use crate::consumer::{self, Consumer, Kind};
use crate::validate::{ConsumerFinder, Found};

pub struct Lambda {
    client: Client,
    limiter: Limiter,
}

/// A function from ListFunctions, before GetFunction tells its image.
struct ImageFunction {
    name: String,
    arn: String,
    architectures: Vec<String>,
}

impl Lambda {
    pub fn new(client: Client, limiter: Limiter) -> Lambda {
        Lambda { client, limiter }
    }

    async fn find_all(&self) -> Result<Found, AwsError> {
        let functions = match self.list_image_functions().await {
            Ok(functions) => functions,
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                return Ok(Found {
                    consumers: Vec::new(),
                    warnings: vec![format!("Lambda functions not checked: {e}")],
                })
            }
        };
        let described: Vec<Result<Option<Consumer>, AwsError>> = stream::iter(functions)
            .map(|f| async move { self.get_function(f).await })
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

    /// ListFunctions tells the package type, so GetFunction is called for image functions only.
    async fn list_image_functions(&self) -> Result<Vec<ImageFunction>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let mut pages = self.client.list_functions().max_items(50).into_paginator().send();
        let mut functions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk(op::LAMBDA_LIST_FUNCTIONS, e))?;
            functions.extend(
                page.functions()
                    .iter()
                    .filter(|f| f.package_type() == Some(&PackageType::Image))
                    .map(|f| ImageFunction {
                        name: f.function_name().unwrap_or_default().to_string(),
                        arn: f.function_arn().unwrap_or_default().to_string(),
                        architectures: f.architectures().iter().map(|a| a.as_str().to_string()).collect(),
                    }),
            );
        }
        Ok(functions)
    }

    async fn get_function(&self, function: ImageFunction) -> Result<Option<Consumer>, AwsError> {
        let _permit = self.limiter.acquire().await;
        let output = match self
            .client
            .get_function()
            .function_name(&function.arn)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let error = AwsError::from_sdk(op::LAMBDA_GET_FUNCTION, e);
                return match error.kind {
                    ErrorKind::NotFound => Ok(None),
                    _ if error.is_retryable() => Err(error),
                    _ => Ok(Some(Consumer::unreadable(
                        Kind::LambdaFunction,
                        &function.name,
                        &function.arn,
                        None,
                        error.to_string(),
                    ))),
                };
            }
        };
        let Some(image) = output.code().and_then(|c| c.image_uri()) else {
            return Ok(None);
        };
        Ok(Some(consumer::lambda_function(
            &function.name,
            &function.arn,
            image,
            &function.architectures,
        )))
    }
}

impl ConsumerFinder for Lambda {
    fn kind(&self) -> ConsumerKind {
        ConsumerKind::Lambda
    }

    fn find(&self) -> BoxFuture<'_, Result<Found, AwsError>> {
        self.find_all().boxed()
    }
}

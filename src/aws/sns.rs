//! SNS: one publish per validated push that needs an alert.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{op, AwsError, ErrorKind};
use crate::alert::Alert;
use crate::validate::Notifier;

pub struct Sns {
    client: Client,
}

impl Sns {
    pub fn new(client: Client) -> Sns {
        Sns { client }
    }

    async fn send(&self, topic_arn: &str, alert: &Alert) -> Result<String, AwsError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(&alert.subject)
            .message_structure("json")
            .message(&alert.message);
        for (name, value) in &alert.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AwsError::new(op::SNS_PUBLISH, ErrorKind::Rejected, e.to_string()))?;
            request = request.message_attributes(*name, attribute);
        }
        let output = request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(op::SNS_PUBLISH, e))?;
        Ok(output.message_id().unwrap_or_default().to_string())
    }
}

impl Notifier for Sns {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        alert: &'a Alert,
    ) -> BoxFuture<'a, Result<String, AwsError>> {
        self.send(topic_arn, alert).boxed()
    }
}

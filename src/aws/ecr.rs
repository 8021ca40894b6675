//! ECR: BatchGetImage, GetDownloadUrlForLayer (+ the HTTPS GET of the presigned URL) and PutImage.

use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier};
use aws_sdk_ecr::Client;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{op, AwsError, ErrorKind};
use crate::manifest::ACCEPTED_MEDIA_TYPES;
use crate::reference::ImageId;
use crate::validate::{BlobError, ImageReader, ImageTagger, StoredImage};

pub struct Ecr {
    client: Client,
    http: reqwest::Client,
    /// Plain http is accepted only when an endpoint override points us at a local emulator.
    allow_http: bool,
}

impl Ecr {
    pub fn new(client: Client, http: reqwest::Client, allow_http: bool) -> Ecr {
        Ecr {
            client,
            http,
            allow_http,
        }
    }

    async fn get_image(&self, image: &ImageId) -> Result<Option<StoredImage>, AwsError> {
        let id = ImageIdentifier::builder()
            .set_image_digest(image.digest.clone())
            .set_image_tag(if image.digest.is_some() {
                None
            } else {
                image.tag.clone()
            })
            .build();
        let output = self
            .client
            .batch_get_image()
            .registry_id(&image.registry_id)
            .repository_name(&image.repository)
            .image_ids(id)
            .set_accepted_media_types(Some(ACCEPTED_MEDIA_TYPES.iter().map(|m| m.to_string()).collect()))
            .send()
            .await
            .map_err(|e| {
                let error = AwsError::from_sdk(op::ECR_BATCH_GET_IMAGE, e);
                // The repository itself is gone: the image went with it.
                if error.code.as_deref() == Some("RepositoryNotFoundException") {
                    AwsError {
                        kind: ErrorKind::NotFound,
                        ..error
                    }
                } else {
                    error
                }
            });
        let output = match output {
            Ok(output) => output,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(found) = output.images().iter().find(|i| i.image_manifest().is_some()) {
            let digest = found
                .image_id()
                .and_then(|id| id.image_digest())
                .or(image.digest.as_deref())
                .unwrap_or_default()
                .to_string();
            return Ok(Some(StoredImage {
                registry_id: found.registry_id().unwrap_or(&image.registry_id).to_string(),
                digest,
                manifest: found.image_manifest().unwrap_or_default().to_string(),
                media_type: found.image_manifest_media_type().map(str::to_string),
            }));
        }
        match output.failures().first() {
            Some(f)
                if matches!(
                    f.failure_code(),
                    Some(ImageFailureCode::ImageNotFound | ImageFailureCode::ImageTagDoesNotMatchDigest)
                        | None
                ) =>
            {
                Ok(None)
            }
            Some(f) => Err(AwsError::new(
                op::ECR_BATCH_GET_IMAGE,
                ErrorKind::Rejected,
                format!(
                    "{}: {}",
                    f.failure_code().map(|c| c.as_str()).unwrap_or("failure"),
                    f.failure_reason().unwrap_or_default()
                ),
            )),
            None => Ok(None),
        }
    }

    async fn get_blob(&self, image: &ImageId, digest: &str, limit: u64) -> Result<Vec<u8>, BlobError> {
        let output = self
            .client
            .get_download_url_for_layer()
            .registry_id(&image.registry_id)
            .repository_name(&image.repository)
            .layer_digest(digest)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(op::ECR_GET_DOWNLOAD_URL_FOR_LAYER, e))?;
        let url = output.download_url().unwrap_or_default();
        let download = |message: String, retryable: bool| BlobError::Download {
            digest: digest.to_string(),
            message,
            retryable,
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| download("ECR returned an invalid download URL".into(), false))?;
        if parsed.scheme() != "https" && !(self.allow_http && parsed.scheme() == "http") {
            return Err(BlobError::InsecureUrl);
        }
        // The URL is presigned: it is a credential and never appears in a message or a log.
        let mut response = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| download(describe_http_error(&e), true))?;
        let status = response.status();
        if !status.is_success() {
            return Err(download(
                format!("HTTP {status}"),
                status.is_server_error() || status.as_u16() == 429,
            ));
        }
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(BlobError::TooLarge {
                digest: digest.to_string(),
                limit,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| download(describe_http_error(&e), true))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(BlobError::TooLarge {
                    digest: digest.to_string(),
                    limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn tag_image(&self, image: &ImageId, stored: &StoredImage, tag: &str) -> Result<(), AwsError> {
        let result = self
            .client
            .put_image()
            .registry_id(&stored.registry_id)
            .repository_name(&image.repository)
            .image_manifest(&stored.manifest)
            .set_image_manifest_media_type(stored.media_type.clone())
            .image_digest(&stored.digest)
            .image_tag(tag)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A retried event, or a second push of the same image: the tag is already there.
            Err(e) if matches!(e.code(), Some("ImageAlreadyExistsException")) => Ok(()),
            Err(e) => Err(AwsError::from_sdk(op::ECR_PUT_IMAGE, e)),
        }
    }
}

/// reqwest's messages can embed the URL, which is presigned; describe the failure without it.
fn describe_http_error(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "connection broke while reading the body"
    } else {
        "request failed"
    };
    what.to_string()
}

impl ImageReader for Ecr {
    fn image<'a>(&'a self, image: &'a ImageId) -> BoxFuture<'a, Result<Option<StoredImage>, AwsError>> {
        self.get_image(image).boxed()
    }

    fn blob<'a>(
        &'a self,
        image: &'a ImageId,
        digest: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, BlobError>> {
        self.get_blob(image, digest, limit).boxed()
    }
}

impl ImageTagger for Ecr {
    fn put_tag<'a>(
        &'a self,
        image: &'a ImageId,
        stored: &'a StoredImage,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        self.tag_image(image, stored, tag).boxed()
    }
}

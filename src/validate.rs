//! The pipeline, event → image → consumers → verdict → actions, written against small traits so
//! the domain never sees the SDK.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::{self, BoxFuture};

use crate::alert;
use crate::aws::AwsError;
use crate::config::{Config, ConsumerKind};
use crate::consumer::{Consumer, Requirement};
use crate::event::{self, Disposition, EventError, SkipReason};
use crate::manifest::{self, Manifest, ManifestError};
use crate::reference::{is_digest, ImageId};
use crate::verdict::{self, Action, ImageReport, Report, Verdict};

/// Config blobs are a few KiB; anything near this is not an image config.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// A manifest as ECR stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub registry_id: String,
    pub digest: String,
    /// The exact manifest text: PutImage of the marker tag must reuse it byte for byte.
    pub manifest: String,
    pub media_type: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("download of config blob {digest} failed: {message}")]
    Download {
        digest: String,
        message: String,
        retryable: bool,
    },
    #[error("config blob {digest} is larger than {limit} bytes")]
    TooLarge { digest: String, limit: u64 },
    #[error("config blob download URL is not https; refusing it")]
    InsecureUrl,
}

impl BlobError {
    pub fn is_retryable(&self) -> bool {
        match self {
            BlobError::Aws(e) => e.is_retryable(),
            BlobError::Download { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// Reads images from ECR.
pub trait ImageReader: Send + Sync {
    /// None when ECR no longer has the image.
    fn image<'a>(&'a self, image: &'a ImageId) -> BoxFuture<'a, Result<Option<StoredImage>, AwsError>>;
    /// A blob of the image's repository, at most `limit` bytes.
    fn blob<'a>(
        &'a self,
        image: &'a ImageId,
        digest: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, BlobError>>;
}

/// Adds a tag to an existing image.
pub trait ImageTagger: Send + Sync {
    fn put_tag<'a>(
        &'a self,
        image: &'a ImageId,
        stored: &'a StoredImage,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<(), AwsError>>;
}

/// Publishes an alert; returns the message id.
pub trait Notifier: Send + Sync {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        alert: &'a alert::Alert,
    ) -> BoxFuture<'a, Result<String, AwsError>>;
}

/// Every consumer of one kind in the account and region.
pub trait ConsumerFinder: Send + Sync {
    fn kind(&self) -> ConsumerKind;
    fn find(&self) -> BoxFuture<'_, Result<Found, AwsError>>;
}

/// `ecs.cpu-architecture` of a cluster's container instances.
pub trait ClusterArchitectures: Send + Sync {
    fn architectures<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Vec<String>, AwsError>>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub consumers: Vec<Consumer>,
    /// Lookups that failed without deciding a consumer; see [`verdict::BENIGN_WARNING_PREFIX`].
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("image {image}: {source}")]
    Manifest { image: String, source: ManifestError },
    #[error("image {0} was not found in ECR")]
    ImageNotFound(String),
    #[error("image {image}: {source}")]
    Blob { image: String, source: BlobError },
}

impl ValidateError {
    /// Whether the same event may succeed later; the Lambda then fails so EventBridge retries.
    pub fn is_retryable(&self) -> bool {
        match self {
            ValidateError::Aws(e) => e.is_retryable(),
            ValidateError::Blob { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// A stable name for logs and the Lambda error type.
    pub fn error_type(&self) -> &'static str {
        match self {
            _ if self.is_retryable() => "TransientAwsError",
            ValidateError::Event(_) => "InvalidEvent",
            ValidateError::Aws(_) => "AwsError",
            ValidateError::Manifest { .. } => "InvalidManifest",
            ValidateError::ImageNotFound(_) => "ImageNotFound",
            ValidateError::Blob { .. } => "BlobError",
        }
    }
}

/// The AWS side of the pipeline, wired once per cold start.
pub struct Ports {
    pub images: Arc<dyn ImageReader>,
    pub tagger: Arc<dyn ImageTagger>,
    pub notifier: Arc<dyn Notifier>,
    pub finders: Vec<Arc<dyn ConsumerFinder>>,
    pub clusters: Arc<dyn ClusterArchitectures>,
}

/// What a warm Lambda remembers between invocations.
#[derive(Default)]
struct Cache {
    consumers: Option<(Instant, Arc<Found>)>,
    clusters: HashMap<String, (Instant, Result<Vec<String>, String>)>,
}

pub struct Validator {
    pub config: Config,
    ports: Ports,
    cache: Mutex<Cache>,
}

impl Validator {
    pub fn new(config: Config, ports: Ports) -> Validator {
        Validator {
            config,
            ports,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The Lambda's whole job on one event.
    pub async fn handle_event(
        &self,
        event: serde_json::Value,
        dry_run: bool,
    ) -> Result<Report, ValidateError> {
        match event::dispose(event, &self.config)? {
            Disposition::Skip(image, reason) => {
                Ok(Report::skipped(image.as_ref().map(ImageReport::from_id), reason))
            }
            Disposition::Validate(push) => self.validate(push.image, dry_run, false).await,
        }
    }

    /// Validates an image already in ECR, as `check --repository --tag` does after `docker push`.
    pub async fn check_image(&self, image: ImageId, dry_run: bool) -> Result<Report, ValidateError> {
        if !self.config.validates_repository(&image.repository) {
            let reason = SkipReason::FilteredRepository(image.repository.clone());
            return Ok(Report::skipped(Some(ImageReport::from_id(&image)), reason));
        }
        self.validate(image, dry_run, true).await
    }

    async fn validate(
        &self,
        image: ImageId,
        dry_run: bool,
        named_by_user: bool,
    ) -> Result<Report, ValidateError> {
        // An untagged push (a child of a multi-platform push) matters only to consumers pinned to
        // its digest: look for those first and skip without reading the image when there are none.
        let (read, found) = if image.tag.is_none() {
            let found = self.consumers().await?;
            if verdict::relate(&image, &found.consumers).is_empty() {
                let reason = SkipReason::UntaggedWithoutDigestConsumer;
                return Ok(Report::skipped(Some(ImageReport::from_id(&image)), reason));
            }
            (self.read_image(&image).await, found)
        } else {
            let (read, found) = future::join(self.read_image(&image), self.consumers()).await;
            (read, found?)
        };
        let (stored, image_report) = match read? {
            ImageRead::Image(stored, report) => (stored, report),
            // An image the user named on the command line must exist; a pushed one may be gone.
            ImageRead::Skip(report, SkipReason::ImageDeleted(_)) if named_by_user => {
                return Err(ValidateError::ImageNotFound(report.id().display_name()))
            }
            ImageRead::Skip(report, reason) => return Ok(Report::skipped(Some(*report), reason)),
        };
        let image = image_report.id();

        let mut related = verdict::relate(&image, &found.consumers);
        for (consumer, _, _) in &mut related {
            self.resolve_cluster_requirement(consumer).await?;
        }
        let mut report = verdict::decide(*image_report, related, found.warnings.clone());
        self.act(&mut report, &stored, dry_run).await?;
        Ok(report)
    }

    async fn read_image(&self, image: &ImageId) -> Result<ImageRead, ValidateError> {
        let Some(stored) = self.ports.images.image(image).await? else {
            let name = image.display_name();
            return Ok(ImageRead::Skip(
                Box::new(ImageReport::from_id(image)),
                SkipReason::ImageDeleted(name),
            ));
        };
        let mut id = image.clone();
        id.registry_id = stored.registry_id.clone();
        id.digest = Some(stored.digest.clone());
        let mut report = ImageReport::from_id(&id);
        let manifest =
            manifest::parse(stored.manifest.as_bytes(), stored.media_type.as_deref()).map_err(|source| {
                ValidateError::Manifest {
                    image: id.display_name(),
                    source,
                }
            })?;
        report.media_type = Some(manifest.media_type().to_string());
        report.kind = Some(manifest.kind());
        match manifest {
            Manifest::Artifact { artifact_type, .. } => {
                return Ok(ImageRead::Skip(
                    Box::new(report),
                    SkipReason::NotAnImage(artifact_type),
                ))
            }
            Manifest::Index { platforms, .. } => report.platforms = platforms,
            Manifest::Schema1 { platform, .. } => report.platforms = vec![platform],
            Manifest::Image { config, .. } => match self.read_config(&id, &config).await {
                Ok(platform) => report.platforms = vec![platform],
                Err(ConfigProblem::Fatal(e)) => return Err(e),
                Err(ConfigProblem::Unreadable(reason)) => report.platform_error = Some(reason),
            },
        }
        Ok(ImageRead::Image(stored, Box::new(report)))
    }

    /// The platform from the image's config blob. A blob that is wrong (bad digest, too large,
    /// not JSON) leaves the image's platform unknown; only a transient failure is an error.
    async fn read_config(
        &self,
        image: &ImageId,
        config: &manifest::Descriptor,
    ) -> Result<crate::platform::Platform, ConfigProblem> {
        if !is_digest(&config.digest) {
            return Err(ConfigProblem::Unreadable(format!(
                "config digest {:?} is not a sha256 digest",
                config.digest
            )));
        }
        if config.size > MAX_CONFIG_BYTES {
            return Err(ConfigProblem::Unreadable(format!(
                "config blob declares {} bytes, more than the {MAX_CONFIG_BYTES} allowed",
                config.size
            )));
        }
        let bytes = match self
            .ports
            .images
            .blob(image, &config.digest, MAX_CONFIG_BYTES)
            .await
        {
            Ok(bytes) => bytes,
            Err(e) if e.is_retryable() => {
                return Err(ConfigProblem::Fatal(ValidateError::Blob {
                    image: image.display_name(),
                    source: e,
                }))
            }
            Err(e) => return Err(ConfigProblem::Unreadable(e.to_string())),
        };
        let actual = manifest::sha256_digest(&bytes);
        if actual != config.digest {
            return Err(ConfigProblem::Unreadable(format!(
                "config blob digest mismatch: manifest says {}, content is {actual}",
                config.digest
            )));
        }
        manifest::parse_config(&bytes).map_err(|e| ConfigProblem::Unreadable(e.to_string()))
    }

    /// All consumers in the account, from the warm cache while it is fresh.
    async fn consumers(&self) -> Result<Arc<Found>, ValidateError> {
        let ttl = self.config.consumer_cache_ttl;
        if let Some((at, found)) = &self.lock_cache().consumers {
            if !ttl.is_zero() && at.elapsed() < ttl {
                return Ok(found.clone());
            }
        }
        let wanted = self
            .ports
            .finders
            .iter()
            .filter(|f| self.config.consumers.contains(&f.kind()));
        let results = future::join_all(wanted.map(|f| f.find())).await;
        let mut all = Found::default();
        for result in results {
            let found = result?;
            all.consumers.extend(found.consumers);
            all.warnings.extend(found.warnings);
        }
        let all = Arc::new(all);
        if !ttl.is_zero() {
            self.lock_cache().consumers = Some((Instant::now(), all.clone()));
        }
        Ok(all)
    }

    /// EC2 and EXTERNAL services learn their architecture from the cluster's container instances;
    /// looked up only for services that use this repository, once per cluster.
    async fn resolve_cluster_requirement(&self, consumer: &mut Consumer) -> Result<(), ValidateError> {
        let Requirement::ClusterInstances { facts } = &consumer.requirement else {
            return Ok(());
        };
        let cluster = facts.cluster.clone();
        let ttl = self.config.consumer_cache_ttl;
        let cached = self
            .lock_cache()
            .clusters
            .get(&cluster)
            .filter(|(at, _)| !ttl.is_zero() && at.elapsed() < ttl)
            .map(|(_, archs)| archs.clone());
        let archs = match cached {
            Some(archs) => archs,
            None => {
                let archs = match self.ports.clusters.architectures(&cluster).await {
                    Ok(archs) => Ok(archs),
                    Err(e) if e.is_retryable() => return Err(e.into()),
                    Err(e) => Err(format!(
                        "cannot read container instances of cluster {cluster}: {e}"
                    )),
                };
                self.lock_cache()
                    .clusters
                    .insert(cluster, (Instant::now(), archs.clone()));
                archs
            }
        };
        let mut facts = (**facts).clone();
        facts.cluster_architectures = Some(archs);
        consumer.requirement = facts.requirement();
        Ok(())
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves only a stale cache behind; keep using it.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tag first, alert last: both are safe to repeat, so a retried event never loses the alert.
    async fn act(
        &self,
        report: &mut Report,
        stored: &StoredImage,
        dry_run: bool,
    ) -> Result<(), ValidateError> {
        let incompatible = report.verdict == Verdict::Incompatible;
        let alert_wanted =
            incompatible || (report.verdict == Verdict::Unknown && self.config.alert_on_unknown);
        let Some(image) = report.image.as_ref().map(ImageReport::id) else {
            return Ok(());
        };
        let mut marker = None;
        if incompatible && self.config.tag {
            let tag = marker_tag(&self.config.marker_tag_prefix, &image);
            if dry_run {
                report.actions.push(action("tag", None, Some(tag.clone()), true));
                marker = Some(tag);
            } else {
                match self.ports.tagger.put_tag(&image, stored, &tag).await {
                    Ok(()) => {
                        report.actions.push(action("tag", None, Some(tag.clone()), false));
                        marker = Some(tag);
                    }
                    Err(e) if e.is_retryable() => return Err(e.into()),
                    // A missing permission must not cost the user the alert.
                    Err(e) => report.warnings.push(format!("marker tag {tag} not added: {e}")),
                }
            }
        }
        if alert_wanted && self.config.alert {
            match &self.config.alert_topic_arn {
                None => report
                    .warnings
                    .push("note: ALERT_TOPIC_ARN is not set; no alert was sent".into()),
                Some(_) if dry_run => report.actions.push(action("sns-alert", None, None, true)),
                Some(topic) => {
                    let alert = alert::render(report, marker.as_deref());
                    let message_id = self.ports.notifier.publish(topic, &alert).await?;
                    report
                        .actions
                        .push(action("sns-alert", Some(message_id), None, false));
                }
            }
        }
        Ok(())
    }
}

enum ImageRead {
    Image(StoredImage, Box<ImageReport>),
    Skip(Box<ImageReport>, SkipReason),
}

enum ConfigProblem {
    Fatal(ValidateError),
    Unreadable(String),
}

fn action(kind: &'static str, message_id: Option<String>, tag: Option<String>, dry_run: bool) -> Action {
    Action {
        kind,
        message_id,
        tag,
        dry_run,
    }
}

/// Docker clients refuse tags over 128 characters, so the marker stays within that.
const MAX_MARKER_TAG: usize = 128;

/// `MARKER_TAG_PREFIX` + the pushed tag, or + the first 12 hex digits of the digest.
pub fn marker_tag(prefix: &str, image: &ImageId) -> String {
    let suffix = match (&image.tag, &image.digest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(digest)) => digest.trim_start_matches("sha256:").chars().take(12).collect(),
        (None, None) => "untagged".into(),
    };
    let mut tag = format!("{prefix}{suffix}");
    tag.truncate(MAX_MARKER_TAG);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tag: Option<&str>) -> ImageId {
        ImageId {
            registry_id: "123456789012".into(),
            region: "us-east-1".into(),
            repository: "web".into(),
            tag: tag.map(str::to_string),
            digest: Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into()),
        }
    }

    #[test]
    fn marker_tag_uses_tag_or_digest_and_stays_short() {
        assert_eq!(marker_tag("incompatible-", &image(Some("v1"))), "incompatible-v1");
        assert_eq!(
            marker_tag("incompatible-", &image(None)),
            "incompatible-0123456789ab"
        );
        let long = "x".repeat(128);
        let tag = marker_tag("incompatible-", &image(Some(&long)));
        assert_eq!(tag.len(), 128);
        assert!(crate::reference::is_tag(&tag));
    }
}

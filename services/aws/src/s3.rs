//! Object store = S3. Downloads and uploads stream between S3 and a local file: an object is never held
//! in memory, whatever its size.

use std::path::Path;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::config::StalledStreamProtectionConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    CreateBucketConfiguration, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use sluice_proto::{ErrorName, ObjectRef, StageError};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::error::{CallError, describe};
use sluice_runtime::ports::{LocalFile, ObjectMeta, ObjectReader, ObjectStore};

/// Files at or above this size are uploaded in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Size of each part of a multipart upload (S3's minimum is 5 MiB, its maximum count 10,000 parts; bigger
/// files get bigger parts, see [`part_size_for`]).
pub const DEFAULT_PART_SIZE: u64 = 16 * 1024 * 1024;
/// Parts uploaded at the same time: enough to fill a link, few enough to stay polite to S3 and to the two
/// cores a worker usually has. Each part streams from disk, so this does not multiply memory.
const PARTS_IN_FLIGHT: usize = 4;
/// S3's limits on multipart uploads.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// How long a transfer may deliver nothing before it is abandoned (the SDK's default is 5 s). A broken
/// download is retried from the start, so a big file is better waited for a little longer; a dead
/// connection is still noticed well within a task's heartbeat.
const STALL_GRACE_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);
/// Read and write buffers for streaming between S3 and local files.
const IO_BUFFER: usize = 256 * 1024;

/// An S3 client configured for Sluice: path-style addressing whenever an endpoint is configured, and a
/// longer tolerance of stalled transfers ([`STALL_GRACE_PERIOD`]).
///
/// Emulators (and most S3-compatible stores) serve every bucket under one host, so virtual-hosted
/// addressing (`bucket.host`) would need wildcard DNS; AWS itself works with both.
pub fn client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = config.endpoint_url().is_some()
        || ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_endpoint)
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(STALL_GRACE_PERIOD)
                .build(),
        )
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// The [`ObjectStore`] on S3.
///
/// ETags are reported without their surrounding quotes, as S3 event notifications carry them, so a run id
/// computed from either is the same.
/// One S3 -> SQS event notification: objects created under `prefix` and ending in `suffix` (either may
/// be empty) are announced to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNotification {
    /// Names the configuration; it comes back as `configurationId` in each event.
    pub id: String,
    pub queue_arn: String,
    pub prefix: String,
    pub suffix: String,
}

impl QueueNotification {
    fn from_sdk(q: &QueueConfiguration) -> Self {
        let rule = |name: FilterRuleName| {
            q.filter()
                .and_then(|f| f.key())
                .map(|k| k.filter_rules())
                .unwrap_or_default()
                .iter()
                .find(|r| r.name() == Some(&name))
                .and_then(|r| r.value())
                .unwrap_or_default()
                .to_string()
        };
        // Only the configurations `set_queue_notifications` writes (all created events) compare equal.
        let events_ok = q.events().len() == 1 && q.events()[0].as_str() == "s3:ObjectCreated:*";
        QueueNotification {
            id: if events_ok {
                q.id().unwrap_or_default().to_string()
            } else {
                String::new()
            },
            queue_arn: q.queue_arn().to_string(),
            prefix: rule(FilterRuleName::Prefix),
            suffix: rule(FilterRuleName::Suffix),
        }
    }
}

#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    multipart_threshold: u64,
    part_size: u64,
}

impl S3ObjectStore {
    /// Uses a client built by [`client`] (or [`super::AwsClients`]), with the default multipart settings.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3ObjectStore {
            client,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Uploads files of `threshold` bytes or more in parts of `part_size` bytes (raised to S3's 5 MiB
    /// minimum, and further for files that would otherwise need more than 10,000 parts).
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Creates a bucket in the client's region; returns false when this account already owns it.
    /// Idempotent, for `sluice deploy` and tests.
    pub async fn create_bucket(&self, bucket: &str) -> Result<bool, StageError> {
        // Look first: in us-east-1 S3 answers CreateBucket on a bucket you own with 200 OK rather than
        // BucketAlreadyOwnedByYou, so the create alone cannot say whether anything was created.
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(false),
            Err(e) => {
                let e = CallError::from_sdk(e);
                if e.status == Some(403) {
                    return Err(StageError::invalid_input(format!(
                        "bucket {bucket} exists but this account may not use it (S3 HeadBucket: {e}); bucket \
                         names are global, so choose another name under [buckets] in the dataset spec, or grant \
                         access to it"
                    )));
                }
                if e.status != Some(404) {
                    return Err(e.into_stage_error(&format!("S3 HeadBucket {bucket}")));
                }
            }
        }
        let mut req = self.client.create_bucket().bucket(bucket);
        // us-east-1 is the default location and refuses to be named explicitly.
        if let Some(region) = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            && region != "us-east-1"
        {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = CallError::from_sdk(e);
                if e.is(&["BucketAlreadyOwnedByYou"]) {
                    // Created by someone else in the meantime.
                    Ok(false)
                } else if e.is(&["BucketAlreadyExists"]) {
                    Err(StageError::invalid_input(format!(
                        "bucket {bucket} already exists and belongs to another account; bucket names are \
                         global, so choose another name under [buckets] in the dataset spec"
                    )))
                } else {
                    Err(e.into_stage_error(&format!("S3 CreateBucket {bucket}")))
                }
            }
        }
    }

    /// Puts `queues` (ids `sluice-...`, one queue configuration each, on `s3:ObjectCreated:*`) into the
    /// bucket's event notifications: the earlier `sluice-` entries are replaced, every other entry (other
    /// queues, topics, Lambda functions, EventBridge) is kept. Does nothing when the bucket already has
    /// exactly these. Returns whether the configuration changed. S3 checks the destination queues'
    /// policies on this call, and then sends each queue an `s3:TestEvent`.
    pub async fn set_queue_notifications(
        &self,
        bucket: &str,
        queues: &[QueueNotification],
    ) -> Result<bool, StageError> {
        let current = self
            .client
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| {
                CallError::from_sdk(e)
                    .into_stage_error(&format!("S3 GetBucketNotificationConfiguration {bucket}"))
            })?;
        // Ours are the queue configurations whose id starts with `sluice-`; everything else on the
        // bucket (other queues, topics, Lambda functions, EventBridge) is somebody else's and is kept.
        let (ours, theirs): (Vec<&QueueConfiguration>, Vec<&QueueConfiguration>) = current
            .queue_configurations()
            .iter()
            .partition(|q| q.id().is_some_and(is_ours));
        let mut have: Vec<QueueNotification> = ours
            .iter()
            .map(|q| QueueNotification::from_sdk(q))
            .collect();
        let mut want = queues.to_vec();
        have.sort_by(|a, b| a.id.cmp(&b.id));
        want.sort_by(|a, b| a.id.cmp(&b.id));
        if have == want {
            return Ok(false);
        }
        let build_err = |e: aws_sdk_s3::error::BuildError| {
            StageError::internal(format!("S3 notification of {bucket}: {e}"))
        };
        let mut config = NotificationConfiguration::builder()
            .set_topic_configurations(Some(current.topic_configurations().to_vec()))
            .set_lambda_function_configurations(Some(
                current.lambda_function_configurations().to_vec(),
            ))
            .set_event_bridge_configuration(current.event_bridge_configuration().cloned());
        for q in theirs {
            config = config.queue_configurations(q.clone());
        }
        for q in &want {
            let mut rules = Vec::new();
            for (name, value) in [
                (FilterRuleName::Prefix, &q.prefix),
                (FilterRuleName::Suffix, &q.suffix),
            ] {
                if !value.is_empty() {
                    rules.push(FilterRule::builder().name(name).value(value).build());
                }
            }
            let mut qc = QueueConfiguration::builder()
                .id(&q.id)
                .queue_arn(&q.queue_arn)
                .events(Event::from("s3:ObjectCreated:*"));
            if !rules.is_empty() {
                qc = qc.filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                );
            }
            config = config.queue_configurations(qc.build().map_err(build_err)?);
        }
        self.client
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config.build())
            .send()
            .await
            .map_err(|e| {
                let e = CallError::from_sdk(e);
                if e.is(&["InvalidArgument"]) {
                    StageError::invalid_input(format!(
                        "S3 refused the event notifications of bucket {bucket} ({e}); the datasets' match \
                         prefixes and suffixes must not overlap, and the events queue must allow S3 to send"
                    ))
                } else {
                    e.into_stage_error(&format!("S3 PutBucketNotificationConfiguration {bucket}"))
                }
            })?;
        Ok(true)
    }

    async fn put_single(
        &self,
        obj: &ObjectRef,
        src: &Path,
        content_type: &str,
    ) -> Result<(), StageError> {
        let body = file_body(src, 0, None).await?;
        self.client
            .put_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| object_error("PutObject", obj, CallError::from_sdk(e)))?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        obj: &ObjectRef,
        src: &Path,
        size: u64,
        content_type: &str,
    ) -> Result<(), StageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .content_type(content_type)
            // Each part carries its CRC32 and S3 checks the whole object against them on completion.
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| object_error("CreateMultipartUpload", obj, CallError::from_sdk(e)))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(StageError::internal(format!(
                "S3 CreateMultipartUpload for {} answered without an upload id",
                obj.s3_uri()
            )));
        };
        match self.upload_parts(obj, src, size, &upload_id).await {
            Ok(parts) => {
                let done = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&obj.bucket)
                    .key(&obj.key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                match done {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        self.abort_upload(obj, &upload_id).await;
                        Err(object_error(
                            "CompleteMultipartUpload",
                            obj,
                            CallError::from_sdk(e),
                        ))
                    }
                }
            }
            Err(e) => {
                self.abort_upload(obj, &upload_id).await;
                Err(e)
            }
        }
    }

    /// Uploads every part, a few at a time, each streamed from its range of the file. Returns the parts
    /// in order, as CompleteMultipartUpload wants them.
    async fn upload_parts(
        &self,
        obj: &ObjectRef,
        src: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StageError> {
        let part_size = part_size_for(size, self.part_size);
        let count = size.div_ceil(part_size).max(1);
        let mut parts: Vec<Option<CompletedPart>> = vec![None; count as usize];
        let mut running = JoinSet::new();
        let mut next = 0u64;
        loop {
            while next < count && running.len() < PARTS_IN_FLIGHT {
                let offset = next * part_size;
                let len = part_size.min(size - offset);
                // Part numbers start at 1 and stay below 10,001, so this never truncates.
                let number = (next + 1) as i32;
                let req = self
                    .client
                    .upload_part()
                    .bucket(&obj.bucket)
                    .key(&obj.key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(len as i64)
                    .checksum_algorithm(ChecksumAlgorithm::Crc32);
                let (src, obj) = (src.to_path_buf(), obj.clone());
                running.spawn(async move {
                    let body = file_body(&src, offset, Some(len)).await?;
                    let out =
                        req.body(body).send().await.map_err(|e| {
                            object_error("UploadPart", &obj, CallError::from_sdk(e))
                        })?;
                    let part = CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                        .build();
                    Ok::<_, StageError>(part)
                });
                next += 1;
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            // Returning early drops the JoinSet, which aborts the parts still uploading.
            let part = joined.map_err(|e| {
                StageError::internal(format!("an S3 part upload task failed: {e}"))
            })??;
            let index = part.part_number().unwrap_or(0) as usize;
            if let Some(slot) = index.checked_sub(1).and_then(|i| parts.get_mut(i)) {
                *slot = Some(part);
            }
        }
        parts
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                StageError::internal(format!(
                    "a part of the upload of {} went missing",
                    obj.s3_uri()
                ))
            })
    }

    /// Best effort: an abandoned upload only costs storage until a lifecycle rule removes it, and the
    /// caller already has the error that matters.
    async fn abort_upload(&self, obj: &ObjectRef, upload_id: &str) {
        let res = self
            .client
            .abort_multipart_upload()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(e) = res {
            tracing::warn!(object = %obj.s3_uri(), upload_id, error = %CallError::from_sdk(e), "could not abort a failed multipart upload");
        }
    }
}

/// The part size for a file: the configured size, grown so the file fits in S3's 10,000 parts.
pub fn part_size_for(size: u64, configured: u64) -> u64 {
    configured.max(MIN_PART_SIZE).max(size.div_ceil(MAX_PARTS))
}

/// A request body that streams `len` bytes (or the rest of the file) from `offset`. The SDK can reopen it,
/// so its own retries resend the body without buffering it.
async fn file_body(src: &Path, offset: u64, len: Option<u64>) -> Result<ByteStream, StageError> {
    let mut builder = ByteStream::read_from()
        .path(src)
        .offset(offset)
        .buffer_size(IO_BUFFER);
    if let Some(len) = len {
        builder = builder.length(Length::Exact(len));
    }
    builder
        .build()
        .await
        .map_err(|e| StageError::internal(format!("cannot read {} for upload: {e}", src.display())))
}

/// Maps an S3 failure on one object to what the state machine should do about it.
/// An ETag as HTTP wants it in If-Match: in double quotes (S3 events give it bare).
fn quoted_etag(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

fn object_error(op: &str, obj: &ObjectRef, e: CallError) -> StageError {
    let uri = obj.s3_uri();
    if let Some(version) = &obj.version
        && (e.is(&["PreconditionFailed"]) || e.status == Some(412))
    {
        return StageError::new(
            ErrorName::Superseded,
            format!(
                "{uri} was replaced after this run started (it no longer has ETag {version}); the newer \
                 version runs on its own event"
            ),
        );
    }
    if e.is(&["NoSuchBucket"]) {
        StageError::invalid_input(format!(
            "bucket {} does not exist (S3 {op} on {uri}: {e}); create it with `sluice deploy`, or fix the \
             bucket names under [buckets] in the dataset spec",
            obj.bucket
        ))
    } else if e.is(&["NoSuchKey", "NotFound"]) || (e.status == Some(404) && e.code.is_none()) {
        StageError::invalid_input(format!(
            "{uri} does not exist (S3 {op}: {e}); check the bucket and key, and that the object was not \
             deleted before the run read it"
        ))
    } else if e.is(&["InvalidObjectState"]) {
        StageError::invalid_input(format!(
            "{uri} is archived (S3 {op}: {e}); restore it from its archive storage class, then land it again"
        ))
    } else if e.is(&["AccessDenied", "Forbidden", "AllAccessDisabled"]) || e.status == Some(403) {
        StageError::invalid_input(format!(
            "access to {uri} was denied (S3 {op}: {e}); give this worker's IAM role the S3 permission for \
             {op} on that bucket and key, or check the bucket policy"
        ))
    } else {
        e.into_stage_error(&format!("S3 {op} on {uri}"))
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    /// Streams the object into a temporary file under `scratch` (removed when the [`LocalFile`] drops).
    /// With a version (the ETag of the run's event), GetObject is conditional (If-Match): the run reads
    /// exactly the bytes its id names, or fails with `Sluice.Superseded` when the key holds newer ones.
    async fn local_copy(&self, obj: &ObjectRef, scratch: &Path) -> Result<LocalFile, StageError> {
        let out = self
            .client
            .get_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .set_if_match(obj.version.as_deref().map(quoted_etag))
            .send()
            .await
            .map_err(|e| object_error("GetObject", obj, CallError::from_sdk(e)))?;
        let expected = out.content_length().and_then(|n| u64::try_from(n).ok());
        let mut body = out.body;

        tokio::fs::create_dir_all(scratch).await?;
        // Keep the key's extension: readers and people looking at scratch space both find it useful.
        let suffix = Path::new(&obj.key)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= 16 && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix("s3-download-")
            .suffix(&suffix)
            .tempfile_in(scratch)?;
        let (file, temp_path) = temp.into_parts();
        let mut writer =
            tokio::io::BufWriter::with_capacity(IO_BUFFER, tokio::fs::File::from_std(file));
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                StageError::transient(format!(
                    "the download of {} broke off after {written} bytes: {}; a retry starts it again",
                    obj.s3_uri(),
                    describe(&e)
                ))
            })?;
            writer.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        writer.flush().await?;
        writer.into_inner().sync_all().await?;
        if let Some(expected) = expected
            && expected != written
        {
            return Err(StageError::transient(format!(
                "the download of {} ended after {written} of {expected} bytes; a retry starts it again",
                obj.s3_uri()
            )));
        }
        Ok(LocalFile::temporary(temp_path))
    }

    /// Uploads `src` (left in place: it is the caller's scratch file). Files of the multipart threshold
    /// or more go up in parts, a few at a time.
    async fn put_file(
        &self,
        obj: &ObjectRef,
        src: &Path,
        content_type: &str,
    ) -> Result<(), StageError> {
        let size = tokio::fs::metadata(src)
            .await
            .map_err(|e| {
                StageError::internal(format!("cannot read {} for upload: {e}", src.display()))
            })?
            .len();
        if size >= self.multipart_threshold {
            self.put_multipart(obj, src, size, content_type).await
        } else {
            self.put_single(obj, src, content_type).await
        }
    }

    async fn delete(&self, obj: &ObjectRef) -> Result<(), StageError> {
        self.client
            .delete_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .send()
            .await
            .map_err(|e| object_error("DeleteObject", obj, CallError::from_sdk(e)))?;
        Ok(())
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(ObjectRef, ObjectMeta)>, StageError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    CallError::from_sdk(e)
                        .into_stage_error(&format!("S3 ListObjectsV2 of s3://{bucket}/{prefix}"))
                })?;
            for o in out.contents() {
                let Some(key) = o.key() else { continue };
                found.push((
                    ObjectRef::new(bucket, key),
                    ObjectMeta {
                        size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                        etag: o.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                        modified: o.last_modified().and_then(smithy_time),
                    },
                ));
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        found.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        Ok(found)
    }

    async fn head(&self, obj: &ObjectRef) -> Result<Option<ObjectMeta>, StageError> {
        match self
            .client
            .head_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                size: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                etag: out
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
                modified: out.last_modified().and_then(smithy_time),
            })),
            Err(e) => {
                let not_found = e.as_service_error().is_some_and(|s| s.is_not_found());
                let e = CallError::from_sdk(e);
                // A HEAD answer has no body, so a missing bucket is a bare 404 too: both mean "no object".
                if not_found || e.status == Some(404) {
                    Ok(None)
                } else {
                    Err(object_error("HeadObject", obj, e))
                }
            }
        }
    }

    fn uri(&self, obj: &ObjectRef) -> String {
        obj.s3_uri()
    }

    /// GetObject, its body streamed as it arrives.
    async fn open(&self, obj: &ObjectRef) -> Result<Option<ObjectReader>, StageError> {
        match self
            .client
            .get_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectReader {
                size: out.content_length().and_then(|n| u64::try_from(n).ok()),
                body: Box::pin(out.body.into_async_read()),
            })),
            Err(e) => {
                let e = CallError::from_sdk(e);
                if e.is(&["NoSuchKey", "NotFound"]) || (e.status == Some(404) && e.code.is_none()) {
                    Ok(None)
                } else {
                    Err(object_error("GetObject", obj, e))
                }
            }
        }
    }
}

/// Whether a notification configuration id is one `sluice deploy` wrote.
fn is_ours(id: &str) -> bool {
    id.starts_with("sluice-")
}

/// An S3 timestamp as a system time.
fn smithy_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<std::time::SystemTime> {
    std::time::SystemTime::try_from(*t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3_limits() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(part_size_for(100 * MIB, DEFAULT_PART_SIZE), 16 * MIB);
        assert_eq!(
            part_size_for(100 * MIB, MIB),
            5 * MIB,
            "raised to the 5 MiB minimum"
        );
        let huge = 1024 * 1024 * MIB; // 1 TiB
        let size = part_size_for(huge, DEFAULT_PART_SIZE);
        assert!(huge.div_ceil(size) <= MAX_PARTS);
    }

    #[test]
    fn object_errors_say_what_to_do() {
        let obj = ObjectRef::new("landing", "in/a.csv");
        let err = |code: &str, status| CallError {
            code: Some(code.into()),
            message: "m".into(),
            status: Some(status),
            transient: status >= 500,
        };
        let e = object_error("GetObject", &obj, err("NoSuchKey", 404));
        assert_eq!(e.error, sluice_proto::ErrorName::InvalidInput);
        assert!(
            e.cause.contains("s3://landing/in/a.csv does not exist"),
            "{}",
            e.cause
        );
        let e = object_error("GetObject", &obj, err("NoSuchBucket", 404));
        assert!(
            e.cause.starts_with("bucket landing does not exist"),
            "{}",
            e.cause
        );
        let e = object_error("PutObject", &obj, err("AccessDenied", 403));
        assert_eq!(e.error, sluice_proto::ErrorName::InvalidInput);
        assert!(e.cause.contains("IAM role"), "{}", e.cause);
        let e = object_error("GetObject", &obj, err("SlowDown", 503));
        assert_eq!(e.error, sluice_proto::ErrorName::Transient);
        let e = object_error("GetObject", &obj, err("InvalidObjectState", 403));
        assert!(e.cause.contains("is archived"), "{}", e.cause);
        let e = object_error("GetObject", &obj, err("Forbidden", 403));
        assert_eq!(
            e.error,
            sluice_proto::ErrorName::InvalidInput,
            "403s are access problems"
        );
    }
}

//! Objects for Distributed Map states: where an `ItemReader` reads its items and a `ResultWriter`
//! writes the results of a Map Run (Amazon S3 in Step Functions).
//!
//! The executor sees objects through [`ObjectSource`] only (given with
//! [`crate::Executor::with_objects`]), so this crate stays free of any storage client. Two sources
//! come with it: [`MemoryObjects`] (tests) and [`FolderObjects`] (`sluice statemachine exec
//! --objects DIR`: bucket `b`, key `k` is the file `DIR/b/k`, the layout of Sluice's embedded object
//! store). An S3 source is a thin adapter over an S3 client, outside this crate.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use md5::Digest as _;

/// One object of a listing, with what ListObjectsV2 reports of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    /// As S3 shows it: the hex MD5 of the content in double quotes for a single-part upload.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

/// Reads and writes objects by bucket and key. Errors are sentences for the cause of
/// `States.ItemReaderFailed` / `States.ResultWriterFailed`.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// The object's bytes (S3 GetObject).
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String>;
    /// Every object of `bucket` whose key starts with `prefix`, in key order (S3 ListObjectsV2,
    /// all pages).
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectSummary>, String>;
    /// Stores `bytes` as the object, replacing it (S3 PutObject).
    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), String>;
}

/// The ETag S3 gives an object uploaded in one part: its MD5, in hex, in double quotes.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = md5::Md5::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn no_such_bucket(bucket: &str) -> String {
    format!("The specified bucket does not exist (Bucket: {bucket})")
}

fn no_such_key(bucket: &str, key: &str) -> String {
    format!("The specified key does not exist (Bucket: {bucket}, Key: {key})")
}

/// The objects of one in-memory bucket: bytes and last-modified time by key.
type MemoryBucket = BTreeMap<String, (Vec<u8>, DateTime<Utc>)>;

/// Objects held in memory. A bucket exists once created with [`MemoryObjects::create_bucket`] or
/// [`MemoryObjects::insert`]; reading, listing or writing another bucket fails, as in S3.
#[derive(Debug, Default)]
pub struct MemoryObjects {
    buckets: Mutex<BTreeMap<String, MemoryBucket>>,
}

impl MemoryObjects {
    pub fn new() -> Self {
        Self::default()
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MemoryBucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates an empty bucket (nothing happens if it exists).
    pub fn create_bucket(&self, bucket: &str) {
        self.buckets().entry(bucket.to_string()).or_default();
    }

    /// Stores an object, creating its bucket if needed.
    pub fn insert(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) {
        self.buckets()
            .entry(bucket.to_string())
            .or_default()
            .insert(key.to_string(), (bytes.into(), Utc::now()));
    }

    /// The bytes of an object, if it exists.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.buckets()
            .get(bucket)
            .and_then(|b| b.get(key))
            .map(|(bytes, _)| bytes.clone())
    }

    /// The keys of a bucket, in order.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.buckets()
            .get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl ObjectSource for MemoryObjects {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let buckets = self.buckets();
        let b = buckets.get(bucket).ok_or_else(|| no_such_bucket(bucket))?;
        b.get(key)
            .map(|(bytes, _)| bytes.clone())
            .ok_or_else(|| no_such_key(bucket, key))
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectSummary>, String> {
        let buckets = self.buckets();
        let b = buckets.get(bucket).ok_or_else(|| no_such_bucket(bucket))?;
        Ok(b.range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (bytes, at))| ObjectSummary {
                key: k.clone(),
                size: bytes.len() as u64,
                etag: etag_of(bytes),
                last_modified: *at,
            })
            .collect())
    }

    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        let mut buckets = self.buckets();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| no_such_bucket(bucket))?;
        b.insert(key.to_string(), (bytes, Utc::now()));
        Ok(())
    }
}

/// Objects as files: bucket `b`, key `k` is `{root}/b/k` (a key's `/` separate folders). A bucket
/// exists when its folder does; keys with `.` or `..` parts, or absolute ones, are refused.
#[derive(Debug, Clone)]
pub struct FolderObjects {
    root: PathBuf,
}

impl FolderObjects {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderObjects { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a bucket, which must exist.
    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, String> {
        if bucket.is_empty() || bucket.contains(['/', '\\']) || bucket.starts_with('.') {
            return Err(format!("\"{bucket}\" is not a usable bucket name"));
        }
        let dir = self.root.join(bucket);
        if !dir.is_dir() {
            return Err(format!(
                "{} (no folder {})",
                no_such_bucket(bucket),
                dir.display()
            ));
        }
        Ok(dir)
    }

    /// The file of an object.
    fn path_of(&self, bucket: &str, key: &str) -> Result<PathBuf, String> {
        let dir = self.bucket_dir(bucket)?;
        let rel = Path::new(key);
        if key.is_empty()
            || key.ends_with('/')
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "the key \"{key}\" cannot be a file: it must be a relative path without '.' or '..' parts"
            ));
        }
        Ok(dir.join(rel))
    }
}

#[async_trait]
impl ObjectSource for FolderObjects {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let path = self.path_of(bucket, key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "{} (no file {})",
                no_such_key(bucket, key),
                path.display()
            )),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectSummary>, String> {
        let root = self.bucket_dir(bucket)?;
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || list_folder(&root, &prefix))
            .await
            .map_err(|e| format!("the listing task failed: {e}"))?
    }

    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        let path = self.path_of(bucket, key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

fn list_folder(root: &Path, prefix: &str) -> Result<Vec<ObjectSummary>, String> {
    let io = |p: &Path, e: std::io::Error| format!("cannot list {}: {e}", p.display());
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(|e| io(&path, e))?;
            if ty.is_dir() {
                dirs.push(path);
                continue;
            }
            if !ty.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if !key.starts_with(prefix) {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now());
            found.push(ObjectSummary {
                key,
                size: bytes.len() as u64,
                etag: etag_of(&bytes),
                last_modified: modified,
            });
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_md5() {
        assert_eq!(etag_of(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    }

    #[tokio::test]
    async fn memory_objects_behave_like_s3() {
        let m = MemoryObjects::new();
        m.insert("b", "in/1.csv", "a");
        m.insert("b", "in/2.csv", "bb");
        m.insert("b", "other", "c");
        assert_eq!(m.get("b", "in/2.csv").await.unwrap(), b"bb");
        assert!(
            m.get("b", "nope")
                .await
                .unwrap_err()
                .contains("key does not exist")
        );
        assert!(
            m.get("x", "k")
                .await
                .unwrap_err()
                .contains("bucket does not exist")
        );
        let listed = m.list("b", "in/").await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["in/1.csv", "in/2.csv"]);
        assert_eq!(listed[1].size, 2);
        assert!(m.put("x", "k", vec![]).await.is_err());
        m.create_bucket("x");
        m.put("x", "k", b"v".to_vec()).await.unwrap();
        assert_eq!(m.object("x", "k").unwrap(), b"v");
        assert_eq!(m.keys("x"), ["k"]);
    }

    #[tokio::test]
    async fn folder_objects_are_files_under_bucket_folders() {
        let dir = tempfile::tempdir().unwrap();
        let f = FolderObjects::new(dir.path());
        assert!(
            f.list("b", "")
                .await
                .unwrap_err()
                .contains("bucket does not exist")
        );
        std::fs::create_dir_all(dir.path().join("b/in/deep")).unwrap();
        std::fs::write(dir.path().join("b/in/deep/x.json"), "[1]").unwrap();
        std::fs::write(dir.path().join("b/in/a.csv"), "h\n1\n").unwrap();
        std::fs::write(dir.path().join("b/top"), "t").unwrap();
        let listed = f.list("b", "in/").await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["in/a.csv", "in/deep/x.json"]);
        assert_eq!(listed[1].etag, etag_of(b"[1]"));
        assert_eq!(f.get("b", "in/deep/x.json").await.unwrap(), b"[1]");
        assert!(
            f.get("b", "missing")
                .await
                .unwrap_err()
                .contains("key does not exist")
        );
        assert!(f.get("b", "../escape").await.is_err());
        assert!(f.get("../b", "top").await.is_err());
        f.put("b", "out/run/manifest.json", b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("b/out/run/manifest.json")).unwrap(),
            b"{}"
        );
        assert!(f.put("nobucket", "k", vec![]).await.is_err());
    }
}

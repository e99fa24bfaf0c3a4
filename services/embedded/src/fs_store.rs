//! Object store = a folder per bucket under the data directory.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use sluice_proto::{ErrorName, ObjectRef, StageError};
use xxhash_rust::xxh3::Xxh3;

use sluice_runtime::ports::{LocalFile, ObjectMeta, ObjectReader, ObjectStore};

#[derive(Debug, Clone)]
pub struct FsObjectStore {
    root: PathBuf,
}

impl FsObjectStore {
    /// `root` is `{data_dir}/buckets`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsObjectStore { root: root.into() }
    }

    /// The file behind an object. Keys are checked so `..` or an absolute key cannot escape the bucket.
    pub fn path_of(&self, obj: &ObjectRef) -> Result<PathBuf, StageError> {
        let bad = |what: &str| StageError::invalid_input(format!("object {obj}: {what}"));
        if obj.bucket.is_empty() || obj.bucket.contains(['/', '\\']) || obj.bucket.starts_with('.')
        {
            return Err(bad("not a usable bucket name"));
        }
        let key = Path::new(&obj.key);
        if obj.key.is_empty() || !key.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad(
                "the key must be a relative path without '.' or '..' parts",
            ));
        }
        Ok(self.root.join(&obj.bucket).join(key))
    }

    /// Copies a local file into the store as `obj`, hashing it on the way; returns the ETag
    /// (a 128-bit xxh3 of the content, in hex). Used when `sluice run` lands a file.
    pub async fn land(&self, src: &Path, obj: &ObjectRef) -> Result<ObjectMeta, StageError> {
        let dest = self.path_of(obj)?;
        let src = src.to_path_buf();
        tokio::task::spawn_blocking(move || copy_hashing(&src, &dest))
            .await
            .map_err(|e| StageError::internal(format!("landing task failed: {e}")))?
    }
}

fn copy_hashing(src: &Path, dest: &Path) -> Result<ObjectMeta, StageError> {
    use std::io::{Read, Write};
    let open_err = |e: std::io::Error| {
        StageError::invalid_input(format!("cannot read {}: {e}", src.display()))
    };
    let mut input = std::fs::File::open(src).map_err(open_err)?;
    if input.metadata().map_err(open_err)?.is_dir() {
        return Err(StageError::invalid_input(format!(
            "{} is a directory, not a file",
            src.display()
        )));
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = dest.with_extension("landing");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(open_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as u64;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, dest)?;
    Ok(ObjectMeta {
        size,
        etag: format!("{:032x}", hasher.digest128()),
        modified: std::fs::metadata(dest).and_then(|m| m.modified()).ok(),
    })
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(format!("{:032x}", hasher.digest128()));
        }
        hasher.update(&buf[..n]);
    }
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    /// With a version (an ETag, as S3-shaped events carry it), the content must still hash to it, or
    /// the run fails with `Sluice.Superseded` (as S3's If-Match does).
    async fn local_copy(&self, obj: &ObjectRef, _scratch: &Path) -> Result<LocalFile, StageError> {
        let path = self.path_of(obj)?;
        if !path.is_file() {
            return Err(StageError::invalid_input(format!(
                "object {} does not exist",
                self.uri(obj)
            )));
        }
        if let Some(version) = &obj.version {
            let hashed = path.clone();
            let etag = tokio::task::spawn_blocking(move || hash_file(&hashed))
                .await
                .map_err(|e| StageError::internal(format!("hashing task failed: {e}")))?
                .map_err(|e| StageError::io(format_args!("cannot read {}", path.display()), e))?;
            if etag != version.trim_matches('"') {
                return Err(StageError::new(
                    ErrorName::Superseded,
                    format!(
                        "{} was replaced after this run started (it no longer has ETag {version}); the \
                         newer version runs on its own event",
                        self.uri(obj)
                    ),
                ));
            }
        }
        Ok(LocalFile::borrowed(path))
    }

    async fn put_file(
        &self,
        obj: &ObjectRef,
        src: &Path,
        _content_type: &str,
    ) -> Result<(), StageError> {
        let dest = self.path_of(obj)?;
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // Scratch space is on the same file system, so this is normally a rename; copy otherwise.
        if tokio::fs::rename(src, &dest).await.is_err() {
            tokio::fs::copy(src, &dest).await?;
        }
        Ok(())
    }

    async fn delete(&self, obj: &ObjectRef) -> Result<(), StageError> {
        let path = self.path_of(obj)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StageError::io(
                format_args!("cannot remove {}", path.display()),
                e,
            )),
        }
    }

    async fn head(&self, obj: &ObjectRef) -> Result<Option<ObjectMeta>, StageError> {
        let path = self.path_of(obj)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => {
                let etag = tokio::task::spawn_blocking(move || hash_file(&path))
                    .await
                    .map_err(|e| StageError::internal(e.to_string()))??;
                Ok(Some(ObjectMeta {
                    size: m.len(),
                    etag,
                    modified: m.modified().ok(),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(ObjectRef, ObjectMeta)>, StageError> {
        let root = self.path_of(&ObjectRef::new(bucket, "x"))?;
        let root = root.parent().map(Path::to_path_buf).unwrap_or(root);
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(StageError::from(e)),
                };
                for entry in entries {
                    let entry = entry?;
                    let path = entry.path();
                    let ty = entry.file_type()?;
                    if ty.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    // A file being landed has the temporary extension `.landing` until it is renamed.
                    if !ty.is_file() || path.extension().is_some_and(|e| e == "landing") {
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(&root) else {
                        continue;
                    };
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if !key.starts_with(&prefix) {
                        continue;
                    }
                    let meta = entry.metadata()?;
                    let etag = hash_file(&path)?;
                    found.push((
                        ObjectRef::new(&bucket, key),
                        ObjectMeta {
                            size: meta.len(),
                            etag,
                            modified: meta.modified().ok(),
                        },
                    ));
                }
            }
            found.sort_by(|a, b| a.0.key.cmp(&b.0.key));
            Ok(found)
        })
        .await
        .map_err(|e| StageError::internal(format!("listing task failed: {e}")))?
    }

    fn uri(&self, obj: &ObjectRef) -> String {
        let path = self.root.join(&obj.bucket).join(&obj.key);
        let abs = std::path::absolute(&path).unwrap_or(path);
        format!("file://{}", abs.display())
    }

    async fn open(&self, obj: &ObjectRef) -> Result<Option<ObjectReader>, StageError> {
        let path = self.path_of(obj)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => {
                let meta = file.metadata().await?;
                if !meta.is_file() {
                    return Ok(None);
                }
                Ok(Some(ObjectReader {
                    size: Some(meta.len()),
                    body: Box::pin(file),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StageError::io(
                format_args!("cannot read {}", path.display()),
                e,
            )),
        }
    }

    /// `file://{root}/{bucket}/{key}`, as [`ObjectStore::uri`] writes it.
    fn object_of_uri(&self, uri: &str) -> Option<ObjectRef> {
        let path = Path::new(uri.strip_prefix("file://")?);
        let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        let rest = path.strip_prefix(&root).ok()?;
        let mut parts = rest.components();
        let bucket = parts.next()?.as_os_str().to_str()?.to_string();
        let key = parts.as_path().to_str()?.to_string();
        let obj = ObjectRef::new(bucket, key);
        self.path_of(&obj).ok().map(|_| obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn landing_hashes_and_put_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsObjectStore::new(dir.path().join("buckets"));
        let src = dir.path().join("a.csv");
        std::fs::write(&src, "a,b\n1,2\n").unwrap();
        let obj = ObjectRef::new("landing", "in/a.csv");
        let meta = store.land(&src, &obj).await.unwrap();
        assert_eq!(meta.size, 8);
        assert_eq!(store.head(&obj).await.unwrap(), Some(meta.clone()));
        let local = store.local_copy(&obj, dir.path()).await.unwrap();
        assert_eq!(std::fs::read_to_string(local.path()).unwrap(), "a,b\n1,2\n");

        let out = ObjectRef::new("work", "runs/x/valid.csv");
        store.put_file(&out, &src, "text/csv").await.unwrap();
        assert!(!src.exists());
        assert!(store.uri(&out).starts_with("file:///"));
        assert!(store.uri(&out).ends_with("/buckets/work/runs/x/valid.csv"));
        assert_eq!(
            store.head(&ObjectRef::new("work", "nope")).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_bucket() {
        let store = FsObjectStore::new("/tmp/x");
        for key in ["../etc/passwd", "/abs", "a/../../b", ""] {
            assert!(store.path_of(&ObjectRef::new("b", key)).is_err(), "{key}");
        }
        assert!(store.path_of(&ObjectRef::new("..", "k")).is_err());
    }
}

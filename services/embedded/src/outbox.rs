//! Mailer = `.eml` files in an outbox folder (what lettre's file transport writes, one file a message).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sluice_proto::StageError;

use sluice_runtime::ports::{Mailer, OutgoingEmail};

#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    seq: AtomicU64,
}

impl OutboxMailer {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        OutboxMailer {
            dir: dir.into(),
            seq: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, StageError> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{stamp}-{}-{n}.eml", std::process::id());
        let path = self.dir.join(&name);
        // Write then rename, so a reader never sees half a message.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, &email.raw).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(path.display().to_string())
    }
}

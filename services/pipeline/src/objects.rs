//! The object store port as the ASL executor's [`ObjectSource`]: a Distributed Map's `ItemReader` and
//! `ResultWriter` in a definition the embedded pipeline runs read and write the same buckets as the
//! stages (the folder store embedded, S3 on AWS).

use std::sync::Arc;

use async_trait::async_trait;
use sluice_proto::ObjectRef;
use sluice_runtime::ports::ObjectStore;
use sluice_statemachine::objects::{ObjectSource, ObjectSummary};
use tokio::io::AsyncReadExt;

pub struct StoreObjects {
    pub store: Arc<dyn ObjectStore>,
    /// Where an object being written is staged before `put_file`.
    pub scratch: std::path::PathBuf,
}

#[async_trait]
impl ObjectSource for StoreObjects {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let obj = ObjectRef::new(bucket, key);
        let Some(mut reader) = self.store.open(&obj).await.map_err(|e| e.cause)? else {
            return Err(format!(
                "The specified key does not exist (Bucket: {bucket}, Key: {key})"
            ));
        };
        let mut bytes = Vec::with_capacity(reader.size.unwrap_or(0).min(1 << 26) as usize);
        reader
            .body
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("reading {}: {e}", self.store.uri(&obj)))?;
        Ok(bytes)
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectSummary>, String> {
        let found = self.store.list(bucket, prefix).await.map_err(|e| e.cause)?;
        Ok(found
            .into_iter()
            .map(|(obj, meta)| ObjectSummary {
                key: obj.key,
                size: meta.size,
                etag: format!("\"{}\"", meta.etag.trim_matches('"')),
                last_modified: meta
                    .modified
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .unwrap_or_else(chrono::Utc::now),
            })
            .collect())
    }

    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        tokio::fs::create_dir_all(&self.scratch)
            .await
            .map_err(|e| format!("cannot create {}: {e}", self.scratch.display()))?;
        let temp = tempfile::Builder::new()
            .prefix("result-")
            .tempfile_in(&self.scratch)
            .map_err(|e| e.to_string())?
            .into_temp_path();
        tokio::fs::write(&temp, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        let content_type = if key.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        self.store
            .put_file(&ObjectRef::new(bucket, key), &temp, content_type)
            .await
            .map_err(|e| e.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A definition whose Distributed Map reads a CSV from the store row by row and writes its
    /// results back, run by the local executor over the folder store.
    #[tokio::test]
    async fn a_distributed_map_reads_and_writes_through_the_object_store_port() {
        use serde_json::json;
        use sluice_statemachine::{Executor, StateMachine, SystemClock};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(sluice_embedded::FsObjectStore::new(
            dir.path().join("buckets"),
        ));
        let src = dir.path().join("rows.csv");
        std::fs::write(&src, "id,amount\n1,10\n2,20\n3,30\n").unwrap();
        store
            .land(&src, &ObjectRef::new("work", "in/rows.csv"))
            .await
            .unwrap();
        let definition = json!({
            "StartAt": "Each row",
            "States": {"Each row": {
                "Type": "Map",
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Parameters": {"Bucket": "work", "Key": "in/rows.csv"}},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Double", "States": {"Double": {"Type": "Pass",
                        "Parameters": {"id.$": "$.id", "twice.$": "States.MathAdd(States.StringToJson($.amount), States.StringToJson($.amount))"},
                        "End": true}}},
                "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": "work", "Prefix": "out"}},
                "End": true}}
        });
        let sm = StateMachine::parse(&definition.to_string()).unwrap();
        let objects = Arc::new(StoreObjects {
            store: store.clone(),
            scratch: dir.path().join("tmp"),
        });
        let executor =
            Executor::new(sm, Arc::new(NoTasks), Arc::new(SystemClock)).with_objects(objects);
        let done = executor.execute(json!({}), "fan-out").await;
        assert_eq!(
            done.status.as_str(),
            "SUCCEEDED",
            "{:?} {:?}",
            done.error,
            done.cause
        );
        let key = done.output.as_ref().unwrap()["ResultWriterDetails"]["Key"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            key.starts_with("out/") && key.ends_with("manifest.json"),
            "{key}"
        );
        let listed = store.list("work", "out/").await.unwrap();
        let succeeded = listed
            .iter()
            .find(|(o, _)| o.key.ends_with("SUCCEEDED_0.json"))
            .expect("the results file");
        let text = std::fs::read_to_string(store.path_of(&succeeded.0).unwrap()).unwrap();
        for twice in ["20", "40", "60"] {
            assert!(text.contains(twice), "{twice} in {text}");
        }
    }

    struct NoTasks;

    #[async_trait]
    impl sluice_statemachine::TaskRunner for NoTasks {
        async fn run_task(
            &self,
            _: sluice_statemachine::TaskRequest,
        ) -> Result<serde_json::Value, sluice_statemachine::TaskError> {
            Err(sluice_statemachine::TaskError::new(
                "States.Runtime",
                "no tasks here",
            ))
        }
    }
}

//! JSON Schema export. `cargo run -- schemas proto/schemas` (or the test below with
//! `SLUICE_UPDATE_SCHEMAS=1`) rewrites the checked-in copies.

use schemars::{JsonSchema, schema_for};

use crate::*;

fn pretty<T: JsonSchema>() -> String {
    let mut s = serde_json::to_string_pretty(&schema_for!(T)).expect("schemas serialise");
    s.push('\n');
    s
}

/// Every exported schema as (file name, JSON text).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("task-envelope.schema.json", pretty::<TaskEnvelope>()),
        ("stage-input.schema.json", pretty::<StageInput>()),
        ("stage-output.schema.json", pretty::<StageOutput>()),
        ("stage-error.schema.json", pretty::<StageError>()),
        ("run-summary.schema.json", pretty::<RunSummary>()),
        ("execution-input.schema.json", pretty::<ExecutionInput>()),
        (
            "batch-execution-input.schema.json",
            pretty::<BatchExecutionInput>(),
        ),
        ("batch-state.schema.json", pretty::<BatchState>()),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn checked_in_schemas_are_current() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let update = std::env::var_os("SLUICE_UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (name, text) in super::all() {
            let path = dir.join(name);
            if update {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(old) if old == text => {}
                _ => stale.push(name),
            }
        }
        assert!(
            stale.is_empty(),
            "stale JSON Schemas in proto/schemas: {stale:?}; regenerate with \
             `SLUICE_UPDATE_SCHEMAS=1 cargo test --workspace -- checked_in_schemas_are_current`"
        );
    }

    #[test]
    fn task_envelope_round_trips() {
        use crate::*;
        let env = TaskEnvelope {
            task_token: "tok".into(),
            stage: Stage::Validator,
            run_id: RunId::parse("abc").unwrap(),
            attempt: 2,
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            input: StageInput::Validator(ValidateInput {
                run_id: RunId::parse("abc").unwrap(),
                dataset: "stocks".into(),
                source: ObjectRef::new("landing", "incoming/a.csv"),
            }),
        };
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(serde_json::from_str::<TaskEnvelope>(&json).unwrap(), env);
    }

    #[test]
    fn bad_run_ids_are_refused() {
        assert!(crate::RunId::parse("").is_err());
        assert!(crate::RunId::parse("a/b").is_err());
        assert!(crate::RunId::parse(&"a".repeat(81)).is_err());
    }
}

//! Distributed Map: items read from objects (ItemReader), batched (ItemBatcher), written out
//! (ResultWriter), with tolerated failures, on a virtual clock with in-memory objects.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Plan, SQS, Script, machine, t0};
use serde_json::{Value, json};
use sluice_statemachine::{
    Execution, ExecutionStatus, Executor, MemoryObjects, TaskRequest, VirtualClock,
};

/// Runs a definition with in-memory objects and a scripted task runner.
async fn run(
    def: &Value,
    input: Value,
    objects: Option<Arc<MemoryObjects>>,
    plan: impl Fn(&TaskRequest, usize) -> Plan + Send + Sync + 'static,
) -> (Execution, Arc<Script>) {
    let clock = Arc::new(VirtualClock::new(t0()));
    let script = Script::new(clock.clone(), plan);
    let mut executor = Executor::new(machine(def), script.clone(), clock)
        .with_state_machine_name("orders")
        .with_seed(7);
    if let Some(objects) = objects {
        executor = executor.with_objects(objects);
    }
    (executor.execute(input, "test-exec").await, script)
}

/// A Distributed Map whose item processor is one Task; `fields` are added to the Map state.
fn map_def(fields: Value) -> Value {
    let mut m = json!({"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": SQS, "End": true}}}});
    if let (Value::Object(m), Value::Object(f)) = (&mut m, fields) {
        m.extend(f);
    }
    json!({"StartAt": "Each", "States": {"Each": m}})
}

fn echo(req: &TaskRequest, _: usize) -> Plan {
    Plan::ok(req.parameters.clone())
}

fn objects() -> Arc<MemoryObjects> {
    let o = Arc::new(MemoryObjects::new());
    o.insert(
        "landing",
        "orders/2024-03-01.csv",
        "id,customer,amount\n1,ada,10.50\n2,bob,\"1,000\"\n3,cy,7\n",
    );
    o.insert(
        "landing",
        "orders/lines.jsonl",
        "{\"id\": 1}\n{\"id\": 2}\n\n{\"id\": 3}\n",
    );
    o.insert("landing", "orders/list.json", "[{\"id\": 1}, {\"id\": 2}]");
    o.create_bucket("results");
    o
}

fn types(exec: &Execution) -> Vec<&str> {
    exec.history.iter().map(|e| e.event_type.as_str()).collect()
}

fn assert_failed(exec: &Execution, error: &str) {
    assert_eq!(exec.status, ExecutionStatus::Failed, "{exec:#?}");
    assert_eq!(exec.error.as_deref(), Some(error), "{exec:#?}");
}

fn csv_reader() -> Value {
    json!({"Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
        "Parameters": {"Bucket.$": "$.source.bucket", "Key.$": "$.source.key"}})
}

fn csv_input() -> Value {
    json!({"run": "r-1", "source": {"bucket": "landing", "key": "orders/2024-03-01.csv"}})
}

#[tokio::test]
async fn a_csv_object_fans_out_row_by_row() {
    let def = map_def(json!({
        "ItemReader": csv_reader(),
        "ItemSelector": {"row.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "run.$": "$.run"},
        "ResultPath": "$.rows"
    }));
    let (exec, script) = run(&def, csv_input(), Some(objects()), echo).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let mut sent: Vec<Value> = script
        .requests()
        .iter()
        .map(|(r, _)| r.parameters.clone())
        .collect();
    sent.sort_by_key(|p| p["index"].as_u64());
    let rows = json!([
        {"row": {"id": "1", "customer": "ada", "amount": "10.50"}, "index": 0, "run": "r-1"},
        {"row": {"id": "2", "customer": "bob", "amount": "1,000"}, "index": 1, "run": "r-1"},
        {"row": {"id": "3", "customer": "cy", "amount": "7"}, "index": 2, "run": "r-1"}
    ]);
    assert_eq!(
        Value::Array(sent),
        rows,
        "one task per row, each row an object of strings"
    );
    assert_eq!(
        exec.output.as_ref().unwrap()["rows"],
        rows,
        "results in row order"
    );
    // The children run out of the parent's history; the Map Run frames them.
    assert_eq!(
        types(&exec),
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    // The items are read inside the Map Run: the state starts with length 0.
    assert_eq!(exec.events("MapStateStarted")[0].details["length"], 0);
    let arn = exec.events("MapRunStarted")[0]
        .detail("mapRunArn")
        .unwrap()
        .to_string();
    assert!(
        arn.starts_with("arn:aws:states:us-east-1:000000000000:mapRun:orders/Each:"),
        "{arn}"
    );
    assert_eq!(exec.states_entered, ["Each", "Work", "Work", "Work"]);
}

#[tokio::test]
async fn json_lines_json_arrays_and_a_label() {
    let reader = |key: &str, input_type: &str| {
        map_def(
            json!({"Label": "Lines", "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": input_type},
            "Parameters": {"Bucket": "landing", "Key": key}}}),
        )
    };
    let (exec, _) = run(
        &reader("orders/lines.jsonl", "JSONL"),
        json!({}),
        Some(objects()),
        echo,
    )
    .await;
    assert_eq!(
        exec.output,
        Some(json!([{"id": 1}, {"id": 2}, {"id": 3}])),
        "{exec:#?}"
    );
    assert!(
        exec.events("MapRunStarted")[0]
            .detail("mapRunArn")
            .unwrap()
            .contains(":mapRun:orders/Lines:"),
        "the Label names the Map Run"
    );
    let (exec, _) = run(
        &reader("orders/list.json", "JSON"),
        json!({}),
        Some(objects()),
        echo,
    )
    .await;
    assert_eq!(exec.output, Some(json!([{"id": 1}, {"id": 2}])));
    // A JSON object that is no array fails the read.
    let o = objects();
    o.insert("landing", "bad.json", "{\"id\": 1}");
    let (exec, _) = run(&reader("bad.json", "JSON"), json!({}), Some(o), echo).await;
    assert_failed(&exec, "States.ItemReaderFailed");
    assert!(exec.cause.as_deref().unwrap().contains("must be an array"));
}

#[tokio::test]
async fn list_objects_v2_makes_an_item_of_every_object_under_the_prefix() {
    let o = objects();
    o.insert("landing", "other/x.csv", "x");
    let def = map_def(
        json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "landing", "Prefix.$": "$.prefix"}},
        "ItemSelector": {"key.$": "$$.Map.Item.Value.Key", "size.$": "$$.Map.Item.Value.Size"}}),
    );
    let (exec, script) = run(
        &def,
        json!({"prefix": "orders/"}),
        Some(o.clone()),
        |_, _| Plan::ok(json!(null)),
    )
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let mut keys: Vec<String> = script
        .requests()
        .iter()
        .map(|(r, _)| r.parameters["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "orders/2024-03-01.csv",
            "orders/lines.jsonl",
            "orders/list.json"
        ]
    );
    // The items as AWS shapes them.
    let def = map_def(
        json!({"ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "landing", "Prefix": "orders/list"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}),
    );
    let (exec, _) = run(&def, json!({}), Some(o), echo).await;
    let item = &exec.output.as_ref().unwrap()[0];
    assert_eq!(item["Key"], "orders/list.json");
    assert_eq!(item["Size"], 22);
    assert_eq!(item["StorageClass"], "STANDARD");
    assert!(item["Etag"].as_str().unwrap().starts_with('"'));
    assert!(item["LastModified"].is_i64());
}

#[tokio::test]
async fn max_items_limits_what_is_read() {
    let with_config = |config: Value| {
        let mut reader = csv_reader();
        reader["ReaderConfig"]
            .as_object_mut()
            .unwrap()
            .extend(config.as_object().unwrap().clone());
        map_def(json!({"ItemReader": reader}))
    };
    let (exec, script) = run(
        &with_config(json!({"MaxItems": 2})),
        csv_input(),
        Some(objects()),
        echo,
    )
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(script.requests().len(), 2);
    assert_eq!(exec.output.as_ref().unwrap().as_array().unwrap().len(), 2);
    let mut input = csv_input();
    input["limit"] = json!(1);
    let (exec, _) = run(
        &with_config(json!({"MaxItemsPath": "$.limit"})),
        input,
        Some(objects()),
        echo,
    )
    .await;
    assert_eq!(
        exec.output,
        Some(json!([{"id": "1", "customer": "ada", "amount": "10.50"}]))
    );
}

#[tokio::test]
async fn item_batcher_hands_each_child_a_batch() {
    let def = map_def(json!({
        "ItemReader": csv_reader(),
        "ItemSelector": {"id.$": "$$.Map.Item.Value.id"},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}}
    }));
    let (exec, script) = run(&def, csv_input(), Some(objects()), |req, _| {
        Plan::ok(json!(req.parameters["Items"].as_array().unwrap().len()))
    })
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let mut sent: Vec<Value> = script
        .requests()
        .iter()
        .map(|(r, _)| r.parameters.clone())
        .collect();
    sent.sort_by_key(|p| p["Items"][0]["id"].as_str().map(str::to_string));
    assert_eq!(
        sent,
        [
            json!({"BatchInput": {"run": "r-1"}, "Items": [{"id": "1"}, {"id": "2"}]}),
            json!({"BatchInput": {"run": "r-1"}, "Items": [{"id": "3"}]})
        ]
    );
    assert_eq!(exec.output, Some(json!([2, 1])), "one result per batch");

    // By size: {"Items":[{"id":"1"},{"id":"2"}]} is 33 bytes.
    let def = map_def(json!({
        "ItemReader": csv_reader(),
        "ItemSelector": {"id.$": "$$.Map.Item.Value.id"},
        "ItemBatcher": {"MaxInputBytesPerBatchPath": "$.bytes"}
    }));
    let mut input = csv_input();
    input["bytes"] = json!(33);
    let (exec, _) = run(&def, input.clone(), Some(objects()), |req, _| {
        Plan::ok(json!(req.parameters["Items"].as_array().unwrap().len()))
    })
    .await;
    assert_eq!(exec.output, Some(json!([2, 1])), "{exec:#?}");
    input["bytes"] = json!(5);
    let (exec, _) = run(&def, input, Some(objects()), echo).await;
    assert_failed(&exec, "States.Runtime");
    assert!(
        exec.cause
            .as_deref()
            .unwrap()
            .contains("MaxInputBytesPerBatch")
    );
}

#[tokio::test]
async fn batches_of_items_from_the_input_too() {
    let def = map_def(json!({"ItemsPath": "$.xs", "ItemBatcher": {"MaxItemsPerBatch": 3}}));
    let (exec, _) = run(&def, json!({"xs": [1, 2, 3, 4]}), None, echo).await;
    assert_eq!(
        exec.output,
        Some(json!([{"Items": [1, 2, 3]}, {"Items": [4]}]))
    );
    assert_eq!(exec.events("MapStateStarted")[0].details["length"], 4);
}

fn fail_even_ids(req: &TaskRequest, _: usize) -> Plan {
    let id: u64 = req.parameters["id"].as_str().unwrap().parse().unwrap();
    if id.is_multiple_of(2) {
        Plan::err("Orders.Rejected", &format!("order {id} was rejected"))
    } else {
        Plan::ok(json!(id))
    }
}

#[tokio::test]
async fn tolerated_failures_under_and_over_the_threshold() {
    let def = |tolerance: Value| {
        let mut fields = json!({"ItemReader": csv_reader(), "MaxConcurrency": 1});
        fields
            .as_object_mut()
            .unwrap()
            .extend(tolerance.as_object().unwrap().clone());
        map_def(fields)
    };
    // 1 of 3 fails: a count of 1 tolerates it; the failed child shows as its record.
    let (exec, _) = run(
        &def(json!({"ToleratedFailureCount": 1})),
        csv_input(),
        Some(objects()),
        fail_even_ids,
    )
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let out = exec.output.as_ref().unwrap();
    assert_eq!((out[0].clone(), out[2].clone()), (json!(1), json!(3)));
    assert_eq!(out[1]["Status"], "FAILED");
    assert_eq!(out[1]["Error"], "Orders.Rejected");
    assert_eq!(out[1]["Cause"], "order 2 was rejected");
    assert_eq!(
        out[1]["Input"],
        json!({"id": "2", "customer": "bob", "amount": "1,000"}).to_string()
    );
    // 33 % of the items failed: 40 % tolerates it, 30 % does not.
    let (exec, _) = run(
        &def(json!({"ToleratedFailurePercentage": 40})),
        csv_input(),
        Some(objects()),
        fail_even_ids,
    )
    .await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let (exec, _) = run(
        &def(json!({"ToleratedFailurePercentage": 30})),
        csv_input(),
        Some(objects()),
        fail_even_ids,
    )
    .await;
    assert_failed(&exec, "States.ExceedToleratedFailureThreshold");
    // Without a threshold (0 by default in Distributed mode) one failure fails the Map Run.
    let (exec, script) = run(&def(json!({})), csv_input(), Some(objects()), fail_even_ids).await;
    assert_failed(&exec, "States.ExceedToleratedFailureThreshold");
    assert_eq!(
        script.requests().len(),
        2,
        "the children after the failure never start"
    );
    let failed = exec.events("MapRunFailed");
    assert_eq!(
        failed[0].detail("error"),
        Some("States.ExceedToleratedFailureThreshold")
    );
    assert_eq!(
        &types(&exec)[3..7],
        [
            "MapRunStarted",
            "MapRunFailed",
            "MapStateFailed",
            "ExecutionFailed"
        ]
    );
}

#[tokio::test]
async fn max_concurrency_bounds_the_children_in_flight() {
    let def = |n: u64| map_def(json!({"ItemReader": csv_reader(), "MaxConcurrency": n}));
    for (limit, in_flight) in [(1u64, 1usize), (2, 2), (0, 3)] {
        let (exec, script) = run(&def(limit), csv_input(), Some(objects()), |_, _| {
            Plan::ok(json!(null)).after(10)
        })
        .await;
        assert_eq!(exec.status, ExecutionStatus::Succeeded);
        assert_eq!(
            script.max_in_flight.load(Ordering::SeqCst),
            in_flight,
            "MaxConcurrency {limit}"
        );
    }
}

#[tokio::test]
async fn result_writer_exports_the_results() {
    let def = map_def(json!({
        "ItemReader": csv_reader(),
        "ItemSelector": {"id.$": "$$.Map.Item.Value.id"},
        "ToleratedFailureCount": 1,
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "results", "Prefix.$": "States.Format('runs/{}', $.run)"}}
    }));
    let o = objects();
    let (exec, _) = run(&def, csv_input(), Some(o.clone()), fail_even_ids).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    let out = exec.output.clone().unwrap();
    let arn = out["MapRunArn"].as_str().unwrap();
    let id = arn.rsplit(':').next().unwrap();
    assert_eq!(
        exec.events("MapRunStarted")[0].detail("mapRunArn"),
        Some(arn)
    );
    let manifest_key = format!("runs/r-1/{id}/manifest.json");
    assert_eq!(
        out["ResultWriterDetails"],
        json!({"Bucket": "results", "Key": manifest_key})
    );
    let read = |key: &str| -> Value {
        serde_json::from_slice(&o.object("results", key).unwrap_or_else(|| panic!("{key}")))
            .unwrap()
    };
    let manifest = read(&manifest_key);
    let succeeded_key = format!("runs/r-1/{id}/SUCCEEDED_0.json");
    let failed_key = format!("runs/r-1/{id}/FAILED_0.json");
    assert_eq!(manifest["DestinationBucket"], "results");
    assert_eq!(manifest["MapRunArn"], arn);
    assert_eq!(manifest["ResultFiles"]["PENDING"], json!([]));
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Key"],
        succeeded_key
    );
    assert_eq!(
        manifest["ResultFiles"]["SUCCEEDED"][0]["Size"],
        o.object("results", &succeeded_key).unwrap().len()
    );
    assert_eq!(manifest["ResultFiles"]["FAILED"][0]["Key"], failed_key);
    // NONE (the default when exporting): the child execution records.
    let succeeded = read(&succeeded_key);
    let outputs: Vec<&str> = succeeded
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Output"].as_str().unwrap())
        .collect();
    assert_eq!(outputs, ["1", "3"]);
    let first = &succeeded[0];
    assert_eq!(first["Status"], "SUCCEEDED");
    assert_eq!(first["Input"], "{\"id\":\"1\"}");
    assert_eq!(first["InputDetails"], json!({"Included": true}));
    assert!(
        first["ExecutionArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:states:us-east-1:000000000000:execution:orders/Each:")
    );
    assert_eq!(
        first["StateMachineArn"],
        "arn:aws:states:us-east-1:000000000000:stateMachine:orders/Each"
    );
    assert_eq!(first["StartDate"], "2024-03-01T12:00:00.000Z");
    let failed = read(&failed_key);
    assert_eq!(failed[0]["Error"], "Orders.Rejected");
    assert_eq!(failed[0]["Status"], "FAILED");
}

#[tokio::test]
async fn writer_config_compacts_flattens_and_writes_json_lines() {
    let def = |writer: Value| {
        map_def(json!({"ItemsPath": "$.xs", "ResultWriter": writer,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"pair.$": "States.Array($, $)"}, "OutputPath": "$.pair", "End": true}}}}))
    };
    let input = json!({"xs": [1, 2]});
    // WriterConfig alone: the state output, no object written.
    let (exec, _) = run(
        &def(json!({"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}})),
        input.clone(),
        None,
        echo,
    )
    .await;
    assert_eq!(exec.output, Some(json!([1, 1, 2, 2])), "{exec:#?}");
    let (exec, _) = run(
        &def(json!({"WriterConfig": {"Transformation": "COMPACT"}})),
        input.clone(),
        None,
        echo,
    )
    .await;
    assert_eq!(exec.output, Some(json!([[1, 1], [2, 2]])));
    let (exec, _) = run(
        &def(json!({"WriterConfig": {"Transformation": "NONE"}})),
        input.clone(),
        None,
        echo,
    )
    .await;
    assert_eq!(exec.output.as_ref().unwrap()[1]["Output"], "[2,2]");
    // Exported as JSON Lines.
    let o = objects();
    let (exec, _) = run(
        &def(json!({"Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "results", "Prefix": "lines/"},
            "WriterConfig": {"Transformation": "COMPACT", "OutputType": "JSONL"}})),
        input,
        Some(o.clone()),
        echo,
    )
    .await;
    let key = exec.output.as_ref().unwrap()["ResultWriterDetails"]["Key"]
        .as_str()
        .unwrap()
        .replace("manifest.json", "SUCCEEDED_0.json");
    assert!(key.starts_with("lines/"), "{key}");
    assert_eq!(o.object("results", &key).unwrap(), b"[1,1]\n[2,2]\n");
}

#[tokio::test]
async fn a_failed_map_run_still_writes_its_results_with_the_pending_children() {
    let def = map_def(json!({"ItemReader": csv_reader(), "MaxConcurrency": 1,
        "ItemSelector": {"id.$": "$$.Map.Item.Value.id"},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "results", "Prefix": "p"}},
        "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "Failed"}], "End": null}));
    let mut def = def;
    def["States"]["Each"].as_object_mut().unwrap().remove("End");
    def["States"]["Each"]["Next"] = json!("Failed");
    def["States"]["Failed"] = json!({"Type": "Pass", "End": true});
    let o = objects();
    let (exec, _) = run(&def, csv_input(), Some(o.clone()), fail_even_ids).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(
        exec.output.as_ref().unwrap()["Error"],
        "States.ExceedToleratedFailureThreshold"
    );
    let keys = o.keys("results");
    assert_eq!(keys.len(), 4, "{keys:?}");
    let pending = keys.iter().find(|k| k.ends_with("PENDING_0.json")).unwrap();
    let pending: Value = serde_json::from_slice(&o.object("results", pending).unwrap()).unwrap();
    assert_eq!(
        pending,
        json!([{"Input": "{\"id\":\"3\"}", "InputDetails": {"Included": true}, "Status": "PENDING"}])
    );
}

#[tokio::test]
async fn reading_fails_with_item_reader_failed() {
    let def = map_def(json!({"ItemReader": csv_reader()}));
    // No object store: the message says how to give one.
    let (exec, _) = run(&def, csv_input(), None, echo).await;
    assert_failed(&exec, "States.ItemReaderFailed");
    let cause = exec.cause.clone().unwrap();
    assert!(
        cause.contains("no object store is configured") && cause.contains("--objects DIR"),
        "{cause}"
    );
    assert_eq!(
        exec.events("MapRunFailed")[0].detail("error"),
        Some("States.ItemReaderFailed")
    );
    // A missing object.
    let mut input = csv_input();
    input["source"]["key"] = json!("orders/missing.csv");
    let (exec, _) = run(&def, input, Some(objects()), echo).await;
    assert_failed(&exec, "States.ItemReaderFailed");
    assert!(
        exec.cause
            .as_deref()
            .unwrap()
            .contains("s3://landing/orders/missing.csv"),
        "{exec:#?}"
    );
    // ItemReaderFailed can be caught.
    let mut caught = map_def(json!({"ItemReader": csv_reader(),
        "Catch": [{"ErrorEquals": ["States.ItemReaderFailed"], "ResultPath": "$.error", "Next": "Report"}]}));
    caught["States"]["Each"]
        .as_object_mut()
        .unwrap()
        .remove("End");
    caught["States"]["Each"]["Next"] = json!("Report");
    caught["States"]["Report"] = json!({"Type": "Pass", "End": true});
    let (exec, _) = run(&caught, csv_input(), None, echo).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded);
    assert_eq!(
        exec.output.as_ref().unwrap()["error"]["Error"],
        "States.ItemReaderFailed"
    );
    // Exporting without an object store.
    let def = map_def(
        json!({"ItemsPath": "$.xs", "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "results", "Prefix": "p"}}}),
    );
    let (exec, _) = run(&def, json!({"xs": [1]}), None, echo).await;
    assert_failed(&exec, "States.ResultWriterFailed");
    // Into a bucket that does not exist.
    let (exec, _) = run(
        &map_def(json!({"ItemsPath": "$.xs", "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "nope", "Prefix": "p"}}})),
        json!({"xs": [1]}),
        Some(objects()),
        echo,
    )
    .await;
    assert_failed(&exec, "States.ResultWriterFailed");
    assert!(
        exec.cause
            .as_deref()
            .unwrap()
            .contains("bucket does not exist")
    );
}

#[tokio::test]
async fn jsonata_map_reads_with_arguments() {
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "Each", "States": {"Each": {"Type": "Map", "End": true,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "MaxItems": "{% $states.input.limit %}"},
            "Arguments": {"Bucket": "{% $states.input.source.bucket %}", "Key": "{% $states.input.source.key %}"}},
        "ItemSelector": {"customer": "{% $states.context.Map.Item.Value.customer %}"},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run": "{% $states.input.run %}"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "Output": "{% $states.result %}"}}});
    let mut input = csv_input();
    input["limit"] = json!(3);
    let (exec, _) = run(&def, input, Some(objects()), echo).await;
    assert_eq!(exec.status, ExecutionStatus::Succeeded, "{exec:#?}");
    assert_eq!(
        exec.output,
        Some(json!([
            {"BatchInput": {"run": "r-1"}, "Items": [{"customer": "ada"}, {"customer": "bob"}]},
            {"BatchInput": {"run": "r-1"}, "Items": [{"customer": "cy"}]}
        ]))
    );
}

#[tokio::test]
async fn distributed_map_without_reader_keeps_its_item_order_and_history() {
    // Definition 38's shape, with a Task: items from the input, children out of the history.
    let def = map_def(json!({"ItemsPath": "$.xs"}));
    let (exec, _) = run(&def, json!({"xs": [3, 1, 2]}), None, |req, _| {
        let n = req.parameters.as_u64().unwrap();
        Plan::ok(json!(n * 10)).after(n)
    })
    .await;
    assert_eq!(exec.output, Some(json!([30, 10, 20])));
    assert!(exec.events("TaskScheduled").is_empty());
}

//! The embedded warehouse (SQLite files in the data folder): the same contract as PostgreSQL.

use sea_orm::sqlx::{self, Row as _};
use sluice_loader::{LoadRequest, Warehouse};
use sluice_proto::{ErrorName, RunId};
use sluice_spec::config::Dataset;

mod common;
use common::{ALL_TYPES, Validated, dataset, validate};

/// A folder for the warehouse files, and the validated files the test loads.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn warehouse(&self) -> Warehouse {
        Warehouse::open_sqlite(
            &self.dir.path().join("warehouse.db"),
            "staging",
            "analytics",
        )
        .await
        .unwrap()
    }
}

async fn load(
    wh: &Warehouse,
    ds: &Dataset,
    run: &str,
    key: &str,
    files: &Validated,
) -> Result<sluice_loader::LoadReport, sluice_proto::StageError> {
    wh.load(LoadRequest {
        ds,
        run_id: &RunId::parse(run).unwrap(),
        source_key: key,
        valid_csv: &files.csv,
        valid_arrow: Some(&files.arrow),
        before_commit: None,
    })
    .await
}

async fn rows(wh: &Warehouse, sql: &str) -> Vec<String> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(wh.connection().get_sqlite_connection_pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.try_get::<Option<String>, _>(i)
                        .unwrap()
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

#[tokio::test]
async fn rows_land_with_nulls_as_null_and_their_source_lines() {
    let f = Files::new();
    let ds = dataset(ALL_TYPES);
    let v = validate(
        &ds,
        "id,placed,shipped,price,paid,note\n\
         1,2024-03-01T10:00:00,2024-03-04,9.5,yes,plain\n\
         2,2024-03-02T11:30:00.25,NA,1e3,false,\"comma, \"\"quote\"\"\nand newline\"\n\
         x,,,,,\n\
         3,,,,,\n",
    );
    let wh = f.warehouse().await;
    let report = load(&wh, &ds, "run1", "landing/a.csv", &v).await.unwrap();
    assert_eq!(
        (report.rows, report.replaced, report.change.created),
        (3, 0, true)
    );
    assert_eq!(
        rows(
            &wh,
            "SELECT CAST(id AS TEXT), placed, shipped, CAST(price AS TEXT), CAST(paid AS TEXT), note, _run_id, \
             _source_key, CAST(_line AS TEXT) FROM staging.orders ORDER BY id"
        )
        .await,
        [
            "1|2024-03-01 10:00:00|2024-03-04|9.5|1|plain|run1|landing/a.csv|2",
            "2|2024-03-02 11:30:00.250|NULL|1000.0|0|comma, \"quote\"\nand newline|run1|landing/a.csv|3",
            "3|NULL|NULL|NULL|NULL|NULL|run1|landing/a.csv|6",
        ]
    );
    // The schema is its own file beside warehouse.db, attached under its name.
    assert!(f.dir.path().join("warehouse-staging.db").exists());
}

#[tokio::test]
async fn a_files_rows_replace_its_earlier_rows_and_a_failed_load_changes_nothing() {
    let f = Files::new();
    let ds = dataset(ALL_TYPES);
    let h = "id,placed,shipped,price,paid,note\n";
    let first = validate(&ds, &format!("{h}1,,,,,a\n2,,,,,b\n3,,,,,c\n"));
    let other = validate(&ds, &format!("{h}10,,,,,other\n"));
    let second = validate(&ds, &format!("{h}4,,,,,d\n5,,,,,e\n"));
    let wh = f.warehouse().await;
    load(&wh, &ds, "r1", "in/a.csv", &first).await.unwrap();
    load(&wh, &ds, "r1", "in/b.csv", &other).await.unwrap();
    let report = load(&wh, &ds, "r2", "in/a.csv", &second).await.unwrap();
    assert_eq!((report.rows, report.replaced), (2, 3));
    let now = "SELECT CAST(id AS TEXT), _run_id, _source_key FROM staging.orders ORDER BY id";
    assert_eq!(
        rows(&wh, now).await,
        ["4|r2|in/a.csv", "5|r2|in/a.csv", "10|r1|in/b.csv"]
    );
    // A third version whose file breaks part-way: nothing of it lands, the second stays.
    let broken = f.dir.path().join("broken.csv");
    let mut text = String::from(h);
    for i in 0..5000 {
        text.push_str(&format!("{},,,,,row\n", 100 + i));
    }
    text.push_str("9999,,,,\n");
    std::fs::write(&broken, text).unwrap();
    let e = wh
        .load(LoadRequest {
            ds: &ds,
            run_id: &RunId::parse("r3").unwrap(),
            source_key: "in/a.csv",
            valid_csv: &broken,
            valid_arrow: None,
            before_commit: None,
        })
        .await
        .unwrap_err();
    assert!(e.cause.contains("broken.csv"), "{e}");
    assert_eq!(
        rows(&wh, now).await,
        ["4|r2|in/a.csv", "5|r2|in/a.csv", "10|r1|in/b.csv"]
    );
}

#[tokio::test]
async fn a_new_column_is_added_and_a_type_change_is_refused_naming_the_column() {
    let f = Files::new();
    let col =
        |name: &str, ty: &str| format!("[[dataset.columns]]\nname = \"{name}\"\ntype = \"{ty}\"\n");
    let v1 = dataset(&(col("id", "integer") + &col("qty", "integer")));
    let one = validate(&v1, "id,qty\n1,5\n");
    let wh = f.warehouse().await;
    load(&wh, &v1, "r1", "in/1.csv", &one).await.unwrap();
    let v2 = dataset(&(col("id", "integer") + &col("qty", "integer") + &col("shipped", "date")));
    let two = validate(&v2, "id,qty,shipped\n2,6,2024-05-01\n");
    let report = load(&wh, &v2, "r1", "in/2.csv", &two).await.unwrap();
    assert_eq!(report.change.added, ["shipped"]);
    assert_eq!(
        rows(
            &wh,
            "SELECT CAST(id AS TEXT), shipped FROM staging.orders ORDER BY id"
        )
        .await,
        ["1|NULL", "2|2024-05-01"]
    );
    let v3 = dataset(&(col("id", "integer") + &col("qty", "float")));
    let three = validate(&v3, "id,qty\n3,1.5\n");
    let e = load(&wh, &v3, "r1", "in/3.csv", &three).await.unwrap_err();
    assert_eq!(e.error, ErrorName::InvalidInput);
    assert!(
        e.cause.contains("\"qty\"") && e.cause.contains("float"),
        "{e}"
    );
    assert_eq!(
        rows(&wh, "SELECT CAST(count(*) AS TEXT) FROM staging.orders").await,
        ["2"]
    );
    // Reopening finds the same tables (the schema files are attached again).
    drop(wh);
    let wh = f.warehouse().await;
    assert_eq!(
        rows(&wh, "SELECT CAST(count(*) AS TEXT) FROM staging.orders").await,
        ["2"]
    );
}

/// The check before the commit (the pipeline's "was the object replaced?") rolls the load back with its
/// error: the rows of the earlier load stay.
#[tokio::test]
async fn a_failing_check_before_the_commit_rolls_the_load_back() {
    let f = Files::new();
    let ds = dataset(ALL_TYPES);
    let h = "id,placed,shipped,price,paid,note\n";
    let first = validate(&ds, &format!("{h}1,,,,,a\n"));
    let second = validate(&ds, &format!("{h}2,,,,,b\n3,,,,,c\n"));
    let wh = f.warehouse().await;
    load(&wh, &ds, "r1", "in/a.csv", &first).await.unwrap();
    let run = RunId::parse("r2").unwrap();
    let e = wh
        .load(LoadRequest {
            ds: &ds,
            run_id: &run,
            source_key: "in/a.csv",
            valid_csv: &second.csv,
            valid_arrow: Some(&second.arrow),
            before_commit: Some(Box::new(|| {
                Box::pin(async {
                    Err(sluice_proto::StageError::new(
                        ErrorName::Superseded,
                        "the object was replaced",
                    ))
                })
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(e.error, ErrorName::Superseded);
    assert_eq!(
        rows(&wh, "SELECT CAST(id AS TEXT), _run_id FROM staging.orders").await,
        ["1|r1"]
    );
}

/// Each query's result replaces its table, with `{as_of}` replaced; a failing query names itself,
/// rolls every table back, and the export writes the table as CSV with a header.
#[tokio::test]
async fn analytics_replace_their_tables_all_or_nothing_and_export_as_csv() {
    let files = Files::new();
    let wh = files.warehouse().await;
    let ds = dataset(ALL_TYPES);
    let v = validate(
        &ds,
        "id,placed,shipped,price,paid,note\n1,2024-03-01T10:00:00,2024-03-04,9.5,yes,a\n2,2024-03-02T11:30:00,,1.5,no,\"b, c\"\n",
    );
    load(&wh, &ds, "r1", "landing/a.csv", &v).await.unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2024, 3, 3).unwrap();
    let good = common::queries(&[
        (
            "shipped_by",
            "SELECT id, note, shipped FROM staging.orders WHERE shipped IS NULL OR shipped <= '{as_of}' ORDER BY id",
        ),
        (
            "totals",
            "SELECT count(*) AS orders, sum(price) AS value FROM staging.orders",
        ),
    ]);
    let tables = wh.run_analytics("b", &good, as_of).await.unwrap();
    assert_eq!(
        tables
            .iter()
            .map(|t| (t.name.as_str(), t.rows))
            .collect::<Vec<_>>(),
        [("shipped_by", 1), ("totals", 1)],
        "{{as_of}} was replaced: the order shipped 2024-03-04 is after it"
    );
    let out = files.dir.path().join("shipped_by.csv");
    assert_eq!(wh.export_table("shipped_by", &out).await.unwrap(), 1);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "id,note,shipped\n2,\"b, c\",\n"
    );
    let out = files.dir.path().join("totals.csv");
    wh.export_table("totals", &out).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "orders,value\n2,11\n"
    );

    // The second query fails: the first one's new table is rolled back too.
    let bad = common::queries(&[
        ("totals", "SELECT 99 AS orders"),
        ("broken", "SELECT nope FROM staging.orders"),
    ]);
    let e = wh.run_analytics("b", &bad, as_of).await.unwrap_err();
    assert_eq!(e.error, ErrorName::InvalidInput);
    assert!(
        e.cause.contains("\"broken\"") && e.cause.contains("nope"),
        "{e}"
    );
    assert_eq!(
        rows(&wh, "SELECT CAST(orders AS TEXT) FROM analytics.totals").await,
        ["2"]
    );
    wh.export_table("totals", &out).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "orders,value\n2,11\n"
    );
}

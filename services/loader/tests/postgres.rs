//! The loader against a real PostgreSQL. `scripts/test` provides one (the machine's, or a throwaway
//! cluster it starts) in `SLUICE_TEST_POSTGRES_URL`; every test works in schemas of its own and drops them.

use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::sqlx::{self, Row as _};
use sluice_loader::{LoadRequest, Warehouse};
use sluice_proto::{ErrorName, RunId};
use sluice_spec::config::Dataset;

mod common;
use common::{ALL_TYPES, Validated, dataset, validate};

const NEEDS_PG: &str = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL";

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL").unwrap_or_else(|_| panic!("{NEEDS_PG}"))
}

/// Under CI the PostgreSQL tests must run, not be skipped: scripts/test sets the URL or fails.
#[test]
fn under_ci_postgres_is_configured() {
    if std::env::var_os("CI").is_some() {
        assert!(
            std::env::var("SLUICE_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()),
            "CI is set but SLUICE_TEST_POSTGRES_URL is not: the loader's tests would be skipped"
        );
    }
}

/// The tests that need the database, in a module of their own so that `scripts/test` can name them
/// (`--skip pg::`) when no PostgreSQL can be had outside CI.
mod pg {
    use super::*;

    /// A staging schema of the test's own, dropped at the end.
    struct Scratch {
        wh: Warehouse,
        schema: String,
    }

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    impl Scratch {
        async fn new() -> Scratch {
            let schema = format!(
                "t_loader_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let wh = Warehouse::connect(&pg_url(), &schema, &format!("{schema}_a"))
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(wh.connection().get_postgres_connection_pool())
            .await
            .unwrap();
            Scratch { wh, schema }
        }

        async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
            let pool = self.wh.connection().get_postgres_connection_pool();
            let sql = sql.replace("{s}", &self.schema);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                        .collect()
                })
                .collect()
        }

        async fn drop(self) {
            let pool = self.wh.connection().get_postgres_connection_pool();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                self.schema
            )))
            .execute(pool)
            .await
            .unwrap();
        }
    }

    fn request<'a>(
        ds: &'a Dataset,
        run: &'a RunId,
        key: &'a str,
        v: &'a Validated,
    ) -> LoadRequest<'a> {
        LoadRequest {
            ds,
            run_id: run,
            source_key: key,
            valid_csv: &v.csv,
            valid_arrow: Some(&v.arrow),
            before_commit: None,
        }
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn rows_land_typed_with_nulls_as_null_and_their_source_lines() {
        let s = Scratch::new().await;
        let ds = dataset(ALL_TYPES);
        let v = validate(
            &ds,
            "id,placed,shipped,price,paid,note\n\
             1,2024-03-01T10:00:00,2024-03-04,9.5,yes,plain\n\
             2,2024-03-02T11:30:00.25,NA,1e3,false,\"comma, \"\"quote\"\"\nand newline\"\n\
             x,not a row,,,,\n\
             3,,,,,\n",
        );
        let run = RunId::parse("run1").unwrap();
        let report =
            s.wh.load(request(&ds, &run, "landing/orders/a.csv", &v))
                .await
                .unwrap();
        assert_eq!(report.rows, 3);
        assert_eq!(report.replaced, 0);
        assert!(report.change.created);
        let rows = s
            .rows(
                "SELECT id::text, placed::text, shipped::text, price::text, paid::text, note, _run_id, _source_key, \
                 _line::text FROM {s}.orders ORDER BY id",
            )
            .await;
        let some = |x: &str| Some(x.to_string());
        assert_eq!(
            rows,
            vec![
                vec![
                    some("1"),
                    some("2024-03-01 10:00:00"),
                    some("2024-03-04"),
                    some("9.5"),
                    some("true"),
                    some("plain"),
                    some("run1"),
                    some("landing/orders/a.csv"),
                    some("2")
                ],
                vec![
                    some("2"),
                    some("2024-03-02 11:30:00.25"),
                    None,
                    some("1000"),
                    some("false"),
                    some("comma, \"quote\"\nand newline"),
                    some("run1"),
                    some("landing/orders/a.csv"),
                    some("3")
                ],
                vec![
                    some("3"),
                    None,
                    None,
                    None,
                    None,
                    None,
                    some("run1"),
                    some("landing/orders/a.csv"),
                    some("6")
                ],
            ]
        );
        // The column types come from the spec.
        let types = s
            .rows(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = '{s}' AND table_name = 'orders' ORDER BY ordinal_position",
            )
            .await;
        let types: Vec<String> = types
            .into_iter()
            .map(|r| format!("{} {}", r[0].clone().unwrap(), r[1].clone().unwrap()))
            .collect();
        assert_eq!(
            types,
            [
                "id bigint",
                "placed timestamp without time zone",
                "shipped date",
                "price double precision",
                "paid boolean",
                "note text",
                "_run_id text",
                "_source_key text",
                "_line bigint"
            ]
        );
        s.drop().await;
    }

    /// The check before the commit rolls a PostgreSQL load back too.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn a_failing_check_before_the_commit_rolls_the_load_back() {
        let s = Scratch::new().await;
        let ds = dataset(ALL_TYPES);
        let h = "id,placed,shipped,price,paid,note\n";
        let first = validate(&ds, &format!("{h}1,,,,,a\n"));
        let second = validate(&ds, &format!("{h}2,,,,,b\n"));
        let (r1, r2) = (RunId::parse("r1").unwrap(), RunId::parse("r2").unwrap());
        s.wh.load(request(&ds, &r1, "in/a.csv", &first))
            .await
            .unwrap();
        let mut req = request(&ds, &r2, "in/a.csv", &second);
        req.before_commit = Some(Box::new(|| {
            Box::pin(async {
                Err(sluice_proto::StageError::new(
                    ErrorName::Superseded,
                    "the object was replaced",
                ))
            })
        }));
        let e = s.wh.load(req).await.unwrap_err();
        assert_eq!(e.error, ErrorName::Superseded);
        let rows = s.rows("SELECT id::text, _run_id FROM {s}.orders").await;
        assert_eq!(rows, vec![vec![Some("1".into()), Some("r1".into())]]);
        s.drop().await;
    }

    /// A one-column dataset writes a null as `""` (an empty record would be a blank line): it still
    /// loads as NULL.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn a_null_in_a_one_column_dataset_loads_as_null() {
        let s = Scratch::new().await;
        let ds = dataset("[[dataset.columns]]\nname = \"qty\"\ntype = \"integer\"\n");
        let v = validate(&ds, "qty\n1\nNA\n3\n");
        let run = RunId::parse("r1").unwrap();
        let report = s.wh.load(request(&ds, &run, "in/q.csv", &v)).await.unwrap();
        assert_eq!(report.rows, 3);
        let rows = s
            .rows("SELECT coalesce(qty::text, 'NULL') FROM {s}.orders ORDER BY _line")
            .await;
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into())],
                vec![Some("NULL".into())],
                vec![Some("3".into())]
            ]
        );
        s.drop().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn a_files_rows_replace_its_earlier_rows_and_leave_other_files_alone() {
        let s = Scratch::new().await;
        let ds = dataset(ALL_TYPES);
        let header = "id,placed,shipped,price,paid,note\n";
        let first = validate(&ds, &format!("{header}1,,,,,a\n2,,,,,b\n3,,,,,c\n"));
        let other = validate(&ds, &format!("{header}10,,,,,other\n"));
        let second = validate(&ds, &format!("{header}4,,,,,d\n5,,,,,e\n"));
        let (r1, r2) = (RunId::parse("r1").unwrap(), RunId::parse("r2").unwrap());
        s.wh.load(request(&ds, &r1, "in/a.csv", &first))
            .await
            .unwrap();
        s.wh.load(request(&ds, &r1, "in/b.csv", &other))
            .await
            .unwrap();
        let report =
            s.wh.load(request(&ds, &r2, "in/a.csv", &second))
                .await
                .unwrap();
        assert_eq!((report.rows, report.replaced), (2, 3));
        assert!(!report.change.created && report.change.added.is_empty());
        let rows = s
            .rows("SELECT o.id::text, _run_id, _source_key FROM {s}.orders o ORDER BY o.id")
            .await;
        let got: Vec<String> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.clone().unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(got, ["4 r2 in/a.csv", "5 r2 in/a.csv", "10 r1 in/b.csv"]);
        s.drop().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn a_failed_load_leaves_the_previous_rows_untouched() {
        let s = Scratch::new().await;
        let ds = dataset(ALL_TYPES);
        let good = validate(&ds, "id,placed,shipped,price,paid,note\n1,,,,,a\n2,,,,,b\n");
        let run = RunId::parse("r1").unwrap();
        s.wh.load(request(&ds, &run, "in/a.csv", &good))
            .await
            .unwrap();
        // A second version whose rows PostgreSQL refuses part-way (a NUL byte cannot be in text).
        let dir = tempfile::tempdir().unwrap();
        let bad_csv = dir.path().join("valid.csv");
        let mut text = String::from("id,placed,shipped,price,paid,note\n");
        for i in 0..5000 {
            text.push_str(&format!("{},,,,,row {i}\n", 100 + i));
        }
        text.push_str("9999,,,,,nul \u{0} here\n");
        std::fs::write(&bad_csv, text).unwrap();
        let e =
            s.wh.load(LoadRequest {
                ds: &ds,
                run_id: &RunId::parse("r2").unwrap(),
                source_key: "in/a.csv",
                valid_csv: &bad_csv,
                valid_arrow: None,
                before_commit: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.error, ErrorName::InvalidInput, "{e}");
        assert!(
            e.cause.contains("in/a.csv") && e.cause.contains("orders"),
            "{e}"
        );
        let rows = s
            .rows("SELECT id::text, _run_id FROM {s}.orders ORDER BY id")
            .await;
        assert_eq!(
            rows,
            vec![
                vec![Some("1".to_string()), Some("r1".to_string())],
                vec![Some("2".to_string()), Some("r1".to_string())]
            ],
            "the failed load changed nothing"
        );
        s.drop().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn a_new_column_is_added_and_a_type_change_is_refused_naming_the_column() {
        let s = Scratch::new().await;
        let v1 = dataset(
            "[[dataset.columns]]\nname = \"id\"\ntype = \"integer\"\n[[dataset.columns]]\nname = \"qty\"\ntype = \"integer\"\n",
        );
        let run = RunId::parse("r1").unwrap();
        let f1 = validate(&v1, "id,qty\n1,5\n");
        s.wh.load(request(&v1, &run, "in/1.csv", &f1))
            .await
            .unwrap();

        let v2 = dataset(
            "[[dataset.columns]]\nname = \"id\"\ntype = \"integer\"\n[[dataset.columns]]\nname = \"qty\"\ntype = \"integer\"\n\
             [[dataset.columns]]\nname = \"shipped\"\ntype = \"date\"\n",
        );
        let f2 = validate(&v2, "id,qty,shipped\n2,6,2024-05-01\n");
        let report =
            s.wh.load(request(&v2, &run, "in/2.csv", &f2))
                .await
                .unwrap();
        assert_eq!(report.change.added, ["shipped"]);
        let rows = s
            .rows("SELECT id::text, shipped::text FROM {s}.orders ORDER BY id")
            .await;
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), None],
                vec![Some("2".into()), Some("2024-05-01".into())]
            ]
        );
        let recorded = s
            .rows("SELECT change FROM {s}.sluice_migrations ORDER BY id")
            .await;
        assert_eq!(recorded.len(), 3, "create, index, add column: {recorded:?}");
        assert!(recorded[2][0].as_deref().unwrap().contains("ADD COLUMN"));

        let v3 = dataset(
            "[[dataset.columns]]\nname = \"id\"\ntype = \"integer\"\n[[dataset.columns]]\nname = \"qty\"\ntype = \"float\"\n",
        );
        let f3 = validate(&v3, "id,qty\n3,1.5\n");
        let e =
            s.wh.load(request(&v3, &run, "in/3.csv", &f3))
                .await
                .unwrap_err();
        assert_eq!(e.error, ErrorName::InvalidInput);
        assert!(
            e.cause.contains("\"qty\"") && e.cause.contains("bigint") && e.cause.contains("float"),
            "{e}"
        );
        let count = s.rows("SELECT count(*)::text FROM {s}.orders").await;
        assert_eq!(count, vec![vec![Some("2".into())]]);
        s.drop().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn a_user_who_cannot_create_the_schema_gets_an_error_saying_what_to_grant() {
        let s = Scratch::new().await;
        let pool = s.wh.connection().get_postgres_connection_pool();
        let role = format!("{}_ro", s.schema);
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN")))
            .execute(pool)
            .await
            .unwrap();
        // The same server and database, as that role.
        let url = pg_url();
        let (scheme, rest) = url.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let as_role = format!("{scheme}://{role}@{host}");
        let ds = dataset(ALL_TYPES);
        let v = validate(&ds, "id,placed,shipped,price,paid,note\n1,,,,,a\n");
        let result = async {
            let wh = Warehouse::connect(&as_role, &format!("{}_denied", s.schema), "analytics")
                .await
                .unwrap();
            let run = RunId::parse("r1").unwrap();
            wh.load(request(&ds, &run, "in/a.csv", &v)).await
        }
        .await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
            .execute(pool)
            .await
            .unwrap();
        let e = result.unwrap_err();
        assert_eq!(e.error, ErrorName::InvalidInput, "{e}");
        assert!(
            e.cause.contains("permission denied") && e.cause.contains("grant"),
            "{e}"
        );
        s.drop().await;
    }

    /// Each query's result replaces its table in the analytics schema (created if needed), with
    /// `{as_of}` replaced; a failing query names itself and the database's message and rolls every
    /// table back; the export is PostgreSQL's CSV with a header.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test provides it in SLUICE_TEST_POSTGRES_URL"]
    async fn analytics_replace_their_tables_all_or_nothing_and_export_as_csv() {
        let s = Scratch::new().await;
        let analytics = format!("{}_a", s.schema);
        let ds = dataset(ALL_TYPES);
        let v = validate(
            &ds,
            "id,placed,shipped,price,paid,note\n1,2024-03-01T10:00:00,2024-03-04,9.5,yes,a\n2,2024-03-02T11:30:00,,1.5,no,\"b, c\"\n",
        );
        let run = RunId::parse("run1").unwrap();
        s.wh.load(request(&ds, &run, "landing/a.csv", &v))
            .await
            .unwrap();
        let as_of = chrono::NaiveDate::from_ymd_opt(2024, 3, 3).unwrap();
        let sql = |q: &str| q.replace("{s}", &s.schema);
        let good = common::queries(&[
            (
                "shipped_by",
                &sql(
                    "SELECT id, note, shipped, paid FROM {s}.orders WHERE shipped IS NULL OR shipped <= DATE '{as_of}' ORDER BY id",
                ),
            ),
            (
                "totals",
                &sql("SELECT count(*) AS orders, sum(price) AS value FROM {s}.orders"),
            ),
        ]);
        let tables = s.wh.run_analytics("b", &good, as_of).await.unwrap();
        assert_eq!(
            tables
                .iter()
                .map(|t| (t.name.as_str(), t.rows))
                .collect::<Vec<_>>(),
            [("shipped_by", 1), ("totals", 1)]
        );
        assert_eq!(tables[0].table, format!("\"{analytics}\".\"shipped_by\""));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.csv");
        assert_eq!(s.wh.export_table("shipped_by", &out).await.unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "id,note,shipped,paid\n2,\"b, c\",,f\n"
        );

        let bad = common::queries(&[
            ("totals", "SELECT 99 AS orders"),
            ("broken", &sql("SELECT nope FROM {s}.orders")),
        ]);
        let e = s.wh.run_analytics("b", &bad, as_of).await.unwrap_err();
        assert_eq!(e.error, ErrorName::InvalidInput);
        assert!(
            e.cause.contains("analytics query \"broken\" failed")
                && e.cause.contains("nope")
                && e.cause.contains("42703"),
            "{e}"
        );
        assert_eq!(
            s.rows(&format!("SELECT orders::text FROM {analytics}.totals"))
                .await,
            vec![vec![Some("2".to_string())]],
            "the failed run changed no table"
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {analytics} CASCADE"
        )))
        .execute(s.wh.connection().get_postgres_connection_pool())
        .await
        .unwrap();
        s.drop().await;
    }
}

#[tokio::test]
async fn a_wrong_url_or_a_database_that_is_down_is_an_error_naming_it() {
    let e = Warehouse::connect("mysql://db/x", "staging", "analytics")
        .await
        .err()
        .unwrap();
    assert_eq!(e.error, ErrorName::InvalidInput);
    assert!(
        e.cause.contains("mysql://db/x") && e.cause.contains("PostgreSQL"),
        "{e}"
    );
    // Nothing listens on port 1.
    let e = Warehouse::connect("postgres://me:secret@127.0.0.1:1/x", "staging", "analytics")
        .await
        .err()
        .unwrap();
    assert_eq!(e.error, ErrorName::Transient, "{e}");
    assert!(
        e.cause.contains("127.0.0.1:1") && !e.cause.contains("secret"),
        "{e}"
    );
}

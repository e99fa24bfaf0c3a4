//! The trading example (`examples/trading`) end to end through the `sluice` binary against a real
//! PostgreSQL: the four sample files complete the batch, their valid rows land in `staging.*`, the
//! analytics tables are exported as CSV, and the e-mail goes to the outbox. The exported answers are
//! checked against answers computed here, independently of the SQL under test: from the sample files
//! themselves, dropping the rows the example's spec rejects (by this file's own reading of that
//! spec), with the definitions of examples/trading/README.md.
//!
//! Then the batch's period: a second complete set on the same as_of date waits for the next period,
//! and a landing with the next as_of date starts the second run (checked against its own answers).

mod pg_util;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Datelike, Months, NaiveDate};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn example() -> PathBuf {
    repo().join("examples/trading")
}

/// The member datasets and their sample file under `examples/trading/incoming/`.
const FILES: [(&str, &str); 4] = [
    ("orders", "orders/orders.csv"),
    ("reviews", "reviews/reviews.csv"),
    ("shipments", "shipments/shipments.csv"),
    ("holidays", "holidays/holidays.csv"),
];

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

// ---------------------------------------------------------------------------------------------
// Which rows the validator keeps: the rules of examples/trading/sluice.toml, written out again.

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Float,
    Date,
    Str,
}

struct Col {
    name: &'static str,
    ty: Ty,
    required: bool,
    min: Option<f64>,
    max: Option<f64>,
    allowed: Option<&'static [&'static str]>,
}

fn col(name: &'static str, ty: Ty, required: bool) -> Col {
    Col {
        name,
        ty,
        required,
        min: None,
        max: None,
        allowed: None,
    }
}

impl Col {
    fn min(self, min: f64) -> Col {
        Col {
            min: Some(min),
            ..self
        }
    }
    fn max(self, max: f64) -> Col {
        Col {
            max: Some(max),
            ..self
        }
    }
    fn allowed(self, allowed: &'static [&'static str]) -> Col {
        Col {
            allowed: Some(allowed),
            ..self
        }
    }
}

const PRODUCTS: &[&str] = &[
    "Espresso Beans 1kg",
    "Paper Filters 100",
    "Ceramic Mug",
    "Pour-Over Kettle",
    "French Press",
    "Burr Grinder",
    "Milk Frother",
    "Tea Sampler",
    "Travel Tumbler",
    "Digital Scale",
    "Cold Brew Jar",
    "Gift Card",
];

/// A dataset's columns and its key column.
fn rules(dataset: &str) -> (Vec<Col>, &'static str) {
    use Ty::*;
    match dataset {
        "orders" => (
            vec![
                col("order_id", Int, true),
                col("order_date", Date, true),
                col("customer", Str, true),
                col("product", Str, true).allowed(PRODUCTS),
                col("quantity", Int, true).min(1.0),
                col("unit_price", Float, true).min(0.0),
            ],
            "order_id",
        ),
        "reviews" => (
            vec![
                col("review_id", Int, true),
                col("order_id", Int, true),
                col("review_date", Date, true),
                col("points", Int, true).min(1.0).max(5.0),
                col("comment", Str, false),
            ],
            "review_id",
        ),
        "shipments" => (
            vec![
                col("order_id", Int, true),
                col("carrier", Str, true).allowed(&["UPS", "FedEx", "USPS"]),
                col("shipped", Date, true),
                col("promised", Date, true),
                col("delivered", Date, false),
            ],
            "order_id",
        ),
        "holidays" => (
            vec![col("date", Date, true), col("name", Str, true)],
            "date",
        ),
        other => panic!("no dataset {other}"),
    }
}

/// A field's value if it passes its column's rules: `None` for an empty (null) field.
fn check_field(c: &Col, raw: &str) -> Result<Option<String>, ()> {
    let t = raw.trim();
    if t.is_empty() {
        return if c.required { Err(()) } else { Ok(None) };
    }
    if c.allowed.is_some_and(|a| !a.contains(&t)) {
        return Err(());
    }
    let in_bounds = |x: f64| c.min.is_none_or(|m| x >= m) && c.max.is_none_or(|m| x <= m);
    let value = match c.ty {
        Ty::Int => {
            let v: i64 = t.parse().map_err(|_| ())?;
            if !in_bounds(v as f64) {
                return Err(());
            }
            v.to_string()
        }
        Ty::Float => {
            let v: f64 = t.parse().map_err(|_| ())?;
            if !v.is_finite() || !in_bounds(v) {
                return Err(());
            }
            v.to_string()
        }
        Ty::Date => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map_err(|_| ())?
            .to_string(),
        Ty::Str => raw.to_string(),
    };
    Ok(Some(value))
}

/// A file's rows, and the valid ones by column name: every field passes, and the first valid row of a
/// key is kept (a later valid row with the same key is a duplicate).
struct Checked {
    total: usize,
    valid: Vec<HashMap<&'static str, Option<String>>>,
}

fn check_file(dataset: &str, path: &Path) -> Checked {
    let (columns, key) = rules(dataset);
    let (header, rows) = read_csv(path);
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h == c.name)
                .unwrap_or_else(|| panic!("{}: no column {}", path.display(), c.name))
        })
        .collect();
    let mut keys = HashSet::new();
    let mut valid = Vec::new();
    'rows: for row in &rows {
        let mut values = HashMap::new();
        for (c, &i) in columns.iter().zip(&at) {
            match check_field(c, &row[i]) {
                Ok(v) => values.insert(c.name, v),
                Err(()) => continue 'rows,
            };
        }
        if keys.insert(values[key].clone()) {
            valid.push(values);
        }
    }
    Checked {
        total: rows.len(),
        valid,
    }
}

// ---------------------------------------------------------------------------------------------
// The answers, by the definitions of examples/trading/README.md.

struct Order {
    id: i64,
    date: NaiveDate,
    product: String,
    quantity: i64,
}

struct Shipment {
    order_id: i64,
    promised: NaiveDate,
    delivered: Option<NaiveDate>,
}

struct Data {
    checked: BTreeMap<&'static str, Checked>,
    orders: Vec<Order>,
    /// (order_id, points)
    reviews: Vec<(i64, i64)>,
    shipments: Vec<Shipment>,
    holidays: BTreeMap<NaiveDate, String>,
}

fn read_data(files: &BTreeMap<&'static str, PathBuf>) -> Data {
    let checked: BTreeMap<&'static str, Checked> = files
        .iter()
        .map(|(ds, path)| (*ds, check_file(ds, path)))
        .collect();
    let text = |v: &HashMap<&str, Option<String>>, c: &str| v[c].clone().unwrap();
    let int = |v: &HashMap<&str, Option<String>>, c: &str| text(v, c).parse::<i64>().unwrap();
    let day = |v: &HashMap<&str, Option<String>>, c: &str| date(&text(v, c));
    Data {
        orders: checked["orders"]
            .valid
            .iter()
            .map(|v| Order {
                id: int(v, "order_id"),
                date: day(v, "order_date"),
                product: text(v, "product"),
                quantity: int(v, "quantity"),
            })
            .collect(),
        reviews: checked["reviews"]
            .valid
            .iter()
            .map(|v| (int(v, "order_id"), int(v, "points")))
            .collect(),
        shipments: checked["shipments"]
            .valid
            .iter()
            .map(|v| Shipment {
                order_id: int(v, "order_id"),
                promised: day(v, "promised"),
                delivered: v["delivered"].as_deref().map(date),
            })
            .collect(),
        holidays: checked["holidays"]
            .valid
            .iter()
            .map(|v| (day(v, "date"), text(v, "name")))
            .collect(),
        checked,
    }
}

/// One row of `late_shipments`: order_id, product, promised, delivered, status, days_late.
type LateRow = (i64, String, NaiveDate, Option<NaiveDate>, String, i64);

#[derive(Debug, PartialEq)]
struct Best {
    product: String,
    units: i64,
    top_day: NaiveDate,
    top_day_units: i64,
    /// The holiday's name when the top day is one.
    top_day_holiday: Option<String>,
    reviews: i64,
    review_points: i64,
    points: [i64; 5],
    delivered: i64,
    early: i64,
    late: i64,
    early_share: Option<f64>,
    late_share: Option<f64>,
}

struct Expected {
    holiday_orders_by_month: Vec<(NaiveDate, i64)>,
    late_shipments: BTreeSet<LateRow>,
    best_product: Best,
}

fn expected(d: &Data, as_of: NaiveDate) -> Expected {
    // The last year: the twelve calendar months before the month of as_of.
    let end = as_of.with_day(1).unwrap();
    let start = end - Months::new(12);
    let months: Vec<NaiveDate> = (0..12).map(|i| start + Months::new(i)).collect();
    let last_year: Vec<&Order> = d
        .orders
        .iter()
        .filter(|o| o.date >= start && o.date < end)
        .collect();

    let holiday_orders_by_month = months
        .iter()
        .map(|&m| {
            let n = last_year
                .iter()
                .filter(|o| o.date.with_day(1).unwrap() == m && d.holidays.contains_key(&o.date))
                .count();
            (m, n as i64)
        })
        .collect();

    let product_of: HashMap<i64, &str> = d
        .orders
        .iter()
        .map(|o| (o.id, o.product.as_str()))
        .collect();
    let late_shipments = d
        .shipments
        .iter()
        .filter_map(|s| {
            let product = product_of.get(&s.order_id)?.to_string();
            let (status, days) = match s.delivered {
                Some(dl) if dl > s.promised => ("late", (dl - s.promised).num_days()),
                None if s.promised < as_of => ("undelivered", (as_of - s.promised).num_days()),
                _ => return None,
            };
            Some((
                s.order_id,
                product,
                s.promised,
                s.delivered,
                status.to_string(),
                days,
            ))
        })
        .collect();

    // The best product: most units over the last year; a tie goes to the first name (byte order).
    let mut units: BTreeMap<&str, i64> = BTreeMap::new();
    for o in &last_year {
        *units.entry(&o.product).or_default() += o.quantity;
    }
    let (product, product_units) = units
        .iter()
        .fold(None::<(&str, i64)>, |best, (&p, &u)| match best {
            Some((_, bu)) if bu >= u => best,
            _ => Some((p, u)),
        })
        .expect("orders in the last year");
    let best_orders: Vec<&&Order> = last_year.iter().filter(|o| o.product == product).collect();
    let mut by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for o in &best_orders {
        *by_day.entry(o.date).or_default() += o.quantity;
    }
    // The most units; a tie goes to the earliest day (BTreeMap order, first maximum kept).
    let (top_day, top_day_units) = by_day
        .iter()
        .fold(None::<(NaiveDate, i64)>, |best, (&day, &u)| match best {
            Some((_, bu)) if bu >= u => best,
            _ => Some((day, u)),
        })
        .unwrap();
    let ids: HashSet<i64> = best_orders.iter().map(|o| o.id).collect();
    let mut points = [0i64; 5];
    let mut reviews = 0;
    let mut review_points = 0;
    for &(order, p) in &d.reviews {
        if ids.contains(&order) {
            reviews += 1;
            review_points += p;
            points[(p - 1) as usize] += 1;
        }
    }
    let (mut delivered, mut early, mut late) = (0i64, 0i64, 0i64);
    for s in d.shipments.iter().filter(|s| ids.contains(&s.order_id)) {
        if let Some(dl) = s.delivered {
            delivered += 1;
            early += i64::from(dl < s.promised);
            late += i64::from(dl > s.promised);
        }
    }
    let share = |n: i64| (delivered > 0).then(|| n as f64 / delivered as f64);
    Expected {
        holiday_orders_by_month,
        late_shipments,
        best_product: Best {
            product: product.to_string(),
            units: product_units,
            top_day,
            top_day_units,
            top_day_holiday: d.holidays.get(&top_day).cloned(),
            reviews,
            review_points,
            points,
            delivered,
            early,
            late,
            early_share: share(early),
            late_share: share(late),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The exported CSVs, read back and compared.

fn export_path(data: &Path, name: &str, as_of: &str) -> PathBuf {
    data.join(format!(
        "buckets/curated/trading/analytics/{name}/as_of={as_of}/{name}.csv"
    ))
}

fn opt_date(s: &str) -> Option<NaiveDate> {
    (!s.is_empty()).then(|| date(s))
}

fn int(s: &str) -> i64 {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// A share as exported: at most 4 decimals, and the exact fraction rounded to 4 decimals.
fn assert_share(what: &str, got: &str, want: Option<f64>) {
    match want {
        None => assert_eq!(got, "", "{what}: no delivered shipment, no share"),
        Some(want) => {
            let decimals = got.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 4, "{what}: {got} has more than 4 decimals");
            let x: f64 = got
                .parse()
                .unwrap_or_else(|e| panic!("{what}: {got:?}: {e}"));
            assert!(
                (x - want).abs() <= 0.00005 + 1e-12,
                "{what}: got {got}, want {want} rounded to 4 decimals"
            );
        }
    }
}

fn check_exports(data: &Path, as_of: &str, want: &Expected) {
    let (header, rows) = read_csv(&export_path(data, "holiday_orders_by_month", as_of));
    assert_eq!(header, ["month", "orders"]);
    let mut got: Vec<(NaiveDate, i64)> = rows.iter().map(|r| (date(&r[0]), int(&r[1]))).collect();
    got.sort();
    assert_eq!(
        got, want.holiday_orders_by_month,
        "holiday_orders_by_month as of {as_of}"
    );

    let (header, rows) = read_csv(&export_path(data, "late_shipments", as_of));
    assert_eq!(
        header,
        [
            "order_id",
            "product",
            "promised",
            "delivered",
            "status",
            "days_late"
        ]
    );
    let got: BTreeSet<LateRow> = rows
        .iter()
        .map(|r| {
            (
                int(&r[0]),
                r[1].clone(),
                date(&r[2]),
                opt_date(&r[3]),
                r[4].clone(),
                int(&r[5]),
            )
        })
        .collect();
    assert_eq!(
        got.len(),
        rows.len(),
        "late_shipments: a shipment listed twice"
    );
    let missing: Vec<&LateRow> = want.late_shipments.difference(&got).collect();
    let extra: Vec<&LateRow> = got.difference(&want.late_shipments).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "late_shipments as of {as_of}: missing {missing:?}, unexpected {extra:?}"
    );

    let (header, rows) = read_csv(&export_path(data, "best_product", as_of));
    assert_eq!(
        header,
        [
            "product",
            "units",
            "top_day",
            "top_day_units",
            "top_day_is_holiday",
            "top_day_holiday",
            "reviews",
            "review_points",
            "points_1",
            "points_2",
            "points_3",
            "points_4",
            "points_5",
            "delivered_shipments",
            "early_shipments",
            "late_shipments",
            "early_share",
            "late_share"
        ]
    );
    assert_eq!(rows.len(), 1, "best_product is one row");
    let r = &rows[0];
    let b = &want.best_product;
    let got = Best {
        product: r[0].clone(),
        units: int(&r[1]),
        top_day: date(&r[2]),
        top_day_units: int(&r[3]),
        top_day_holiday: (!r[5].is_empty()).then(|| r[5].clone()),
        reviews: int(&r[6]),
        review_points: int(&r[7]),
        points: [
            int(&r[8]),
            int(&r[9]),
            int(&r[10]),
            int(&r[11]),
            int(&r[12]),
        ],
        delivered: int(&r[13]),
        early: int(&r[14]),
        late: int(&r[15]),
        // The shares are compared below, as rounded decimals.
        early_share: b.early_share,
        late_share: b.late_share,
    };
    assert_eq!(&got, b, "best_product as of {as_of}");
    let holiday = if b.top_day_holiday.is_some() {
        "t"
    } else {
        "f"
    };
    assert_eq!(r[4], holiday, "top_day_is_holiday");
    assert_share("early_share", &r[16], b.early_share);
    assert_share("late_share", &r[17], b.late_share);
}

/// The tests that need the database, named `pg::` so that scripts/test can skip them without one.
mod pg {
    use super::*;

    fn psql(url: &str, sql: &str) -> String {
        pg_util::psql(url, sql).trim().to_string()
    }

    /// `url` with its database replaced by `database` (a query string is kept).
    fn with_database(url: &str, database: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (url, String::new()),
        };
        let authority_start = base.find("://").map_or(0, |i| i + 3);
        let authority_end = base[authority_start..]
            .find('/')
            .map_or(base.len(), |i| authority_start + i);
        format!("{}/{database}{query}", &base[..authority_end])
    }

    /// A database of the test's own, dropped at the end (also when the test fails).
    struct FreshDatabase {
        admin: String,
        name: String,
        url: String,
    }

    impl FreshDatabase {
        fn create(admin: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!("sluice_trading_{}_{nanos}", std::process::id());
            psql(admin, &format!("CREATE DATABASE {name}"));
            FreshDatabase {
                admin: admin.to_string(),
                url: with_database(admin, &name),
                name,
            }
        }
    }

    impl Drop for FreshDatabase {
        fn drop(&mut self) {
            pg_util::psql_quietly(
                &self.admin,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }

    struct Sluice {
        data: PathBuf,
        warehouse: String,
    }

    impl Sluice {
        fn cmd(&self, args: &[&str]) -> Output {
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .arg("--config")
                .arg(example().join("sluice.toml"))
                .arg("--data-dir")
                .arg(&self.data)
                .args(args)
                .env("SLUICE_WAREHOUSE_URL", &self.warehouse)
                .env("SLUICE_LOG", "warn")
                .env_remove("SLUICE_INJECT_FAULTS")
                .output()
                .unwrap()
        }

        /// `sluice run FILES... --as-of AS_OF [extra]`: the exit code and stdout (stderr shown on failure).
        fn run(&self, files: &BTreeMap<&str, PathBuf>, as_of: &str, extra: &[&str]) -> String {
            let mut args = vec!["run"];
            args.extend(files.values().map(|p| p.to_str().unwrap()));
            args.extend(["--as-of", as_of]);
            args.extend_from_slice(extra);
            let out = self.cmd(&args);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(
                out.status.code(),
                Some(0),
                "sluice {args:?}\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }

        /// The batch's record (`sluice batches list --json`).
        fn batch(&self) -> Value {
            let out = self.cmd(&["batches", "list", "--json"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 1, "one batch in the spec: {text}");
            serde_json::from_str(lines[0]).unwrap()
        }

        fn outbox(&self) -> Vec<String> {
            let mut mails: Vec<String> = std::fs::read_dir(self.data.join("outbox"))
                .map(|d| {
                    d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                        .collect()
                })
                .unwrap_or_default();
            mails.sort();
            mails
        }
    }

    #[test]
    #[ignore = "needs PostgreSQL: SLUICE_TEST_POSTGRES_URL (scripts/test provides it)"]
    fn the_trading_example_runs_end_to_end_and_its_analytics_match_independent_answers() {
        let admin = std::env::var("SLUICE_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .expect("SLUICE_TEST_POSTGRES_URL");
        let db = FreshDatabase::create(&admin);
        let tmp = tempfile::tempdir().unwrap();
        let s = Sluice {
            data: tmp.path().join("data"),
            warehouse: db.url.clone(),
        };
        let samples: BTreeMap<&str, PathBuf> = FILES
            .iter()
            .map(|(ds, f)| (*ds, example().join("incoming").join(f)))
            .collect();

        // --- The first complete set: the batch runs for 2026-12-01. ---
        let data = read_data(&samples);
        let want = expected(&data, date("2026-12-01"));
        // The sample exercises every case of the definitions.
        assert!(
            data.checked.values().all(|c| c.valid.len() < c.total),
            "every sample file has invalid rows"
        );
        let statuses: HashSet<&str> = want.late_shipments.iter().map(|r| r.4.as_str()).collect();
        assert_eq!(
            statuses.len(),
            2,
            "late and undelivered shipments: {statuses:?}"
        );
        assert!(
            data.shipments
                .iter()
                .any(|s| s.delivered.is_none() && s.promised >= date("2026-12-01")),
            "a shipment still in transit, not yet late"
        );
        let counts: HashSet<bool> = want
            .holiday_orders_by_month
            .iter()
            .map(|m| m.1 > 0)
            .collect();
        assert_eq!(counts.len(), 2, "months with and without holiday orders");

        let stdout = s.run(&samples, "2026-12-01", &["--json"]);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 5, "four landings and the batch run:\n{stdout}");
        assert!(
            lines[3].contains("batch trading is complete: running trading-2026-12-01"),
            "{stdout}"
        );
        let run: Value = serde_json::from_str(lines[4]).unwrap();
        assert_eq!(run["run_id"], "trading-2026-12-01");
        assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
        assert_eq!(run["as_of"], "2026-12-01");

        // Invalid rows are reported, valid rows loaded: the counts, and what staging holds.
        for m in run["members"].as_array().unwrap() {
            let ds = m["dataset"].as_str().unwrap();
            let checked = &data.checked[ds];
            let valid = checked.valid.len() as u64;
            assert_eq!(m["rows"]["total"], checked.total as u64, "{ds}");
            assert_eq!(m["rows"]["valid"], valid, "{ds}");
            assert_eq!(m["rows"]["invalid"], (checked.total as u64) - valid, "{ds}");
            assert_eq!(m["loaded_rows"], valid, "{ds}");
            assert_eq!(
                psql(&db.url, &format!("SELECT count(*) FROM staging.{ds}")),
                valid.to_string(),
                "staging.{ds}"
            );
            let invalid = s
                .data
                .join("buckets")
                .join(m["invalid"]["bucket"].as_str().unwrap());
            let invalid = invalid.join(m["invalid"]["key"].as_str().unwrap());
            assert_eq!(
                read_csv(&invalid).1.len() as u64,
                (checked.total as u64) - valid,
                "{ds}: {}",
                invalid.display()
            );
        }
        // Undelivered is NULL in the warehouse, not a made-up date.
        let undelivered = data
            .shipments
            .iter()
            .filter(|s| s.delivered.is_none())
            .count();
        assert_eq!(
            psql(
                &db.url,
                "SELECT count(*) FROM staging.shipments WHERE delivered IS NULL"
            ),
            undelivered.to_string()
        );

        check_exports(&s.data, "2026-12-01", &want);

        let mails = s.outbox();
        assert_eq!(mails.len(), 1, "one e-mail for the batch run");
        let mail = &mails[0];
        for needle in [
            "To: team@example.com",
            "Subject: [sluice] batch trading 2026-12-01",
            "X-Sluice-Run-Id: trading-2026-12-01",
        ] {
            assert!(mail.contains(needle), "{needle:?} in:\n{mail}");
        }

        // --- A second complete set (every file changed) on the same as_of: it waits. ---
        let copies = tmp.path().join("copies");
        let additions: BTreeMap<&str, &str> = [
            ("orders", "300001,2026-11-30,C0001,Gift Card,2,25.00"),
            ("reviews", "900001,100004,2026-11-30,2,Late again"),
            ("shipments", "300001,UPS,2026-11-30,2026-12-01,"),
            ("holidays", "2026-12-24,Christmas Eve"),
        ]
        .into_iter()
        .collect();
        let mut changed = BTreeMap::new();
        for (ds, f) in FILES {
            let path = copies.join("incoming").join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut text = std::fs::read_to_string(&samples[ds]).unwrap();
            text.push_str(additions[ds]);
            text.push('\n');
            std::fs::write(&path, text).unwrap();
            changed.insert(ds, path);
        }
        let stdout = s.run(&changed, "2026-12-01", &[]);
        assert!(
            stdout.contains(
                "the set is complete, but batch run trading-2026-12-01 holds period 2026-12-01 (at most daily): \
                 it runs in the next period"
            ),
            "{stdout}"
        );
        assert!(!stdout.contains("running trading-"), "{stdout}");
        let batch = s.batch();
        assert_eq!(batch["runs"].as_array().unwrap().len(), 1, "{batch:#}");
        assert_eq!(batch["latest"].as_object().unwrap().len(), 4, "{batch:#}");
        assert_eq!(s.outbox().len(), 1, "no second e-mail");
        check_exports(&s.data, "2026-12-01", &want);

        // --- The next as_of date: a landing starts the waiting set. ---
        let shipments = BTreeMap::from([("shipments", changed["shipments"].clone())]);
        let stdout = s.run(&shipments, "2026-12-02", &[]);
        assert!(
            stdout.contains("batch trading is complete: running trading-2026-12-02"),
            "{stdout}"
        );
        assert!(stdout.contains("SUCCEEDED"), "{stdout}");
        let batch = s.batch();
        let runs: Vec<(&str, &str)> = batch["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["run_id"].as_str().unwrap(), r["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            runs,
            [
                ("trading-2026-12-01", "SUCCEEDED"),
                ("trading-2026-12-02", "SUCCEEDED")
            ]
        );
        let list = String::from_utf8(s.cmd(&["batches", "list"]).stdout).unwrap();
        assert!(
            list.contains("trading-2026-12-01") && list.contains("trading-2026-12-02"),
            "{list}"
        );
        let want2 = expected(&read_data(&changed), date("2026-12-02"));
        assert!(
            want2
                .late_shipments
                .iter()
                .any(|r| r.0 == 300001 && r.5 == 1),
            "the added shipment, promised 2026-12-01, is undelivered by 2026-12-02"
        );
        check_exports(&s.data, "2026-12-02", &want2);
        // The first run's exports are where they were.
        check_exports(&s.data, "2026-12-01", &want);
        let mails = s.outbox();
        assert_eq!(mails.len(), 2);
        assert!(
            mails
                .iter()
                .any(|m| m.contains("X-Sluice-Run-Id: trading-2026-12-02")),
            "the second run's e-mail"
        );
        drop(db);
    }
}

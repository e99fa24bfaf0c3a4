//! The dataset spec (`sluice.toml`), parsed strictly.
//!
//! An unknown key, a wrong type, a bad regex or format, or a reference to a column that does not
//! exist is a [`ConfigError`] naming the file, the line and the key. What comes out ([`Config`],
//! [`Dataset`]) is resolved: columns are referenced by index, regexes are compiled, windows parsed.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use sluice_proto::DatasetName;

use crate::values::{ColumnType, check_format};

/// A spec error: `path:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Bucket names in AWS mode; folder names under the data directory embedded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buckets {
    #[serde(default = "default_landing")]
    pub landing: String,
    #[serde(default = "default_work")]
    pub work: String,
    #[serde(default = "default_curated")]
    pub curated: String,
}

fn default_landing() -> String {
    "sluice-landing".into()
}
fn default_work() -> String {
    "sluice-work".into()
}
fn default_curated() -> String {
    "sluice-curated".into()
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            landing: default_landing(),
            work: default_work(),
            curated: default_curated(),
        }
    }
}

/// Names of the AWS resources `sluice deploy` creates and the AWS-mode processes use (`[aws]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSettings {
    /// The Step Functions state machine running statemachine/pipeline.asl.json.
    pub state_machine: String,
    /// The one running statemachine/batch.asl.json (deployed when the spec has a `[[batch]]`).
    pub batch_state_machine: String,
    /// DynamoDB table of runs (partition key `run_id`).
    pub runs_table: String,
    /// DynamoDB table of valid rows (partition key `dataset`, sort key `row_key`).
    pub rows_table: String,
    /// Queue names: `{queue_prefix}{stage}` and `{queue_prefix}{stage}-dlq`, plus `{queue_prefix}events`.
    pub queue_prefix: String,
    /// The role Step Functions assumes (it needs sqs:SendMessage on the stage queues).
    pub role_arn: String,
    /// Deliveries before a message moves to its dead-letter queue.
    pub max_receive_count: u32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            state_machine: "sluice-pipeline".into(),
            batch_state_machine: "sluice-batch".into(),
            runs_table: "sluice-runs".into(),
            rows_table: "sluice-rows".into(),
            queue_prefix: "sluice-".into(),
            role_arn: "arn:aws:iam::000000000000:role/sluice-pipeline".into(),
            max_receive_count: 5,
        }
    }
}

/// A whole spec file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub buckets: Buckets,
    pub aws: AwsSettings,
    /// `[embedded] data_dir`, relative to the spec file; `None` means the caller's default.
    pub data_dir: Option<PathBuf>,
    /// `[warehouse]`: where the loader writes the datasets with `load = true`.
    pub warehouse: Warehouse,
    pub datasets: Vec<Dataset>,
    /// `[[batch]]`: datasets processed together once every one of them has landed.
    pub batches: Vec<Batch>,
    /// `[[schedule]]`: sweeps of a dataset's prefix on a cadence.
    pub schedules: Vec<Schedule>,
    /// `[[source]]`: HTTP APIs pulled on a cadence into the landing bucket.
    pub sources: Vec<Source>,
    /// `[gateway]`: the web UI and HTTP API (`sluice up`, `sluice gateway`).
    pub gateway: Gateway,
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The largest upload taken, in bytes (`max_upload_mb`, default 1024).
    pub max_upload_bytes: u64,
    /// `token = "env:NAME"`: the variable holding the bearer token every endpoint then asks for.
    pub token_env: Option<String>,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            max_upload_bytes: 1024 * 1024 * 1024,
            token_env: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    max_upload_mb: Option<u64>,
    token: Option<String>,
}

/// An HTTP API pulled on a cadence (`[[source]]`); what it answers lands as a file of `dataset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    /// `http://` or `https://`.
    pub url: String,
    pub cadence: crate::cadence::Cadence,
    pub dataset: DatasetName,
    pub format: SourceFormat,
    /// Request headers; a value `env:NAME` is read from the environment at call time.
    pub headers: Vec<(String, String)>,
    /// How long one request may take.
    pub timeout: std::time::Duration,
    /// The largest answer taken, in bytes.
    pub max_bytes: u64,
}

/// What a source answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// The dataset's own format (CSV or TSV), landed as it is.
    Csv,
    /// A JSON array of flat objects, written as CSV with the dataset's columns.
    Json,
}

/// A sweep on a cadence (`[[schedule]]`): every object under the dataset's prefix that has no run yet
/// gets one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub dataset: DatasetName,
    pub cadence: crate::cadence::Cadence,
}

impl Config {
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

impl Schedule {
    /// A name for the schedule (EventBridge Scheduler's, and in messages): `sweep-{dataset}`.
    pub fn name(&self) -> String {
        format!("sweep-{}", self.dataset.as_str())
    }
}

/// A batch (`[[batch]]`): its member datasets are validated and loaded together, then its analytics
/// queries run and their tables are exported.
#[derive(Debug, Clone)]
pub struct Batch {
    pub name: String,
    /// The member datasets, each with `load = true`, each in no other batch.
    pub datasets: Vec<DatasetName>,
    /// Members that take part in every run with their newest file but need no new file to start one
    /// (a table of holidays, say); every other member needs a new file for each run.
    pub reference: Vec<DatasetName>,
    pub at_most: AtMost,
    pub analytics: Vec<AnalyticsQuery>,
    /// `[batch.notify]`: `from`, `success`, `failure`.
    pub notify: Notify,
}

/// How often a complete set of members may start a batch run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtMost {
    /// Once per UTC day: a later complete set waits for the next day.
    Daily,
    /// Once per UTC hour.
    Hourly,
    /// Every complete set.
    Always,
}

impl AtMost {
    pub fn as_str(self) -> &'static str {
        match self {
            AtMost::Daily => "daily",
            AtMost::Hourly => "hourly",
            AtMost::Always => "always",
        }
    }
}

/// One `[[batch.analytics]]` query: its result replaces `{analytics}.{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsQuery {
    pub name: String,
    /// The SQL, with `{as_of}` still in it.
    pub sql: String,
}

impl AnalyticsQuery {
    /// The SQL with `{as_of}` replaced by the date (`YYYY-MM-DD`, bare: quote it in the SQL,
    /// `DATE '{as_of}'`).
    pub fn sql_for(&self, as_of: NaiveDate) -> String {
        self.sql
            .replace("{as_of}", &as_of.format("%Y-%m-%d").to_string())
    }
}

impl Batch {
    /// The batch a dataset belongs to, if any.
    pub fn has(&self, dataset: &str) -> bool {
        self.datasets.iter().any(|d| d == dataset)
    }
}

/// The loader's database (`[warehouse]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Warehouse {
    /// A database URL (`postgres://...`); `None` means the embedded default. `SLUICE_WAREHOUSE_URL`
    /// overrides it (read by the binary, not here: the spec is pure).
    pub url: Option<String>,
    /// One table per loaded dataset, columns typed from the spec.
    pub staging_schema: String,
    /// One table per analytics query.
    pub analytics_schema: String,
}

impl Default for Warehouse {
    fn default() -> Self {
        Warehouse {
            url: None,
            staging_schema: "staging".into(),
            analytics_schema: "analytics".into(),
        }
    }
}

impl Config {
    pub fn dataset(&self, name: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.name == name)
    }

    pub fn batch(&self, name: &str) -> Option<&Batch> {
        self.batches.iter().find(|b| b.name == name)
    }

    /// The batch a dataset is a member of (a dataset is in one batch at most).
    pub fn batch_of(&self, dataset: &str) -> Option<&Batch> {
        self.batches.iter().find(|b| b.has(dataset))
    }

    /// The datasets whose `match` accepts an object key.
    pub fn datasets_matching(&self, key: &str) -> Vec<&Dataset> {
        self.datasets.iter().filter(|d| d.matches(key)).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: DatasetName,
    pub prefix: String,
    pub suffix: String,
    pub delimiter: u8,
    pub header: bool,
    pub null_values: Vec<String>,
    pub columns: Vec<Column>,
    /// Indices into `columns`.
    pub key: Vec<usize>,
    pub store_rows: bool,
    /// `load = true`: the loader writes the valid rows into `{staging_schema}.{name}`.
    pub load: bool,
    pub filter: Option<Filter>,
    /// Indices into `columns` (integer or float).
    pub stats: Vec<usize>,
    pub partition: Option<Partition>,
    /// `[dataset.catalog]`: the data catalog table (AWS Glue, or a JSON file embedded) the partitioner
    /// registers its Parquet partitions in.
    pub catalog: Option<CatalogTable>,
    pub plots: Vec<Plot>,
    pub notify: Notify,
}

impl Dataset {
    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn is_null(&self, field: &str) -> bool {
        self.null_values.iter().any(|n| n == field)
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    /// Date/datetime formats tried in order (the type's defaults when the spec gives none).
    pub formats: Vec<String>,
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Not anchored: write `^...$` to match the whole value.
    pub pattern: Option<Regex>,
    pub allowed: Option<Vec<String>>,
}

/// The longest `last_days:N` window (about 2,700 years).
pub const MAX_LAST_DAYS: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    All,
    PreviousYear,
    CurrentYear,
    /// The N days ending on the as-of date.
    LastDays(u32),
    /// Whole days, both ends inclusive.
    Between(NaiveDate, NaiveDate),
}

impl Window {
    pub fn parse(s: &str) -> Result<Window, String> {
        let bad = || {
            format!(
                "{s:?} is not a window: use all, previous_year, current_year, last_days:N or \
                 between:YYYY-MM-DD..YYYY-MM-DD"
            )
        };
        match s {
            "all" => Ok(Window::All),
            "previous_year" => Ok(Window::PreviousYear),
            "current_year" => Ok(Window::CurrentYear),
            _ => {
                if let Some(n) = s.strip_prefix("last_days:") {
                    // The cap keeps every window inside the calendar chrono can represent.
                    match n.parse::<u32>() {
                        Ok(n) if (1..=MAX_LAST_DAYS).contains(&n) => Ok(Window::LastDays(n)),
                        _ => Err(format!(
                            "{s:?}: last_days needs a whole number of days from 1 to {MAX_LAST_DAYS}"
                        )),
                    }
                } else if let Some(range) = s.strip_prefix("between:") {
                    let (a, b) = range.split_once("..").ok_or_else(bad)?;
                    let date = |t: &str| {
                        NaiveDate::parse_from_str(t, "%Y-%m-%d")
                            .map_err(|_| format!("{s:?}: {t:?} is not a date (YYYY-MM-DD)"))
                    };
                    let (from, to) = (date(a)?, date(b)?);
                    if from > to {
                        return Err(format!("{s:?}: the window starts after it ends"));
                    }
                    Ok(Window::Between(from, to))
                } else {
                    Err(bad())
                }
            }
        }
    }

    /// The half-open range `[start, end)` of instants the window keeps for an as-of date;
    /// `None` for `all`.
    pub fn bounds(self, as_of: NaiveDate) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let day = |d: NaiveDate| d.and_time(NaiveTime::MIN);
        let year = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).expect("valid year");
        match self {
            Window::All => None,
            Window::PreviousYear => Some((day(year(as_of.year() - 1)), day(year(as_of.year())))),
            Window::CurrentYear => Some((day(year(as_of.year())), day(year(as_of.year() + 1)))),
            Window::LastDays(n) => {
                let end = as_of + Duration::days(1);
                Some((day(end - Duration::days(i64::from(n))), day(end)))
            }
            Window::Between(from, to) => Some((day(from), day(to + Duration::days(1)))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Filter {
    /// Index of a date or datetime column.
    pub column: usize,
    pub window: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Clone)]
pub struct Partition {
    /// Index of a date or datetime column.
    pub column: usize,
    pub granularity: Granularity,
    pub formats: Vec<PartitionFormat>,
}

impl Granularity {
    /// The Hive partition keys of this granularity, in path order: `year`, `month`, ... (what the
    /// partitioner's folders are named by, `stocks/year=2024/month=03/`).
    pub fn partition_keys(self) -> &'static [&'static str] {
        const KEYS: [&str; 5] = ["year", "month", "day", "hour", "minute"];
        let n = match self {
            Granularity::Year => 1,
            Granularity::Month => 2,
            Granularity::Day => 3,
            Granularity::Hour => 4,
            Granularity::Minute => 5,
        };
        &KEYS[..n]
    }
}

/// `[dataset.catalog]`: the table of a data catalog that the partitioner keeps up to date with the
/// dataset's Parquet partitions (the AWS Glue Data Catalog, so Athena can query them; embedded, a JSON
/// file under the data directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTable {
    /// The catalog database (created when missing).
    pub database: String,
    /// The table; the dataset's name unless `table` says otherwise.
    pub table: String,
}

/// Whether `name` can name a catalog database or table: 1 to 255 of lower-case letters, digits and `_`
/// (the AWS Glue Data Catalog keeps names in lower case, and Athena reads other characters only quoted).
pub fn catalog_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty: a catalog name needs 1 to 255 lower-case letters, digits and _");
    }
    if name.len() > 255 {
        return Err("is longer than 255 characters, the AWS Glue Data Catalog's limit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(
            "is not a catalog name: use lower-case letters, digits and _ (Glue keeps names in lower case, \
             and Athena reads other characters only quoted)",
        );
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Plot {
    /// Index of a date, datetime, integer or float column.
    pub x: usize,
    /// Indices of integer or float columns, one line each.
    pub y: Vec<usize>,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
}

#[derive(Debug, Clone, Default)]
pub struct Notify {
    pub from: Option<String>,
    pub invalid_rows: Vec<String>,
    pub success: Vec<String>,
    pub failure: Vec<String>,
}

// -------------------------------------------------------------------------------------------------
// The raw TOML shape. Spanned fields are the ones checked after deserialising, so their errors can
// name a line.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    buckets: Buckets,
    #[serde(default)]
    embedded: RawEmbedded,
    #[serde(default)]
    aws: AwsSettings,
    warehouse: Option<Spanned<Warehouse>>,
    #[serde(default)]
    dataset: Vec<Spanned<RawDataset>>,
    #[serde(default)]
    batch: Vec<Spanned<RawBatch>>,
    #[serde(default)]
    schedule: Vec<Spanned<RawSchedule>>,
    #[serde(default)]
    source: Vec<Spanned<RawSource>>,
    gateway: Option<Spanned<RawGateway>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    url: Spanned<String>,
    dataset: Spanned<String>,
    every: Option<Spanned<String>>,
    cron: Option<Spanned<String>>,
    #[serde(default)]
    format: Option<Spanned<String>>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    timeout_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    max_mb: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    dataset: Spanned<String>,
    every: Option<Spanned<String>>,
    cron: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    name: Spanned<String>,
    datasets: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    reference: Vec<Spanned<String>>,
    #[serde(default)]
    at_most: Option<Spanned<String>>,
    #[serde(default)]
    analytics: Vec<RawAnalytics>,
    #[serde(default)]
    notify: RawBatchNotify,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnalytics {
    name: Spanned<String>,
    sql: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBatchNotify {
    from: Option<Spanned<String>>,
    #[serde(default)]
    success: Vec<Spanned<String>>,
    #[serde(default)]
    failure: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEmbedded {
    data_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    name: Spanned<String>,
    #[serde(default, rename = "match")]
    match_: RawMatch,
    #[serde(default)]
    format: RawFormat,
    #[serde(default)]
    key: Option<Spanned<Vec<String>>>,
    #[serde(default = "yes")]
    store_rows: bool,
    #[serde(default)]
    load: bool,
    /// Spanned as a whole too, so an empty list is reported where it is written.
    #[serde(default)]
    columns: Option<Spanned<Vec<Spanned<RawColumn>>>>,
    filter: Option<Spanned<RawFilter>>,
    stats: Option<Spanned<RawStats>>,
    partition: Option<Spanned<RawPartition>>,
    catalog: Option<Spanned<RawCatalog>>,
    #[serde(default)]
    plot: Vec<Spanned<RawPlot>>,
    #[serde(default)]
    notify: RawNotify,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    suffix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    #[serde(default = "comma")]
    delimiter: Spanned<String>,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default = "default_nulls")]
    null_values: Vec<String>,
}

impl Default for RawFormat {
    fn default() -> Self {
        RawFormat {
            delimiter: comma(),
            header: true,
            null_values: default_nulls(),
        }
    }
}

fn comma() -> Spanned<String> {
    Spanned::new(0..0, ",".into())
}
fn default_nulls() -> Vec<String> {
    vec![String::new()]
}

/// A bound: TOML integers and floats both accepted.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum RawNumber {
    Int(i64),
    Float(f64),
}

impl RawNumber {
    fn as_f64(self) -> f64 {
        match self {
            RawNumber::Int(i) => i as f64,
            RawNumber::Float(f) => f,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: Spanned<String>,
    #[serde(rename = "type")]
    ty: ColumnType,
    formats: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    required: bool,
    min: Option<Spanned<RawNumber>>,
    max: Option<Spanned<RawNumber>>,
    pattern: Option<Spanned<String>>,
    allowed: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    column: Spanned<String>,
    #[serde(default = "window_all")]
    window: Spanned<String>,
}

fn window_all() -> Spanned<String> {
    Spanned::new(0..0, "all".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStats {
    columns: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    column: Spanned<String>,
    granularity: Granularity,
    /// Absent means both formats; spanned so a catalog's complaint about it names its line.
    formats: Option<Spanned<Vec<PartitionFormat>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    database: Spanned<String>,
    table: Option<Spanned<String>>,
}

fn both_formats() -> Vec<PartitionFormat> {
    vec![PartitionFormat::Csv, PartitionFormat::Parquet]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlot {
    x: Spanned<String>,
    y: Spanned<Vec<String>>,
    title: Option<String>,
    x_label: Option<String>,
    y_label: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    from: Option<Spanned<String>>,
    #[serde(default)]
    invalid_rows: Vec<Spanned<String>>,
    #[serde(default)]
    success: Vec<Spanned<String>>,
    #[serde(default)]
    failure: Vec<Spanned<String>>,
}

// -------------------------------------------------------------------------------------------------

impl Config {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the dataset spec: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Checks a spec given as text; `path` only names it in errors and anchors `data_dir`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let ctx = Ctx { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| ctx.toml_error(&e))?;
        let mut datasets = Vec::new();
        let mut names = HashSet::new();
        for ds in raw.dataset {
            let span = ds.span();
            let ds = ctx.dataset(ds.into_inner())?;
            if !names.insert(ds.name.clone()) {
                return Err(ctx.err(
                    span,
                    "name",
                    format!("a dataset named {:?} is defined twice", ds.name),
                ));
            }
            datasets.push(ds);
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let warehouse = match raw.warehouse {
            None => Warehouse::default(),
            Some(w) => {
                let span = w.span();
                let w = w.into_inner();
                for (key, name) in [
                    ("staging_schema", &w.staging_schema),
                    ("analytics_schema", &w.analytics_schema),
                ] {
                    if let Err(why) = sql_identifier(name) {
                        return Err(ctx.err(span.clone(), key, format!("{name:?} {why}")));
                    }
                }
                if w.staging_schema == w.analytics_schema {
                    return Err(ctx.err(
                        span,
                        "analytics_schema",
                        "the staging and analytics schemas must differ: each batch run replaces the analytics tables",
                    ));
                }
                w
            }
        };
        let gateway = match raw.gateway {
            None => Gateway::default(),
            Some(g) => {
                let span = g.span();
                let g = g.into_inner();
                let mut gateway = Gateway::default();
                if let Some(mb) = g.max_upload_mb {
                    if mb == 0 || mb > 5 * 1024 * 1024 {
                        return Err(ctx.err(
                            span,
                            "max_upload_mb",
                            format!("{mb} is not a usable upload limit: give megabytes from 1 to 5242880 (5 TiB, S3's largest object)"),
                        ));
                    }
                    gateway.max_upload_bytes = mb * 1024 * 1024;
                }
                if let Some(token) = g.token {
                    match token.strip_prefix("env:") {
                        Some(var) if !var.is_empty() && !var.contains(['=', '\0']) => {
                            gateway.token_env = Some(var.to_string());
                        }
                        _ => {
                            return Err(ctx.err(
                                span,
                                "token",
                                "write token = \"env:NAME\": the token is read from the environment variable NAME, never from the spec file",
                            ));
                        }
                    }
                }
                gateway
            }
        };
        let mut batches: Vec<Batch> = Vec::new();
        for b in raw.batch {
            let span = b.span();
            let b = ctx.batch(b.into_inner(), &datasets, &batches)?;
            if batches.iter().any(|o| o.name == b.name) {
                return Err(ctx.err(
                    span,
                    "name",
                    format!("a batch named {:?} is defined twice", b.name),
                ));
            }
            batches.push(b);
        }
        let mut schedules: Vec<Schedule> = Vec::new();
        for sch in raw.schedule {
            let span = sch.span();
            let sch = sch.into_inner();
            let name = sch.dataset.get_ref();
            let Some(ds) = datasets.iter().find(|d| d.name == name.as_str()) else {
                let known: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
                return Err(ctx.err(
                    sch.dataset.span(),
                    "dataset",
                    format!(
                        "there is no dataset {name:?} to sweep (datasets: {})",
                        known.join(", ")
                    ),
                ));
            };
            let cadence = ctx.cadence(
                &sch.every,
                &sch.cron,
                span,
                &format!("the schedule of {name:?}"),
                "1h",
                "0 * * * *",
            )?;
            if schedules.iter().any(|o| o.dataset == ds.name) {
                return Err(ctx.err(
                    sch.dataset.span(),
                    "dataset",
                    format!("dataset {name:?} has two schedules"),
                ));
            }
            schedules.push(Schedule {
                dataset: ds.name.clone(),
                cadence,
            });
        }
        let mut sources: Vec<Source> = Vec::new();
        for src in raw.source {
            let span = src.span();
            let src = src.into_inner();
            let name = src.name.get_ref().clone();
            if name.is_empty()
                || name.len() > 40
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ctx.err(
                    src.name.span(),
                    "name",
                    format!(
                        "{name:?} is not a source name: use 1 to 40 letters, digits, '-' and '_'"
                    ),
                ));
            }
            if sources.iter().any(|o| o.name == name) {
                return Err(ctx.err(
                    src.name.span(),
                    "name",
                    format!("a source named {name:?} is defined twice"),
                ));
            }
            let url = src.url.get_ref().trim().to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                return Err(ctx.err(
                    src.url.span(),
                    "url",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            let dsname = src.dataset.get_ref();
            let Some(ds) = datasets.iter().find(|d| d.name == dsname.as_str()) else {
                let known: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
                return Err(ctx.err(
                    src.dataset.span(),
                    "dataset",
                    format!(
                        "source {name:?}: there is no dataset {dsname:?} (datasets: {})",
                        known.join(", ")
                    ),
                ));
            };
            let cadence = ctx.cadence(
                &src.every,
                &src.cron,
                span.clone(),
                &format!("source {name:?}"),
                "7m",
                "*/7 * * * *",
            )?;
            let format = match src
                .format
                .as_ref()
                .map(|f| (f.get_ref().as_str(), f.span()))
            {
                None | Some(("csv", _)) => SourceFormat::Csv,
                Some(("json", _)) => SourceFormat::Json,
                Some((other, span)) => {
                    return Err(ctx.err(
                        span,
                        "format",
                        format!("{other:?} is not a source format: use \"csv\" or \"json\""),
                    ));
                }
            };
            for (header, value) in &src.headers {
                if let Some(var) = value.strip_prefix("env:")
                    && var.is_empty()
                {
                    return Err(ctx.err(
                        span.clone(),
                        "headers",
                        format!("header {header:?}: env: names no variable"),
                    ));
                }
            }
            let timeout = src.timeout_seconds.as_ref().map_or(30, |t| *t.get_ref());
            let max_mb = src.max_mb.as_ref().map_or(100, |m| *m.get_ref());
            for (key, value) in [("timeout_seconds", timeout), ("max_mb", max_mb)] {
                if value == 0 {
                    return Err(ctx.err(
                        span.clone(),
                        key,
                        format!("source {name:?}: {key} must be at least 1"),
                    ));
                }
            }
            sources.push(Source {
                name,
                url,
                cadence,
                dataset: ds.name.clone(),
                format,
                headers: src.headers.into_iter().collect(),
                timeout: std::time::Duration::from_secs(timeout),
                max_bytes: max_mb.saturating_mul(1 << 20),
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            buckets: raw.buckets,
            aws: raw.aws,
            data_dir: raw.embedded.data_dir.map(|d| base.join(d)),
            warehouse,
            datasets,
            batches,
            schedules,
            sources,
            gateway,
        })
    }
}

/// Whether `name` can be a schema name without quoting surprises: letters, digits and `_`, not starting
/// with a digit, at most 63 bytes (PostgreSQL's limit). Lower case, so it reads the same quoted or not.
pub fn sql_identifier(name: &str) -> Result<(), &'static str> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(
            "is not a plain SQL name: use lower-case letters, digits and _, starting with a letter or _",
        );
    }
    if name.len() > 63 {
        return Err("is longer than 63 bytes, PostgreSQL's limit for a name");
    }
    if name.starts_with("pg_") {
        return Err("starts with pg_, which PostgreSQL keeps for its own schemas");
    }
    Ok(())
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position(span.start);
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = self.position(span.start);
        // The key is what stands before `=` on the offending line, when there is one.
        let line_text = self.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let key = line_text
            .split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .unwrap_or_default();
        let message = e.message().trim().to_string();
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    }

    fn column_ref(
        &self,
        ds: &RawDataset,
        columns: &[Column],
        name: &Spanned<String>,
        key: &str,
    ) -> Result<usize, ConfigError> {
        columns
            .iter()
            .position(|c| c.name == *name.get_ref())
            .ok_or_else(|| {
                let known: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                self.err(
                    name.span(),
                    key,
                    format!(
                        "dataset {:?} has no column {:?} (its columns: {})",
                        ds.name.get_ref(),
                        name.get_ref(),
                        known.join(", ")
                    ),
                )
            })
    }

    fn dataset(&self, ds: RawDataset) -> Result<Dataset, ConfigError> {
        let name = self.dataset_name(&ds)?;
        let delimiter = self.delimiter(&ds.format)?;
        let mut columns: Vec<Column> = Vec::new();
        let raw_columns = ds
            .columns
            .as_ref()
            .map_or(&[][..], |c| c.get_ref().as_slice());
        for col in raw_columns {
            let column = self.column(col)?;
            if columns.iter().any(|o| o.name == column.name) {
                return Err(self.err(
                    col.get_ref().name.span(),
                    "name",
                    format!("column {:?} is declared twice", column.name),
                ));
            }
            columns.push(column);
        }
        if columns.is_empty() {
            // At `columns = []` when it is written; at the dataset's name when `columns` is absent.
            let span = ds
                .columns
                .as_ref()
                .map_or_else(|| ds.name.span(), |c| c.span());
            return Err(self.err(
                span,
                "columns",
                format!("dataset {name:?} declares no columns: add [[dataset.columns]] tables"),
            ));
        }
        let partition = self.partition(&ds, &columns)?;
        let catalog = self.catalog(&ds, &name, &columns, partition.as_ref())?;
        Ok(Dataset {
            key: self.key(&ds, &columns)?,
            filter: self.filter(&ds, &columns)?,
            stats: self.stats(&ds, &columns)?,
            partition,
            catalog,
            plots: self.plots(&ds, &columns, &name)?,
            notify: self.notify(&ds.notify)?,
            prefix: ds.match_.prefix.clone(),
            suffix: ds.match_.suffix.clone(),
            delimiter,
            header: ds.format.header,
            null_values: ds.format.null_values.clone(),
            store_rows: ds.store_rows,
            load: ds.load,
            columns,
            name: DatasetName::new(name),
        })
    }

    /// `every` or `cron`, exactly one of them.
    fn cadence(
        &self,
        every: &Option<Spanned<String>>,
        cron: &Option<Spanned<String>>,
        span: Range<usize>,
        what: &str,
        every_example: &str,
        cron_example: &str,
    ) -> Result<crate::cadence::Cadence, ConfigError> {
        match (every, cron) {
            (Some(e), None) => crate::cadence::Cadence::every(e.get_ref())
                .map_err(|m| self.err(e.span(), "every", m)),
            (None, Some(c)) => crate::cadence::Cron::parse(c.get_ref())
                .map(crate::cadence::Cadence::Cron)
                .map_err(|m| self.err(c.span(), "cron", m)),
            _ => Err(self.err(
                span,
                "every",
                format!(
                    "{what} needs every = \"{every_example}\" or cron = \"{cron_example}\" (one of them, not both)"
                ),
            )),
        }
    }

    fn batch(
        &self,
        raw: RawBatch,
        datasets: &[Dataset],
        earlier: &[Batch],
    ) -> Result<Batch, ConfigError> {
        let name = raw.name.get_ref().clone();
        // The name starts each run id (`{name}-{period}`, at most 80 characters) and export key.
        if name.is_empty()
            || name.len() > 40
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.err(
                raw.name.span(),
                "name",
                format!("{name:?} is not a batch name: use 1 to 40 letters, digits, '-' and '_'"),
            ));
        }
        let mut members: Vec<DatasetName> = Vec::new();
        if raw.datasets.get_ref().is_empty() {
            return Err(self.err(
                raw.datasets.span(),
                "datasets",
                format!("batch {name:?} names no datasets"),
            ));
        }
        for d in raw.datasets.get_ref() {
            let member = d.get_ref();
            let Some(ds) = datasets.iter().find(|x| x.name == member.as_str()) else {
                let known: Vec<&str> = datasets.iter().map(|x| x.name.as_str()).collect();
                return Err(self.err(
                    d.span(),
                    "datasets",
                    format!(
                        "batch {name:?}: there is no dataset {member:?} (datasets: {})",
                        known.join(", ")
                    ),
                ));
            };
            if members.iter().any(|m| m == member.as_str()) {
                return Err(self.err(
                    d.span(),
                    "datasets",
                    format!("batch {name:?} names dataset {member:?} twice"),
                ));
            }
            if !ds.load {
                return Err(self.err(
                    d.span(),
                    "datasets",
                    format!(
                        "dataset {member:?} is in batch {name:?}, so it needs load = true: the batch loads \
                         every member into the warehouse before its analytics run"
                    ),
                ));
            }
            if let Some(other) = earlier.iter().find(|b| b.has(member)) {
                return Err(self.err(
                    d.span(),
                    "datasets",
                    format!(
                        "dataset {member:?} is already in batch {:?}: a dataset belongs to one batch at most",
                        other.name
                    ),
                ));
            }
            members.push(ds.name.clone());
        }
        let mut reference = Vec::new();
        for r in &raw.reference {
            let Some(m) = members.iter().find(|m| m.as_str() == r.get_ref()) else {
                return Err(self.err(
                    r.span(),
                    "reference",
                    format!(
                        "batch {name:?}: reference {:?} is not one of its datasets (list it in datasets too)",
                        r.get_ref()
                    ),
                ));
            };
            reference.push(m.clone());
        }
        if reference.len() == members.len() {
            return Err(self.err(
                raw.datasets.span(),
                "reference",
                format!("batch {name:?}: every member is a reference table, so no new file would ever start a run"),
            ));
        }
        let at_most = match raw
            .at_most
            .as_ref()
            .map(|a| (a.get_ref().as_str(), a.span()))
        {
            None | Some(("daily", _)) => AtMost::Daily,
            Some(("hourly", _)) => AtMost::Hourly,
            Some(("always", _)) => AtMost::Always,
            Some((other, span)) => {
                return Err(self.err(
                    span,
                    "at_most",
                    format!("{other:?} is not a cadence: use \"daily\", \"hourly\" or \"always\""),
                ));
            }
        };
        let mut analytics: Vec<AnalyticsQuery> = Vec::new();
        for q in raw.analytics {
            let qname = q.name.get_ref().clone();
            if let Err(why) = sql_identifier(&qname) {
                return Err(self.err(
                    q.name.span(),
                    "name",
                    format!("analytics {qname:?} {why} (it names the table analytics.{qname})"),
                ));
            }
            if let Some(other) = earlier
                .iter()
                .find(|b| b.analytics.iter().any(|a| a.name == qname))
            {
                return Err(self.err(
                    q.name.span(),
                    "name",
                    format!(
                        "analytics {qname:?} is also a query of batch {:?}: both would replace analytics.{qname}",
                        other.name
                    ),
                ));
            }
            if analytics.iter().any(|a| a.name == qname) {
                return Err(self.err(
                    q.name.span(),
                    "name",
                    format!("batch {name:?} has two analytics named {qname:?}"),
                ));
            }
            let sql = q
                .sql
                .get_ref()
                .trim()
                .trim_end_matches(';')
                .trim()
                .to_string();
            if sql.is_empty() {
                return Err(self.err(
                    q.sql.span(),
                    "sql",
                    format!("analytics {qname:?} has no SQL"),
                ));
            }
            analytics.push(AnalyticsQuery { name: qname, sql });
        }
        let notify = self.notify(&RawNotify {
            from: raw.notify.from,
            invalid_rows: Vec::new(),
            success: raw.notify.success,
            failure: raw.notify.failure,
        })?;
        Ok(Batch {
            name,
            datasets: members,
            reference,
            at_most,
            analytics,
            notify,
        })
    }

    fn dataset_name(&self, ds: &RawDataset) -> Result<String, ConfigError> {
        let name = ds.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.err(
                ds.name.span(),
                "name",
                format!("{name:?} is not a dataset name: use letters, digits, '-' and '_'"),
            ));
        }
        Ok(name)
    }

    fn delimiter(&self, format: &RawFormat) -> Result<u8, ConfigError> {
        Ok(match format.delimiter.get_ref().as_str() {
            "\\t" | "\t" | "tab" => b'\t',
            d if d.len() == 1 && d.is_ascii() && d != "\"" && d != "\n" && d != "\r" => {
                d.as_bytes()[0]
            }
            d => {
                return Err(self.err(
                    format.delimiter.span(),
                    "delimiter",
                    format!("{d:?} is not a delimiter: use one ASCII character such as \",\", \";\", \"|\" or \"\\t\""),
                ));
            }
        })
    }

    /// One `[[dataset.columns]]` table, checked on its own (the caller checks names across columns).
    fn column(&self, col: &Spanned<RawColumn>) -> Result<Column, ConfigError> {
        let col_span = col.span();
        let c = col.get_ref();
        let cname = c.name.get_ref().clone();
        if cname.trim().is_empty() {
            return Err(self.err(c.name.span(), "name", "a column name cannot be empty"));
        }
        let formats = match &c.formats {
            None => {
                c.ty.default_formats()
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }
            Some(f) if !c.ty.is_temporal() => {
                return Err(self.err(
                    f.span(),
                    "formats",
                    format!(
                        "column {cname:?} is a {}; formats apply to date and datetime columns",
                        c.ty
                    ),
                ));
            }
            Some(f) if f.get_ref().is_empty() => {
                return Err(self.err(
                    f.span(),
                    "formats",
                    "give at least one format, or leave `formats` out",
                ));
            }
            Some(f) => {
                for fmt in f.get_ref() {
                    check_format(c.ty, fmt).map_err(|m| {
                        self.err(f.span(), "formats", format!("column {cname:?}: {m}"))
                    })?;
                }
                f.get_ref().clone()
            }
        };
        let bound =
            |b: &Option<Spanned<RawNumber>>, key: &str| -> Result<Option<f64>, ConfigError> {
                match b {
                    None => Ok(None),
                    Some(b) if !c.ty.is_numeric() => Err(self.err(
                        b.span(),
                        key,
                        format!(
                            "column {cname:?} is a {}; {key} applies to integer and float columns",
                            c.ty
                        ),
                    )),
                    Some(b) => Ok(Some(b.get_ref().as_f64())),
                }
            };
        let (min, max) = (bound(&c.min, "min")?, bound(&c.max, "max")?);
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            return Err(self.err(
                col_span,
                "min",
                format!("column {cname:?}: min {lo} is above max {hi}"),
            ));
        }
        let pattern = match &c.pattern {
            None => None,
            Some(p) if c.ty != ColumnType::String => {
                return Err(self.err(
                    p.span(),
                    "pattern",
                    format!(
                        "column {cname:?} is a {}; pattern applies to string columns",
                        c.ty
                    ),
                ));
            }
            Some(p) => Some(Regex::new(p.get_ref()).map_err(|e| {
                self.err(
                    p.span(),
                    "pattern",
                    format!("column {cname:?}: not a valid regular expression: {e}"),
                )
            })?),
        };
        let allowed = match &c.allowed {
            Some(a) if a.get_ref().is_empty() => {
                return Err(self.err(
                    a.span(),
                    "allowed",
                    "an empty `allowed` list would reject every row",
                ));
            }
            Some(a) => Some(a.get_ref().clone()),
            None => None,
        };
        Ok(Column {
            name: cname,
            ty: c.ty,
            formats,
            required: c.required,
            min,
            max,
            pattern,
            allowed,
        })
    }

    fn key(&self, ds: &RawDataset, columns: &[Column]) -> Result<Vec<usize>, ConfigError> {
        let mut key = Vec::new();
        if let Some(k) = &ds.key {
            for kname in k.get_ref() {
                let named = Spanned::new(k.span(), kname.clone());
                let i = self.column_ref(ds, columns, &named, "key")?;
                if key.contains(&i) {
                    return Err(self.err(
                        k.span(),
                        "key",
                        format!("column {kname:?} is named twice in the key"),
                    ));
                }
                key.push(i);
            }
        }
        Ok(key)
    }

    fn filter(&self, ds: &RawDataset, columns: &[Column]) -> Result<Option<Filter>, ConfigError> {
        Ok(match &ds.filter {
            None => None,
            Some(f) => {
                let f = f.get_ref();
                let column = self.column_ref(ds, columns, &f.column, "column")?;
                if !columns[column].ty.is_temporal() {
                    return Err(self.err(
                        f.column.span(),
                        "column",
                        format!(
                            "the filter column {:?} must be a date or datetime column",
                            columns[column].name
                        ),
                    ));
                }
                let window = Window::parse(f.window.get_ref())
                    .map_err(|m| self.err(f.window.span(), "window", m))?;
                Some(Filter { column, window })
            }
        })
    }

    fn stats(&self, ds: &RawDataset, columns: &[Column]) -> Result<Vec<usize>, ConfigError> {
        let mut stats = Vec::new();
        if let Some(s) = &ds.stats {
            let cols = &s.get_ref().columns;
            for cname in cols.get_ref() {
                let i = self.column_ref(
                    ds,
                    columns,
                    &Spanned::new(cols.span(), cname.clone()),
                    "columns",
                )?;
                if !columns[i].ty.is_numeric() {
                    return Err(self.err(
                        cols.span(),
                        "columns",
                        format!(
                            "stats column {cname:?} is a {}; stats need integer or float columns",
                            columns[i].ty
                        ),
                    ));
                }
                if !stats.contains(&i) {
                    stats.push(i);
                }
            }
        }
        Ok(stats)
    }

    fn partition(
        &self,
        ds: &RawDataset,
        columns: &[Column],
    ) -> Result<Option<Partition>, ConfigError> {
        Ok(match &ds.partition {
            None => None,
            Some(p) => {
                let p = p.get_ref();
                let column = self.column_ref(ds, columns, &p.column, "column")?;
                let ty = columns[column].ty;
                if !ty.is_temporal() {
                    return Err(self.err(
                        p.column.span(),
                        "column",
                        format!(
                            "the partition column {:?} must be a date or datetime column",
                            columns[column].name
                        ),
                    ));
                }
                if ty == ColumnType::Date && p.granularity > Granularity::Day {
                    return Err(self.err(
                        p.column.span(),
                        "granularity",
                        format!(
                            "{:?} is a date column; hour and minute partitions need a datetime column",
                            columns[column].name
                        ),
                    ));
                }
                let mut formats = p
                    .formats
                    .as_ref()
                    .map_or_else(both_formats, |f| f.get_ref().clone());
                formats.dedup();
                Some(Partition {
                    column,
                    granularity: p.granularity,
                    formats,
                })
            }
        })
    }

    /// `[dataset.catalog]`: valid names, and a dataset whose partitions a Parquet table can read.
    fn catalog(
        &self,
        ds: &RawDataset,
        name: &str,
        columns: &[Column],
        partition: Option<&Partition>,
    ) -> Result<Option<CatalogTable>, ConfigError> {
        let Some(raw) = &ds.catalog else {
            return Ok(None);
        };
        let raw = raw.get_ref();
        let database = raw.database.get_ref().clone();
        if let Err(why) = catalog_name(&database) {
            return Err(self.err(
                raw.database.span(),
                "database",
                format!("dataset {name:?}: catalog database {database:?} {why}"),
            ));
        }
        let table = match &raw.table {
            Some(t) => {
                let table = t.get_ref().clone();
                if let Err(why) = catalog_name(&table) {
                    return Err(self.err(
                        t.span(),
                        "table",
                        format!("dataset {name:?}: catalog table {table:?} {why}"),
                    ));
                }
                table
            }
            None => {
                if let Err(why) = catalog_name(name) {
                    return Err(self.err(
                        raw.database.span(),
                        "table",
                        format!(
                            "dataset {name:?}: the catalog table is named after the dataset, and {name:?} {why}: \
                             set table = \"{}\" in [dataset.catalog]",
                            name.to_ascii_lowercase().replace('-', "_")
                        ),
                    ));
                }
                name.to_string()
            }
        };
        // The table is the Parquet partitions: there must be some, and nothing else in their folders.
        let Some(partition) = partition else {
            return Err(self.err(
                raw.database.span(),
                "catalog",
                format!(
                    "dataset {name:?} has [dataset.catalog] but no [dataset.partition]: the catalog table is \
                     the Parquet partitions the partitioner writes; add [dataset.partition] with \
                     formats = [\"parquet\"]"
                ),
            ));
        };
        let formats_span = ds
            .partition
            .as_ref()
            .and_then(|p| p.get_ref().formats.as_ref().map(|f| f.span()))
            .unwrap_or_else(|| raw.database.span());
        if !partition.formats.contains(&PartitionFormat::Parquet) {
            return Err(self.err(
                formats_span,
                "formats",
                format!(
                    "dataset {name:?} has [dataset.catalog] but writes no Parquet partitions: the catalog \
                     table reads Parquet; set formats = [\"parquet\"] in [dataset.partition]"
                ),
            ));
        }
        if partition.formats.contains(&PartitionFormat::Csv) {
            let written = if ds
                .partition
                .as_ref()
                .is_some_and(|p| p.get_ref().formats.is_some())
            {
                "formats = [\"csv\", \"parquet\"]"
            } else {
                "the default formats (csv and parquet)"
            };
            return Err(self.err(
                formats_span,
                "formats",
                format!(
                    "dataset {name:?} has [dataset.catalog], and {written} puts CSV files in the same \
                     partition folders as the Parquet ones; Athena reads every file under a partition's \
                     folder as Parquet and would fail on them: set formats = [\"parquet\"] in \
                     [dataset.partition]"
                ),
            ));
        }
        // Catalogs compare names without case; the partition keys are columns of the table too.
        let keys = partition.granularity.partition_keys();
        let raw_columns = ds
            .columns
            .as_ref()
            .map_or(&[][..], |c| c.get_ref().as_slice());
        for (i, c) in columns.iter().enumerate() {
            let lower = c.name.to_lowercase();
            let span = raw_columns
                .get(i)
                .map_or_else(|| raw.database.span(), |r| r.get_ref().name.span());
            if keys.contains(&lower.as_str()) {
                return Err(self.err(
                    span,
                    "name",
                    format!(
                        "dataset {name:?}: column {:?} has the name of a partition key of its catalog table \
                         ({}); rename the column",
                        c.name,
                        keys.join(", ")
                    ),
                ));
            }
            if let Some(other) = columns[..i].iter().find(|o| o.name.to_lowercase() == lower) {
                return Err(self.err(
                    span,
                    "name",
                    format!(
                        "dataset {name:?}: columns {:?} and {:?} differ only in case, which a catalog table \
                         cannot tell apart",
                        other.name, c.name
                    ),
                ));
            }
        }
        Ok(Some(CatalogTable { database, table }))
    }

    fn plots(
        &self,
        ds: &RawDataset,
        columns: &[Column],
        name: &str,
    ) -> Result<Vec<Plot>, ConfigError> {
        let mut plots = Vec::new();
        for (n, p) in ds.plot.iter().enumerate() {
            let p = p.get_ref();
            let x = self.column_ref(ds, columns, &p.x, "x")?;
            if !(columns[x].ty.is_numeric() || columns[x].ty.is_temporal()) {
                return Err(self.err(
                    p.x.span(),
                    "x",
                    format!(
                        "plot x column {:?} must be a date, datetime, integer or float column",
                        columns[x].name
                    ),
                ));
            }
            if p.y.get_ref().is_empty() {
                return Err(self.err(p.y.span(), "y", "a plot needs at least one y column"));
            }
            let mut y = Vec::new();
            for yname in p.y.get_ref() {
                let i =
                    self.column_ref(ds, columns, &Spanned::new(p.y.span(), yname.clone()), "y")?;
                if !columns[i].ty.is_numeric() {
                    return Err(self.err(
                        p.y.span(),
                        "y",
                        format!(
                            "plot y column {yname:?} is a {}; y columns must be integer or float",
                            columns[i].ty
                        ),
                    ));
                }
                y.push(i);
            }
            let ynames: Vec<&str> = y.iter().map(|&i| columns[i].name.as_str()).collect();
            plots.push(Plot {
                title: p
                    .title
                    .clone()
                    .unwrap_or_else(|| format!("{name} {} (chart {})", ynames.join(", "), n + 1)),
                x_label: p.x_label.clone().unwrap_or_else(|| columns[x].name.clone()),
                y_label: p.y_label.clone().unwrap_or_else(|| ynames.join(", ")),
                x,
                y,
            });
        }
        Ok(plots)
    }

    fn notify(&self, notify: &RawNotify) -> Result<Notify, ConfigError> {
        let email = |s: &Spanned<String>, key: &str| -> Result<String, ConfigError> {
            let a = s.get_ref().trim();
            let ok = a
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !a.contains(' '));
            if ok {
                Ok(a.to_string())
            } else {
                Err(self.err(s.span(), key, format!("{a:?} is not an e-mail address")))
            }
        };
        let list = |v: &[Spanned<String>], key: &str| {
            v.iter()
                .map(|s| email(s, key))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Notify {
            from: notify.from.as_ref().map(|f| email(f, "from")).transpose()?,
            invalid_rows: list(&notify.invalid_rows, "invalid_rows")?,
            success: list(&notify.success, "success")?,
            failure: list(&notify.failure, "failure")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[buckets]
landing = "l"

[[dataset]]
name = "stocks"
match = { prefix = "incoming/stocks/", suffix = ".csv" }
format = { delimiter = ",", header = true, null_values = ["", "NA"] }
key = ["date"]

[[dataset.columns]]
name = "date"
type = "date"
formats = ["%Y-%m-%d"]
required = true

[[dataset.columns]]
name = "high"
type = "float"
min = 0

[[dataset.columns]]
name = "volume"
type = "integer"
min = 0

[dataset.filter]
column = "date"
window = "previous_year"

[dataset.stats]
columns = ["high", "volume"]

[dataset.partition]
column = "date"
granularity = "month"

[[dataset.plot]]
x = "date"
y = ["high"]
title = "High"

[dataset.notify]
from = "pipeline@example.com"
failure = ["oncall@example.com"]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("sluice.toml"), text)
    }

    #[test]
    fn a_full_spec_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.buckets.landing, "l");
        assert_eq!(c.buckets.work, "sluice-work");
        let d = c.dataset("stocks").unwrap();
        assert_eq!(d.key, vec![0]);
        assert_eq!(d.stats, vec![1, 2]);
        assert_eq!(d.filter.as_ref().unwrap().window, Window::PreviousYear);
        assert_eq!(d.partition.as_ref().unwrap().formats.len(), 2);
        assert!(d.store_rows);
        assert!(d.is_null("NA"));
        assert!(d.matches("incoming/stocks/2024.csv"));
        assert!(!d.matches("incoming/orders/2024.csv"));
    }

    fn error_of(text: &str) -> ConfigError {
        parse(text).unwrap_err()
    }

    const TWO_LOADED: &str = "[[dataset]]\nname = \"a\"\nload = true\n[[dataset.columns]]\nname = \"x\"\ntype = \"integer\"\n\
        [[dataset]]\nname = \"b\"\nload = true\n[[dataset.columns]]\nname = \"x\"\ntype = \"integer\"\n\
        [[dataset]]\nname = \"c\"\n[[dataset.columns]]\nname = \"x\"\ntype = \"integer\"\n";

    #[test]
    fn a_batch_parses_with_its_analytics_and_notify() {
        let c = parse(&format!(
            "{TWO_LOADED}[[batch]]\nname = \"t\"\ndatasets = [\"a\", \"b\"]\nat_most = \"hourly\"\n\
             [[batch.analytics]]\nname = \"late\"\nsql = \"SELECT * FROM staging.a WHERE d < DATE '{{as_of}}';\"\n\
             [batch.notify]\nfailure = [\"oncall@example.com\"]\n"
        ))
        .unwrap();
        let b = c.batch("t").unwrap();
        assert_eq!(b.at_most, AtMost::Hourly);
        assert_eq!(c.batch_of("b").map(|b| b.name.as_str()), Some("t"));
        assert!(c.batch_of("c").is_none());
        assert_eq!(
            b.analytics[0].sql_for(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()),
            "SELECT * FROM staging.a WHERE d < DATE '2026-12-01'",
            "{{as_of}} is the bare date; a trailing ; is dropped"
        );
        assert_eq!(b.notify.failure, ["oncall@example.com"]);
        let daily = parse(&format!(
            "{TWO_LOADED}[[batch]]\nname = \"t\"\ndatasets = [\"a\"]\n"
        ))
        .unwrap();
        assert_eq!(
            daily.batches[0].at_most,
            AtMost::Daily,
            "daily is the default"
        );
    }

    #[test]
    fn schedules_and_sources_parse_and_their_mistakes_are_named() {
        let c = parse(&format!(
            "{TWO_LOADED}[[schedule]]\ndataset = \"a\"\nevery = \"1h\"\n\
             [[source]]\nname = \"api\"\nurl = \"https://example.com/x.json\"\ndataset = \"b\"\ncron = \"*/7 * * * *\"\n\
             format = \"json\"\nheaders = {{ Authorization = \"env:TOKEN\" }}\n"
        ))
        .unwrap();
        assert_eq!(c.schedules[0].cadence.aws_expression(), "rate(1 hour)");
        assert_eq!(c.schedules[0].name(), "sweep-a");
        let src = c.source("api").unwrap();
        assert_eq!(src.format, SourceFormat::Json);
        assert_eq!(
            src.headers,
            [("Authorization".to_string(), "env:TOKEN".to_string())]
        );
        assert_eq!(src.timeout, std::time::Duration::from_secs(30));
        assert_eq!(src.max_bytes, 100 << 20);
        let cases: [(&str, &str, &str); 7] = [
            (
                "[[schedule]]\ndataset = \"zz\"\nevery = \"1h\"\n",
                "dataset",
                "no dataset \"zz\"",
            ),
            ("[[schedule]]\ndataset = \"a\"\n", "every", "needs every"),
            (
                "[[schedule]]\ndataset = \"a\"\nevery = \"30s\"\n",
                "every",
                "whole minutes",
            ),
            (
                "[[schedule]]\ndataset = \"a\"\ncron = \"* * *\"\n",
                "cron",
                "five fields",
            ),
            (
                "[[source]]\nname = \"s\"\nurl = \"ftp://x/y\"\ndataset = \"a\"\nevery = \"1h\"\n",
                "url",
                "not an http",
            ),
            (
                "[[source]]\nname = \"s\"\nurl = \"http://x.example/y\"\ndataset = \"a\"\nevery = \"1h\"\nformat = \"xml\"\n",
                "format",
                "not a source format",
            ),
            (
                "[[source]]\nname = \"s s\"\nurl = \"http://x.example/y\"\ndataset = \"a\"\nevery = \"1h\"\n",
                "name",
                "not a source name",
            ),
        ];
        for (body, key, says) in cases {
            let e = error_of(&format!("{TWO_LOADED}{body}"));
            assert_eq!(e.key, key, "{body}: {e}");
            assert!(e.message.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn batch_mistakes_name_the_line_and_what_to_do() {
        let batch = |body: &str| error_of(&format!("{TWO_LOADED}[[batch]]\n{body}"));
        let cases: [(&str, &str, &str); 9] = [
            (
                "name = \"t\"\ndatasets = [\"a\", \"nope\"]\n",
                "datasets",
                "no dataset \"nope\"",
            ),
            (
                "name = \"t\"\ndatasets = [\"a\", \"c\"]\n",
                "datasets",
                "needs load = true",
            ),
            (
                "name = \"t\"\ndatasets = [\"a\", \"a\"]\n",
                "datasets",
                "twice",
            ),
            (
                "name = \"t\"\ndatasets = []\n",
                "datasets",
                "names no datasets",
            ),
            (
                "name = \"t t\"\ndatasets = [\"a\"]\n",
                "name",
                "not a batch name",
            ),
            (
                "name = \"t\"\ndatasets = [\"a\"]\nat_most = \"weekly\"\n",
                "at_most",
                "\"weekly\" is not a cadence",
            ),
            (
                "name = \"t\"\ndatasets = [\"a\"]\n[[batch.analytics]]\nname = \"Late\"\nsql = \"SELECT 1\"\n",
                "name",
                "plain SQL name",
            ),
            (
                "name = \"t\"\ndatasets = [\"a\"]\n[[batch.analytics]]\nname = \"x\"\nsql = \" ; \"\n",
                "sql",
                "has no SQL",
            ),
            (
                "name = \"t\"\ndatasets = [\"a\"]\n[batch.notify]\nsuccess = [\"nobody\"]\n",
                "success",
                "not an e-mail address",
            ),
        ];
        for (body, key, says) in cases {
            let e = batch(body);
            assert_eq!(e.key, key, "{body}: {e}");
            assert!(e.message.contains(says), "{body}: {e}");
            assert!(e.line > 0, "{e}");
        }
        let e = error_of(&format!(
            "{TWO_LOADED}[[batch]]\nname = \"t\"\ndatasets = [\"a\"]\n[[batch]]\nname = \"u\"\ndatasets = [\"a\"]\n"
        ));
        assert!(e.message.contains("already in batch \"t\""), "{e}");
        let e = error_of(&format!(
            "{TWO_LOADED}[[batch]]\nname = \"t\"\ndatasets = [\"a\"]\n[[batch]]\nname = \"t\"\ndatasets = [\"b\"]\n"
        ));
        assert!(e.message.contains("defined twice"), "{e}");
    }

    /// Hourly Parquet partitions: what a catalog table can be made of.
    const CATALOGED: &str = "[[dataset]]\nname = \"ticks\"\n\
        [[dataset.columns]]\nname = \"at\"\ntype = \"datetime\"\n\
        [[dataset.columns]]\nname = \"n\"\ntype = \"integer\"\n\
        [dataset.partition]\ncolumn = \"at\"\ngranularity = \"hour\"\nformats = [\"parquet\"]\n";

    #[test]
    fn a_catalog_parses_with_the_dataset_name_as_its_default_table() {
        let c = parse(&format!(
            "{CATALOGED}[dataset.catalog]\ndatabase = \"lake\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.datasets[0].catalog,
            Some(CatalogTable {
                database: "lake".into(),
                table: "ticks".into()
            })
        );
        let c = parse(&format!(
            "{CATALOGED}[dataset.catalog]\ndatabase = \"lake\"\ntable = \"ticks_v2\"\n"
        ))
        .unwrap();
        assert_eq!(c.datasets[0].catalog.as_ref().unwrap().table, "ticks_v2");
        assert!(parse(CATALOGED).unwrap().datasets[0].catalog.is_none());
        assert_eq!(
            Granularity::Hour.partition_keys(),
            ["year", "month", "day", "hour"]
        );
        assert_eq!(Granularity::Year.partition_keys(), ["year"]);
        assert_eq!(Granularity::Minute.partition_keys().len(), 5);
    }

    #[test]
    fn catalog_mistakes_name_the_line_the_key_and_what_to_do() {
        let catalog = "[dataset.catalog]\ndatabase = \"lake\"\n";
        // (spec, key, line, what the message says)
        let cases: Vec<(String, &str, usize, &str)> = vec![
            (
                format!("{CATALOGED}[dataset.catalog]\ndatabase = \"\"\n"),
                "database",
                14,
                "is empty",
            ),
            (
                format!("{CATALOGED}[dataset.catalog]\ndatabase = \"Lake\"\n"),
                "database",
                14,
                "not a catalog name",
            ),
            (
                format!("{CATALOGED}{catalog}table = \"my-ticks\"\n"),
                "table",
                15,
                "not a catalog name",
            ),
            (
                format!("{}{catalog}", CATALOGED.replace("\"ticks\"", "\"Ticks-1\"")),
                "table",
                14,
                "set table = \"ticks_1\"",
            ),
            (
                format!(
                    "{}{catalog}",
                    CATALOGED.split("[dataset.partition]").next().unwrap()
                ),
                "catalog",
                10,
                "no [dataset.partition]",
            ),
            (
                format!(
                    "{}{catalog}",
                    CATALOGED.replace("[\"parquet\"]", "[\"csv\"]")
                ),
                "formats",
                12,
                "writes no Parquet partitions",
            ),
            (
                format!(
                    "{}{catalog}",
                    CATALOGED.replace("[\"parquet\"]", "[\"csv\", \"parquet\"]")
                ),
                "formats",
                12,
                "same partition folders",
            ),
            (
                format!(
                    "{}{catalog}",
                    CATALOGED.replace("formats = [\"parquet\"]\n", "")
                ),
                "formats",
                13,
                "the default formats (csv and parquet)",
            ),
            (
                format!("{}{catalog}", CATALOGED.replace("\"n\"", "\"Hour\"")),
                "name",
                7,
                "partition key",
            ),
            (
                format!(
                    "{CATALOGED}[[dataset.columns]]\nname = \"N\"\ntype = \"float\"\n{catalog}"
                ),
                "name",
                14,
                "differ only in case",
            ),
        ];
        for (text, key, line, says) in cases {
            let e = error_of(&text);
            assert_eq!((e.key.as_str(), e.line), (key, line), "{text}\n{e}");
            assert!(e.message.contains(says), "{text}\n{e}");
        }
        let e = error_of(&format!("{CATALOGED}{catalog}databse = \"x\"\n"));
        assert!(e.to_string().contains("databse"), "{e}");
        assert_eq!(e.line, 15, "{e}");
    }

    #[test]
    fn unknown_keys_name_the_line_and_key() {
        let e = error_of(&GOOD.replace("required = true", "requird = true"));
        assert_eq!(e.line, 15, "{e}");
        assert!(e.to_string().contains("requird"), "{e}");
        assert!(e.to_string().starts_with("sluice.toml:15:"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_line_and_key() {
        let e = error_of(&GOOD.replace("required = true", "required = \"yes\""));
        assert_eq!((e.line, e.key.as_str()), (15, "required"), "{e}");
        let e = error_of(&GOOD.replace("type = \"float\"", "type = \"decimal\""));
        assert_eq!((e.line, e.key.as_str()), (19, "type"), "{e}");
    }

    #[test]
    fn bad_regex_format_and_window_are_errors() {
        let e = error_of(&GOOD.replace(
            "min = 0\n\n[[dataset.columns]]\nname = \"volume\"",
            "min = 0\n\n[[dataset.columns]]\nname = \"volume\"\npattern = \"(\"",
        ));
        assert_eq!(e.key, "pattern", "{e}");
        let e = error_of(&GOOD.replace("formats = [\"%Y-%m-%d\"]", "formats = [\"%Y-%m\"]"));
        assert_eq!((e.line, e.key.as_str()), (14, "formats"), "{e}");
        let e = error_of(&GOOD.replace("previous_year", "last_year"));
        assert_eq!((e.line, e.key.as_str()), (29, "window"), "{e}");
        let e = error_of(&GOOD.replace("previous_year", "between:2024-05-01..2024-01-01"));
        assert!(e.message.contains("starts after it ends"), "{e}");
    }

    #[test]
    fn references_to_missing_or_mistyped_columns_are_errors() {
        let e = error_of(&GOOD.replace(
            "columns = [\"high\", \"volume\"]",
            "columns = [\"high\", \"vol\"]",
        ));
        assert!(e.message.contains("no column \"vol\""), "{e}");
        assert_eq!(e.line, 32);
        let e = error_of(&GOOD.replace("column = \"date\"\nwindow", "column = \"high\"\nwindow"));
        assert!(e.message.contains("must be a date or datetime"), "{e}");
        let e = error_of(&GOOD.replace("granularity = \"month\"", "granularity = \"hour\""));
        assert!(e.message.contains("need a datetime column"), "{e}");
        let e = error_of(&GOOD.replace("key = [\"date\"]", "key = [\"day\"]"));
        assert_eq!(e.key, "key");
    }

    #[test]
    fn a_dataset_without_columns_is_an_error_at_its_columns_key() {
        let e = error_of("[[dataset]]\nname = \"x\"\nkey = []\ncolumns = []\n");
        assert_eq!((e.line, e.key.as_str()), (4, "columns"), "{e}");
        assert_eq!(
            e.message,
            "dataset \"x\" declares no columns: add [[dataset.columns]] tables"
        );
        // No `columns` at all: the dataset's name is the place.
        let e = error_of("[[dataset]]\nname = \"x\"\nkey = []\n");
        assert_eq!((e.line, e.key.as_str()), (2, "columns"), "{e}");
        assert_eq!(
            e.message,
            "dataset \"x\" declares no columns: add [[dataset.columns]] tables"
        );
    }

    #[test]
    fn bad_delimiter_and_email_are_errors() {
        let e = error_of(&GOOD.replace("delimiter = \",\"", "delimiter = \";;\""));
        assert_eq!((e.line, e.key.as_str()), (8, "delimiter"), "{e}");
        let e = error_of(&GOOD.replace("oncall@example.com", "oncall"));
        assert_eq!(e.key, "failure");
        let tsv = parse(&GOOD.replace("delimiter = \",\"", "delimiter = \"\\t\"")).unwrap();
        assert_eq!(tsv.datasets[0].delimiter, b'\t');
    }

    #[test]
    fn windows_are_whole_days_inclusive() {
        let as_of = NaiveDate::from_ymd_opt(2024, 6, 15).unwrap();
        let d = |s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .unwrap()
                .and_time(NaiveTime::MIN)
        };
        assert_eq!(
            Window::PreviousYear.bounds(as_of),
            Some((d("2023-01-01"), d("2024-01-01")))
        );
        assert_eq!(
            Window::CurrentYear.bounds(as_of),
            Some((d("2024-01-01"), d("2025-01-01")))
        );
        assert_eq!(
            Window::LastDays(7).bounds(as_of),
            Some((d("2024-06-09"), d("2024-06-16")))
        );
        assert_eq!(
            Window::parse("between:2013-03-01..2013-05-31")
                .unwrap()
                .bounds(as_of),
            Some((d("2013-03-01"), d("2013-06-01")))
        );
        assert_eq!(Window::All.bounds(as_of), None);
        assert!(Window::parse("last_days:0").is_err());
        assert!(Window::parse("last_days:4000000000").is_err());
    }
}

#[cfg(test)]
mod example_spec {
    #[test]
    fn the_repository_spec_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sluice.toml");
        let config = super::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = config.datasets.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["stocks", "orders", "sensors"]);
        assert_eq!(config.dataset("sensors").unwrap().delimiter, b'\t');
    }
}

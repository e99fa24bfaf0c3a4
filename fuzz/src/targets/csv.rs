//! `csv_validator`: the bytes as a landed file, through `sluice_validator::validate`.
//!
//! The dataset is chosen from the header line, the way a landed key picks its dataset: a header
//! naming `order_id`, `sensor_id` or `volume` uses the `orders`, `sensors` (TSV) or `stocks`
//! dataset of `sluice.toml` (so the files of `examples/incoming/` are valid seeds); any other header
//! uses the fuzz dataset below, comma-separated, or its TSV twin when the line holds a tab, or a
//! header-less dataset (`id,count,day`) when the line does not even name `id`. One
//! input in eight runs with tiny buffers and key runs (from a hash of the input, so it stays
//! reproducible), which moves record and buffer boundaries and makes the unique-key check spill.
//!
//! A successful run is also read back with `stored_rows`: the valid rows are the validator's own
//! output, so every one must read back, as many as the report counts, with distinct keys. A broken
//! promise there panics with `invariant:` (a bug, even though no code panicked).

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use sluice_proto::{ErrorName, RunId};
use sluice_spec::config::{Config, Dataset};
use sluice_validator::{Limits, ValidateOptions, stored_rows, validate, validate_with_limits};

use super::{Features, Fnv, Target, files_in};

pub(super) const TARGET: Target = Target {
    name: "csv_validator",
    about: "CSV/TSV files through sluice_validator::validate (then stored_rows)",
    exec,
    seeds,
    tokens: TOKENS,
    json: false,
    max_len: 16 * 1024,
};

/// The fuzz datasets: every column type, patterns, bounds, allowed values, a composite key.
const FUZZ_SPEC: &str = r#"
[[dataset]]
name = "fuzz"
format = { delimiter = ",", header = true, null_values = ["", "NA", "-"] }
key = ["id", "day"]

[[dataset.columns]]
name = "id"
type = "string"
required = true
pattern = "^[A-Z]{2}-[0-9]{1,6}$"

[[dataset.columns]]
name = "count"
type = "integer"
min = 0
max = 1000000

[[dataset.columns]]
name = "price"
type = "float"
required = true
min = -1000.5
max = 1e12

[[dataset.columns]]
name = "ok"
type = "boolean"

[[dataset.columns]]
name = "day"
type = "date"
formats = ["%Y-%m-%d", "%d/%m/%Y"]
required = true

[[dataset.columns]]
name = "at"
type = "datetime"
formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%:z"]

[[dataset.columns]]
name = "status"
type = "string"
allowed = ["new", "paid", "shipped", "é"]

[[dataset]]
name = "fuzz_tsv"
format = { delimiter = "\t", header = true, null_values = ["", "-"] }
key = ["id"]

[[dataset.columns]]
name = "id"
type = "string"
required = true
pattern = "^[A-Z]{2}-[0-9]{1,6}$"

[[dataset.columns]]
name = "count"
type = "integer"
min = 0

[[dataset.columns]]
name = "price"
type = "float"

[[dataset.columns]]
name = "ok"
type = "boolean"

[[dataset.columns]]
name = "day"
type = "date"
formats = ["%Y-%m-%d", "%d/%m/%Y"]

[[dataset.columns]]
name = "at"
type = "datetime"

[[dataset]]
name = "fuzz_raw"
format = { delimiter = ",", header = false }
key = ["id"]

[[dataset.columns]]
name = "id"
type = "string"
required = true

[[dataset.columns]]
name = "count"
type = "integer"
max = 10

[[dataset.columns]]
name = "day"
type = "date"
"#;

const TOKENS: &[&str] = &[
    "id",
    "count",
    "price",
    "ok",
    "day",
    "at",
    "status",
    "order_id",
    "sensor_id",
    "volume",
    "date",
    "timestamp",
    "NA",
    "-",
    "new",
    "paid",
    "shipped",
    "é",
    "yes",
    "no",
    "true",
    "false",
    "TRUE",
    "1",
    "0",
    "y",
    "AB-1",
    "ZZ-999999",
    "AB-",
    "2024-01-01",
    "01/02/2024",
    "2024-06-01 00:00:00",
    "2024-06-01T00:00:00+02:00",
    "1e3",
    "-1000.5",
    "1000000",
    "1000001",
    "\"\"",
    "\"a,b\"",
    "\"a\"\"b\"",
    "\"\n\"",
    ",,",
    "\t\t",
    "\r\n\r\n",
    "\n\n",
    "\u{feff}",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for (dir, suffix) in [
        ("examples/incoming/orders", ".csv"),
        ("examples/incoming/sensors", ".tsv"),
        ("examples/incoming/stocks", ".csv"),
    ] {
        for file in files_in(dir, suffix) {
            // The first lines are enough to mutate from, and keep executions fast.
            seeds.push(first_lines(&file, 24));
        }
    }
    for s in [
        "id,count,price,ok,day,at,status\n\
         AB-1,3,9.5,true,2024-01-31,2024-01-31 10:00:00,new\n\
         AB-2,,0,no,31/01/2024,2024-01-31T10:00:00+02:00,paid\n\
         CD-300,1000000,-1000.5,,2024-02-29,,\n",
        "status,at,day,ok,price,count,id,extra\r\n\
         shipped,NA,2024-12-31,yes,1e3,0,ZZ-999999,x\r\n\
         é,-,01/01/1970,FALSE,\"1.5\",7,AB-1,\"a,\"\"b\"\"\n c\"\r\n\
         new,,2024-01-01,1,2,3,AB-1,dup\r\n",
        "\u{feff}id,count,price,ok,day,at,status\n\
         ab-1,-1,x,maybe,2024-13-01,2024-06-01 25:00:00,lost\n\
         AB-1,1,1,true,2024-01-01\n\
         \n\
         AB-2,1,1,true,2024-01-01,,new,extra\n",
        "id\tcount\tprice\tok\tday\tat\n\
         AB-1\t1\t2.5\ttrue\t2024-01-01\t2024-01-01 00:00:00\n\
         AB-2\t-\t\tno\t02/01/2024\t2024-01-01T00:00:00+00:00\n\
         AB-1\t2\t3\t0\t2024-01-03\t-\n",
        "id,count,price,ok,day,at,status\n\"AB-1,3,9.5,true,2024-01-31,,new\n",
        "id,count,price,ok,day,at,status\n",
        "id,id,price\n1,2,3\n",
        "AB-1,1,2024-01-01\nAB-1,11,2024-02-30\nAB-2,,\n",
    ] {
        seeds.push(s.as_bytes().to_vec());
    }
    seeds
}

fn first_lines(file: &[u8], n: usize) -> Vec<u8> {
    let end = file
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(n - 1)
        .map_or(file.len(), |(i, _)| i + 1);
    file[..end].to_vec()
}

struct Datasets {
    fuzz: Dataset,
    fuzz_tsv: Dataset,
    fuzz_raw: Dataset,
    orders: Dataset,
    sensors: Dataset,
    stocks: Dataset,
}

fn datasets() -> &'static Datasets {
    static DATASETS: OnceLock<Datasets> = OnceLock::new();
    DATASETS.get_or_init(|| {
        let fuzz = Config::parse(Path::new("fuzz.toml"), FUZZ_SPEC)
            .unwrap_or_else(|e| panic!("the fuzz dataset spec does not parse: {e}"));
        let examples = Config::parse(
            Path::new("sluice.toml"),
            include_str!("../../../sluice.toml"),
        )
        .unwrap_or_else(|e| panic!("sluice.toml does not parse: {e}"));
        let get = |c: &Config, name: &str| {
            c.dataset(name)
                .cloned()
                .unwrap_or_else(|| panic!("no dataset {name:?}"))
        };
        Datasets {
            fuzz: get(&fuzz, "fuzz"),
            fuzz_tsv: get(&fuzz, "fuzz_tsv"),
            fuzz_raw: get(&fuzz, "fuzz_raw"),
            orders: get(&examples, "orders"),
            sensors: get(&examples, "sensors"),
            stocks: get(&examples, "stocks"),
        }
    })
}

/// The dataset for a file, from its first line.
fn dataset_for(data: &[u8]) -> &'static Dataset {
    let line = &data[..data.iter().position(|&b| b == b'\n').unwrap_or(data.len())];
    let has = |s: &[u8]| line.windows(s.len()).any(|w| w == s);
    let d = datasets();
    if has(b"order_id") {
        &d.orders
    } else if has(b"sensor_id") {
        &d.sensors
    } else if has(b"volume") {
        &d.stocks
    } else if !has(b"id") {
        &d.fuzz_raw
    } else if has(b"\t") {
        &d.fuzz_tsv
    } else {
        &d.fuzz
    }
}

/// The files of one thread's executions, in a folder created once (in memory when /dev/shm exists).
struct Workdir {
    _dir: tempfile::TempDir,
    input: PathBuf,
    valid: PathBuf,
    invalid: PathBuf,
    arrow: PathBuf,
    scratch: PathBuf,
}

impl Workdir {
    fn new() -> Workdir {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("sluice-fuzz-")
                .tempdir_in(shm)
                .or_else(|_| tempfile::tempdir())
        } else {
            tempfile::tempdir()
        }
        .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        let scratch = dir.path().join("scratch");
        let out = dir.path().join("out");
        for d in [&scratch, &out] {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
        }
        Workdir {
            input: dir.path().join("landed.csv"),
            valid: out.join("valid.csv"),
            invalid: out.join("invalid.csv"),
            arrow: out.join("valid.arrow"),
            scratch,
            _dir: dir,
        }
    }
}

thread_local! {
    static WORKDIR: RefCell<Option<Workdir>> = const { RefCell::new(None) };
}

pub(super) fn exec(data: &[u8], f: &mut Features) {
    let ds = dataset_for(data);
    WORKDIR.with(|w| {
        let mut w = w.borrow_mut();
        let w = w.get_or_insert_with(Workdir::new);
        std::fs::write(&w.input, data)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", w.input.display()));
        let progress = AtomicU64::new(0);
        let opts = ValidateOptions {
            scratch_dir: &w.scratch,
            progress: Some(&progress),
            tap: None,
            valid_arrow: Some(&w.arrow),
        };
        let _ = std::fs::remove_file(&w.arrow);
        let mut hash = Fnv::new();
        hash.write(data);
        let h = hash.finish();
        let small = h.is_multiple_of(8);
        let result = if small {
            let limits = Limits {
                io_buffer: 8 + (h >> 8) as usize % 57,
                max_record_bytes: 64 + (h >> 16) % 4096,
                key_run_len: 1 + (h >> 32) as usize % 5,
            };
            validate_with_limits(ds, &w.input, &w.valid, &w.invalid, &opts, limits)
        } else {
            validate(ds, &w.input, &w.valid, &w.invalid, &opts)
        };
        f.add(
            "dataset",
            u64::from(ds.delimiter) << 8 | u64::from(ds.header),
        );
        match result {
            Ok(report) => {
                let rows = report.rows;
                assert_eq!(
                    rows.total,
                    rows.valid + rows.invalid,
                    "invariant: total = valid + invalid"
                );
                read_back(ds, &w.valid, rows.valid);
                if report.valid_arrow {
                    typed_read_back(ds, &w.arrow, &w.valid, rows.valid);
                }
                for r in &report.top_reasons {
                    f.text("reason", &r.reason);
                }
                f.add("valid", rows.valid.min(2));
                f.add("invalid", rows.invalid.min(2) + 4 * u64::from(small));
                f.add("ignored", report.ignored_columns.len().min(2) as u64);
            }
            Err(e) => {
                let tag = match e.error {
                    ErrorName::InvalidInput => "invalid",
                    ErrorName::Internal => "internal",
                    _ => "other",
                };
                f.text(tag, &e.cause);
            }
        }
    })
}

/// The valid rows read back as the row store reads them: all of them, each with a distinct key.
/// The typed copy holds, row for row, the values of valid.csv.
fn typed_read_back(ds: &Dataset, arrow: &Path, valid: &Path, expected: u64) {
    use sluice_columnar::Rows as _;
    let mut typed = sluice_columnar::ArrowRows::open(arrow, Some(valid), ds)
        .unwrap_or_else(|e| panic!("invariant: valid.arrow opens: {e}"));
    let mut text = sluice_spec::canonical::CanonicalReader::open(valid, ds)
        .unwrap_or_else(|e| panic!("invariant: valid.csv opens: {e}"));
    let mut n = 0;
    while text
        .next_record(ds)
        .unwrap_or_else(|e| panic!("invariant: valid.csv reads: {e}"))
    {
        assert!(
            typed
                .next_record(ds)
                .unwrap_or_else(|e| panic!("invariant: valid.arrow reads: {e}")),
            "invariant: valid.arrow has as many rows as valid.csv"
        );
        assert_eq!(
            typed.raw(),
            text.raw(),
            "invariant: the lockstep CSV record is the row"
        );
        for (i, c) in ds.columns.iter().enumerate() {
            let (a, b) = (typed.value(i, c), text.value(i, c));
            assert_eq!(
                a.as_ref().ok(),
                b.as_ref().ok(),
                "invariant: valid.arrow holds valid.csv's values (row {n}, column {})",
                c.name
            );
        }
        n += 1;
    }
    assert!(
        !typed
            .next_record(ds)
            .unwrap_or_else(|e| panic!("invariant: valid.arrow reads: {e}")),
        "invariant: valid.arrow has no more rows than valid.csv"
    );
    assert_eq!(n, expected);
}

fn read_back(ds: &Dataset, valid: &Path, expected: u64) {
    let rows = stored_rows(ds, &RunId::from_digest(1), valid)
        .unwrap_or_else(|e| panic!("invariant: stored_rows cannot open valid.csv: {e}"));
    let mut keys = HashSet::new();
    let mut n = 0;
    for row in rows {
        let row = row.unwrap_or_else(|e| panic!("invariant: a valid row does not read back: {e}"));
        n += 1;
        if !ds.key.is_empty() {
            assert!(
                keys.insert(row.key.clone()),
                "invariant: two valid rows have the key {:?}",
                row.key
            );
        }
    }
    assert_eq!(
        n, expected,
        "invariant: valid.csv holds as many rows as the report counts"
    );
}

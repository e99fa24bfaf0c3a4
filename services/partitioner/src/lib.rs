//! The partitioner stage: writes the filtered rows as Hive-style partitions, in CSV and/or
//! Parquet, by the date or datetime in `[dataset.partition] column`:
//!
//! ```text
//! stocks/year=2024/month=03/part-{run_id}.csv
//! stocks/year=2024/month=03/part-{run_id}.parquet
//! stocks/date=__HIVE_DEFAULT_PARTITION__/part-{run_id}.csv     (rows whose column is null)
//! ```
//!
//! It streams in two passes, so memory stays flat with any number of rows and partitions:
//! 1. every row is appended, byte for byte, to its partition's CSV file, through a small set of
//!    open files ([`open_files`]), and its typed values to its partition's Arrow segment in a
//!    scratch folder ([`segments`]);
//! 2. each partition's Arrow batches are written to Parquet, one partition at a time.
//!
//! The run id is in every file name and each call truncates the files it writes, so a re-run of
//! the same run overwrites instead of duplicating rows.

pub mod catalog;
mod key;
mod lru;
mod open_files;
mod segments;
mod to_parquet;

use std::path::Path;

use sluice_proto::{RunId, StageError};
use sluice_spec::config::{Dataset, PartitionFormat};

pub use key::DEFAULT_PARTITION;
use key::PartitionKey;
use open_files::{OpenFileStats, PartitionFiles};
use segments::PartitionSegments;
pub use to_parquet::arrow_schema;

/// At most this many partition files are open at once during pass 1. 128 covers ten years of
/// month partitions: files sorted by another column first (stock prices by symbol, then date) cycle
/// through every month of the window for each symbol, and with 32 open files the least-recently-used
/// set missed on every month change (a close, a flush of a few KB and an open every ~20 rows).
/// 128 writers of 32 KiB are 4 MiB.
pub const MAX_OPEN_PARTITION_FILES: usize = 128;

/// Writes Hive-style partitions of the filtered rows (canonical CSV for `ds`) under `out_dir` and
/// returns the relative keys written, sorted (e.g. `stocks/year=2024/month=03/part-{run_id}.csv`
/// and `.parquet`). Empty when `ds.partition` is `None` or there are no rows.
///
/// Errors are `Internal`: `filtered_csv` is not the canonical CSV of `ds`, or a file under
/// `out_dir` cannot be written.
pub fn partition(
    ds: &Dataset,
    run_id: &RunId,
    filtered_csv: &Path,
    out_dir: &Path,
) -> Result<Vec<String>, StageError> {
    partition_with_limit(
        ds,
        run_id,
        filtered_csv,
        None,
        out_dir,
        MAX_OPEN_PARTITION_FILES,
    )
    .map(|(keys, _)| keys)
}

/// [`partition`] reading the typed rows from `filtered_arrow` (filter-stats' hand-off), with
/// `filtered_csv` beside it for the rows' bytes: no field is parsed. The files written are byte for
/// byte those of [`partition`].
pub fn partition_columnar(
    ds: &Dataset,
    run_id: &RunId,
    filtered_csv: &Path,
    filtered_arrow: &Path,
    out_dir: &Path,
) -> Result<Vec<String>, StageError> {
    partition_with_limit(
        ds,
        run_id,
        filtered_csv,
        Some(filtered_arrow),
        out_dir,
        MAX_OPEN_PARTITION_FILES,
    )
    .map(|(keys, _)| keys)
}

/// [`partition`] with the bound on open files as a parameter, reporting how it was used.
fn partition_with_limit(
    ds: &Dataset,
    run_id: &RunId,
    filtered_csv: &Path,
    filtered_arrow: Option<&Path>,
    out_dir: &Path,
    max_open: usize,
) -> Result<(Vec<String>, OpenFileStats), StageError> {
    let Some(spec) = &ds.partition else {
        return Ok((Vec::new(), OpenFileStats::default()));
    };
    let wants_csv = spec.formats.contains(&PartitionFormat::Csv);
    let wants_parquet = spec.formats.contains(&PartitionFormat::Parquet);
    if !wants_csv && !wants_parquet {
        // `formats = []`: nothing to write.
        return Ok((Vec::new(), OpenFileStats::default()));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| {
        StageError::internal(format!(
            "cannot create the output folder {}: {e}",
            out_dir.display()
        ))
    })?;
    // Pass 1's Arrow segments for Parquet go to a scratch folder; a TempDir is removed when dropped,
    // on errors too.
    let scratch = if wants_parquet {
        let dir = tempfile::Builder::new()
            .prefix(".sluice-partitions-")
            .tempdir_in(out_dir)
            .map_err(|e| {
                StageError::internal(format!(
                    "cannot create a scratch folder in {}: {e}",
                    out_dir.display()
                ))
            })?;
        Some(dir)
    } else {
        None
    };
    let schema = arrow_schema(ds);

    // Pass 1: every row to its partition's CSV file, as it is, and its typed values to its
    // partition's Arrow segment.
    // The CSV is read in either case: CSV partitions copy its records, and Parquet row groups are
    // sized by the records' lengths.
    let mut rows = sluice_columnar::open_rows(ds, filtered_csv, filtered_arrow, true)?;
    let mut files = wants_csv.then(|| PartitionFiles::new(max_open, rows.header_raw()));
    let mut segments = match &scratch {
        Some(d) => Some(PartitionSegments::new(d.path(), &schema, max_open)?),
        None => None,
    };
    let column = &ds.columns[spec.column];
    let mut total = 0u64;
    while rows.next_record(ds)? {
        let key = PartitionKey::of(
            rows.value(spec.column, column)?.as_datetime(),
            spec.granularity,
        );
        if let Some(files) = files.as_mut() {
            files.append_line(
                key,
                || out_dir.join(key.object_key(ds, run_id, "csv")),
                rows.raw(),
            )?;
        }
        if let Some(segments) = segments.as_mut() {
            // Every value is read (and checked) now, so a bad one is reported by its line in the
            // input; pass 2 then cannot fail on data.
            segments.append_row(ds, key, rows.raw().len(), |builders| {
                for (i, (builder, c)) in builders.iter_mut().zip(&ds.columns).enumerate() {
                    let value = rows.value(i, c)?;
                    if !builder.append(value) {
                        return Err(StageError::internal(format!(
                            "{}: column {:?}: a {} column read back as {value:?}; this is a bug in Sluice",
                            filtered_csv.display(),
                            c.name,
                            c.ty
                        )));
                    }
                }
                Ok(())
            })?;
        }
        total += 1;
    }
    let (csv_partitions, open_stats) = match files {
        Some(files) => {
            let (keys, stats) = files.finish()?;
            (Some(keys), stats)
        }
        None => (None, OpenFileStats::default()),
    };

    // Pass 2: one partition at a time, from its Arrow batches to Parquet.
    let mut partitions = csv_partitions.unwrap_or_default();
    if let Some(segments) = segments {
        let spill = segments.finish()?;
        if partitions.is_empty() {
            partitions = spill.index.keys().copied().collect();
            partitions.sort_unstable();
        }
        for key in &partitions {
            let parquet = out_dir.join(key.object_key(ds, run_id, "parquet"));
            to_parquet::write_parquet(&schema, &parquet, |write| {
                spill.chunks(key, &schema, write)
            })?;
        }
    }
    if let Some(dir) = scratch {
        let path = dir.path().to_path_buf();
        if let Err(e) = dir.close() {
            // The partitions are written; a leftover scratch folder is untidy, not wrong.
            tracing::warn!(dataset = %ds.name, folder = %path.display(), error = %e, "cannot remove the scratch folder");
        }
    }

    let mut keys = Vec::with_capacity(partitions.len() * spec.formats.len());
    for key in &partitions {
        if wants_csv {
            keys.push(key.object_key(ds, run_id, "csv"));
        }
        if wants_parquet {
            keys.push(key.object_key(ds, run_id, "parquet"));
        }
    }
    keys.sort_unstable();
    tracing::info!(
        dataset = %ds.name,
        rows = total,
        partitions = partitions.len(),
        files = keys.len(),
        reopened_files = open_stats.reopened,
        "partitions written"
    );
    Ok((keys, open_stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_spec::config::Config;

    fn dataset() -> Dataset {
        let spec = r#"
[[dataset]]
name = "ticks"
[[dataset.columns]]
name = "at"
type = "datetime"
[[dataset.columns]]
name = "n"
type = "integer"
[dataset.partition]
column = "at"
granularity = "minute"
formats = ["csv"]
"#;
        Config::parse(Path::new("sluice.toml"), spec)
            .unwrap()
            .datasets
            .remove(0)
    }

    /// 5000 minute partitions (CSV only: Parquet is converted one partition at a time after
    /// this pass, so it does not change what is open), rows interleaved so that every partition is left and come back to
    /// (the worst order for the open-file set): never more than the bound open, and every
    /// partition holds exactly its rows, once, under one header.
    #[test]
    fn thousands_of_partitions_with_a_bounded_number_of_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("filtered.csv");
        let mut text = String::from("at,n\n");
        for round in 0..2 {
            for minute in 0..5000u32 {
                let at = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    + chrono::Duration::minutes(i64::from(minute));
                text.push_str(&format!(
                    "{},{}\n",
                    at.format("%Y-%m-%dT%H:%M:%S"),
                    minute * 10 + round
                ));
            }
        }
        std::fs::write(&input, text).unwrap();
        let run = RunId::parse("run1").unwrap();
        let out = dir.path().join("out");
        let (keys, stats) = partition_with_limit(&dataset(), &run, &input, None, &out, 8).unwrap();
        assert_eq!(keys.len(), 5000);
        assert!(stats.peak_open <= 8, "{stats:?}");
        assert!(
            stats.reopened >= 5000,
            "the second round reopens every partition: {stats:?}"
        );
        let csv = std::fs::read_to_string(
            out.join("ticks/year=2024/month=01/day=02/hour=13/minute=07/part-run1.csv"),
        )
        .unwrap();
        // 2024-01-02T13:07 is minute 2227 of the data.
        assert_eq!(
            csv,
            "at,n\n2024-01-02T13:07:00,22270\n2024-01-02T13:07:00,22271\n"
        );
        let rows: usize = keys
            .iter()
            .filter(|k| k.ends_with(".csv"))
            .map(|k| {
                std::fs::read_to_string(out.join(k))
                    .unwrap()
                    .lines()
                    .count()
                    - 1
            })
            .sum();
        assert_eq!(rows, 10_000);
    }

    /// Parquet only, with partitions left and come back to (every partition gets several Arrow
    /// segments): each Parquet file holds exactly its partition's rows, in input order, and the
    /// scratch folder is gone afterwards.
    #[test]
    fn parquet_from_reopened_segments_holds_every_row_once_in_order() {
        use arrow_array::Array as _;
        let mut ds = dataset();
        ds.partition.as_mut().unwrap().formats = vec![PartitionFormat::Parquet];
        ds.partition.as_mut().unwrap().granularity = sluice_spec::config::Granularity::Hour;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("filtered.csv");
        let mut text = String::from("at,n\n");
        // 3 rounds over 50 hours, 30 rows per hour per round: more than one flushed batch per
        // segment in some rounds, and a new segment for every partition in every round.
        let mut n = 0u32;
        for _round in 0..3 {
            for hour in 0..50i64 {
                for _ in 0..(if hour == 7 { 1500 } else { 30 }) {
                    let at = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                        .unwrap()
                        .and_hms_opt(0, 0, 0)
                        .unwrap()
                        + chrono::Duration::hours(hour);
                    text.push_str(&format!("{},{n}\n", at.format("%Y-%m-%dT%H:%M:%S")));
                    n += 1;
                }
            }
        }
        std::fs::write(&input, &text).unwrap();
        let run = RunId::parse("run1").unwrap();
        let out = dir.path().join("out");
        let (keys, _) = partition_with_limit(&ds, &run, &input, None, &out, 4).unwrap();
        assert_eq!(keys.len(), 50);
        assert!(keys.iter().all(|k| k.ends_with(".parquet")));
        let mut total = 0;
        for k in &keys {
            let file = std::fs::File::open(out.join(k)).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
            let mut values = Vec::new();
            for batch in reader {
                let batch = batch.unwrap();
                let col = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .unwrap();
                values.extend((0..col.len()).map(|i| col.value(i)));
            }
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "{k}: rows in input order"
            );
            total += values.len();
        }
        assert_eq!(total, n as usize);
        let hour7 = keys.iter().find(|k| k.contains("hour=07")).unwrap();
        let rows = parquet::file::reader::SerializedFileReader::new(
            std::fs::File::open(out.join(hour7)).unwrap(),
        )
        .map(|r| {
            parquet::file::reader::FileReader::metadata(&r)
                .file_metadata()
                .num_rows()
        })
        .unwrap();
        assert_eq!(rows, 4500);
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["ticks".to_string()], "no scratch folder is left");
    }
}

//! What a data catalog is told about a dataset's Parquet partitions (`[dataset.catalog]`): the Hive
//! type of each column, the partition keys, and the partitions a run's files are in. Pure: the
//! pipeline hands these to the `Catalog` port.

use sluice_spec::config::Dataset;
use sluice_spec::values::ColumnType;

use crate::key::DEFAULT_PARTITION;

/// The Hive (Athena, Glue) type of a column in the Parquet files: the type of its Arrow field
/// ([`crate::arrow_schema`]) as Hive names it.
///
/// | spec | Arrow / Parquet | Hive |
/// |---|---|---|
/// | string | Utf8 | string |
/// | integer | Int64 | bigint |
/// | float | Float64 | double |
/// | boolean | Boolean | boolean |
/// | date | Date32 | date |
/// | datetime | Timestamp(µs, no zone) | timestamp |
pub fn hive_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::String => "string",
        ColumnType::Integer => "bigint",
        ColumnType::Float => "double",
        ColumnType::Boolean => "boolean",
        ColumnType::Date => "date",
        ColumnType::Datetime => "timestamp",
    }
}

/// The catalog table's partition keys, in path order (`year`, `month`, ...); none without
/// `[dataset.partition]`.
pub fn partition_keys(ds: &Dataset) -> Vec<String> {
    ds.partition
        .as_ref()
        .map(|p| {
            p.granularity
                .partition_keys()
                .iter()
                .map(|k| k.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The partitions that the Parquet files among `keys` (keys in the curated bucket, as [`crate::partition`]
/// returns them) are in: each as (one value per partition key, the folder's prefix ending in `/`), once
/// each, sorted by folder. The folder of rows whose partition column is null
/// (`{column}=__HIVE_DEFAULT_PARTITION__`) has `__HIVE_DEFAULT_PARTITION__` for every key, which Hive
/// and Athena read as null.
pub fn partitions_of(ds: &Dataset, keys: &[String]) -> Vec<(Vec<String>, String)> {
    let names = partition_keys(ds);
    let root = format!("{}/", ds.name);
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    for key in keys {
        if !key.ends_with(".parquet") {
            continue;
        }
        let Some((folder, _file)) = key.rsplit_once('/') else {
            continue;
        };
        let Some(path) = folder.strip_prefix(&root) else {
            continue;
        };
        let segments: Vec<&str> = path.split('/').collect();
        let values: Option<Vec<String>> =
            if segments.len() == 1 && segments[0].ends_with(&format!("={DEFAULT_PARTITION}")) {
                Some(vec![DEFAULT_PARTITION.to_string(); names.len()])
            } else if segments.len() == names.len() {
                segments
                    .iter()
                    .zip(&names)
                    .map(|(segment, name)| match segment.split_once('=') {
                        Some((k, v)) if k == name => Some(v.to_string()),
                        _ => None,
                    })
                    .collect()
            } else {
                None
            };
        let Some(values) = values else {
            // Not a folder the partitioner names: nothing of ours to register.
            continue;
        };
        out.push((values, format!("{folder}/")));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PartitionKey;
    use arrow_schema::{DataType, TimeUnit};
    use sluice_proto::RunId;
    use sluice_spec::config::{Config, Granularity};

    fn dataset(granularity: &str) -> Dataset {
        let spec = format!(
            "[[dataset]]\nname = \"ticks\"\n[[dataset.columns]]\nname = \"at\"\ntype = \"datetime\"\n\
             [dataset.partition]\ncolumn = \"at\"\ngranularity = \"{granularity}\"\nformats = [\"parquet\"]\n"
        );
        Config::parse(std::path::Path::new("sluice.toml"), &spec)
            .unwrap()
            .datasets
            .remove(0)
    }

    /// Every spec type maps to the Hive type of the Arrow field the Parquet files hold.
    #[test]
    fn each_spec_type_maps_to_the_hive_type_of_its_parquet_column() {
        let all = [
            ColumnType::String,
            ColumnType::Integer,
            ColumnType::Float,
            ColumnType::Boolean,
            ColumnType::Date,
            ColumnType::Datetime,
        ];
        let names: Vec<&str> = all.iter().map(|&t| hive_type(t)).collect();
        assert_eq!(
            names,
            ["string", "bigint", "double", "boolean", "date", "timestamp"]
        );
        let columns: String = all
            .iter()
            .map(|t| format!("[[dataset.columns]]\nname = \"c_{t}\"\ntype = \"{t}\"\n"))
            .collect();
        let ds = Config::parse(
            std::path::Path::new("sluice.toml"),
            &format!("[[dataset]]\nname = \"all\"\n{columns}"),
        )
        .unwrap()
        .datasets
        .remove(0);
        let schema = crate::arrow_schema(&ds);
        for (field, c) in schema.fields().iter().zip(&ds.columns) {
            let hive = match field.data_type() {
                DataType::Utf8 => "string",
                DataType::Int64 => "bigint",
                DataType::Float64 => "double",
                DataType::Boolean => "boolean",
                DataType::Date32 => "date",
                DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp",
                other => panic!("no Hive type for {other:?}"),
            };
            assert_eq!(hive_type(c.ty), hive, "column {}", c.name);
        }
    }

    /// The values and folders read back from the keys the partitioner writes, for every granularity,
    /// the null partition included; CSV files and repeated folders count once.
    #[test]
    fn partition_values_are_read_from_the_folders_the_partitioner_names() {
        let run = RunId::parse("run1").unwrap();
        let at = chrono::NaiveDate::from_ymd_opt(2024, 3, 5)
            .unwrap()
            .and_hms_opt(7, 9, 0)
            .unwrap();
        for (g, values) in [
            ("year", vec!["2024"]),
            ("month", vec!["2024", "03"]),
            ("day", vec!["2024", "03", "05"]),
            ("hour", vec!["2024", "03", "05", "07"]),
            ("minute", vec!["2024", "03", "05", "07", "09"]),
        ] {
            let ds = dataset(g);
            let granularity = ds.partition.as_ref().unwrap().granularity;
            let key = PartitionKey::of(Some(at), granularity);
            let null = PartitionKey::of(None, granularity);
            let keys = vec![
                key.object_key(&ds, &run, "parquet"),
                key.object_key(&ds, &run, "csv"),
                null.object_key(&ds, &run, "parquet"),
                key.object_key(&ds, &RunId::parse("run2").unwrap(), "parquet"),
            ];
            let got = partitions_of(&ds, &keys);
            let folder = keys[0].rsplit_once('/').unwrap().0.to_string() + "/";
            assert_eq!(
                got,
                vec![
                    (
                        vec![DEFAULT_PARTITION.to_string(); values.len()],
                        "ticks/at=__HIVE_DEFAULT_PARTITION__/".to_string()
                    ),
                    (values.iter().map(|v| v.to_string()).collect(), folder),
                ],
                "{g}"
            );
            assert_eq!(
                partition_keys(&ds),
                Granularity::partition_keys(granularity)
            );
        }
        assert_eq!(
            partitions_of(
                &dataset("month"),
                &["ticks/year=2024/month=03/part-r.parquet".into()]
            )[0],
            (
                vec!["2024".to_string(), "03".to_string()],
                "ticks/year=2024/month=03/".to_string()
            )
        );
        // Keys that are not the partitioner's are not partitions.
        assert!(
            partitions_of(
                &dataset("month"),
                &[
                    "ticks/part-r.parquet".into(),
                    "other/year=2024/month=03/part-r.parquet".into(),
                    "ticks/year=2024/part-r.parquet".into()
                ]
            )
            .is_empty()
        );
    }
}

#!/usr/bin/env python3
"""The Sluice pipeline written with Polars, its expressions and its multi-threaded engine.

    polars_job.py FILE SPEC DATASET OUT_DIR

Same work as pandas_job.py (see there); prints the same JSON line.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec as specmod  # noqa: E402


def main() -> None:
    path, spec_path, dataset, out = sys.argv[1:5]
    spec = specmod.load(spec_path, dataset)
    os.makedirs(out, exist_ok=True)

    raw = pl.read_csv(path, infer_schema=False, empty_string_is_null=False)
    nulls = pl.lit(pl.Series(spec.null_values, dtype=pl.String)).implode()
    checks, values = [], []
    for c in spec.columns:
        s = pl.col(c.name)
        trimmed = s.str.strip_chars()
        null = s.is_in(nulls) | trimmed.is_in(nulls)
        text = s if c.type == "string" else trimmed
        bad = []
        if c.required:
            bad.append(null)
        if c.allowed is not None:
            bad.append(~null & ~trimmed.is_in(pl.lit(pl.Series(c.allowed)).implode()))
        if c.type == "string":
            value = text
        elif c.type == "float":
            value = text.cast(pl.Float64, strict=False)
            bad.append(~null & ~value.is_finite().fill_null(False))
        elif c.type == "integer":
            value = pl.when(text.str.contains(specmod.INTEGER_RE)).then(text.cast(pl.Int64, strict=False))
            bad.append(~null & value.is_null())
        elif c.type == "boolean":
            low = text.str.to_lowercase()
            value = low.is_in(specmod.BOOL_TRUE)
            bad.append(~null & ~(low.is_in(specmod.BOOL_TRUE) | low.is_in(specmod.BOOL_FALSE)))
        elif c.type == "date":
            value = pl.coalesce([text.str.to_date(f, strict=False) for f in c.formats])
            bad.append(~null & value.is_null())
        else:
            sys.exit(f"unsupported type {c.type}")
        if c.min is not None:
            bad.append((value < c.min).fill_null(False))
        if c.max is not None:
            bad.append((value > c.max).fill_null(False))
        if c.pattern is not None:
            bad.append(~null & ~text.str.contains(c.pattern).fill_null(False))
        checks.append(pl.any_horizontal(bad).alias(f"__bad_{c.name}") if bad else pl.lit(False))
        values.append(pl.when(null).then(None).otherwise(value).alias(c.name))

    df = raw.with_row_index("__row").select(pl.col("__row"), *values, pl.any_horizontal(checks).alias("__bad"))
    candidates = df.filter(~pl.col("__bad"))
    # The unique key: the later of two valid rows with the same key is invalid.
    if spec.key:
        candidates = candidates.filter(pl.struct(spec.key).is_first_distinct())
    valid = candidates.drop("__bad")
    raw.with_row_index("__row").join(valid.select("__row"), on="__row", how="anti").drop("__row").write_csv(
        os.path.join(out, "invalid.csv")
    )
    valid = valid.drop("__row")
    valid.write_csv(os.path.join(out, "valid.csv"))

    lo, hi = pl.lit(spec.window[0]).str.to_date(), pl.lit(spec.window[1]).str.to_date()
    kept = valid.filter(pl.col(spec.filter_column).is_between(lo, hi))
    kept.write_csv(os.path.join(out, "filtered.csv"))

    stats = {}
    agg = kept.select(
        [
            e
            for name in spec.stats
            for e in (
                pl.col(name).count().alias(f"{name}|count"),
                pl.col(name).cast(pl.Float64).mean().alias(f"{name}|mean"),
                pl.col(name).cast(pl.Float64).min().alias(f"{name}|min"),
                pl.col(name).cast(pl.Float64).max().alias(f"{name}|max"),
                pl.col(name).cast(pl.Float64).sum().alias(f"{name}|sum"),
                pl.col(name).cast(pl.Float64).std(ddof=1).alias(f"{name}|stddev"),
            )
        ]
    ).row(0, named=True)
    for key, v in agg.items():
        name, what = key.split("|")
        stats.setdefault(name, {})[what] = int(v) if what == "count" else float(v)

    # Month partitions, CSV and Parquet.
    pc = pl.col(spec.partition_column)
    parts = kept.with_columns(pc.dt.year().alias("__y"), pc.dt.month().alias("__m")).partition_by(
        ["__y", "__m"], as_dict=True
    )
    for (y, m), part in parts.items():
        d = os.path.join(out, "curated", f"year={y:04d}", f"month={m:02d}")
        os.makedirs(d, exist_ok=True)
        part = part.drop("__y", "__m")
        part.write_csv(os.path.join(d, "part.csv"))
        part.write_parquet(os.path.join(d, "part.parquet"))

    # One chart: per x value the lowest and highest of each series.
    per_x = (
        kept.group_by(spec.plot_x)
        .agg([e for y in spec.plot_y for e in (pl.col(y).min().alias(f"{y} (min)"), pl.col(y).max().alias(f"{y} (max)"))])
        .sort(spec.plot_x)
    )
    fig, ax = plt.subplots(figsize=(12, 6), dpi=100)
    for col in per_x.columns[1:]:
        ax.plot(per_x[spec.plot_x].to_numpy(), per_x[col].to_numpy(), linewidth=0.5, label=col)
    ax.set_title(spec.plot_title)
    ax.legend()
    fig.savefig(os.path.join(out, "plot.png"))

    specmod.report(raw.height, valid.height, kept.height, stats)


if __name__ == "__main__":
    main()

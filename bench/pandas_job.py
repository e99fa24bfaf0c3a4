#!/usr/bin/env python3
"""The Sluice pipeline written the usual pandas way (a Glue Python-shell style job).

    pandas_job.py FILE SPEC DATASET OUT_DIR

Reads the whole file as text, type-checks every column as the spec says, splits valid and invalid
rows (a repeated key makes the later valid row invalid), keeps the filter window, computes count,
mean, min, max, sum and sample stddev, writes month partitions as CSV and Parquet and one PNG chart.
Prints one JSON line with the row counts and stats (bench/spec.py `report`).
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec as specmod  # noqa: E402


def main() -> None:
    path, spec_path, dataset, out = sys.argv[1:5]
    spec = specmod.load(spec_path, dataset)
    os.makedirs(out, exist_ok=True)

    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    n = len(raw)
    bad = np.zeros(n, dtype=bool)
    typed = {}
    for c in spec.columns:
        s = raw[c.name]
        trimmed = s.str.strip()
        null = (s.isin(spec.null_values) | trimmed.isin(spec.null_values)).to_numpy()
        if c.required:
            bad |= null
        text = s if c.type == "string" else trimmed
        if c.allowed is not None:
            bad |= ~null & ~trimmed.isin(c.allowed).to_numpy()
        if c.type == "string":
            value = text
        elif c.type == "float":
            value = pd.to_numeric(text.where(~null), errors="coerce")
            bad |= ~null & ~np.isfinite(value.to_numpy(dtype=float, na_value=np.nan))
        elif c.type == "integer":
            looks = text.str.match(specmod.INTEGER_RE).to_numpy(dtype=bool, na_value=False)
            value = pd.to_numeric(text.where(~null & looks), errors="coerce").astype("Int64")
            bad |= ~null & value.isna().to_numpy()
        elif c.type == "boolean":
            low = text.str.lower()
            value = low.isin(specmod.BOOL_TRUE).where(~null)
            bad |= ~null & ~(low.isin(specmod.BOOL_TRUE) | low.isin(specmod.BOOL_FALSE)).to_numpy()
        elif c.type == "date":
            value = pd.Series(pd.NaT, index=s.index, dtype="datetime64[s]")
            for fmt in c.formats:
                todo = value.isna() & ~null
                value[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
            bad |= ~null & value.isna().to_numpy()
        else:
            sys.exit(f"unsupported type {c.type}")
        if c.min is not None:
            bad |= (value < c.min).fillna(False).to_numpy(dtype=bool)
        if c.max is not None:
            bad |= (value > c.max).fillna(False).to_numpy(dtype=bool)
        if c.pattern is not None:
            bad |= ~null & ~text.str.contains(c.pattern, regex=True).to_numpy(dtype=bool, na_value=False)
        typed[c.name] = value.where(~null) if c.type != "string" else value.where(~null, None)

    df = pd.DataFrame(typed)
    valid = df[~bad]
    # The unique key: the later of two valid rows with the same key is invalid.
    if spec.key:
        valid = valid[~valid.duplicated(subset=spec.key, keep="first")]
    raw[~raw.index.isin(valid.index)].to_csv(os.path.join(out, "invalid.csv"), index=False)
    valid.to_csv(os.path.join(out, "valid.csv"), index=False, date_format="%Y-%m-%d")

    lo, hi = pd.Timestamp(spec.window[0]), pd.Timestamp(spec.window[1])
    when = valid[spec.filter_column]
    kept = valid[(when >= lo) & (when <= hi)]
    kept.to_csv(os.path.join(out, "filtered.csv"), index=False, date_format="%Y-%m-%d")

    stats = {}
    for name in spec.stats:
        x = kept[name].dropna().astype(float)
        stats[name] = {
            "count": int(x.count()),
            "mean": float(x.mean()),
            "min": float(x.min()),
            "max": float(x.max()),
            "sum": float(x.sum()),
            "stddev": float(x.std(ddof=1)),
        }

    # Month partitions, CSV and Parquet.
    month = kept[spec.partition_column].dt.to_period("M")
    for period, part in kept.groupby(month):
        d = os.path.join(out, "curated", f"year={period.year:04d}", f"month={period.month:02d}")
        os.makedirs(d, exist_ok=True)
        part.to_csv(os.path.join(d, "part.csv"), index=False, date_format="%Y-%m-%d")
        part.to_parquet(os.path.join(d, "part.parquet"), index=False)

    # One chart: per x value the lowest and highest of each series (what fits in 1200 px anyway).
    agg = kept.groupby(spec.plot_x)[spec.plot_y].agg(["min", "max"])
    fig, ax = plt.subplots(figsize=(12, 6), dpi=100)
    for y in spec.plot_y:
        ax.plot(agg.index, agg[(y, "min")], linewidth=0.5, label=f"{y} (min)")
        ax.plot(agg.index, agg[(y, "max")], linewidth=0.5, label=f"{y} (max)")
    ax.set_title(spec.plot_title)
    ax.legend()
    fig.savefig(os.path.join(out, "plot.png"))

    specmod.report(n, len(valid), len(kept), stats)


if __name__ == "__main__":
    main()

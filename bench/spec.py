"""The dataset spec (bench/bench.toml) as the pandas and Polars jobs need it.

Both jobs read the same TOML Sluice reads, so a rule changed there is changed for all three engines.
Only what bench.toml uses is supported: column types string/integer/float/boolean/date, required,
min, max, pattern, allowed, a `between:FROM..TO` window, month partitions and one plot.
"""

import json
import sys
import tomllib
from dataclasses import dataclass, field


@dataclass
class Column:
    name: str
    type: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    allowed: list[str] | None = None
    formats: list[str] = field(default_factory=list)


@dataclass
class Spec:
    name: str
    columns: list[Column]
    null_values: list[str]
    key: list[str]
    filter_column: str
    window: tuple[str, str]
    stats: list[str]
    partition_column: str
    plot_x: str
    plot_y: list[str]
    plot_title: str


def load(path: str, dataset: str) -> Spec:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    ds = next(d for d in doc["dataset"] if d["name"] == dataset)
    cols = [
        Column(
            name=c["name"],
            type=c["type"],
            required=c.get("required", False),
            min=c.get("min"),
            max=c.get("max"),
            pattern=c.get("pattern"),
            allowed=c.get("allowed"),
            formats=c.get("formats", ["%Y-%m-%d"]),
        )
        for c in ds["columns"]
    ]
    window = ds["filter"]["window"]
    if not window.startswith("between:"):
        sys.exit(f"bench jobs support only between: windows, not {window}")
    lo, hi = window.removeprefix("between:").split("..")
    if ds["partition"].get("granularity", "month") != "month":
        sys.exit("bench jobs support only month partitions")
    plot = ds["plot"][0]
    return Spec(
        name=ds["name"],
        columns=cols,
        null_values=ds.get("format", {}).get("null_values", [""]),
        key=ds.get("key", []),
        filter_column=ds["filter"]["column"],
        window=(lo, hi),
        stats=ds["stats"]["columns"],
        partition_column=ds["partition"]["column"],
        plot_x=plot["x"],
        plot_y=plot["y"],
        plot_title=plot.get("title", ""),
    )


BOOL_TRUE = ["true", "t", "yes", "y", "1"]
BOOL_FALSE = ["false", "f", "no", "n", "0"]
INTEGER_RE = r"^[+-]?[0-9]+$"


def report(total: int, valid: int, filtered: int, stats: dict) -> None:
    """Prints the result line the harness compares with Sluice's run summary."""
    out = {"rows": {"total": total, "valid": valid, "invalid": total - valid, "filtered": filtered}, "stats": stats}
    print(json.dumps(out))

#!/usr/bin/env python3
"""Deterministic benchmark data: stock-price-like and orders-like CSV files of a given size.

    gen.py stocks 100M bench/data/stocks-100M.csv
    gen.py orders 1G   bench/data/orders-1G.csv

The same (kind, size, seed) always gives the same bytes. About 1% of the rows are invalid in ways the
spec in bench/bench.toml catches (bad numbers, impossible dates, values below a minimum, required
fields left empty, patterns and enums broken, repeated keys), so every engine does real validation
work. Rows are built in vectorised chunks with Polars, so a 1 GB file takes well under a minute.

Not generated: rows with the wrong number of fields. Sluice reports them as invalid, but neither
pandas' nor Polars' CSV readers can keep such a row and count it without a slow line-by-line path,
so including them would make the comparison about CSV reader modes rather than the pipeline.
"""

import sys

import numpy as np
import polars as pl

CHUNK_ROWS = 1_000_000
DAYS = 3652  # 2015-01-01 .. 2024-12-31: every month of ten years in every file
START = np.datetime64("2015-01-01")


def parse_size(s: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip().upper().rstrip("B")
    return int(float(s[:-1]) * units[s[-1]]) if s[-1] in units else int(s)


def money(cents: pl.Expr) -> pl.Expr:
    """Integer cents as `123.45` text."""
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))


def inject(df: pl.DataFrame, rng: np.random.Generator, col: str, share: float, bad: str) -> pl.DataFrame:
    mask = rng.random(df.height) < share
    return df.with_columns(pl.when(pl.Series(mask)).then(pl.lit(bad)).otherwise(pl.col(col)).alias(col))


def stocks_chunk(first: int, n: int, rng: np.random.Generator) -> pl.DataFrame:
    # Row i is symbol i // DAYS on day i % DAYS: every symbol covers all ten years, so keys
    # (symbol, date) stay distinct however large the file is.
    i = np.arange(first, first + n, dtype=np.int64)
    sym, day = i // DAYS, i % DAYS
    # A smooth per-symbol price plus noise, in cents.
    base = 2000 + (sym * 7919) % 50000
    wave = (np.sin(day / 90.0 + sym) * 0.2 * base).astype(np.int64)
    close = base + wave + rng.integers(-200, 200, n)
    open_ = close + rng.integers(-150, 150, n)
    high = np.maximum(open_, close) + rng.integers(0, 300, n)
    low = np.maximum(np.minimum(open_, close) - rng.integers(0, 300, n), 1)
    df = pl.DataFrame(
        {
            "sym": sym,
            "date": (START + day.astype("timedelta64[D]")),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1_000, 50_000_000, n),
        }
    ).select(
        pl.format("S{}", pl.col("sym").cast(pl.String).str.zfill(5)).alias("symbol"),
        pl.col("date").dt.strftime("%Y-%m-%d").alias("date"),
        money(pl.col("open")).alias("open"),
        money(pl.col("high")).alias("high"),
        money(pl.col("low")).alias("low"),
        money(pl.col("close")).alias("close"),
        pl.col("volume").cast(pl.String).alias("volume"),
    )
    # Invalid rows (each about 0.2%), plus optional nulls that stay valid.
    df = inject(df, rng, "open", 0.002, "n/a")  # not a number
    df = inject(df, rng, "volume", 0.002, "-5")  # below the minimum 0
    df = inject(df, rng, "high", 0.002, "")  # required but empty
    df = inject(df, rng, "date", 0.001, "2021-02-30")  # impossible date
    df = inject(df, rng, "open", 0.003, "NA")  # null in an optional column: valid
    # Repeated keys: the date of the row before (same symbol), which makes this row the later
    # duplicate when the earlier one is valid.
    dup = pl.Series(rng.random(n) < 0.002) & pl.Series(day > 0)
    prev = (pl.Series(START + (day - 1).astype("timedelta64[D]"))).dt.strftime("%Y-%m-%d")
    df = df.with_columns(pl.when(dup).then(prev).otherwise(pl.col("date")).alias("date"))
    return df


def orders_chunk(first: int, n: int, rng: np.random.Generator) -> pl.DataFrame:
    i = np.arange(first, first + n, dtype=np.int64)
    day = rng.integers(0, DAYS, n)
    dates = pl.Series(START + day.astype("timedelta64[D]"))
    # One order in ten writes its date day-first, the second format of the spec.
    dmy = rng.random(n) < 0.1
    status = np.array(["new", "paid", "shipped", "cancelled"])[rng.integers(0, 4, n)]
    paid = np.array(["yes", "no", "true", "false", ""])[rng.integers(0, 5, n)]
    df = pl.DataFrame(
        {
            "id": i + 1,
            "cust": rng.integers(1, 2_000_000, n),
            "status": status,
            "amount": rng.integers(0, 100_000, n),
            "quantity": rng.integers(1, 21, n),
            "paid": paid,
        }
    ).select(
        pl.format("ORD-{}", pl.col("id").cast(pl.String).str.zfill(9)).alias("order_id"),
        pl.format("customer{}@example.com", pl.col("cust")).alias("customer_email"),
        pl.col("status"),
        money(pl.col("amount")).alias("amount"),
        pl.col("quantity").cast(pl.String).alias("quantity"),
        pl.when(pl.Series(dmy))
        .then(dates.dt.strftime("%d/%m/%Y"))
        .otherwise(dates.dt.strftime("%Y-%m-%d"))
        .alias("order_date"),
        pl.col("paid"),
    )
    df = inject(df, rng, "customer_email", 0.002, "not-an-email")  # pattern
    df = inject(df, rng, "status", 0.002, "lost")  # not allowed
    df = inject(df, rng, "amount", 0.002, "-1.00")  # below the minimum
    df = inject(df, rng, "quantity", 0.001, "5000")  # above the maximum
    df = inject(df, rng, "order_date", 0.001, "31/02/2024")  # impossible date
    df = inject(df, rng, "paid", 0.001, "maybe")  # not a boolean
    # Repeated keys: the id of the order before.
    dup = pl.Series(rng.random(n) < 0.002) & pl.Series(i > 0)
    prev = pl.format("ORD-{}", pl.Series(i).cast(pl.String).str.zfill(9))
    df = df.with_columns(pl.when(dup).then(prev).otherwise(pl.col("order_id")).alias("order_id"))
    return df


def main() -> None:
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: gen.py stocks|orders SIZE OUT [SEED]")
    kind, size, out = sys.argv[1], parse_size(sys.argv[2]), sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) == 5 else 42
    chunk = {"stocks": stocks_chunk, "orders": orders_chunk}[kind]
    rng = np.random.default_rng(seed)
    written, first = 0, 0
    with open(out, "wb") as f:
        header = True
        while written < size:
            df = chunk(first, CHUNK_ROWS, rng)
            text = df.write_csv(include_header=header, quote_style="necessary").encode()
            header = False
            if written + len(text) > size:
                # Cut at a line end so the file is close to the asked size and still well formed.
                cut = text.rfind(b"\n", 0, size - written) + 1
                text = text[:cut] if cut > 0 else text[: text.find(b"\n") + 1]
            f.write(text)
            written += len(text)
            first += CHUNK_ROWS
    print(f"{out}: {written} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()

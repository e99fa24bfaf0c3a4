#!/usr/bin/env python3
"""Runs Sluice, pandas and Polars on the same files, checks that they agree, and reports speed.

    harness.py --sluice target/release/sluice --sizes 100M 1G [--kinds stocks orders]

For every (kind, size): generates bench/data/{kind}-{size}.csv if missing (bench/gen.py), then runs,
one after another, each as its own process:
  sluice        `sluice run` embedded with store_rows = false (dataset `{kind}`)
  sluice+store  the same with store_rows = true (dataset `{kind}_stored`)
  pandas        bench/pandas_job.py
  polars        bench/polars_job.py
Wall time is measured around the process; peak RSS is the process's own ru_maxrss from wait4.
Before any speed is printed, every engine's row counts must equal Sluice's and every statistic must
agree to 1e-9 relative; a disagreement stops the harness with exit code 1 and says where.
Writes bench/results/latest.md and latest.json.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
REL_TOL = 1e-9


def parse_size(s: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip().upper().rstrip("B")
    return int(float(s[:-1]) * units[s[-1]]) if s[-1] in units else int(s)


def run(cmd: list[str], log: str) -> tuple[float, int, str]:
    """Runs cmd; returns (wall seconds, peak RSS bytes, stdout). Fails loudly on a non-zero exit."""
    with open(log, "w") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        out = p.stdout.read().decode()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"FAILED ({p.returncode}): {' '.join(cmd)}\n  see {log}")
    return wall, usage.ru_maxrss * 1024, out


def last_json(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"no JSON result line in the output:\n{out[-2000:]}")
    return json.loads(lines[-1])


def normalise_sluice(summary: dict) -> dict:
    if summary.get("status") != "SUCCEEDED":
        raise SystemExit(f"sluice run did not succeed: {json.dumps(summary)[:2000]}")
    rows = summary["rows"]
    return {"rows": {k: rows[k] for k in ("total", "valid", "invalid", "filtered")}, "stats": summary["stats"]}


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)


def compare(name: str, ref: dict, got: dict, where: str) -> list[str]:
    errors = []
    if ref["rows"] != got["rows"]:
        errors.append(f"{where}: {name} rows {got['rows']} != sluice {ref['rows']}")
    for col, rs in ref["stats"].items():
        gs = got["stats"].get(col)
        if gs is None:
            errors.append(f"{where}: {name} has no stats for {col}")
            continue
        for k in ("count", "mean", "min", "max", "sum", "stddev"):
            if not close(rs.get(k), gs.get(k)):
                errors.append(f"{where}: {name} {col}.{k} = {gs.get(k)!r}, sluice {rs.get(k)!r}")
    return errors


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return f"{os.cpu_count()} cores, {cpu}, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--sizes", nargs="+", default=["100M", "1G"])
    ap.add_argument("--kinds", nargs="+", default=["stocks", "orders"])
    ap.add_argument("--tools", nargs="+", default=["sluice", "sluice+store", "pandas", "polars"])
    args = ap.parse_args()

    data = os.path.join(HERE, "data")
    work = os.path.join(data, "work")
    results = os.path.join(HERE, "results")
    os.makedirs(work, exist_ok=True)
    os.makedirs(results, exist_ok=True)
    spec = os.path.join(HERE, "bench.toml")
    load_before = os.getloadavg()

    measured = []
    for kind in args.kinds:
        for size in args.sizes:
            path = os.path.join(data, f"{kind}-{size}.csv")
            if not os.path.exists(path):
                print(f"generating {path}", file=sys.stderr)
                subprocess.run([PY, os.path.join(HERE, "gen.py"), kind, size, path], check=True)
            nbytes = os.path.getsize(path)
            cmds = {
                "sluice": lambda out, ds=kind: [args.sluice, "run", path, "--config", spec, "--dataset", ds,
                                                "--data-dir", out, "--as-of", "2024-12-31", "--json"],
                "sluice+store": lambda out, ds=f"{kind}_stored": [args.sluice, "run", path, "--config", spec,
                                                                   "--dataset", ds, "--data-dir", out,
                                                                   "--as-of", "2024-12-31", "--json"],
                "pandas": lambda out: [PY, os.path.join(HERE, "pandas_job.py"), path, spec, kind, out],
                "polars": lambda out: [PY, os.path.join(HERE, "polars_job.py"), path, spec, kind, out],
            }
            got = {}
            for tool in args.tools:
                out = os.path.join(work, f"{tool}-{kind}-{size}")
                shutil.rmtree(out, ignore_errors=True)
                print(f"{kind} {size}: {tool} ...", file=sys.stderr, flush=True)
                wall, rss, stdout = run(cmds[tool](out), os.path.join(work, f"{tool}-{kind}-{size}.log"))
                result = last_json(stdout)
                if tool.startswith("sluice"):
                    result = normalise_sluice(result)
                got[tool] = result
                measured.append({"kind": kind, "size": size, "bytes": nbytes, "tool": tool, "wall_s": wall,
                                 "peak_rss_bytes": rss, "rows": result["rows"]["total"]})
                shutil.rmtree(out, ignore_errors=True)
                print(f"  {wall:.2f} s, {rss / (1 << 20):.0f} MiB", file=sys.stderr, flush=True)
            # Agreement first: no speed is reported for engines that did not do the same work.
            ref = got.get("sluice") or got.get("sluice+store")
            errors = []
            if ref is not None:
                for tool, result in got.items():
                    errors += compare(tool, ref, result, f"{kind}-{size}")
            if errors:
                print("DISAGREEMENT (no speeds reported):\n  " + "\n  ".join(errors), file=sys.stderr)
                sys.exit(1)

    for m in measured:
        m["mb_per_s"] = m["bytes"] / 1e6 / m["wall_s"]
        m["rows_per_s"] = m["rows"] / m["wall_s"]
    for m in measured:
        base = {x["tool"]: x["wall_s"] for x in measured if x["kind"] == m["kind"] and x["size"] == m["size"]}
        m["sluice_speedup"] = m["wall_s"] / base["sluice"] if "sluice" in base else None

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_after = os.getloadavg()
    meta = {
        "date": now,
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        "command": "bench/run.sh " + " ".join(args.sizes),
        "agreement": f"row counts equal, stats within {REL_TOL} relative, for every engine",
    }
    with open(os.path.join(results, "latest.json"), "w") as f:
        json.dump({"meta": meta, "results": measured}, f, indent=2)

    lines = [
        f"Measured {now} on {meta['machine']}; load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f}. `{meta['command']}`. All engines agreed on row counts and stats (1e-9).",
        "",
        "| data | size | engine | wall s | MB/s | rows/s | peak RSS MiB | Sluice is N x faster |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        speed = f"{m['sluice_speedup']:.1f}" if m["sluice_speedup"] is not None else ""
        lines.append(
            f"| {m['kind']} | {m['size']} | {m['tool']} | {m['wall_s']:.2f} | {m['mb_per_s']:.0f} | "
            f"{m['rows_per_s'] / 1e6:.2f} M | {m['peak_rss_bytes'] / (1 << 20):.0f} | {speed} |"
        )
    table = "\n".join(lines) + "\n"
    with open(os.path.join(results, "latest.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()

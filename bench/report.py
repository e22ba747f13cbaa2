#!/usr/bin/env python3
"""Turns weft_bench's JSON (with repetitions) into docs/benchmarks.md and a chart.

Rows are named <operation>/<backend>/<weft|raw>[/real_time|/process_time]; a weft row is paired
with the raw row of the same operation and backend, and each figure is the median of the
repetitions. Usage: report.py RESULTS.json OUT.md OUT.svg
"""
import json
import os
import platform
import subprocess
import sys
from collections import defaultdict

# What each operation measures, how to read its figure, and weft's target for it.
OPERATIONS = [
    ("call_soon_batch", "call_soon: 1,000 callbacks queued from the loop thread, then run", "ns/callback"),
    ("call_soon_chain", "call_soon: a chain, each callback queuing the next (one loop turn per link)", "ns/link"),
    ("loop_turn", "one loop iteration with nothing to do", "ns/turn"),
    ("timers_arm", "arm one of 1,000,000 timers (deadlines spread over 1..50 ms), CPU", "ns/timer"),
    ("timers_fire", "dispatch one of 1,000,000 timers, CPU", "ns/timer"),
    ("timers_churn", "arm and cancel a timer", "ns/pair"),
    ("xthread_rtt_same_cpu", "cross-thread round trip, both threads on CPU 0", "ns/round trip"),
    ("xthread_rtt_cross_cpu", "cross-thread round trip, loop on CPU 0, caller on CPU 1", "ns/round trip"),
    ("xthread_flood_1", "cross-thread flood from 1 thread, every delivery counted", "ns/call"),
    ("xthread_flood_2", "cross-thread flood from 2 threads", "ns/call"),
    ("xthread_flood_4", "cross-thread flood from 4 threads", "ns/call"),
    ("fd_chain_100", "fd readiness: a byte along a ring of 100 socketpairs (libevent's bench.c)", "ns/hop"),
    ("fd_chain_1000", "fd readiness: a ring of 1,000 socketpairs", "ns/hop"),
    ("coro_spawn", "spawn and finish a trivial task (raw: post a callback)", "ns/task"),
    ("coro_sleep0", "co_await sleep(0) (raw: a chain link)", "ns/yield"),
    ("coro_await_ready", "co_await a fired Deferred (no raw equivalent)", "ns/await"),
    ("runner_blocking", "blocking run() of a trivial task, reused reactor (raw: one loop turn running one callback)", "ns/run"),
    ("runner_blocking_fresh", "blocking run() with a fresh runner and reactor (raw: make a loop, one callback, destroy)", "ns/run"),
    ("runner_threaded", "threaded run() of a trivial task (raw: cross-thread round trip)", "ns/run"),
    ("runner_host", "host run() into a poll-loop host thread (raw: cross-thread round trip)", "ns/run"),
]
BACKENDS = ["libuv", "libevent", "asio"]


def figure(row):
    """ns per item (or per iteration when the benchmark counts no items)."""
    if "items_per_second" in row and row["items_per_second"] > 0:
        return 1e9 / row["items_per_second"]
    time = row["real_time"] if row["name"].endswith("/real_time") else row["cpu_time"]
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[row.get("time_unit", "ns")]
    return time * scale


def load(path):
    with open(path) as f:
        data = json.load(f)
    medians = {}
    counters = defaultdict(dict)
    for row in data["benchmarks"]:
        if row.get("run_type") == "aggregate" and row.get("aggregate_name") != "median":
            continue
        name = row.get("run_name", row["name"])
        parts = name.split("/")
        if len(parts) < 3:
            continue
        op, backend, impl = parts[0], parts[1], parts[2]
        medians[(op, backend, impl)] = figure(row)
        for key in ("bytes_per_timer", "bytes_per_task"):
            if key in row:
                counters[(op, backend, impl)][key] = row[key]
    return data.get("context", {}), medians, counters


def fmt(ns):
    if ns is None:
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f} ns"


def targets(medians):
    """The issue's targets, each checked against this run."""
    rows = []
    for backend in BACKENDS:
        soon = medians.get(("call_soon_batch", backend, "weft"))
        if soon is not None:
            rows.append((f"`call_soon` under 30 ns per callback ({backend})", f"{soon:.1f} ns", soon < 30))
        run = medians.get(("runner_blocking", backend, "weft"))
        if run is not None:
            rows.append((f"blocking `run` of a trivial task, reused reactor, under 1 us ({backend})",
                         fmt(run), run < 1000))
        weft, raw = medians.get(("runner_threaded", backend, "weft")), medians.get(("runner_threaded", backend, "raw"))
        if weft and raw:
            rows.append((f"threaded runner round trip within 1.2x of {backend}'s own", f"{weft / raw:.2f}x",
                         weft / raw <= 1.2))
    over = []
    for op, _, _ in OPERATIONS:
        for backend in BACKENDS:
            weft, raw = medians.get((op, backend, "weft")), medians.get((op, backend, "raw"))
            if weft and raw and weft / raw > 1.10:
                over.append(f"{op} ({backend}) {weft / raw:.2f}")
    rows.append(("weft/raw at most 1.10 on every row", f"{len(over)} rows above", not over))
    out = ["## Targets", "", "| target | this run | met |", "|---|---|---|"]
    out += [f"| {what} | {got} | {'yes' if ok else '**no**'} |" for what, got, ok in rows]
    if over:
        out += ["", "Rows above 1.10: " + "; ".join(over) + "."]
    return out + [""]


def chart(medians, path):
    """A bar chart of weft/raw per operation and backend, with lines at 1.0 and 1.1."""
    rows = []
    for op, _, _ in OPERATIONS:
        for backend in BACKENDS:
            weft, raw = medians.get((op, backend, "weft")), medians.get((op, backend, "raw"))
            if weft and raw:
                rows.append((f"{op} ({backend})", weft / raw))
    if not rows:
        return
    colours = {"libuv": "#4e79a7", "libevent": "#f28e2b", "asio": "#59a14f"}
    top = max(2.0, min(5.0, max(r for _, r in rows) * 1.05))
    label_w, bar_w, row_h, pad = 300, 520, 16, 30
    height = pad * 2 + row_h * len(rows)
    x = lambda v: label_w + bar_w * min(v, top) / top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="{label_w}" y="16" font-size="13">weft time / raw library time (lower is better; '
           'median of repetitions)</text>']
    for i, (label, ratio) in enumerate(rows):
        y = pad + i * row_h
        backend = label[label.rindex("(") + 1:-1]
        out.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 2}" width="{x(ratio) - label_w:.1f}" height="{row_h - 4}" '
                   f'fill="{colours.get(backend, "#999")}"/>')
        out.append(f'<text x="{x(ratio) + 4:.1f}" y="{y + 11}">{ratio:.2f}</text>')
    for v, dash in ((1.0, ""), (1.1, ' stroke-dasharray="4,3"')):
        out.append(f'<line x1="{x(v):.1f}" y1="{pad - 4}" x2="{x(v):.1f}" y2="{height - pad + 4}" '
                   f'stroke="#333"{dash}/>')
        out.append(f'<text x="{x(v):.1f}" y="{height - pad + 16}" text-anchor="middle">{v:.1f}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(results, md_path, svg_path):
    context, medians, counters = load(results)
    chart(medians, svg_path)
    lines = ["# weft benchmarks", "",
             "Generated by `cmake/bench.sh` (Release build, `bench/report.py`); do not edit by hand.",
             "Every figure is the **median** of the repetitions; weft and the raw library ran the same",
             "work in the same run (`bench/weft_benchmarks.cc` beside `bench/raw_<backend>.cc`).",
             "Ratios are weft/raw: below 1.00 weft is faster.", "",
             "## Machine", ""]
    lines.append(f"* {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz, "
                 f"{platform.system()} {platform.release()}, load average at start "
                 f"{', '.join(f'{x:.2f}' for x in context.get('load_avg', []))}")
    lines.append(f"* run {context.get('date', '?')}, {context.get('executable', 'weft_bench')}")
    try:
        versions = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\\n", "libuv1-dev",
                                   "libevent-dev", "libboost1.81-dev", "libbenchmark-dev"],
                                  capture_output=True, text=True, check=False).stdout.split("\n")
        lines.append("* " + ", ".join(v for v in versions if v))
    except OSError:
        pass
    lines += ["", "![weft/raw per operation](benchmarks.svg)", ""]
    lines += targets(medians)
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read().rstrip(), ""]
    for op, title, unit in OPERATIONS:
        present = [b for b in BACKENDS if (op, b, "weft") in medians or (op, b, "raw") in medians]
        if not present:
            continue
        lines += [f"## `{op}`: {title}", "", f"| backend | weft ({unit}) | raw ({unit}) | weft/raw |",
                  "|---|---|---|---|"]
        for backend in present:
            weft, raw = medians.get((op, backend, "weft")), medians.get((op, backend, "raw"))
            ratio = f"{weft / raw:.2f}" if weft and raw else "-"
            lines.append(f"| {backend} | {fmt(weft)} | {fmt(raw)} | {ratio} |")
        lines.append("")
    mem = [(k, v) for k, v in counters.items()]
    if mem:
        lines += ["## Memory", "", "| what | backend | weft | raw |", "|---|---|---|---|"]
        for key, op in (("bytes_per_timer", "timers_arm"), ("bytes_per_task", "coro_suspended_bytes")):
            for backend in BACKENDS:
                weft = counters.get((op, backend, "weft"), {}).get(key)
                raw = counters.get((op, backend, "raw"), {}).get(key)
                if weft is None and raw is None:
                    continue
                f = lambda v: "-" if v is None else f"{v:.0f} B"
                lines.append(f"| {key.replace('_', ' ')} | {backend} | {f(weft)} | {f(raw)} |")
        lines.append("")
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])

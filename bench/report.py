#!/usr/bin/env python3
"""Turns weft_bench's JSON (every repetition) into docs/benchmarks.md and a chart.

Rows are named <operation>/<backend>/<side>[/iterations:N][/real_time|/process_time]; <side> is
weft, raw (the library doing the same mechanism: the ratio's denominator) or raw_<idiom> (another
idiom of the library, shown beside it). Each figure is the median of the repetitions; the
spread is the coefficient of variation (CV = stddev / mean) of the repetitions. A ratio is
"within noise" when the two sides' intervals median * (1 +- CV) overlap.
Usage: report.py RESULTS.json OUT.md OUT.svg
"""
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict

# Like-for-like rows: weft and the raw library do the same work by the same mechanism.
# (operation, title, unit)
LIKE = [
    ("call_soon_batch", "call_soon: 1,000 callbacks queued from the loop thread, then run (raw: a user-level queue drained by one native event)", "ns/callback"),
    ("call_soon_chain", "call_soon: a chain, each callback queuing the next (one loop turn per link)", "ns/link"),
    ("loop_turn", "one loop iteration with nothing to do", "ns/turn"),
    ("timers_arm", "arm one of 1,000,000 timers (deadlines spread over 1..50 ms), CPU, warm structures", "ns/timer"),
    ("timers_fire", "dispatch one of 1,000,000 timers, CPU", "ns/timer"),
    ("timers_churn", "arm and cancel a timer inside a callback", "ns/pair"),
    ("xthread_rtt_same_cpu", "cross-thread round trip, both threads pinned to CPU 0", "ns/round trip"),
    ("xthread_rtt_cross_cpu", "cross-thread round trip, loop pinned to CPU 0, caller to CPU 1", "ns/round trip"),
    ("xthread_flood_1", "cross-thread flood from 1 thread, every delivery counted", "ns/call"),
    ("xthread_flood_2", "cross-thread flood from 2 threads", "ns/call"),
    ("xthread_flood_4", "cross-thread flood from 4 threads", "ns/call"),
    ("fd_chain_100", "fd readiness: a byte along a ring of 100 socketpairs (libevent's bench.c)", "ns/hop"),
    ("fd_chain_1000", "fd readiness: a ring of 1,000 socketpairs", "ns/hop"),
    ("fd_turn_idle0", "one active socketpair: write a byte, one turn reads it", "ns/turn"),
    ("fd_turn_idle_many", "the same beside 10,000 watched fds that never fire, or as many as the descriptor limit allows with weft's duplicates (does a turn stay flat?)", "ns/turn"),
    ("watch_churn", "watch an fd, one non-blocking turn, unwatch", "ns/cycle"),
    ("reactor_create_destroy", "make and destroy a loop (raw: the loop and the handles weft's backend makes)", "ns/loop"),
]
# Rows whose raw side is a floor or the nearest analogue, not the same work.
FLOOR = [
    ("coro_spawn", "spawn and finish a trivial task (raw: post a callback through the queue)", "ns/task"),
    ("coro_sleep0", "co_await sleep(0) (raw: a chain link)", "ns/yield"),
    ("runner_blocking", "blocking run() of a trivial task, reused reactor (raw: one loop turn running one callback)", "ns/run"),
    ("runner_blocking_fresh", "blocking run() with a fresh runner and reactor (raw: make a loop, one callback, destroy)", "ns/run"),
    ("runner_threaded", "threaded run() of a trivial task (raw: a cross-thread call, waited for on a condition variable as weft's runner waits)", "ns/run"),
    ("runner_host", "host run() into a poll-loop host thread (raw: the same floor as runner_threaded)", "ns/run"),
    ("runner_threaded_8_submitters", "threaded run() from 8 threads at once (raw: the same floor from 8 threads)", "ns/run"),
    ("runner_threaded_busy_cpu", "threaded run() with a pure-CPU busy loop on every CPU (raw: the floor, same neighbours)", "ns/run"),
    ("runner_threaded_busy_syscalls", "threaded run() with a write()-to-/dev/null loop on every CPU (`yes > /dev/null`)", "ns/run"),
]
# weft only: no raw equivalent.
WEFT_ONLY = [
    ("coro_await_ready", "co_await a fired Deferred", "ns/await"),
    ("spawn_task", "spawn a trivial task (concurrency rows' comparison)", "ns/task"),
    ("group_child", "one child started and finished in a task group", "ns/child"),
    ("group_open_close", "a task group opened and closed with no children", "ns/group"),
    ("when_all_1000", "when_all over 1,000 trivial tasks", "ns/task"),
    ("cancel_scope_deadline", "move_on_after around an awaited trivial task", "ns/scope"),
    ("cancel_scope_deadline_at", "move_on_at (deadline computed once) around an awaited trivial task", "ns/scope"),
    ("await_trivial", "co_await a trivial task", "ns/await"),
    ("context_get", "read a context variable", "ns/read"),
]
BACKENDS = ["libuv", "libevent", "asio", "any"]
LATENCY = ("p50_us", "p99_us")
MEMORY = ("bytes_per_timer", "bytes_per_task", "bytes_per_watch", "fds_per_watch", "idle_fds")


def figure(row):
    """ns per item (or per iteration when the benchmark counts no items)."""
    if row.get("items_per_second", 0) > 0:
        return 1e9 / row["items_per_second"]
    name = row["name"]
    time = row["real_time"] if "/real_time" in name else row["cpu_time"]
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[row.get("time_unit", "ns")]
    return time * scale


class Stat:
    """The repetitions of one row: median and CV of the figure, medians of the counters."""

    def __init__(self):
        self.values = []
        self.counters = defaultdict(list)
        self.error = None

    @property
    def median(self):
        return statistics.median(self.values) if self.values else None

    @property
    def cv(self):
        if len(self.values) < 2:
            return 0.0
        mean = statistics.fmean(self.values)
        return statistics.stdev(self.values) / mean if mean else 0.0

    def counter(self, key):
        values = self.counters.get(key)
        return statistics.median(values) if values else None


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = defaultdict(Stat)
    for row in data["benchmarks"]:
        if row.get("run_type") == "aggregate":
            continue
        parts = row.get("run_name", row["name"]).split("/")
        if len(parts) < 3:
            continue
        stat = rows[(parts[0], parts[1], parts[2])]
        if row.get("error_occurred"):
            stat.error = row.get("error_message", "error")
            continue
        stat.values.append(figure(row))
        for key in LATENCY + MEMORY:
            if key in row:
                stat.counters[key].append(row[key])
    return data.get("context", {}), rows


def fmt(ns):
    if ns is None:
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f} ns"


def cell(stat):
    if stat is None:
        return "-"
    if stat.error:
        return f"error: {stat.error}"
    return f"{fmt(stat.median)} ±{stat.cv * 100:.0f}%"


def ratio_of(weft, raw):
    """(ratio, within_noise) of two Stats, or None."""
    if weft is None or raw is None or not weft.values or not raw.values or not raw.median:
        return None
    r = weft.median / raw.median
    lo_w, hi_w = weft.median * (1 - weft.cv), weft.median * (1 + weft.cv)
    lo_r, hi_r = raw.median * (1 - raw.cv), raw.median * (1 + raw.cv)
    return r, lo_w <= hi_r and lo_r <= hi_w


def fmt_ratio(rn):
    if rn is None:
        return "-"
    r, noise = rn
    return f"{r:.2f}" + (" (within noise)" if noise else "")


def sides_of(rows, op, backend):
    """The raw idioms present for (op, backend), "raw" first."""
    sides = sorted({s for (o, b, s) in rows if o == op and b == backend and s.startswith("raw")})
    return sorted(sides, key=lambda s: (s != "raw", s))


def targets(rows):
    """The issue's targets, each checked against this run."""
    like, absolute = [], []
    over = []
    for op, _, _ in LIKE:
        for backend in BACKENDS:
            rn = ratio_of(rows.get((op, backend, "weft")), rows.get((op, backend, "raw")))
            if rn is None:
                continue
            r, noise = rn
            ok = r <= 1.05 or noise
            if not ok:
                over.append(f"{op} ({backend}) {r:.2f}")
    like.append(("like-for-like rows at weft/raw <= 1.05 (or within noise)",
                 f"{len(over)} rows above", not over))
    for backend in BACKENDS[:3]:
        def med(op, side="weft"):
            stat = rows.get((op, backend, side))
            return stat.median if stat and stat.values else None
        soon = med("call_soon_batch")
        if soon is not None:
            absolute.append((f"`call_soon` under 30 ns per callback ({backend})", fmt(soon), soon < 30))
        spawn = med("coro_spawn")
        if spawn is not None:
            absolute.append((f"spawn + finish of a task under 40 ns ({backend})", fmt(spawn), spawn < 40))
        churn = med("timers_churn")
        if churn is not None:
            absolute.append((f"`call_later` + cancel under 20 ns ({backend})", fmt(churn), churn < 20))
        run, floor = med("runner_blocking"), med("runner_blocking", "raw")
        if run and floor:
            absolute.append((f"blocking `run`, reused reactor, within 1.3x of one raw loop turn running one callback ({backend})",
                             f"{fmt(run)} = {run / floor:.2f}x", run / floor <= 1.3))
        rn = ratio_of(rows.get(("runner_threaded", backend, "weft")), rows.get(("runner_threaded", backend, "raw")))
        if rn:
            absolute.append((f"threaded runner within 1.2x of its floor ({backend})", fmt_ratio(rn),
                             rn[0] <= 1.2 or rn[1]))
        busy = rows.get(("runner_threaded_busy_cpu", backend, "weft"))
        floor_busy = rows.get(("runner_threaded_busy_cpu", backend, "raw"))
        if busy and busy.counter("p99_us") is not None:
            p99 = busy.counter("p99_us")
            ref = floor_busy.counter("p99_us") if floor_busy else None
            ok = p99 <= 180 or (ref is not None and p99 <= 1.2 * ref)
            absolute.append((f"threaded `run` p99 beside a pure-CPU loop per core under Crochet's 180 us, or within 1.2x of the floor's ({backend})",
                             f"{p99:.0f} us (floor {ref:.0f} us)" if ref is not None else f"{p99:.0f} us", ok))
    out = ["## Targets", "", "### Like-for-like rows (same work, same mechanism)", "",
           "| target | this run | met |", "|---|---|---|"]
    out += [f"| {what} | {got} | {'yes' if ok else '**no**'} |" for what, got, ok in like]
    if over:
        out += ["", "Above 1.05 and outside the noise: " + "; ".join(over) +
                ". Each is explained under \"Reading the results\"."]
    out += ["", "### Rows with no raw equivalent (absolute targets, or against a floor)", "",
            "| target | this run | met |", "|---|---|---|"]
    out += [f"| {what} | {got} | {'yes' if ok else '**no**'} |" for what, got, ok in absolute]
    return out + [""]


def chart(rows, path):
    """Log-scale chart of weft/raw per row, the spread as a bar of +-sqrt(CVw^2 + CVr^2)."""
    items = []
    for group, ops in (("like", LIKE), ("floor", FLOOR)):
        for op, _, _ in ops:
            for backend in BACKENDS:
                weft, raw = rows.get((op, backend, "weft")), rows.get((op, backend, "raw"))
                rn = ratio_of(weft, raw)
                if rn:
                    spread = math.sqrt(weft.cv ** 2 + raw.cv ** 2)
                    items.append((f"{op} ({backend})", rn[0], spread, group, rn[1]))
    if not items:
        return
    colours = {"libuv": "#4e79a7", "libevent": "#f28e2b", "asio": "#59a14f"}
    lo, hi = 1 / 16, 16.0
    label_w, plot_w, row_h, top, bottom = 330, 560, 15, 44, 40
    height = top + bottom + row_h * len(items)
    x = lambda v: label_w + plot_w * (math.log(min(max(v, lo), hi)) - math.log(lo)) / (math.log(hi) - math.log(lo))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 90}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{label_w}" y="16" font-size="13">weft time / raw library time, log scale '
           '(median of repetitions; bar: +-spread of both sides)</text>',
           f'<text x="{label_w}" y="32" fill="#555">left of 1: weft faster. Hollow dot: within noise. '
           'Grey rows: raw side is a floor or analogue, not the same work.</text>']
    for v in (0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16):
        out.append(f'<line x1="{x(v):.1f}" y1="{top - 4}" x2="{x(v):.1f}" y2="{height - bottom + 4}" '
                   f'stroke="{"#333" if v == 1 else "#ddd"}"/>')
        out.append(f'<text x="{x(v):.1f}" y="{height - bottom + 18}" text-anchor="middle">{v:g}</text>')
    out.append(f'<line x1="{x(1.05):.1f}" y1="{top - 4}" x2="{x(1.05):.1f}" y2="{height - bottom + 4}" '
               'stroke="#c00" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{x(1.05) + 3:.1f}" y="{top - 6}" fill="#c00">1.05</text>')
    for i, (label, ratio, spread, group, noise) in enumerate(items):
        y = top + i * row_h + row_h / 2
        backend = label[label.rindex("(") + 1:-1]
        colour = colours.get(backend, "#999")
        if group == "floor":
            out.append(f'<rect x="0" y="{y - row_h / 2:.1f}" width="{label_w + plot_w}" height="{row_h}" fill="#f3f3f3"/>')
        out.append(f'<text x="{label_w - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        a, b = ratio * math.exp(-spread), ratio * math.exp(spread)
        out.append(f'<line x1="{x(a):.1f}" y1="{y:.1f}" x2="{x(b):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="3" opacity="0.5"/>')
        fill = "white" if noise else colour
        out.append(f'<circle cx="{x(ratio):.1f}" cy="{y:.1f}" r="4" fill="{fill}" stroke="{colour}" stroke-width="1.5"/>')
        out.append(f'<text x="{label_w + plot_w + 6}" y="{y + 4:.1f}">{ratio:.2f}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def section(rows, op, title, unit):
    present = [b for b in BACKENDS if any((op, b, s) in rows for s in ["weft"] + sides_of(rows, op, b))]
    if not present:
        return []
    extra_sides = sorted({s for b in present for s in sides_of(rows, op, b) if s != "raw"})
    has_latency = any(rows[k].counter("p99_us") is not None for k in rows if k[0] == op)
    head = f"| backend | weft ({unit}) | raw ({unit}) | weft/raw |"
    sep = "|---|---|---|---|"
    for s in extra_sides:
        head += f" {s} | weft/{s} |"
        sep += "---|---|"
    if has_latency:
        head += " weft p50 / p99 | raw p50 / p99 |"
        sep += "---|---|"
    idle = [rows[k].counter("idle_fds") for k in rows if k[0] == op and rows[k].counter("idle_fds")]
    if idle:
        title += f" ({int(min(idle)):,} idle fds in this run)"
    lines = [f"### `{op}`: {title}", "", head, sep]
    for b in present:
        weft, raw = rows.get((op, b, "weft")), rows.get((op, b, "raw"))
        line = f"| {b} | {cell(weft)} | {cell(raw)} | {fmt_ratio(ratio_of(weft, raw))} |"
        for s in extra_sides:
            other = rows.get((op, b, s))
            line += f" {cell(other)} | {fmt_ratio(ratio_of(weft, other))} |"
        if has_latency:
            for stat in (weft, raw):
                p50 = stat.counter("p50_us") if stat else None
                p99 = stat.counter("p99_us") if stat else None
                line += f" {p50:.1f} / {p99:.1f} us |" if p50 is not None else " - |"
        lines.append(line)
    return lines + [""]


def memory(rows):
    lines = ["## Memory and descriptors", "", "| what | backend | weft | raw |", "|---|---|---|---|"]
    found = False
    for key, op in (("bytes_per_timer", "timers_arm"), ("bytes_per_task", "coro_suspended_bytes"),
                    ("bytes_per_watch", "watch_memory"), ("fds_per_watch", "watch_memory")):
        for backend in BACKENDS:
            weft = rows.get((op, backend, "weft"))
            raw = rows.get((op, backend, "raw"))
            wv = weft.counter(key) if weft else None
            rv = raw.counter(key) if raw else None
            if wv is None and rv is None:
                continue
            found = True
            f = (lambda v: "-" if v is None else f"{v:.2f}") if key.startswith("fds") else \
                (lambda v: "-" if v is None else f"{v:.0f} B")
            lines.append(f"| {key.replace('_', ' ')} | {backend} | {f(wv)} | {f(rv)} |")
    return lines + [""] if found else []


def main(results, md_path, svg_path):
    context, rows = load(results)
    chart(rows, svg_path)
    commit = context.get("commit", "?")
    lines = ["# weft benchmarks", "",
             "Generated by `cmake/bench.sh` (Release build, `bench/report.py`); do not edit by hand.",
             f"Measured commit **{commit}**. Each weft row was registered together with its raw",
             "baselines (`bench/pair.h`) and every repetition ran in random order among all rows",
             "(`--benchmark_enable_random_interleaving`). Figures are the **median** of the repetitions,",
             "`±` the coefficient of variation across them. Ratios are weft/raw: below 1.00 weft is",
             "faster; \"within noise\" when the intervals median ± CV of the two sides overlap.",
             "`raw` is the library doing the same mechanism as weft; `raw_<idiom>` columns are the same",
             "library's other idioms for the job (`raw_once`: `event_base_once` per callback; `raw_post`:",
             "`asio::post` per callback; `raw_common`: libevent's common timeouts; `raw_unsafe`: Asio's",
             "`BOOST_ASIO_CONCURRENCY_HINT_UNSAFE`).", "",
             "## Machine", ""]
    lines.append(f"* {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz, "
                 f"{platform.system()} {platform.release()}, load average at start "
                 f"{', '.join(f'{x:.2f}' for x in context.get('load_avg', []))}")
    lines.append(f"* run {context.get('date', '?')}, {context.get('repetitions', '?')} repetitions"
                 f"{', ' + context['bench_args'] if context.get('bench_args') else ''}")
    try:
        versions = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\\n", "libuv1-dev",
                                   "libevent-dev", "libboost1.81-dev", "libbenchmark-dev"],
                                  capture_output=True, text=True, check=False).stdout.split("\n")
        lines.append("* " + ", ".join(v for v in versions if v))
    except OSError:
        pass
    lines += ["", f"![weft/raw per row, log scale]({os.path.basename(svg_path)})", ""]
    lines += targets(rows)
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read().rstrip(), ""]
    lines += ["## Like-for-like rows", ""]
    for op, title, unit in LIKE:
        lines += section(rows, op, title, unit)
    lines += ["## Rows against a floor or the nearest analogue", ""]
    for op, title, unit in FLOOR:
        lines += section(rows, op, title, unit)
    lines += ["## weft only (no raw equivalent)", ""]
    for op, title, unit in WEFT_ONLY:
        lines += section(rows, op, title, unit)
    known = {op for op, _, _ in LIKE + FLOOR + WEFT_ONLY} | {"coro_suspended_bytes", "watch_memory"}
    others = sorted({op for (op, _, _) in rows if op not in known})
    if others:
        lines += ["## Other rows", ""]
        for op in others:
            lines += section(rows, op, "", "ns")
    lines += memory(rows)
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])

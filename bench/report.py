#!/usr/bin/env python3
"""Turns weft_bench's JSON (every repetition) into docs/benchmarks.md and a chart.

Rows are named <operation>/<backend>/<side>[/iterations:N][/real_time|/process_time]; <side> is
weft, raw (the library doing the same mechanism: the ratio's denominator) or raw_<idiom> (another
idiom of the library, shown beside it). Each figure is the median of the repetitions; the
spread is the coefficient of variation (CV = stddev / mean) of the repetitions. A ratio is
"within noise" when the two sides' intervals median * (1 +- CV) overlap.

The network rows (issue 14) and the timer-lateness rows are read from their counters instead:
p50/p99 latency, bytes/s, connections/s, requests/s under wrk (against nginx's in the same run),
heap bytes per idle connection, and how late timers ran.

Several result files may be given: rows of a later file replace the rows of the same name
(<operation>/<backend>/<side>) from earlier ones, so that a run of some rows
(--benchmark_filter) refreshes them in a report of everything; the report names the commit and
the load of each file it took rows from.
The runs behind the committed report are kept, compressed, in bench/results/ (README there).
Usage: report.py RESULTS.json[.gz] [MORE.json[.gz] ...] OUT.md OUT.svg
"""
import gzip
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
    ("timer_rearm", "start and stop one re-armable timer inside a callback", "ns/pair"),
    ("xthread_rtt_same_cpu", "cross-thread round trip, both threads pinned to CPU 0", "ns/round trip"),
    ("xthread_rtt_cross_cpu", "cross-thread round trip, loop pinned to CPU 0, caller to CPU 1", "ns/round trip"),
    ("xthread_flood_1", "cross-thread flood from 1 thread, every delivery counted", "ns/call"),
    ("xthread_flood_2", "cross-thread flood from 2 threads", "ns/call"),
    ("xthread_flood_4", "cross-thread flood from 4 threads", "ns/call"),
    ("fd_chain_100", "fd readiness: a byte along a ring of 100 socketpairs (libevent's bench.c)", "ns/hop"),
    ("fd_chain_1000", "fd readiness: a ring of 1,000 socketpairs", "ns/hop"),
    ("fd_turn_idle0", "one active socketpair: write a byte, one turn reads it", "ns/turn"),
    ("fd_turn_idle_many", "the same beside 10,000 watched fds that never fire, or as many as the descriptor limit allows with weft's duplicates (does a turn stay flat?)", "ns/turn"),
    ("watch_churn", "watch an fd, one non-blocking turn, unwatch (raw: one handle started and stopped; raw_fresh: a handle made and freed per watch, as weft's Watch makes its duplicate's registration)", "ns/cycle"),
    ("io_handle_churn", "an IoHandle's interest set, one non-blocking turn, cleared (raw: one handle started and stopped)", "ns/cycle"),
    ("reactor_create_destroy", "make and destroy a loop (raw: the loop and the handles weft's backend makes)", "ns/loop"),
]
# Rows whose raw side is a floor or the nearest analogue, not the same work.
FLOOR = [
    ("coro_spawn", "spawn and finish a trivial task (raw: post a callback through the queue)", "ns/task"),
    ("coro_sleep0", "co_await sleep(0) (raw: a chain link)", "ns/yield"),
    ("runner_blocking", "blocking run() of a trivial task, reused reactor (raw: one loop turn running one callback; raw_task: the callback resumes a coroutine task)", "ns/run"),
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
# The network layer (issue 14): weft's streams beside each library's own.
NET_LATENCY = [
    ("tcp_pingpong", "TCP ping-pong: one byte there and back over loopback, both ends on one loop"),
    ("tcp_pingpong_idle1000", "the same beside 1,000 idle connections, each with a read pending"),
    ("tcp_pingpong_idle10000", "the same beside 10,000 idle connections"),
]
# (operation, title, counter, unit, scale): the figure is a rate, higher is better.
NET_RATE = [
    ("tcp_throughput", "256 MiB one way over loopback in 64 KiB writes", "bytes_per_second", "GB/s", 1e-9),
    ("tcp_accept", "connect + accept + close, both ends on one loop", "items_per_second", "k connections/s", 1e-3),
]
HTTP = [
    ("http_hello_c1", "HTTP hello server under wrk, 1 connection, beside nginx with one worker"),
    ("http_hello_c50", "the same with 50 connections"),
]
# Timer lateness (issue 15): 200 timers at 1-20 ms, how late each ran.
TIMERS = [
    ("timer_lateness", "timer lateness: weft's default timer beside the library's own timer"),
    ("timer_lateness_native", "timer lateness: weft on the library's own timer (WEFT_TIMER=native)"),
]
# Why a like-for-like row stays above 1.05, one line each (bench/analysis.md has the
# measurements behind each line). A row above 1.05 with no line here reads "not explained".
XTHREAD_WHY = ("cross-thread delivery, a locked queue and a wake-up on both sides, with CVs of 20-180% on this VM; on libevent weft's wake-up (an eventfd) crosses the kernel every time, where the raw loop often sees event_active() in the pass it is already making")
WHY_ABOVE = {
    "call_soon_batch": "48-byte queue entries (room for a Callback in place) and per-callback bookkeeping (context check, handle sequence number, timer settle, root-context reset) against the raw queue's 16-byte (function, argument) pairs: 55 against 19-31 instructions",
    "call_soon_chain": "one native turn per link on both sides; each weft turn adds its hook's bookkeeping (current reactor, loop thread, root context, timer sync) and the backend's layer",
    "loop_turn": "the same native iteration plus weft's turn hook and backend layer (libuv: 496 against 382 instructions)",
    "timers_arm": "each call_later from outside the loop reads the clock (deadlines are never early; 25 ns a read on a kvm-clock host) and writes a timer node and a heap entry, where libuv and libevent arm against their cached loop time",
    "timers_fire": "one heap behind one native timer, usually 0.2-0.5x of raw; above 1.05 only in a noisy repetition set",
    "timers_churn": "a fresh timer node per call_later where raw re-arms one timer object (libuv: 181 against 123 instructions, the node's bookkeeping and register saves)",
    "timer_rearm": "the same mechanism as raw (one re-armable timer) plus the timer queue's slot bookkeeping",
    "fd_chain_100": "the same system calls as raw (strace); weft adds the backend's and the reactor's fd lookups and, on Asio, the step's end marker",
    "fd_chain_1000": "the same system calls as raw (strace); weft adds the backend's and the reactor's fd lookups, cold in a 1,000-fd ring, and, on Asio, the step's end marker",
    "fd_turn_idle0": "the same system calls as raw; weft's turn hook and fd lookup over the same native iteration (a different fd row lands above in each run)",
    "fd_turn_idle_many": "the same system calls as raw, flat beside the idle fds on both sides; weft's turn hook and fd lookup over the same native iteration",
    "watch_churn": "watch_readable watches a duplicate of the fd (dup, fstat pair, close: 3-5 system calls more per cycle) so that a watch never sees another file that reuses the number; IoHandle (io_handle_churn) is the path without it",
    "io_handle_churn": "the layers between the handle and the native call, and on Asio the step's end marker (2,891 against 1,696 instructions)",
    "reactor_create_destroy": "weft's own descriptors and checks: the precise timer's timerfd (libuv adds its poll-handle checks), the descriptor reservation that keeps libevent from exit(1) and libuv from abort() when descriptors run out (an open of /dev/null, ~2.5 us), the standard-stream check, weft's tables",
    "xthread_rtt_same_cpu": XTHREAD_WHY,
    "xthread_rtt_cross_cpu": XTHREAD_WHY,
    "xthread_flood_1": XTHREAD_WHY,
    "xthread_flood_2": XTHREAD_WHY,
    "xthread_flood_4": XTHREAD_WHY,
}

# Why an absolute target is missed, one line each: (what, why).
WHY_MISSED = {
    "spawn": ("spawn + finish under 40 ns", "355 instructions a spawn and finish on every backend (two recycled blocks, the frame's resume and final suspend, the Deferred's firing and its one atomic decrement): 36-37 ns on a 2.1 GHz EPYC host, 44-49 ns on a 2.6 GHz one, where pinned runs of the same code within half an hour read 39.7-62.2 ns"),
    "blocking": ("blocking `run` within 1.3x of a raw turn plus a task resume", "the raw turn and weft's make the same system calls; weft adds 520-660 instructions a run on libuv and Asio (134 on libevent) in its layers: the runner's call, the task's context (context variables, task list, root cancel scope), the reactor's step (running flag, fork check, turn hook), the task's end (outcome, frame, detach)"),
    "busy": ("threaded `run` p99 beside CPU-bound neighbours", "run-queue delay of a woken thread behind a CPU-bound neighbour's time slice (perf sched), which lands on weft's side or the floor's from run to run; both make the same two wake-ups per call"),
    "threaded": ("threaded runner within 1.2x of its floor", "the same two wake-ups as the floor; CVs of 20-180% on this VM"),
    "call_soon": ("`call_soon` under 30 ns", "not expected: 6 ns in recent runs"),
    "call_later": ("`call_later` + cancel under 20 ns", "a fresh timer node per call; 16-18 ns in recent runs, so a miss is a slow repetition set"),
    "pingpong": ("TCP ping-pong at weft/raw <= 1.05", "the same system calls per round trip as raw (strace); see the row's paragraph under \"Reading the results\""),
    "throughput": ("TCP throughput at weft/raw >= 0.95", "see the row's paragraph under \"Reading the results\""),
    "idle": ("ping-pong beside 10,000 idle connections", "epoll's cost does not grow with idle descriptors; see the row's paragraph under \"Reading the results\""),
    "http": ("HTTP hello at >= 0.8x nginx's requests/s", "one wrk connection and one server process wake each other across the two vCPUs for every request, so the row moves with this VM's cross-vCPU wake-up delay (CVs of 25-50% in full runs; see \"Reading the results\")"),
    "lateness": ("timer lateness p99 under 500 us", "the VM's wake-up delay, on both sides: the libraries' own timers miss the same p99 in the same runs (the timer_lateness table), and weft's p99 with the same code moves between 0.06 and 2.7 ms from run to run"),
}

PINGPONG_TARGET = 1.05
THROUGHPUT_TARGET = 0.95
NGINX_TARGET = 0.8
IDLE_TARGET = 1.10
LATENESS_P50_US, LATENESS_P99_US = 100, 500

BACKENDS = ["libuv", "libevent", "asio", "any"]
LATENCY = ("p50_us", "p99_us")
MEMORY = ("bytes_per_timer", "bytes_per_task", "bytes_per_watch", "fds_per_watch", "idle_fds")
COUNTERS = LATENCY + MEMORY + ("p90_us", "max_us", "early", "bytes_per_second", "items_per_second",
                               "requests_per_s", "bytes_per_idle")


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

    def counter_cv(self, key):
        values = self.counters.get(key)
        if not values or len(values) < 2:
            return 0.0
        mean = statistics.fmean(values)
        return statistics.stdev(values) / mean if mean else 0.0


def load_one(path):
    with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
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
        for key in COUNTERS:
            if key in row:
                stat.counters[key].append(row[key])
    return data.get("context", {}), rows


def load(paths):
    """Rows of every file, later files replacing rows of the same name, and for each file its
    path, its context and the operations of the rows the report keeps from it."""
    rows, sources = {}, []
    for path in paths:
        context, file_rows = load_one(path)
        rows.update(file_rows)
        sources.append((path, context, set(file_rows)))
    contexts = []
    for i, (path, context, keys) in enumerate(sources):
        replaced = set().union(*(later for _, _, later in sources[i + 1:]))
        kept = keys - replaced
        ops = []
        for op in sorted({key[0] for key in kept}):
            backends = {key[1] for key in kept if key[0] == op}
            every = {key[1] for key in rows if key[0] == op}
            ops.append(op if backends == every else f"{op} ({', '.join(sorted(backends))})")
        contexts.append((path, context, ops))
    return contexts, rows


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


YES, NOISE, NO = "yes", "within noise", "**no**"


def verdict(value, cv, bound, bound_cv=0.0, at_most=True):
    """Whether a median `value` (its CV `cv`) meets `bound` (at most it; at least it when
    at_most is False), where the bound may be drawn from another row (a multiple of the raw
    side's median, its CV `bound_cv`): yes on the bound's side; within noise when it is not but
    the intervals value * (1 +- cv) and bound * (1 +- bound_cv) overlap (the rule a ratio
    follows, so a target is never called missed, or met, by a difference smaller than the
    repetitions' own spread); no otherwise."""
    if at_most:
        if value <= bound:
            return YES
        return NOISE if value * (1 - cv) <= bound * (1 + bound_cv) else NO
    if value >= bound:
        return YES
    return NOISE if value * (1 + cv) >= bound * (1 - bound_cv) else NO


def worst(*verdicts):
    return max(verdicts, key=[YES, NOISE, NO].index)


def best(*verdicts):
    return min(verdicts, key=[YES, NOISE, NO].index)


def spread(*cvs):
    """The CV of a ratio of independent figures with these CVs (to first order)."""
    return math.sqrt(sum(c * c for c in cvs))


def fmt_spread(ratio, *cvs):
    return f"{ratio:.2f} ±{spread(*cvs) * 100:.0f}%"


def median_cv(stat, key=None):
    """(median, CV) of a row's figure, or of its counter `key`; None if it has none."""
    if stat is None or stat.error:
        return None
    if key is None:
        return (stat.median, stat.cv) if stat.values else None
    value = stat.counter(key)
    return None if value is None else (value, stat.counter_cv(key))


def against(weft, raw, factor, at_most=True):
    """(weft/raw, its spread, verdict of weft against factor * raw) for two (median, CV)."""
    (w, cw), (r, cr) = weft, raw
    return w / r, fmt_spread(w / r, cw, cr), verdict(w, cw, factor * r, cr, at_most)


def targets(rows):
    """The issue's targets, each checked against this run."""
    over = []
    for op, _, _ in LIKE:
        for backend in BACKENDS:
            weft = median_cv(rows.get((op, backend, "weft")))
            raw = median_cv(rows.get((op, backend, "raw")))
            if weft is None or raw is None or not raw[0]:
                continue
            r, _, v = against(weft, raw, 1.05)
            if v == NO:
                over.append((op, backend, r))
    absolute = []
    for backend in BACKENDS[:3]:
        def get(op, side="weft", key=None):
            return median_cv(rows.get((op, backend, side)), key)
        for op, bound, what, key in (
                ("call_soon_batch", 30, "`call_soon` under 30 ns per callback", "call_soon"),
                ("coro_spawn", 40, "spawn + finish of a task under 40 ns", "spawn"),
                ("timers_churn", 20, "`call_later` + cancel under 20 ns", "call_later")):
            if (got := get(op)) is not None:
                absolute.append((f"{what} ({backend})", f"{fmt(got[0])} ±{got[1] * 100:.0f}%",
                                 verdict(*got, bound), key))
        # The baseline: one raw loop turn plus a task resume (raw_task), with the bare
        # callback's ratio beside it; results from before raw_task have only the bare callback.
        run, turn, task = get("runner_blocking"), get("runner_blocking", "raw"), get("runner_blocking", "raw_task")
        base, named = (task, "plus a task resume") if task else (turn, "running one callback")
        if run and base:
            r, _, v = against(run, base, 1.3)
            bare = f"; against the bare callback {run[0] / turn[0]:.2f}x" if task and turn else ""
            absolute.append((f"blocking `run`, reused reactor, within 1.3x of one raw loop turn {named} ({backend})",
                             f"{fmt(run[0])} = {r:.2f}x ±{spread(run[1], base[1]) * 100:.0f}%{bare}", v, "blocking"))
        weft, floor = get("runner_threaded"), get("runner_threaded", "raw")
        if weft and floor:
            _, shown, v = against(weft, floor, 1.2)
            absolute.append((f"threaded runner within 1.2x of its floor ({backend})", shown, v, "threaded"))
        busy, floor_busy = get("runner_threaded_busy_cpu", key="p99_us"), get("runner_threaded_busy_cpu", "raw", "p99_us")
        if busy:
            v = verdict(*busy, 180)
            if floor_busy:
                v = best(v, verdict(*busy, 1.2 * floor_busy[0], floor_busy[1]))
            absolute.append((f"threaded `run` p99 beside a pure-CPU loop per core under Crochet's 180 us, or within 1.2x of the floor's ({backend})",
                             f"{busy[0]:.0f} us (floor {floor_busy[0]:.0f} us)" if floor_busy else f"{busy[0]:.0f} us", v, "busy"))
    out = ["## Targets", "",
           "Met: yes; \"within noise\": not met by the medians, but by less than the repetitions'",
           "spread (the intervals median ± CV of the figure and of the bound overlap, the rule a",
           "ratio follows); no: missed by more than the spread. A ratio is shown with its spread.", "",
           "### Like-for-like rows (same work, same mechanism)", "",
           "| target | this run | met |", "|---|---|---|",
           f"| like-for-like rows at weft/raw <= 1.05 (or within noise) | {len(over)} rows above | "
           f"{YES if not over else NO} |"]
    if over:
        out += ["", "Above 1.05 and outside the noise, one line each (the measurements behind each "
                "line are under \"Reading the results\"):", "",
                "| row | weft/raw | why |", "|---|---|---|"]
        out += [f"| `{op}` ({backend}) | {r:.2f} | {WHY_ABOVE.get(op, '**not explained**')} |"
                for op, backend, r in over]
    out += ["", "### Rows with no raw equivalent (absolute targets, or against a floor)", "",
            "| target | this run | met |", "|---|---|---|"]
    out += [f"| {what} | {got} | {v} |" for what, got, v, _ in absolute]
    return out + missed_lines(absolute) + [""] + net_targets(rows)


def missed_lines(targets):
    """The targets of a table (what, got, verdict, key) this run did not meet, one line per key
    with its reason from WHY_MISSED and the backends, each marked if within noise."""
    missed = defaultdict(list)
    for what, _, v, key in targets:
        if v != YES:
            backend = what[what.rindex("(") + 1:-1]
            missed[key].append(backend + (" within noise" if v == NOISE else ""))
    if not missed:
        return []
    out = ["", "Not met in this run, one line each:", ""]
    for key, backends in missed.items():
        what, why = WHY_MISSED.get(key, (f"`{key}`", "**not explained**"))
        out.append(f"* {what} ({', '.join(backends)}): {why}")
    return out


def chart(rows, path):
    """Log-scale chart of weft/raw per row, the spread as a bar of +-sqrt(CVw^2 + CVr^2)."""
    items = []
    net = [(op, title, "") for op, title in NET_LATENCY] + [(op, title, "") for op, title, *_ in NET_RATE]
    for group, ops in (("like", LIKE + net), ("floor", FLOOR)):
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


def ratio_counter(weft, raw, key):
    """(weft/raw of the medians of counter `key`, within noise) or None."""
    if weft is None or raw is None or weft.error or raw.error:
        return None
    w, r = weft.counter(key), raw.counter(key)
    if w is None or not r:
        return None
    cw, cr = weft.counter_cv(key), raw.counter_cv(key)
    return w / r, w * (1 - cw) <= r * (1 + cr) and r * (1 - cr) <= w * (1 + cw)


def backends_of(rows, op):
    """The backends with rows for `op`: libuv, libevent (then its mechanisms), asio, others."""
    order = {b: i for i, b in enumerate(BACKENDS)}
    names = {b for (o, b, _) in rows if o == op}
    return sorted(names, key=lambda b: (order.get(b.split(":")[0], len(order)), b))


def error_or(stat, text):
    if stat is None:
        return "-"
    if stat.error:
        return f"error: {stat.error}"
    return text


def latencies(stat, keys=LATENCY):
    values = [stat.counter(k) if stat else None for k in keys]
    if any(v is None for v in values):
        return error_or(stat, "-")
    return " / ".join(f"{v:.1f}" for v in values) + " us"


def net_latency_section(rows, op, title):
    present = backends_of(rows, op)
    if not present:
        return []
    idle = op != "tcp_pingpong"
    head = ("| backend | weft round trip | raw round trip | weft/raw | weft p50 / p99 | raw p50 / p99 "
            "| p50 weft/raw | p99 weft/raw |")
    sep = "|---|---|---|---|---|---|---|---|"
    extra = sorted({s for b in present for s in sides_of(rows, op, b) if s != "raw"})
    for side in extra:
        head += f" {side} p50 / p99 | p50 weft/{side} |"
        sep += "---|---|"
    if idle:
        head += " weft heap per idle connection | raw heap per idle connection | p50 / no idle: weft | raw |"
        sep += "---|---|---|---|"
    lines = [f"### `{op}`: {title}", "", head, sep]
    for b in present:
        weft, raw = rows.get((op, b, "weft")), rows.get((op, b, "raw"))
        line = (f"| {b} | {cell(weft)} | {cell(raw)} | {fmt_ratio(ratio_of(weft, raw))} "
                f"| {latencies(weft)} | {latencies(raw)} "
                f"| {fmt_ratio(ratio_counter(weft, raw, 'p50_us'))} "
                f"| {fmt_ratio(ratio_counter(weft, raw, 'p99_us'))} |")
        for side in extra:
            other = rows.get((op, b, side))
            line += f" {latencies(other)} | {fmt_ratio(ratio_counter(weft, other, 'p50_us'))} |"
        if idle:
            for stat in (weft, raw):
                v = stat.counter("bytes_per_idle") if stat else None
                line += f" {v:.0f} B |" if v is not None else " - |"
            for side in ("weft", "raw"):
                line += f" {fmt_ratio(ratio_counter(rows.get((op, b, side)), rows.get(('tcp_pingpong', b, side)), 'p50_us'))} |"
        lines.append(line)
    return lines + [""]


def rate_cell(stat, key, scale):
    v = stat.counter(key) if stat else None
    if v is None:
        return error_or(stat, "-")
    return f"{v * scale:.2f} ±{stat.counter_cv(key) * 100:.0f}%"


def net_rate_section(rows, op, title, key, unit, scale):
    present = backends_of(rows, op)
    if not present:
        return []
    extra = sorted({s for b in present for s in sides_of(rows, op, b) if s != "raw"})
    head = f"| backend | weft ({unit}) | raw ({unit}) | weft/raw (higher: weft faster) |"
    sep = "|---|---|---|---|"
    for side in extra:
        head += f" {side} ({unit}) | weft/{side} |"
        sep += "---|---|"
    lines = [f"### `{op}`: {title}", "", head, sep]
    for b in present:
        weft, raw = rows.get((op, b, "weft")), rows.get((op, b, "raw"))
        line = (f"| {b} | {rate_cell(weft, key, scale)} | {rate_cell(raw, key, scale)} "
                f"| {fmt_ratio(ratio_counter(weft, raw, key))} |")
        for side in extra:
            other = rows.get((op, b, side))
            line += f" {rate_cell(other, key, scale)} | {fmt_ratio(ratio_counter(weft, other, key))} |"
        lines.append(line)
    return lines + [""]


def http_section(rows, op, title):
    present = backends_of(rows, op)
    if not present:
        return []
    nginx = rows.get((op, "nginx", "raw"))
    lines = [f"### `{op}`: {title}", "",
             "| server | requests/s (k) | p50 / p99 | requests/s over nginx's |", "|---|---|---|---|"]
    for b in ["nginx"] + [b for b in present if b != "nginx"]:
        stat = rows.get((op, b, "raw" if b == "nginx" else "weft"))
        if stat is None:
            continue
        ratio = "-" if b == "nginx" else fmt_ratio(ratio_counter(stat, nginx, "requests_per_s"))
        name = "nginx (1 worker)" if b == "nginx" else f"weft on {b}"
        lines.append(f"| {name} | {rate_cell(stat, 'requests_per_s', 1e-3)} | {latencies(stat)} | {ratio} |")
    return lines + [""]


def timer_section(rows, op, title):
    present = backends_of(rows, op)
    if not present:
        return []
    keys = ("p50_us", "p90_us", "p99_us", "max_us")
    has_raw = any((op, b, "raw") in rows for b in present)
    head = "| backend | weft late by p50 / p90 / p99 / max | weft early |"
    sep = "|---|---|---|"
    if has_raw:
        head += " raw late by p50 / p90 / p99 / max | raw early |"
        sep += "---|---|"
    lines = [f"### `{op}`: {title}", "", head, sep]
    early = lambda s: "-" if s is None or s.counter("early") is None else f"{s.counter('early'):.0f}"
    for b in present:
        weft, raw = rows.get((op, b, "weft")), rows.get((op, b, "raw"))
        line = f"| {b} | {latencies(weft, keys)} | {early(weft)} |"
        if has_raw:
            line += f" {latencies(raw, keys)} | {early(raw)} |"
        lines.append(line)
    return lines + [""]


def net_targets(rows):
    """The network and timer targets of issues 14 and 15, each checked against this run."""
    out = []

    def get(op, b, side, key):
        return median_cv(rows.get((op, b, side)), key)

    for b in backends_of(rows, "tcp_pingpong"):
        got = []
        for key in ("p50_us", "p99_us"):
            weft, raw = get("tcp_pingpong", b, "weft", key), get("tcp_pingpong", b, "raw", key)
            if weft and raw and raw[0]:
                got.append((key[:3],) + against(weft, raw, PINGPONG_TARGET))
        if len(got) == 2:
            out.append((f"TCP ping-pong p50 and p99 at weft/raw <= {PINGPONG_TARGET} ({b})",
                        ", ".join(f"{name} {shown}" for name, _, shown, _ in got),
                        worst(*(v for *_, v in got)), "pingpong"))
    for b in backends_of(rows, "tcp_throughput"):
        weft = get("tcp_throughput", b, "weft", "bytes_per_second")
        raw = get("tcp_throughput", b, "raw", "bytes_per_second")
        if weft and raw and raw[0]:
            _, shown, v = against(weft, raw, THROUGHPUT_TARGET, at_most=False)
            out.append((f"TCP throughput at weft/raw >= {THROUGHPUT_TARGET} ({b})", shown, v, "throughput"))
    for b in backends_of(rows, "tcp_pingpong_idle10000"):
        idle = get("tcp_pingpong_idle10000", b, "weft", "p50_us")
        none = get("tcp_pingpong", b, "weft", "p50_us")
        if idle and none and none[0]:
            _, shown, v = against(idle, none, IDLE_TARGET)
            out.append((f"ping-pong p50 beside 10,000 idle connections within {IDLE_TARGET}x of none ({b})",
                        shown, v, "idle"))
    for op, _ in HTTP:
        nginx = get(op, "nginx", "raw", "requests_per_s")
        for b in backends_of(rows, op):
            weft = get(op, b, "weft", "requests_per_s")
            if b != "nginx" and weft and nginx and nginx[0]:
                _, shown, v = against(weft, nginx, NGINX_TARGET, at_most=False)
                out.append((f"`{op}` requests/s at >= {NGINX_TARGET}x nginx's ({b})", shown, v, "http"))
    for b in backends_of(rows, "timer_lateness"):
        p50, p99 = get("timer_lateness", b, "weft", "p50_us"), get("timer_lateness", b, "weft", "p99_us")
        if p50 and p99:
            out.append((f"timer lateness p50 < {LATENESS_P50_US} us and p99 < {LATENESS_P99_US} us ({b})",
                        f"{p50[0]:.0f} ±{p50[1] * 100:.0f}% / {p99[0]:.0f} ±{p99[1] * 100:.0f}% us",
                        worst(verdict(*p50, LATENESS_P50_US), verdict(*p99, LATENESS_P99_US)), "lateness"))
    if not out:
        return []
    lines = ["### Network and timers (issues 14 and 15)", "", "| target | this run | met |", "|---|---|---|"]
    lines += [f"| {what} | {got} | {v} |" for what, got, v, _ in out]
    return lines + missed_lines(out) + [""]


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


def installed_packages():
    """The versions dpkg has here of the libraries and peers the benchmarks use ("name version"
    each); cmake/bench.sh records them with a run's results."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\\n", "libuv1-dev", "libevent-dev",
                              "libboost1.81-dev", "libbenchmark-dev", "nginx", "wrk"],
                             capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    return [p for p in out.split("\n") if p]


def describe_load(context):
    start = ", ".join(f"{x:.2f}" for x in context.get("load_avg", []))
    text = f"load average at start {start}" if start else "load average not recorded"
    if context.get("load_during"):
        text += f", during the run {context['load_during']}"
    return text


def main(results, md_path, svg_path):
    contexts, rows = load(results)
    chart(rows, svg_path)
    _, context, _ = contexts[0]
    commits = []
    for _, c, ops in contexts:
        if ops and c.get("commit", "?") not in commits:
            commits.append(c.get("commit", "?"))
    lines = ["# weft benchmarks", "",
             "Generated by `cmake/bench.sh` (Release build, `bench/report.py`); do not edit by hand.",
             f"Measured commit **{'** and **'.join(commits)}** (see Machine for which rows came from which run).",
             "Each weft row was registered together with its raw",
             "baselines (`bench/pair.h`) and every repetition ran in random order among all rows",
             "(`--benchmark_enable_random_interleaving`). Figures are the **median** of the repetitions,",
             "`±` the coefficient of variation across them. Ratios are weft/raw: below 1.00 weft is",
             "faster (for rates, requests/s and bytes/s: above 1.00); \"within noise\" when the intervals",
             "median ± CV of the two sides overlap.",
             "`raw` is the library doing the same mechanism as weft; `raw_<idiom>` columns are the same",
             "library's other idioms for the job (`raw_once`: `event_base_once` per callback; `raw_post`:",
             "`asio::post` per callback; `raw_common`: libevent's common timeouts; `raw_unsafe`: Asio's",
             "`BOOST_ASIO_CONCURRENCY_HINT_UNSAFE`; `raw_fresh`: a native handle made and freed per watch).", "",
             "## Machine", ""]
    # The kernel and the libraries' versions as the run recorded them (cmake/bench.sh); results
    # from before it recorded them say so rather than describe the machine making the report.
    kernel = context.get("kernel", f"{platform.system()} (kernel not recorded with these results)")
    lines.append(f"* {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz, {kernel}")
    for path, c, ops in contexts:
        if not ops:
            continue
        which = "all rows" if len(contexts) == 1 else (
            "the rows of " + ", ".join(f"`{op}`" for op in ops) if len(ops) <= 16 else
            f"{len(ops)} operations not measured by a later run")
        lines.append(f"* {which}: commit {c.get('commit', '?')}, run {c.get('date', '?')}, "
                     f"{c.get('repetitions', '?')} repetitions"
                     f"{', ' + c['bench_args'] if c.get('bench_args') else ''}"
                     f"{', pinned with `' + c['pinned'] + '`' if c.get('pinned') else ''}; {describe_load(c)}")
    packages, note = context.get("packages"), ""
    if packages is None:
        packages = installed_packages()
        note = " (installed where this report was made; not recorded with the run)"
    if any(packages):
        lines.append("* " + ", ".join(p for p in packages if p) + note)
    lines += ["", f"![weft/raw per row, log scale]({os.path.basename(svg_path)})", ""]
    lines += targets(rows)
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read().rstrip(), ""]
    lines += ["## Like-for-like rows", ""]
    for op, title, unit in LIKE:
        lines += section(rows, op, title, unit)
    net = []
    for op, title in NET_LATENCY:
        net += net_latency_section(rows, op, title)
    for op, title, key, unit, scale in NET_RATE:
        net += net_rate_section(rows, op, title, key, unit, scale)
    for op, title in HTTP:
        net += http_section(rows, op, title)
    if net:
        lines += ["## Network (issue 14)", "",
                  "weft's streams (`net/`) beside each library's own stream doing the same work",
                  "(bench/net_benchmarks.cc); the latency columns are the medians over the repetitions of",
                  "each repetition's p50 and p99 round trip.", ""] + net
    timers = []
    for op, title in TIMERS:
        timers += timer_section(rows, op, title)
    if timers:
        lines += ["## Timer lateness", "",
                  "200 timers per iteration at random deadlines 1-20 ms ahead; how late each ran",
                  "(bench/timer_lateness_benchmarks.cc), medians over the repetitions; `early` counts",
                  "timers that ran before their deadline.", ""] + timers
    lines += ["## Rows against a floor or the nearest analogue", ""]
    for op, title, unit in FLOOR:
        lines += section(rows, op, title, unit)
    lines += ["## weft only (no raw equivalent)", ""]
    for op, title, unit in WEFT_ONLY:
        lines += section(rows, op, title, unit)
    known = {op for op, _, _ in LIKE + FLOOR + WEFT_ONLY} | {"coro_suspended_bytes", "watch_memory"}
    known |= {op for op, _ in NET_LATENCY + HTTP + TIMERS} | {op for op, *_ in NET_RATE}
    others = sorted({op for (op, _, _) in rows if op not in known})
    if others:
        lines += ["## Other rows", ""]
        for op in others:
            lines += section(rows, op, "", "ns")
    lines += memory(rows)
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1:-2], sys.argv[-2], sys.argv[-1])

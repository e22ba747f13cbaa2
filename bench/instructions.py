#!/usr/bin/env python3
"""Instructions per operation, weft beside the raw library, counted by Valgrind's callgrind.

Why: on a shared 2-CPU machine a row's time spreads by 10-25% between repetitions and whole runs
land in slower modes, so a change of a few percent cannot be seen in time. The number of
instructions a row executes in user space is the same on every run: it shows what a change
saved, and what weft executes that the raw library does not. It is not time: it leaves out the
kernel (system calls, wake-ups), cache misses and stalls, so read it beside docs/benchmarks.md,
never instead of it.

How: each row runs under callgrind twice, with WEFT_BENCH_ITERATIONS set to N and to 2N (bench/
pair.cc: exactly that many iterations, no calibration runs), and the difference of the two
totals, divided by N, is the cost of one iteration: the program's start, the row's set-up and
its tear-down cancel out. N is the iteration count Google Benchmark picks natively for about
10 ms. Rows whose iteration processes several items (a batch of callbacks, 10,000 spawns) are
also given per item.

A row that pauses its timing over part of each iteration is counted whole: `timers_arm` and
`timers_fire` both arm and fire a million timers per iteration, so only `timers_arm` is in the
default set, and it counts both.

Only single-threaded rows are meaningful here (callgrind runs one thread at a time, so a
cross-thread row measures its spinning and scheduling, not its work); the default set is those
rows. Needs valgrind (Debian's `valgrind`).

Usage: bench/instructions.py [--bench build/release/bench/weft_bench] [--ops a,b,...]
                             [--backends libuv,...] > table.md
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

DEFAULT_OPS = [
    "call_soon_batch", "call_soon_chain", "loop_turn", "timers_arm", "timers_churn", "timer_rearm",
    "fd_turn_idle0", "fd_chain_100", "watch_churn", "io_handle_churn", "coro_spawn", "coro_sleep0",
    "runner_blocking", "reactor_create_destroy",
]


def row_filter(row):
    """--benchmark_filter for exactly `row`, whatever suffixes Google Benchmark adds to its name
    (/iterations:N, /process_time)."""
    return f"--benchmark_filter=^{re.escape(row)}(/.*)?$"


def native_iterations(bench, row):
    """The iterations Google Benchmark picks for about 10 ms of the row."""
    out = subprocess.run(
        [bench, row_filter(row), "--benchmark_min_time=0.01", "--benchmark_format=json"],
        check=True, capture_output=True, text=True).stdout
    return int(json.loads(out)["benchmarks"][0]["iterations"])


def callgrind_run(bench, row, iterations):
    """(instructions of the whole program, items per iteration: 1 if the row counts none)."""
    env = dict(os.environ, WEFT_BENCH_ITERATIONS=str(iterations))
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", bench, row_filter(row),
         "--benchmark_format=json"],
        env=env, capture_output=True, text=True)
    found = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind failed on {row}:\n{result.stderr[-2000:]}")
    run = json.loads(result.stdout)["benchmarks"][0]
    if run["iterations"] != iterations:  # a row registered outside bench/pair.h
        raise RuntimeError(f"{row} ignores WEFT_BENCH_ITERATIONS: register it through pair.h")
    return int(found.group(1)), round(run.get("items_per_iteration", 1))


def per_iteration(bench, row):
    n = max(2, min(native_iterations(bench, row), 200_000))
    first, items = callgrind_run(bench, row, n)
    second, _ = callgrind_run(bench, row, 2 * n)
    return (second - first) / n, max(1, items)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="build/release/bench/weft_bench")
    parser.add_argument("--ops", default=",".join(DEFAULT_OPS))
    parser.add_argument("--backends", default="")
    args = parser.parse_args()
    ops = [op for op in args.ops.split(",") if op]
    backends = [b for b in args.backends.split(",") if b]
    listing = subprocess.run([args.bench, "--benchmark_list_tests"], check=True,
                             capture_output=True, text=True).stdout.split()
    rows = collections.defaultdict(list)  # (op, backend) -> sides, in listing order
    for name in listing:
        parts = name.split("/")[:3]  # <op>/<backend>/<side>[/iterations:N][/process_time]
        if len(parts) != 3 or parts[0] not in ops:
            continue
        if backends and parts[1] not in backends:
            continue
        rows[(parts[0], parts[1])].append(parts[2])

    print("| row | weft | raw | weft/raw | other raw idioms |")
    print("|---|---|---|---|---|")
    for (op, backend), sides in sorted(rows.items(), key=lambda kv: (ops.index(kv[0][0]), kv[0][1])):
        counts = {}
        for side in sides:
            ir, items = per_iteration(args.bench, f"{op}/{backend}/{side}")
            counts[side] = ir / items
            print(f"  {op}/{backend}/{side}: {ir:,.0f} per iteration, {items} items",
                  file=sys.stderr, flush=True)
        weft = counts.get("weft")
        raw = counts.get("raw")
        ratio = f"{weft / raw:.2f}" if weft and raw else "n/a"
        others = ", ".join(f"{side} {ir:,.0f}" for side, ir in counts.items()
                           if side.startswith("raw_"))
        show = lambda x: "n/a" if x is None else f"{x:,.0f}"
        print(f"| {op} ({backend}) | {show(weft)} | {show(raw)} | {ratio} | {others} |",
              flush=True)


if __name__ == "__main__":
    main()

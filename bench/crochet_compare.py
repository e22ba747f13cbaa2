#!/usr/bin/python3
"""Crochet (the seed's runner), measured the way weft_bench measures runner_threaded_busy_*:
a trivial call run on Crochet's reactor thread with @wait_for, timed one by one, with nothing,
a pure-CPU loop, or a `yes > /dev/null` on every CPU beside it. Prints p50/p99 in microseconds.

Needs Debian's python3-crochet and python3-twisted (run with /usr/bin/python3).
Usage: crochet_compare.py [CALLS]   (default 2000 per case)
"""
import os
import statistics
import subprocess
import sys
import time

from crochet import setup, wait_for

setup()


@wait_for(timeout=10.0)
def trivial():
    return 1


def neighbours(kind):
    """One busy process per CPU: 'cpu' (no system calls) or 'syscalls' (`yes > /dev/null`)."""
    if kind == "none":
        return []
    procs = []
    for _ in range(os.cpu_count() or 1):
        if kind == "cpu":
            cmd = [sys.executable, "-c", "while True: pass"]
        else:
            cmd = ["yes"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
    time.sleep(0.2)  # let them reach their loops
    return procs


def measure(calls):
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        trivial()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    measure(200)  # warm up
    for kind in ("none", "cpu", "syscalls"):
        procs = neighbours(kind)
        try:
            p50, p99 = measure(calls)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        print(f"crochet wait_for, neighbours={kind}: p50 {p50:.0f} us, p99 {p99:.0f} us")


if __name__ == "__main__":
    main()

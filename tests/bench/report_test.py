#!/usr/bin/env python3
"""bench/report.py's reading of a run: the verdict each target gets, which rows the targets
table lists and why, and the machine the report describes. On made-up runs, so that every
verdict is known in advance."""
import gzip
import json
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import report  # noqa: E402  (bench/report.py)

YES, NOISE, NO = report.YES, report.NOISE, report.NO


def stat(*values, **counters):
    """A row's repetitions: its figures, and its counters' values per repetition."""
    s = report.Stat()
    s.values = list(values)
    for key, per_repetition in counters.items():
        s.counters[key] = list(per_repetition)
    return s


def around(median, cv):
    """Nine repetitions with this median and (close to) this coefficient of variation."""
    offsets = [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    step = median * cv / 2.738612787525831  # the sample stddev of the offsets
    return [median + o * step for o in offsets]


class VerdictTest(unittest.TestCase):
    def test_at_most(self):
        self.assertEqual(report.verdict(10, 0.1, 10), YES)
        self.assertEqual(report.verdict(9, 0.0, 10), YES)
        # 10.5 * 0.9 = 9.45 reaches below the bound: the miss is smaller than the spread.
        self.assertEqual(report.verdict(10.5, 0.1, 10), NOISE)
        self.assertEqual(report.verdict(12, 0.1, 10), NO)
        # A bound drawn from another row carries that row's spread: 10.8 <= 10 * 1.1.
        self.assertEqual(report.verdict(12, 0.1, 10, 0.1), NOISE)
        self.assertEqual(report.verdict(12, 0.05, 10, 0.1), NO)

    def test_at_least(self):
        self.assertEqual(report.verdict(0.8, 0.0, 0.8, at_most=False), YES)
        self.assertEqual(report.verdict(0.7, 0.2, 0.8, at_most=False), NOISE)
        self.assertEqual(report.verdict(0.5, 0.1, 0.8, at_most=False), NO)

    def test_worst_and_best(self):
        self.assertEqual(report.worst(YES, NOISE), NOISE)
        self.assertEqual(report.worst(NOISE, NO, YES), NO)
        self.assertEqual(report.best(NO, NOISE), NOISE)
        self.assertEqual(report.best(NO, YES), YES)


class TargetsTest(unittest.TestCase):
    def rows(self):
        return {
            # 2x, tight: above 1.05 and outside the noise.
            ("call_soon_batch", "libuv", "weft"): stat(*around(10, 0.01)),
            ("call_soon_batch", "libuv", "raw"): stat(*around(5, 0.01)),
            # 1.10x with 10% spreads: within noise, not listed.
            ("loop_turn", "libuv", "weft"): stat(*around(110, 0.1)),
            ("loop_turn", "libuv", "raw"): stat(*around(100, 0.1)),
            # 1.5x, tight, of an operation with no reason written down.
            ("made_up_row", "libuv", "weft"): stat(*around(15, 0.01)),
            ("made_up_row", "libuv", "raw"): stat(*around(10, 0.01)),
            # Spawn: 44 ns with an 11% spread, against 40.
            ("coro_spawn", "libuv", "weft"): stat(*around(44, 0.11)),
            # A blocking run at 1.6x of raw_task, tight: missed by more than the spread.
            ("runner_blocking", "libuv", "weft"): stat(*around(480, 0.02)),
            ("runner_blocking", "libuv", "raw_task"): stat(*around(300, 0.02)),
            ("runner_blocking", "libuv", "raw"): stat(*around(290, 0.02)),
        }

    def test_like_for_like_lists_rows_outside_the_noise_with_their_reason(self):
        like = [("call_soon_batch", "", ""), ("loop_turn", "", ""), ("made_up_row", "", "")]
        with mock.patch.object(report, "LIKE", like):
            text = "\n".join(report.targets(self.rows()))
        self.assertIn("| 2 rows above | **no** |", text)
        self.assertIn(f"| `call_soon_batch` (libuv) | 2.00 | {report.WHY_ABOVE['call_soon_batch']} |", text)
        self.assertIn("| `made_up_row` (libuv) | 1.50 | **not explained** |", text)
        self.assertNotIn("`loop_turn` (libuv)", text)

    def test_absolute_targets_get_three_verdicts_and_missed_ones_a_reason(self):
        text = "\n".join(report.targets(self.rows()))
        self.assertIn("| spawn + finish of a task under 40 ns (libuv) | 44.0 ns ±11% | within noise |", text)
        self.assertRegex(text, r"plus a task resume \(libuv\) \| 480\.0 ns = 1\.60x ±3%; "
                               r"against the bare callback 1\.66x \| \*\*no\*\* \|")
        self.assertIn(f"* {report.WHY_MISSED['spawn'][0]} (libuv within noise): ", text)
        self.assertIn(f"* {report.WHY_MISSED['blocking'][0]} (libuv): ", text)

    def test_rates_must_reach_their_bound(self):
        rows = {
            ("http_hello_c1", "nginx", "raw"): stat(1.0, requests_per_s=around(40000, 0.05)),
            ("http_hello_c1", "libuv", "weft"): stat(1.0, requests_per_s=around(20000, 0.05)),
            ("http_hello_c1", "asio", "weft"): stat(1.0, requests_per_s=around(30000, 0.05)),
            ("http_hello_c1", "libevent", "weft"): stat(1.0, requests_per_s=around(42000, 0.05)),
        }
        text = "\n".join(report.net_targets(rows))
        self.assertIn("nginx's (libuv) | 0.50 ±7% | **no** |", text)
        # 30,000 * 1.05 = 31,500 >= 32,000 * 0.95 = 30,400.
        self.assertIn("nginx's (asio) | 0.75 ±7% | within noise |", text)
        self.assertIn("nginx's (libevent) | 1.05 ±7% | yes |", text)


class MachineTest(unittest.TestCase):
    def write_run(self, directory, context):
        benchmarks = [{"name": f"loop_turn/libuv/{side}", "run_name": f"loop_turn/libuv/{side}",
                       "run_type": "iteration", "real_time": t, "cpu_time": t, "time_unit": "ns"}
                      for side, t in (("weft", 110.0), ("raw", 100.0))]
        path = os.path.join(directory, "run.json.gz")
        with gzip.open(path, "wt") as f:
            json.dump({"context": context, "benchmarks": benchmarks}, f)
        return path

    def report_of(self, context):
        with tempfile.TemporaryDirectory() as directory:
            run = self.write_run(directory, context)
            md = os.path.join(directory, "out.md")
            report.main([run], md, os.path.join(directory, "out.svg"))
            with open(md) as f:
                return f.read()

    def test_the_machine_is_the_one_that_ran(self):
        text = self.report_of({"num_cpus": 2, "mhz_per_cpu": 2600, "commit": "abc1234",
                               "kernel": "Linux 1.2.3-test", "packages": ["libuv1-dev 9.9", ""]})
        self.assertIn("* 2 CPUs at 2600 MHz, Linux 1.2.3-test", text)
        self.assertIn("* libuv1-dev 9.9\n", text)
        self.assertIn("commit abc1234", text)

    def test_results_that_did_not_record_it_say_so(self):
        text = self.report_of({"num_cpus": 2, "mhz_per_cpu": 2600, "commit": "abc1234"})
        self.assertIn("(kernel not recorded with these results)", text)


if __name__ == "__main__":
    unittest.main()

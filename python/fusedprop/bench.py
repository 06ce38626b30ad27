"""``python -m fusedprop.bench``: the standard benchmark report.

Runs every group of the standard suite side by side in one process (fusedprop's
backends, NumPy, PyTorch, scikit-learn), at 1 thread and at all threads,
checks every contender's result against a float64 reference, and prints one
table per group: median time, GFLOP/s, % of this machine's measured FMA peak,
speed-up over NumPy and over PyTorch. Writes ``results.json`` and
``speedup.png`` into ``--out``. Exits 1 when any contender computed a wrong
result or crashed. PyTorch, Numba and scikit-learn are optional.

    python -m fusedprop.bench                 # full suite (~10 min on 2 cores)
    python -m fusedprop.bench --quick         # a subset, fewer repeats (< 2 min)
    python -m fusedprop.bench --only gemm,linear_fwd --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Optional, Sequence

from ._bench.cases import case_builders
from ._bench.common import GROUPS, SIZES
from ._bench.report import describe_machine, format_table, machine_info, measure_peaks, write_chart, write_json
from ._bench.runner import TIMINGS, add_derived, all_threads, run_case

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fusedprop.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a subset of shapes, fewer repeats (under 2 minutes)")
    p.add_argument("--threads", type=int, metavar="N", help="run at N threads only (default: 1 and all usable CPUs)")
    p.add_argument("--only", action="append", metavar="GROUP",
                   help=f"run only these groups (comma-separated or repeated): {', '.join(GROUPS)}")
    p.add_argument("--out", default=os.path.join("bench", "results"), metavar="DIR",
                   help="where results.json and speedup.png go (default: bench/results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny shapes, for the tool's own tests
    return p


def _groups(only) -> list:
    if not only:
        return list(GROUPS)
    chosen = [g.strip() for item in only for g in item.split(",") if g.strip()]
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown:
        raise SystemExit(f"--only: unknown group(s) {', '.join(unknown)}; expected {', '.join(GROUPS)}")
    return [g for g in GROUPS if g in chosen]


def _progress(total: int, disable: bool):
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        return tqdm(total=total, file=sys.stderr, disable=disable, unit="case", dynamic_ncols=True)

    class Plain:  # no tqdm: a line per case on stderr
        def __init__(self):
            self.n = 0

        def update(self, k=1):
            self.n += k
            if not disable:
                print(f"[{self.n}/{total}]", file=sys.stderr, flush=True)

        def set_description(self, text):
            pass

        def close(self):
            pass

        @staticmethod
        def write(text, file=None):
            print(text, file=file or sys.stdout, flush=True)
    return Plain()


def main(argv: Optional[Sequence[str]] = None, *, extra_contenders: Optional[Callable] = None) -> int:
    """Run the report; returns the exit status. ``extra_contenders(case)`` (tests only) adds contenders."""
    args = _parser().parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes, timing = SIZES[mode], TIMINGS[mode]
    groups = _groups(args.only)
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"--threads must be a positive integer, got {args.threads}")
    all_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    thread_counts = [args.threads] if args.threads else sorted({1, all_cpus})
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()

    try:  # import it up front: its import time should not land in any timing
        import torch  # noqa: F401
    except ImportError:
        pass
    peaks = measure_peaks(thread_counts, seconds=0.05 if mode == "smoke" else 0.2, tries=1 if mode == "smoke" else 3)
    info = machine_info(peaks)
    print(f"fusedprop benchmark ({mode}; threads {', '.join(map(str, thread_counts))}; groups {', '.join(groups)})")
    print(describe_machine(info), flush=True)

    builders = [(g, b) for g in groups for b in case_builders(g, sizes)]
    bar = _progress(len(builders) * len(thread_counts), args.no_progress)
    rows: list = []
    failures: list = []
    for gi, group in enumerate(groups):
        group_rows = []
        for g, build in builders:
            if g != group:
                continue
            case = build()
            if extra_contenders is not None:
                case.contenders.extend(extra_contenders(case))
            for n in thread_counts:
                bar.set_description(f"{group} {case.label} {n}thr")
                with all_threads(n):
                    group_rows += run_case(case, n, timing)
                bar.update(1)
        add_derived(group_rows, peaks)
        rows += group_rows
        for n in thread_counts:
            table = format_table(group, n, [r for r in group_rows if r["threads"] == n])
            bar.write("\n" + table, file=sys.stdout)
        failures += [r for r in group_rows if r["status"] in ("WRONG", "ERROR")]
    bar.close()

    elapsed = time.perf_counter() - start
    config = {"mode": mode, "threads": thread_counts, "groups": groups, "timing": timing.__dict__,
              "elapsed_s": elapsed, "argv": list(argv) if argv is not None else sys.argv[1:]}
    json_path = os.path.join(args.out, "results.json")
    write_json(json_path, info, rows, config)
    chart_path = os.path.join(args.out, "speedup.png")
    try:
        write_chart(chart_path, rows, groups)
    except ImportError as exc:
        chart_path = f"(no chart: {exc})"
    print(f"\nwrote {json_path} and {chart_path} in {elapsed:.0f} s")
    if failures:
        print(f"\n!!! {len(failures)} contender(s) gave a WRONG result or failed:", file=sys.stderr)
        for r in failures:
            print(f"!!!   {r['group']} {r['case']} {r['threads']} thr: {r['contender']}: {r['status']} "
                  f"{r['note'] or ''} (rel. error {r['error']})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

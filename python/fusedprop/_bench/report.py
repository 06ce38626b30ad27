"""Machine information, the measured peaks, the tables, results.json and the chart."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone

import numpy as np

import fusedprop as fp

from .common import optional

OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                "MKL_NUM_THREADS", "FUSEDPROP_NUM_THREADS", "FUSEDPROP_BACKEND")


def measure_peaks(thread_counts, seconds=0.2, tries=3) -> dict:
    """{"float32": {"1": GFLOP/s, ...}, "float64": {...}}: best of a few short runs (others share the CPU)."""
    core = fp.backends.core_module()
    if core is None or not hasattr(core, "measure_peak_gflops"):
        return {}
    return {dtype: {str(n): max(core.measure_peak_gflops(dtype, n, seconds) for _ in range(tries))
                    for n in thread_counts} for dtype in ("float32", "float64")}


def _version(module):
    mod, reason = optional(module)
    return getattr(mod, "__version__", "unknown") if mod is not None else "not installed"


def machine_info(peaks: dict) -> dict:
    core = fp.backends.core_module()
    try:
        from threadpoolctl import threadpool_info
        pools = [{k: p.get(k) for k in ("user_api", "internal_api", "prefix", "version", "architecture",
                                         "threading_layer", "num_threads")} for p in threadpool_info()]
    except ImportError:
        pools = "threadpoolctl not installed"
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": fp.cpu_info(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "versions": {"fusedprop": fp.__version__, "numpy": np.__version__, "torch": _version("torch"),
                     "numba": _version("numba"), "scikit-learn": _version("sklearn"), "scipy": _version("scipy")},
        "backends": fp.available_backends(),
        "threadpools": pools,
        "env": {k: os.environ[k] for k in OPENBLAS_ENV if k in os.environ},
        "peak_gflops": peaks or "unknown (no compiled core)",
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "peak_isa": core.fma_peak_isa() if core is not None and hasattr(core, "fma_peak_isa") else None,
    }


def describe_machine(info: dict) -> str:
    cpu = info["cpu"]
    lines = [f"CPU: {cpu.get('cpu')}  (kernel ISA: {cpu.get('isa')}; backend {cpu.get('backend')}; "
             f"{info['cpus_usable']} usable CPUs)",
             "versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())]
    pools = info["threadpools"]
    if isinstance(pools, list):
        for p in pools:
            if p.get("internal_api") == "openblas" or p.get("user_api") == "blas":
                lines.append(f"BLAS: {p.get('internal_api')} {p.get('version')} kernel={p.get('architecture')} "
                             f"({p.get('prefix')}, {p.get('threading_layer')})")
    if info["env"]:
        lines.append("environment: " + " ".join(f"{k}={v}" for k, v in info["env"].items()))
        if any(k in info["env"] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
            lines.append("  note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE override OpenBLAS's own CPU detection and can "
                         "slow NumPy; `unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE` to measure NumPy at its best")
    load = info.get("load_average")
    if load and load[0] > 0.5 * info["cpus_usable"]:
        lines.append(f"note: load average {load[0]:.1f} on {info['cpus_usable']} CPUs: other processes compete for "
                     "the cores, so timings (multi-thread ones above all) are noisy")
    peaks = info["peak_gflops"]
    if isinstance(peaks, dict):
        lines.append(f"measured FMA peak ({info['peak_isa']}): " + "; ".join(
            f"{dt} " + ", ".join(f"{n} thr {v:.1f}" for n, v in per.items()) + " GFLOP/s" for dt, per in peaks.items()))
    else:
        lines.append("peak: unknown (no compiled core)")
    return "\n".join(lines)


# ---------------------------------------------------------------------- tables

def fmt_time(t):
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def _fmt_speedup(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.2f}x"


def _fmt_num(v, digits=1, suffix=""):
    return "-" if v is None else f"{v:.{digits}f}{suffix}"


def _fmt_gflops(v):
    return "-" if v is None else f"{v:.1f}" if v >= 10 else f"{v:.3g}"


def _status(row):
    if row["status"] == "ok":
        return "ok" + (f" ({row['note']})" if row["note"] else "")
    if row["status"] == "WRONG":
        return f"!!! WRONG RESULT: rel. error {row['error']:.2e} > tol {row['tol']:.0e} !!!"
    if row["status"] == "ERROR":
        return f"!!! ERROR: {row['note']}"
    return row["note"]


def format_table(group: str, threads: int, rows: list) -> str:
    # A "vs ORT" column only where ONNX Runtime is a contender (inference).
    ort = any(r["family"] == "onnxruntime" for r in rows)
    header = ("shape", "contender", "median", "GFLOP/s", "% peak", "vs NumPy", "vs PyTorch") + (
        ("vs ORT",) if ort else ()) + ("check",)
    body = []
    for r in rows:
        body.append((r["case"], r["contender"], fmt_time(r["median_s"]), _fmt_gflops(r.get("gflops")),
                     _fmt_num(r.get("pct_peak"), 1, "%"), _fmt_speedup(r.get("speedup_numpy")),
                     _fmt_speedup(r.get("speedup_torch"))) + ((_fmt_speedup(r.get("speedup_ort")),) if ort else ())
                    + (_status(r),))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # the last column is free text
    title = f"== {group} · {threads} thread{'s' if threads != 1 else ''} =="

    def line(cells):
        last = len(header) - 1
        return "  ".join(c.ljust(w) if i in (0, 1, last) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [title, line(header), line(tuple("-" * w for w in widths))]
    previous = None
    for b in body:
        out.append(line(b if b[0] != previous else ("",) + b[1:]))
        previous = b[0]
    return "\n".join(out)


def write_json(path, info: dict, rows: list, config: dict) -> None:
    with open(path, "w") as fh:
        json.dump({"machine": info, "config": config, "rows": rows}, fh, indent=1, default=str)


# ----------------------------------------------------------------------- chart

def write_chart(path, rows: list, groups: list) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in groups if any(r["group"] == g for r in rows)]
    fig, axes = plt.subplots(len(groups), 2, figsize=(16, 3.6 * len(groups) + 0.8), squeeze=False)
    threads = sorted({r["threads"] for r in rows})
    # One colour per contender in every panel (every PyTorch variant is "PyTorch");
    # hatched bars are 1 thread, solid ones the most threads.
    def key_of(name):
        return "PyTorch" if name.startswith("torch") else name
    keys = list(dict.fromkeys(key_of(r["contender"]) for r in rows if r["family"] in ("fusedprop", "torch")
                              and any(isinstance(r.get(k), float) for k in ("speedup_numpy", "speedup_torch"))))
    keys = [k for k in keys if k != "PyTorch"] + (["PyTorch"] if "PyTorch" in keys else [])
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f",
               "#393b79"]
    colors = {k: ("#d62728" if k == "PyTorch" else palette[i % len(palette)]) for i, k in enumerate(keys)}
    from matplotlib.ticker import FuncFormatter
    times = FuncFormatter(lambda v, _: f"{v:g}x")
    for gi, group in enumerate(groups):
        grows = [r for r in rows if r["group"] == group]
        cases = list(dict.fromkeys(r["case"] for r in grows))
        for col, (key, base) in enumerate((("speedup_numpy", "NumPy"), ("speedup_torch", "PyTorch"))):
            ax = axes[gi][col]
            shown = [c for c in dict.fromkeys(r["contender"] for r in grows if r["family"] == "fusedprop"
                                               or (key == "speedup_numpy" and r["family"] == "torch"))]
            series = [(c, t) for c in shown for t in threads
                      if any(isinstance(r.get(key), float) for r in grows if r["contender"] == c and r["threads"] == t)]
            ax.set_title(f"{group}: speed-up over {base} (higher is better)", fontsize=10)
            if not series:
                why = "PyTorch not installed" if any(r.get(key) == "not installed" for r in grows) else \
                    "no fusedprop contender ran in this build"
                ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="gray")
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            width = 0.8 / len(series)
            values_all = []
            for si, (c, t) in enumerate(series):
                vals = []
                for case in cases:
                    match = [r for r in grows if r["case"] == case and r["contender"] == c and r["threads"] == t]
                    v = match[0].get(key) if match else None
                    vals.append(v if isinstance(v, float) else np.nan)
                values_all += [v for v in vals if np.isfinite(v)]
                xs = np.arange(len(cases)) + (si - (len(series) - 1) / 2) * width
                ax.bar(xs, vals, width, color=colors[key_of(c)], alpha=1.0 if t == threads[-1] else 0.55,
                       hatch=None if t == threads[-1] else "//", edgecolor="black", linewidth=0.3,
                       label=f"{c}, {t} thr")
            ax.axhline(1.0, color="black", linewidth=0.8)
            if values_all and max(values_all) / max(min(values_all), 1e-12) > 8:
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            ax.yaxis.set_major_formatter(times)
            ax.set_xticks(np.arange(len(cases)))
            ax.set_xticklabels(cases, rotation=20, ha="right", fontsize=8)
            ax.set_ylabel(f"× {base}")
            ax.grid(axis="y", alpha=0.3)
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=colors[k], edgecolor="black", linewidth=0.3, label=k) for k in keys]
    if len(threads) > 1:
        handles += [Patch(facecolor="white", edgecolor="black", hatch="//", label=f"{threads[0]} thread"),
                    Patch(facecolor="gray", edgecolor="black", label=f"{threads[-1]} threads")]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 8), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.25 / fig.get_figheight()))
    fig.suptitle("fusedprop benchmark: speed-up per shape (bars above the line are faster than the baseline)",
                 fontsize=12, y=1 - 0.02 / fig.get_figheight())
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Data-parallel TrainStep speed: P ranks x 1 thread against 1 rank x 1
thread on the same global batch (steps per second), and where a rank's step
goes: its slice's gradients, the collective (wall time, waiting for the
slowest rank included), the rank-order sum and the optimizer update.

    python tools/bench_distributed.py [--ranks 2] [--repeat 3]

Runs itself under mpiexec; needs fusedprop[mpi]. Each case prints one line
per repeat so the noise is visible (the cores may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

CASES = (("784-1024-1024-10", 1024, 8), ("784-256-256-10", 256, 150))  # net, global batch, timed steps


def worker(net: str, batch: int, steps: int) -> None:
    import numpy as np
    from mpi4py import MPI

    import fusedprop as fp
    from fusedprop import _distributed, nn, optim

    comm = MPI.COMM_WORLD
    sizes = [int(s) for s in net.split("-")]
    fp.manual_seed(0)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    step = fp.TrainStep(model, nn.CrossEntropyLoss(), opt, comm=comm if comm.size > 1 else None)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], batch)
    spent = {"grads": 0.0, "collective": 0.0, "sum": 0.0, "update": 0.0}

    def timed(name, fn):
        def run(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t
        return run

    if comm.size > 1:
        step._local_grads = timed("grads", step._local_grads)
        _distributed.wait = timed("collective", _distributed.wait)
        _distributed.sum_rows = timed("sum", _distributed.sum_rows)
        opt.step = timed("update", opt.step)  # TrainStep calls it after the sum
    for _ in range(3):
        step(x, y)
    comm.Barrier()
    spent.update(dict.fromkeys(spent, 0.0))
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    seconds = time.perf_counter() - start
    per_rank = comm.gather({k: 1e3 * v / steps for k, v in spent.items()})
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "net": net, "batch": batch, "steps_per_s": steps / seconds,
                          "ms_per_step_by_rank": per_rank}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "mpiexec"
    env = dict(os.environ, FUSEDPROP_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.setdefault("HYDRA_LAUNCHER", "fork")
    for net, batch, steps in CASES:
        rates = {1: [], args.ranks: []}
        for _ in range(args.repeat):
            for ranks in rates:
                out = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker", net,
                                      str(batch), str(steps)], capture_output=True, text=True, env=env, check=True)
                row = json.loads(out.stdout)
                rates[ranks].append(row["steps_per_s"])
                print(json.dumps(row))
        one, many = rates[1], rates[args.ranks]
        print(f"{net} batch {batch}: 1 rank {min(one):.1f}-{max(one):.1f} steps/s, {args.ranks} ranks "
              f"{min(many):.1f}-{max(many):.1f} steps/s, speed-up {max(many) / max(one):.2f}x (best of each)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()

"""Data-parallel training over MPI: every rank holds the model and the data,
computes the gradients of its slice of each global batch, and one collective
per step sums them, so the run gives the numbers of a one-process run.

    mpiexec -n 2 python examples/train_distributed.py [--epochs 5] [--batch-size 256]
    mpiexec -f hosts -n 8 python examples/train_distributed.py     # several machines
    python examples/train_distributed.py                           # one process works too

Needs ``pip install 'fusedprop[mpi]'`` (mpi4py and MPICH, which brings mpiexec).
The task is synthetic (no download): 32 features, 10 classes given by a
random linear teacher.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from mpi4py import MPI

import fusedprop as fp
from fusedprop import nn, optim


def make_data(rows: int, seed: int = 0):
    """The same arrays on every rank: each draws them from the same seed."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((32, 10))
    X = rng.standard_normal((rows, 32)).astype(np.float32)
    return X, (X @ teacher).argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256, help="the global batch, split over the ranks")
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    X, y = make_data(args.rows + 2000)
    X_train, y_train, X_val, y_val = X[:args.rows], y[:args.rows], X[args.rows:], y[args.rows:]

    fp.manual_seed(0)  # fit copies rank 0's parameters and shuffling state to every rank anyway
    model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    history = fp.fit(model, X_train, y_train, nn.CrossEntropyLoss(), optimizer, epochs=args.epochs,
                     batch_size=args.batch_size, validation_data=(X_val, y_val), comm=comm)
    seconds = time.perf_counter() - start
    if comm.rank == 0:  # every rank holds the same model and history; one prints
        print(f"{comm.size} rank(s) x {fp.get_num_threads()} thread(s), backend {fp.get_backend()}, "
              f"global batch {args.batch_size}, {args.epochs} epochs in {seconds:.2f} s")
        for epoch, (loss, acc) in enumerate(zip(history["loss"], history["val_accuracy"]), 1):
            print(f"epoch {epoch}: loss {loss:.4f}   validation accuracy {acc:.4f}")


if __name__ == "__main__":
    main()

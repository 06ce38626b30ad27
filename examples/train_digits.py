"""Train a 64-256-256-10 MLP on scikit-learn's bundled digits (no download)
with fusedprop, and compare with scikit-learn's MLPClassifier and PyTorch.

    python examples/train_digits.py [--epochs 30] [--threads 1]

Every contender gets the same data split, architecture (ReLU), Adam with
lr 1e-3, batch 64, the same number of epochs and no weight decay.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import fusedprop as fp
from fusedprop import nn, optim


def load(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)


def run_fusedprop(X_train, X_test, y_train, y_test, epochs: int) -> tuple:
    fp.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    start = time.perf_counter()
    fp.fit(model, X_train, y_train, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3),
           epochs=epochs, batch_size=64, progress=False)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(fp.predict(model, X_test).argmax(axis=1) == y_test))
    return seconds, accuracy


def run_sklearn(X_train, X_test, y_train, y_test, epochs: int) -> tuple:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 256), solver="adam", learning_rate_init=1e-3, batch_size=64,
                        max_iter=epochs, alpha=0.0, tol=0.0, n_iter_no_change=epochs + 1, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the epoch budget on purpose
        clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return seconds, float(clf.score(X_test, y_test))


def run_torch(X_train, X_test, y_train, y_test, epochs: int) -> tuple:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = torch.nn.CrossEntropyLoss()
    X, y = torch.from_numpy(X_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss = crit(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean())
    return seconds, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="threads for every contender (default 1)")
    args = parser.parse_args()

    fp.set_num_threads(args.threads)
    data = load()
    contenders = {"fusedprop": run_fusedprop, "scikit-learn": run_sklearn}
    try:
        import torch

        torch.set_num_threads(args.threads)
        contenders["pytorch"] = run_torch
    except ImportError:
        print("pytorch: not installed")
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)  # OpenBLAS under NumPy and scikit-learn, for the whole run
    except ImportError:
        print("threadpoolctl: not installed, NumPy's BLAS uses its default threads")

    print(f"digits: {len(data[0])} train / {len(data[1])} test, 64-256-256-10 ReLU, Adam lr 1e-3, batch 64, "
          f"{args.epochs} epochs, {args.threads} thread(s), fusedprop backend {fp.get_backend()}")
    results = {name: run(*data, args.epochs) for name, run in contenders.items()}
    ours = results["fusedprop"][0]
    for name, (seconds, accuracy) in results.items():
        ratio = "" if name == "fusedprop" else f"   fusedprop is {seconds / ours:.1f}x faster"
        print(f"{name:>13}: {seconds:7.3f} s   test accuracy {accuracy:.4f}{ratio}")


if __name__ == "__main__":
    main()

"""fusedprop.sklearn.MLPClassifier against scikit-learn's own, on digits.

    python examples/sklearn_digits.py [--threads 1] [--repeat 3] [--max-iter 30]

Both get ``MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=30,
random_state=0)`` (scikit-learn's defaults otherwise: Adam, batch 200,
alpha 1e-4) on the same split of scikit-learn's bundled digits, once with
float64 input (scikit-learn then trains in float64) and once with float32.
Fits alternate between the two; each time printed is the fastest of
``--repeat`` fits (the machine may be shared).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import fusedprop as fp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for both (default 1)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=30)
    args = parser.parse_args()

    from sklearn import neural_network
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    from fusedprop.sklearn import MLPClassifier

    fp.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)  # OpenBLAS under scikit-learn, for the whole run
    except ImportError:
        print("threadpoolctl: not installed, NumPy's BLAS uses its default threads")

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    params = dict(hidden_layer_sizes=(256, 256), max_iter=args.max_iter, random_state=0)
    contenders = {"fusedprop": MLPClassifier, "scikit-learn": neural_network.MLPClassifier}
    print(f"digits: {len(X_train)} train / {len(X_test)} test, MLPClassifier({params}), "
          f"{args.threads} thread(s), fusedprop backend {fp.get_backend()}, best of {args.repeat}")
    for dtype in (np.float64, np.float32):
        xtr, xte = X_train.astype(dtype), X_test.astype(dtype)
        times = {name: [] for name in contenders}
        accuracy = {}
        for _ in range(args.repeat):
            for name, cls in contenders.items():
                est = cls(**params)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the epoch budget
                    start = time.perf_counter()
                    est.fit(xtr, y_train)
                    times[name].append(time.perf_counter() - start)
                accuracy[name] = est.score(xte, y_test)
        ours = min(times["fusedprop"])
        print(f"{np.dtype(dtype).name}:")
        for name in contenders:
            best = min(times[name])
            ratio = "" if name == "fusedprop" else f"   fusedprop is {best / ours:.2f}x faster"
            print(f"  {name:>12}: fit {best:6.3f} s   test accuracy {accuracy[name]:.4f}{ratio}")


if __name__ == "__main__":
    main()

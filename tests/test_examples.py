"""The examples run as a user would run them."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def test_train_digits_runs_and_learns(backend):
    pytest.importorskip("sklearn")
    env = dict(os.environ, FUSEDPROP_BACKEND=backend)
    proc = subprocess.run([sys.executable, str(EXAMPLES / "train_digits.py"), "--epochs", "3"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("fusedprop:"))
    accuracy = float(line.split("test accuracy")[1].split()[0])
    assert accuracy > 0.9, proc.stdout  # three epochs of Adam already separate the digits
    assert f"backend {backend}" in proc.stdout


def test_sklearn_digits_runs_and_matches_sklearn():
    """examples/sklearn_digits.py on the default backend: both estimators, both dtypes, same accuracy."""
    pytest.importorskip("sklearn")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "sklearn_digits.py"), "--max-iter", "3", "--repeat", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracies = [float(ln.split("test accuracy")[1].split()[0]) for ln in proc.stdout.splitlines()
                  if "test accuracy" in ln]
    assert len(accuracies) == 4, proc.stdout  # fusedprop and scikit-learn, float64 and float32
    assert min(accuracies) > 0.8, proc.stdout  # three epochs of Adam already separate the digits
    # the same initial weights and batches: the two agree to rounding, hence on every test digit
    assert accuracies[0] == accuracies[1] and abs(accuracies[2] - accuracies[3]) <= 1 / 450, proc.stdout

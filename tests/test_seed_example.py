"""The seed document's PyTorch example runs with fusedprop swapped in."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fusedprop

# seed/forward_backward_propagation.md, "PyTorch Example with Autograd",
# with only the two import lines changed.
SEED_EXAMPLE = '''
import fusedprop as torch
import fusedprop.nn as nn

# Sample forward + backward pass
model = nn.Sequential(
    nn.Linear(3, 4),
    nn.ReLU(),
    nn.Linear(4, 1),
    nn.Sigmoid()
)

# Example input and label
x = torch.randn(1, 3)
y = torch.tensor([[1.0]])

# Loss function
criterion = nn.BCELoss()

# Forward pass
output = model(x)
loss = criterion(output, y)

# Backward pass
loss.backward()

# Access gradients
for param in model.parameters():
    print(param.grad)
'''

EXPECTED_SHAPES = [(4, 3), (4,), (1, 4), (1,)]


def _parse_printed_arrays(text: str) -> list:
    """Split NumPy's printout into arrays: each starts with '[' in column 0."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("[") and current:
            blocks.append("\n".join(current))
            current = []
        if line.strip():
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    arrays = []
    for block in blocks:
        depth = len(block) - len(block.lstrip("["))
        rows = [r.strip().strip("[]").split() for r in block.splitlines()]
        values = np.array([[float(v) for v in r] for r in rows])
        arrays.append(values if depth == 2 else values.reshape(-1))
    return arrays


@pytest.mark.parametrize("name", ["cpp", "numba", "numpy"])
def test_seed_example_prints_four_gradients(name):
    if name not in fusedprop.available_backends():
        pytest.skip(f"backend {name!r} is not available here")
    env = dict(os.environ, FUSEDPROP_BACKEND=name, PYTHONWARNINGS="error")
    result = subprocess.run([sys.executable, "-c", SEED_EXAMPLE], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    grads = _parse_printed_arrays(result.stdout)
    assert [g.shape for g in grads] == EXPECTED_SHAPES, result.stdout
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert any(np.any(g != 0) for g in grads), "every gradient is zero"

"""BatchNorm1d: normalise each feature over the batch (PyTorch's semantics)."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .module import Module
from .normalization import _check_dtype, _check_eps
from .parameter import Parameter

__all__ = ["BatchNorm1d"]


class BatchNorm1d(Module):
    """``BatchNorm1d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=np.float32)``
    on (N, C) or (N, C, L) input.

    Training: normalise with the batch mean and biased variance; update
    ``running_mean`` / ``running_var`` with ``momentum`` and the unbiased
    variance (``momentum=None``: the cumulative average, weight
    ``1 / num_batches_tracked``), count ``num_batches_tracked``. A batch of
    one value per channel raises ValueError, as PyTorch; an empty one counts
    but leaves the statistics alone. Eval: normalise with the running
    statistics (with ``track_running_stats=False`` there are none: the batch's).
    The buffers are NumPy arrays in ``state_dict`` under PyTorch's names.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=np.float32) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)):
            raise TypeError(f"BatchNorm1d: num_features must be an int, got {type(num_features).__name__}")
        if num_features < 1:
            raise ValueError(f"BatchNorm1d: num_features must be positive, got {num_features}")
        if momentum is not None:
            if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.integer, np.floating)):
                raise TypeError(f"BatchNorm1d: momentum must be a float or None, got {type(momentum).__name__}")
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"BatchNorm1d: momentum must be in [0, 1] or None, got {momentum}")
            momentum = float(momentum)
        self.num_features = int(num_features)
        self.eps = _check_eps("BatchNorm1d", eps)
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = _check_dtype("BatchNorm1d", dtype)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype))
            self.bias = Parameter(np.zeros(self.num_features, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self._dtype = dtype

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight.data.fill(1)
            self.bias.data.fill(0)

    def momentum_for_step(self) -> float:
        """Count this training batch and return the running statistics' weight
        for it (PyTorch's ``exponential_average_factor``)."""
        if not self.track_running_stats:
            return 0.0
        self.num_batches_tracked += 1
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def forward(self, x):
        batch_stats = self.training or not self.track_running_stats
        momentum = self.momentum_for_step() if self.training else 0.0
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, batch_stats, momentum,
                            self.eps, self.training, "BatchNorm1d")

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

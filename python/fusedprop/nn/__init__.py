"""PyTorch-style layers on fusedprop's fused kernels: ``import fusedprop.nn as nn``.

Where fusedprop differs from PyTorch, on purpose:

- ``param.grad`` (and any ``tensor.grad``) is a NumPy array, not a tensor, so
  ``print(param.grad)`` prints the numbers; ``param.data`` is the NumPy array
  optimizers update in place.
- Float input is converted to the layer's dtype (float64 data into a float32
  model runs in float32; the input's gradient comes back in float64). Integer
  or bool input raises TypeError, as PyTorch refuses it.
- ``model.eval()`` means inference: layers run the inference kernels and
  record nothing, so the output has no ``grad_fn`` (PyTorch still records).
- ``Sequential`` runs each ``Linear`` and the activation module right after it
  as one fused kernel call forward and one backward (see ``Sequential.fused``).
- ``state_dict()`` returns copies (PyTorch shares storage); keys are PyTorch's,
  so ``model.load_state_dict({k: v.numpy() for k, v in torch_model.state_dict().items()})``
  loads a PyTorch checkpoint.
- A graph may be backpropagated more than once (nothing is freed); gradients
  accumulate until ``zero_grad()``.
- Buffers (BatchNorm1d's ``running_mean``, ``running_var``,
  ``num_batches_tracked``) are NumPy arrays, updated in place.
- ``Dropout`` draws its masks from a counter-based generator keyed on
  ``fp.manual_seed`` (see ``nn.Dropout``), not from a stateful one, and
  refuses ``p = 1``.
"""

from . import functional, init, utils
from .batchnorm import BatchNorm1d
from .dropout import Dropout
from .activation import GELU, Identity, LeakyReLU, ReLU, SiLU, Sigmoid, Tanh
from .container import Sequential
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "CrossEntropyLoss", "Dropout", "GELU", "Identity", "L1Loss",
    "LayerNorm", "LeakyReLU", "Linear", "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "Tanh", "functional", "init",
    "utils",
]

"""fusedprop: fused dense-layer kernels and a PyTorch-style API for fast MLPs on the CPU."""

import numpy as _np

from ._version import __version__
from .backends import available_backends, get_backend, set_backend, use_backend
from ._runtime import cpu_info, get_num_threads, manual_seed, set_num_threads
from . import functional
from .tensor import Tensor, enable_grad, is_grad_enabled, no_grad, ones, randn, tensor, zeros
from . import nn, optim
from .predictor import Predictor
from .train import TrainStep, fit, predict
from ._torch_interop import from_torch  # imports torch only when called
from . import onnx  # fp.onnx.export; imports the onnx package only when called
from .serialization import load, save

float32 = _np.float32
float64 = _np.float64

__all__ = [
    "Predictor",
    "Tensor",
    "TrainStep",
    "__version__",
    "available_backends",
    "cpu_info",
    "fit",
    "from_torch",
    "enable_grad",
    "float32",
    "float64",
    "functional",
    "get_backend",
    "get_num_threads",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "nn",
    "no_grad",
    "onnx",
    "ones",
    "optim",
    "predict",
    "randn",
    "save",
    "set_backend",
    "set_num_threads",
    "tensor",
    "use_backend",
    "zeros",
]

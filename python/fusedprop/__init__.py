"""fusedprop: fused dense-layer kernels and a PyTorch-style API for fast MLPs on the CPU."""

from ._version import __version__
from .backends import available_backends, get_backend, set_backend, use_backend
from ._runtime import cpu_info, get_num_threads, manual_seed, set_num_threads
from . import functional

__all__ = [
    "__version__",
    "available_backends",
    "cpu_info",
    "functional",
    "get_backend",
    "get_num_threads",
    "manual_seed",
    "set_backend",
    "set_num_threads",
    "use_backend",
]

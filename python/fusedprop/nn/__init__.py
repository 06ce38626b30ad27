"""PyTorch-style layers on fusedprop's fused kernels: ``import fusedprop.nn as nn``."""

from . import functional, init
from .activation import GELU, Identity, LeakyReLU, ReLU, SiLU, Sigmoid, Tanh
from .container import Sequential
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss
from .module import Module
from .parameter import Parameter

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "GELU", "Identity", "L1Loss", "LeakyReLU", "Linear",
    "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "Tanh", "functional", "init",
]

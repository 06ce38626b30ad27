"""Optimizers with PyTorch's names, defaults and update rules: ``from fusedprop import optim``.

Each parameter's update is one fused kernel of the active backend
(``sgd_step`` / ``adam_step``). ``optim.lr_scheduler`` holds PyTorch's
learning-rate schedulers.
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "lr_scheduler"]

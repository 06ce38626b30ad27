"""Checks of the estimators' hyperparameters at fit time.

The ranges are scikit-learn's own (``BaseMultilayerPerceptron._parameter_constraints``),
written out here because scikit-learn's validation machinery is private. A
bad value raises ``ValueError`` (``TypeError`` for a wrong type) naming the
parameter, what was expected and what was given, as scikit-learn does.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

# name -> (kind, low, high, low_closed, high_closed); kind "int", "real" or a set of strings
_NUMERIC = {
    "alpha": ("real", 0.0, None, True, False),
    "learning_rate_init": ("real", 0.0, None, False, False),
    "power_t": ("real", 0.0, None, True, False),
    "max_iter": ("int", 1, None, True, False),
    "tol": ("real", 0.0, None, True, False),
    "momentum": ("real", 0.0, 1.0, True, True),
    "validation_fraction": ("real", 0.0, 1.0, True, False),
    "beta_1": ("real", 0.0, 1.0, True, False),
    "beta_2": ("real", 0.0, 1.0, True, False),
    "epsilon": ("real", 0.0, None, False, False),
    "max_fun": ("int", 1, None, True, False),
}
_OPTIONS = {
    "activation": ("identity", "logistic", "tanh", "relu"),
    "solver": ("lbfgs", "sgd", "adam"),
    "learning_rate": ("constant", "invscaling", "adaptive"),
}
_BOOLS = ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping")


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _range_text(low, high, low_closed, high_closed) -> str:
    left = "[" if low_closed else "("
    right = "]" if high_closed else ")"
    return f"in the range {left}{low}, {'inf' if high is None else high}{right}"


def _check_number(owner: str, name: str, value, kind: str, low, high, low_closed: bool, high_closed: bool) -> None:
    ok_type = _is_int(value) if kind == "int" else _is_real(value)
    what = "an int" if kind == "int" else "a float"
    if not ok_type:
        raise TypeError(f"The {name!r} parameter of {owner} must be {what} "
                        f"{_range_text(low, high, low_closed, high_closed)}. Got {value!r} instead.")
    v = float(value)
    bad = math.isnan(v) or v < low or (v == low and not low_closed)
    if high is not None:
        bad = bad or v > high or (v == high and not high_closed)
    if bad:
        raise ValueError(f"The {name!r} parameter of {owner} must be {what} "
                         f"{_range_text(low, high, low_closed, high_closed)}. Got {value!r} instead.")


def validate_params(est) -> list:
    """Check every hyperparameter of ``est``; returns hidden_layer_sizes as a list of ints."""
    owner = type(est).__name__
    for name, (kind, low, high, low_closed, high_closed) in _NUMERIC.items():
        _check_number(owner, name, getattr(est, name), kind, low, high, low_closed, high_closed)
    for name, options in _OPTIONS.items():
        value = getattr(est, name)
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"The {name!r} parameter of {owner} must be a str among {set(options)}. "
                             f"Got {value!r} instead.")
    for name in _BOOLS:
        value = getattr(est, name)
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"The {name!r} parameter of {owner} must be an instance of 'bool'. Got {value!r} instead.")
    verbose = est.verbose
    if not (isinstance(verbose, (bool, np.bool_)) or _is_int(verbose)):
        raise TypeError(f"The 'verbose' parameter of {owner} must be an int or a bool. Got {verbose!r} instead.")
    batch_size = est.batch_size
    if not (batch_size == "auto" if isinstance(batch_size, str) else _is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"The 'batch_size' parameter of {owner} must be 'auto' or an int in the range [1, inf). "
                         f"Got {batch_size!r} instead.")
    n_iter_no_change = est.n_iter_no_change
    if not ((_is_int(n_iter_no_change) and n_iter_no_change >= 1) or
            (_is_real(n_iter_no_change) and n_iter_no_change == np.inf)):
        raise ValueError(f"The 'n_iter_no_change' parameter of {owner} must be an int in the range [1, inf) "
                         f"or np.inf. Got {n_iter_no_change!r} instead.")
    rs = est.random_state
    if not (rs is None or _is_int(rs) or isinstance(rs, np.random.RandomState)):
        raise ValueError(f"The 'random_state' parameter of {owner} must be None, an int or a "
                         f"numpy.random.RandomState. Got {rs!r} instead.")
    return _hidden_layer_sizes(owner, est.hidden_layer_sizes)


def _hidden_layer_sizes(owner: str, sizes) -> list:
    if _is_int(sizes):
        sizes = [sizes]
    elif isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"The 'hidden_layer_sizes' parameter of {owner} must be an int or an array-like of ints. "
                         f"Got {sizes!r} instead.")
    sizes = list(sizes)
    if not all(_is_int(s) for s in sizes):
        raise ValueError(f"The 'hidden_layer_sizes' parameter of {owner} must hold ints, got {sizes!r}.")
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]

"""scikit-learn estimators trained by fusedprop: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` /
``MLPRegressor`` (same parameters, defaults, fitted attributes and methods;
they pass scikit-learn's estimator checks) whose training runs on fusedprop's
compiled ``TrainStep``. Needs scikit-learn (``pip install fusedprop[sklearn]``);
``import fusedprop`` does not import this module.
"""

try:
    import sklearn as _sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fusedprop.sklearn needs scikit-learn: pip install 'fusedprop[sklearn]' "
                      "(or pip install scikit-learn)") from exc

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

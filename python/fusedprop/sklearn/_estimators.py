"""MLPClassifier and MLPRegressor: scikit-learn's estimators, trained by fusedprop."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from ..nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from ._base import BaseMLP

__all__ = ["MLPClassifier", "MLPRegressor"]

_DOC_COMMON = """
    Parameters and defaults are scikit-learn's (``sklearn.neural_network.{name}``,
    scikit-learn 1.9); the fitted attributes too, with ``coefs_[i]`` of shape
    ``(n_in, n_out)`` (the transpose of a fusedprop ``Linear`` weight). Each
    batch is one ``fusedprop.TrainStep`` call (forward, loss, backward and
    update in one compiled call on the cpp backend); fusedprop's SGD and Adam
    are set up to make scikit-learn's updates (see ``fusedprop.sklearn._solver``).
    float32 input trains in float32, anything else in float64, as in scikit-learn.

    Not supported: ``solver="lbfgs"`` (fit raises ValueError; ``max_fun`` is
    accepted and unused){extra} and ``sample_weight``.
"""


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = "Multi-layer perceptron classifier (log-loss), trained by fusedprop.\n" + _DOC_COMMON.format(
        name="MLPClassifier", extra="") + """
    Multi-class targets get a softmax output trained with CrossEntropyLoss;
    binary targets ONE logistic output and multi-label indicator targets one
    logistic output per label, trained with BCEWithLogitsLoss. ``loss_`` is
    scikit-learn's log loss, computed from the logits: where scikit-learn
    clips a probability to machine epsilon (a sample more than ~36 nats
    wrong) fusedprop's value is the exact, larger one; gradients are the same.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    # ------------------------------------------------ hooks of BaseMLP
    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _criterion(self):
        """(loss module, scikit-learn's gradient / fusedprop's, scikit-learn's loss / fusedprop's)."""
        if self.out_activation_ == "softmax":
            return CrossEntropyLoss(), 1.0, 1.0
        # scikit-learn's binary log loss sums the per-output means, BCEWithLogitsLoss averages them:
        # both its gradient and its loss are k times fusedprop's
        k = float(self.n_outputs_)
        return BCEWithLogitsLoss(), k, k

    def _targets(self, y, dtype) -> np.ndarray:
        if self.out_activation_ == "softmax":
            return np.ascontiguousarray(np.argmax(y, axis=1), dtype=np.int64)
        return np.ascontiguousarray(y, dtype=dtype)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # scikit-learn's rules: a new fit (re)defines classes_; warm_start needs the same
        # classes; partial_fit may see a subset of them.
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    # ----------------------------------------------------------- API
    def predict(self, X):
        """The predicted classes, shape (n_samples,) or (n_samples, n_classes) for multi-label."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input: bool = True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y):
        return self._score_with_function(X, y, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y). ``classes`` (all the classes that will ever
        be seen) is required on the first call, as in scikit-learn."""
        first_call = not hasattr(self, "classes_")
        if classes is None and first_call:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None and not first_call and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, was: "
                             f"{self.classes_!r}")
        if first_call:
            self.classes_ = unique_labels(classes)
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True)

    def predict_proba(self, X):
        """Probability of each class, columns in the order of ``classes_``; rows sum to 1
        (multi-label: one independent probability per label)."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = "Multi-layer perceptron regressor (squared error), trained by fusedprop.\n" + _DOC_COMMON.format(
        name="MLPRegressor", extra=", ``loss='poisson'`` (fit raises ValueError)") + """
    The output is linear and the loss scikit-learn's half mean squared error
    (``loss_`` is ``((y - p) ** 2).mean() / 2``, plus the L2 term); trained with
    MSELoss, whose gradient the optimizer rescales to scikit-learn's.
    Multi-output targets get one output unit each.
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    # ------------------------------------------------ hooks of BaseMLP
    def _check_loss(self) -> None:
        if self.loss == "poisson":
            raise ValueError("MLPRegressor: loss='poisson' is not supported by fusedprop (its compiled step has "
                             "no Poisson loss); use loss='squared_error'")
        if self.loss != "squared_error":
            raise ValueError("The 'loss' parameter of MLPRegressor must be a str among {'squared_error', "
                             f"'poisson'}}. Got {self.loss!r} instead.")

    def _output_activation(self) -> str:
        return "identity"

    def _criterion(self):
        # scikit-learn's gradient (P - Y) / n is MSELoss's 2 (P - Y) / (n k) times k / 2;
        # its loss, half the mean squared error, is MSELoss's times 1 / 2
        return MSELoss(), self.n_outputs_ / 2.0, 0.5

    def _targets(self, y, dtype) -> np.ndarray:
        return np.ascontiguousarray(y, dtype=dtype)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    # ----------------------------------------------------------- API
    def predict(self, X):
        """The predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input: bool = True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y):
        return self._score_with_function(X, y, r2_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y):
        """One epoch over (X, y)."""
        return self._fit(X, y, incremental=True)

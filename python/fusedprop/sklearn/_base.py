"""The shared part of MLPClassifier and MLPRegressor: scikit-learn's
``BaseMultilayerPerceptron`` (initialisation, the epoch loop, convergence and
early stopping, read from scikit-learn 1.9's ``_multilayer_perceptron.py``)
with each batch's forward, backward and update done by one ``fp.TrainStep``.

State kept between calls: ``coefs_``/``intercepts_`` (scikit-learn's layout,
``coefs_[i]`` is ``(n_in, n_out)``: after a fit they are transposed views of
the fusedprop model's weights, so they always show the trained values), the
fusedprop model ``_fp_model`` and the optimizer ``_solver`` (kept for
``partial_fit``, as scikit-learn keeps its ``_optimizer``). Every fit copies
``coefs_``/``intercepts_`` into the model first, so values a user assigns
there are the ones training starts from.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import validate_data

from .. import _runtime, backends
from .. import functional as F
from ..nn.container import Sequential
from ..nn.linear import Linear
from ..train import TrainStep
from ._params import validate_params
from ._solver import Solver

# scikit-learn's hidden activations -> fusedprop's kernel names
KERNELS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_STOCHASTIC_SOLVERS = ("sgd", "adam")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


OUTPUT_ACTIVATIONS = {"identity": lambda z: z, "logistic": expit, "softmax": _softmax}


def canonical(a: np.ndarray) -> np.ndarray:
    """``a`` with NumPy's canonical dtype object, as a view. The compiled
    TrainStep compares dtype objects by identity, and arrays that went
    through pickle (or a memmap) carry an equal but distinct one, which it
    refuses ("must have dtype float64, got float64")."""
    canon = np.dtype(a.dtype.type)
    return a if a.dtype is canon else a.view(canon)


def _canonical_state(model: Sequential, solver) -> None:
    """Every array the compiled step is given, with canonical dtypes (after unpickling)."""
    for p in model.parameters():
        p.data = canonical(p.data)
        p.grad = None  # reallocated by the step
    if solver is not None:
        for state in solver.optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    state[key] = canonical(value)


class _BatchRunner:
    """``run(x, target)``: one step of a fit on a batch, returning fusedprop's
    loss; ``run.weight_sq`` is then the sum of squares of the weights before
    that step's update (the L2 term of scikit-learn's loss).

    The batches' arrays are made by the fit with the step's dtype,
    C-contiguous and (cross-entropy) int64 class indices, so on the cpp
    backend the call goes straight to the compiled step, past the per-call
    conversions and checks of ``TrainStep.__call__`` (the class-index range is
    still checked in C++), and the compiled step adds up the squares of the
    weights it has just read instead of a pass from Python."""

    def __init__(self, step: TrainStep, weights: list) -> None:
        self._step = step
        self._weights = weights
        self._compiled = backends.current.NAME == "cpp" and step._dp is None
        self._sq = np.zeros(1)
        self.weight_sq = 0.0

    def __call__(self, x, target) -> float:
        if self._compiled:
            loss = self._step._compiled_step(x, target, self._sq)
            self.weight_sq = float(self._sq[0])
            return loss
        # (einsum, not np.dot: a BLAS dot wakes OpenBLAS's threads, 30x slower on a busy machine)
        self.weight_sq = sum(float(np.einsum("i,i->", w.ravel(), w.ravel())) for w in self._weights)
        return self._step(x, target)


class BaseMLP(BaseEstimator):
    """Base class; use MLPClassifier or MLPRegressor."""

    # ---------------------------------------------------------------- helpers
    def _check_loss(self) -> None:
        """Subclasses with a ``loss`` parameter check it."""

    def _model(self, layer_units: list, dtype) -> Sequential:
        """A fusedprop model with the architecture of ``layer_units``. Its
        initial values are overwritten from coefs_/intercepts_; fusedprop's
        generator is restored so that fitting leaves it untouched."""
        gen = _runtime.generator()
        state = gen.bit_generator.state
        try:
            hidden = KERNELS[self.activation]
            n = len(layer_units) - 1
            layers = [Linear(layer_units[i], layer_units[i + 1], activation=hidden if i < n - 1 else None,
                             dtype=dtype) for i in range(n)]
        finally:
            gen.bit_generator.state = state
        return Sequential(*layers)

    def _init_coef(self, fan_in: int, fan_out: int, dtype):
        # Glorot uniform with scikit-learn's factor, from scikit-learn's random stream
        factor = 2.0 if self.activation == "logistic" else 6.0
        init_bound = np.sqrt(factor / (fan_in + fan_out))
        coef_init = self._random_state.uniform(-init_bound, init_bound, (fan_in, fan_out))
        intercept_init = self._random_state.uniform(-init_bound, init_bound, fan_out)
        return coef_init.astype(dtype, copy=False), intercept_init.astype(dtype, copy=False)

    def _initialize(self, y, layer_units: list, dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self.coefs_, self.intercepts_ = [], []
        for i in range(self.n_layers_ - 1):
            coef, intercept = self._init_coef(layer_units[i], layer_units[i + 1], dtype)
            self.coefs_.append(coef)
            self.intercepts_.append(intercept)
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._fp_model = None
        self._solver = None

    def _sync_model(self, layer_units: list) -> Sequential:
        """The fusedprop model holding the current coefs_/intercepts_; coefs_
        become views of its weights."""
        shapes = [(a, b) for a, b in zip(layer_units, layer_units[1:])]
        if [np.shape(c) for c in self.coefs_] != shapes:
            raise ValueError(f"{type(self).__name__}: coefs_ have shapes {[np.shape(c) for c in self.coefs_]} "
                             f"but the data and hidden_layer_sizes need {shapes}; fit with warm_start=False")
        dtype = np.dtype(np.asarray(self.coefs_[0]).dtype.type)
        dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
        model = getattr(self, "_fp_model", None)
        hidden = KERNELS[self.activation]
        if model is None or model[0].weight.data.dtype != dtype or \
                [lin.weight.data.T.shape for lin in model] != shapes or \
                any(lin.activation != hidden for lin in list(model)[:-1]):  # set_params between warm fits
            model = self._fp_model = self._model(layer_units, dtype)
            self._solver = None  # its state belongs to the old parameters
        else:
            _canonical_state(model, getattr(self, "_solver", None))
        for lin, coef, intercept in zip(model, self.coefs_, self.intercepts_):
            np.copyto(lin.weight.data, np.asarray(coef).T, casting="unsafe")
            np.copyto(lin.bias.data, intercept, casting="unsafe")
        self.coefs_ = [lin.weight.data.T for lin in model]
        self.intercepts_ = [lin.bias.data for lin in model]
        return model

    # ------------------------------------------------------------- fitting
    def _fit(self, X, y, incremental: bool = False):
        hidden_layer_sizes = validate_params(self)
        self._check_loss()
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(f"{type(self).__name__}: solver={self.solver!r} is not supported by fusedprop "
                             "(it trains with its compiled stochastic step); use solver='adam' or 'sgd', or "
                             "sklearn.neural_network for L-BFGS")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_features = X.shape[1]
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden_layer_sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        model = self._sync_model(layer_units)
        self._fit_stochastic(X, y, model, incremental)
        if not all(np.isfinite(w).all() for w in (*self.coefs_, *self.intercepts_)):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _fit_stochastic(self, X, y, model, incremental: bool) -> None:
        criterion, grad_scale, loss_scale = self._criterion()
        if not incremental or getattr(self, "_solver", None) is None:
            self._solver = Solver(self, model, grad_scale)
        solver = self._solver
        step = TrainStep(model, criterion, solver.optimizer)

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # scikit-learn stratifies only single-output classification
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=self._random_state,
                                                              test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, X_val, y_val = X, y, None, None

        dtype = model[0].weight.data.dtype
        sparse = sp.issparse(X_train)
        if sparse:
            X_train = X_train.tocsr()
        else:
            X_train = canonical(X_train.astype(dtype, copy=False))
        targets = canonical(self._targets(y_train, dtype))
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        weights = [lin.weight.data for lin in model]
        alpha = float(self.alpha)
        batches = list(gen_batches(n_samples, batch_size))
        run = _BatchRunner(step, weights)
        # Each epoch's rows are gathered once, in shuffled order, into buffers reused by every epoch;
        # every batch is then a contiguous slice of them (no per-batch copy or allocation).
        if not sparse and self.shuffle:
            # C order whatever X's layout: the step's first GEMM reads rows
            X_epoch, targets_epoch = np.empty(X_train.shape, dtype), np.empty_like(targets, order="C")
        else:
            X_epoch, targets_epoch = X_train, targets

        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    # scikit-learn's shuffle(sample_idx, random_state=rs) is this (resample without
                    # replacement): the same draw, without its argument checks (~0.1 ms an epoch)
                    order = np.arange(n_samples)
                    self._random_state.shuffle(order)
                    sample_idx = sample_idx[order]
                    if not sparse:
                        # mode="clip": sample_idx is a permutation, always in range, and take with
                        # out= and the default mode="raise" copies through a temporary buffer
                        np.take(X_train, sample_idx, axis=0, out=X_epoch, mode="clip")
                        np.take(targets, sample_idx, axis=0, out=targets_epoch, mode="clip")
                accumulated_loss = 0.0
                for batch_slice in batches:
                    if sparse:
                        idx = sample_idx[batch_slice] if self.shuffle else batch_slice
                        X_batch = canonical(X_train[idx].toarray().astype(dtype, copy=False))
                        target_batch = targets[idx]
                    else:
                        X_batch, target_batch = X_epoch[batch_slice], targets_epoch[batch_slice]
                    n_rows = X_batch.shape[0]
                    solver.before_step(n_rows)
                    batch_loss = loss_scale * run(X_batch, target_batch)
                    # scikit-learn's batch loss adds 0.5 alpha ||W||^2 / n with the weights before the update
                    if alpha:
                        batch_loss += 0.5 * alpha * run.weight_sq / n_rows
                    accumulated_loss += batch_loss * n_rows
                self.n_iter_ += 1
                self.loss_ = accumulated_loss / X_train.shape[0]
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(early_stopping, X_val, y_val)
                solver.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d consecutive epochs."
                               % (self.tol, self.n_iter_no_change))
                    if solver.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                                  "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

        if early_stopping:
            # restore the best weights (copies: the model keeps its last values, as scikit-learn's optimizer does)
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _update_no_improvement_count(self, early_stopping: bool, X_val, y_val) -> None:
        if early_stopping:
            val_score = self._score(X_val, y_val)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def fit(self, X, y):
        """Fit the model to data matrix X and target(s) y (scikit-learn's
        ``fit``; ``sample_weight`` is not supported)."""
        return self._fit(X, y, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. %s is not stochastic."
                                 % self.solver)
        return True

    # ----------------------------------------------------------- inference
    def _forward_pass_fast(self, X, check_input: bool = True) -> np.ndarray:
        """The output layer's activation for X, through fusedprop's fused
        kernels (``F.linear`` reads the transposed coefs_ through strides)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        dtype = np.asarray(self.coefs_[0]).dtype
        dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
        hidden = KERNELS[self.activation]
        last = self.n_layers_ - 2
        h = X if sp.issparse(X) else np.asarray(X).astype(dtype, copy=False)
        for i in range(self.n_layers_ - 1):
            w = np.asarray(self.coefs_[i], dtype=dtype)
            b = np.ascontiguousarray(self.intercepts_[i], dtype=dtype)
            act = "identity" if i == last else hidden
            if sp.issparse(h):
                h = F.activation(np.ascontiguousarray(h @ w, dtype=dtype) + b, act)
            else:
                h = F.linear(h, w.T, b, act)
        return OUTPUT_ACTIVATIONS[self.out_activation_](h)

    def _score_with_function(self, X, y, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

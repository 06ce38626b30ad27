"""fusedprop.sklearn: scikit-learn's own estimator checks, and training checked
against scikit-learn's MLP itself.

The oracle is ``sklearn.neural_network``: with the same random_state both
draw the same initial weights and the same batches, and fusedprop's
optimizers are set up to make scikit-learn's updates, so the fitted
coefficients, loss curves and stopping points must agree to rounding.
The estimator checks run on the default backend only (they test the
scikit-learn API, not the kernels); the small fits below run per backend.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network as sknn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (load_digits, make_classification, make_multilabel_classification,  # noqa: E402
                              make_regression)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fusedprop as fp  # noqa: E402
from fusedprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

no_convergence_warning = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# scikit-learn's MLP needs no expected failure (instance_generator.py lists none for it), so neither do these.
EXPECTED_FAILED_CHECKS: dict = {}


# Checks that do not apply to an MLP, which scikit-learn would run only to
# skip (so they are left out, rather than reported as skipped): the array-API
# check runs only with SCIPY_ARRAY_API=1 set before SciPy is imported, a
# process-wide switch that scikit-learn's own MLP does not support either;
# the decision_function format check needs a decision_function, which
# scikit-learn's MLPClassifier does not have.
NOT_APPLICABLE = ("check_array_api_input", "check_classifiers_multilabel_output_format_decision_function")


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


def _applicable_checks(marker):
    """scikit-learn's parametrize marker without the NOT_APPLICABLE checks."""
    names, params = marker.args[0], list(marker.args[1])
    kept = [p for p in params if _check_name((p.values if hasattr(p, "values") else p)[1]) not in NOT_APPLICABLE]
    assert len(params) - len(kept) == 3, "scikit-learn's check list changed: review NOT_APPLICABLE"
    return pytest.mark.parametrize(names, kept, **marker.kwargs)


# ------------------------------------------------------------------ scikit-learn's checks
# The instances scikit-learn itself checks its MLPs with (max_iter=100, instance_generator.py).
@no_convergence_warning
@_applicable_checks(parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)],
                                            expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS))
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ data
def _classes3():
    return make_classification(150, 8, n_informative=5, n_classes=3, random_state=0)


def _binary():
    return make_classification(150, 8, random_state=1)


def _multilabel():
    return make_multilabel_classification(150, 8, n_classes=4, random_state=0)


def _regression(n_targets=3):
    X, y = make_regression(150, 8, n_targets=n_targets, random_state=0)
    return X, y / 100


def _pair(kind: str, **params):
    params = {"hidden_layer_sizes": (16, 12), "max_iter": 40, "random_state": 0, **params}
    if kind == "clf":
        return sknn.MLPClassifier(**params), MLPClassifier(**params)
    return sknn.MLPRegressor(**params), MLPRegressor(**params)


def _assert_same_fit(ours, theirs, rtol=1e-9, atol=1e-10):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert ours.n_layers_ == theirs.n_layers_ and ours.n_outputs_ == theirs.n_outputs_
    assert ours.out_activation_ == theirs.out_activation_
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol, atol=atol)
    for name in ("best_loss_", "best_validation_score_"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if theirs.validation_scores_ is None:
        assert ours.validation_scores_ is None
    else:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=rtol, atol=atol)


PARITY_CASES = {
    "adam": ("clf", _classes3, dict()),
    "sgd-nesterov": ("clf", _classes3, dict(solver="sgd", learning_rate_init=0.05)),
    "sgd-momentum-invscaling": ("clf", _classes3, dict(solver="sgd", nesterovs_momentum=False,
                                                       learning_rate="invscaling", learning_rate_init=0.2)),
    "sgd-plain-adaptive-alpha": ("clf", _classes3, dict(solver="sgd", momentum=0.0, learning_rate="adaptive",
                                                        tol=0.1, alpha=0.5)),
    # the rate is divided by 5 several times, until scikit-learn's 1e-6 floor stops it
    "sgd-adaptive-stops": ("clf", _classes3, dict(solver="sgd", learning_rate="adaptive", tol=0.05,
                                                  n_iter_no_change=2, learning_rate_init=0.05)),
    "binary-logistic": ("clf", _binary, dict(activation="logistic", alpha=1.0, batch_size=32)),
    "multilabel-adam": ("clf", _multilabel, dict(activation="tanh", alpha=0.1, batch_size=40)),
    "multilabel-sgd": ("clf", _multilabel, dict(activation="tanh", solver="sgd", batch_size=40)),
    "early-stopping-clf": ("clf", _classes3, dict(early_stopping=True, validation_fraction=0.2)),
    "no-shuffle": ("clf", _classes3, dict(shuffle=False, batch_size=50)),
    "multioutput-identity": ("reg", _regression, dict(activation="identity", alpha=0.3)),
    "multioutput-sgd": ("reg", _regression, dict(solver="sgd", learning_rate_init=0.01, batch_size=16)),
    "early-stopping-reg": ("reg", lambda: _regression(1), dict(early_stopping=True)),
}


@no_convergence_warning
@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_fit_matches_sklearn(case):
    kind, data, params = PARITY_CASES[case]
    X, y = data()
    theirs, ours = _pair(kind, **params)
    theirs.fit(X, y)
    assert ours.fit(X, y) is ours
    _assert_same_fit(ours, theirs)
    if kind == "clf":
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9, atol=1e-10)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-10)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-9)


@no_convergence_warning
def test_float32_input_trains_in_float32_like_sklearn():
    X, y = _classes3()
    X = X.astype(np.float32)
    theirs, ours = _pair("clf")
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.coefs_[0].dtype == np.float32
    assert ours.predict_proba(X).dtype == theirs.predict_proba(X).dtype == np.float32
    _assert_same_fit(ours, theirs, rtol=1e-4, atol=1e-5)


@no_convergence_warning
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_small_fit_on_each_backend(backend, solver):
    X, y = _classes3()
    theirs, ours = _pair("clf", solver=solver, max_iter=10, alpha=0.01)
    theirs.fit(X, y)
    ours.fit(X, y)
    _assert_same_fit(ours, theirs)


@no_convergence_warning
def test_sparse_input_fits_as_dense():
    sp = pytest.importorskip("scipy.sparse")
    X, y = _classes3()
    X[np.abs(X) < 0.8] = 0
    dense = _pair("clf")[1].fit(X, y)
    sparse = _pair("clf")[1].fit(sp.csr_matrix(X), y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(sp.csc_matrix(X)), dense.predict_proba(X), rtol=1e-12)


# ------------------------------------------------------------------ fitted attributes and outputs
@no_convergence_warning
def test_coefs_layout_and_forward_pass_match_sklearn():
    """coefs_[i] is (n_in, n_out); our forward pass on scikit-learn's weights gives its outputs."""
    X, y = _classes3()
    theirs = sknn.MLPClassifier(hidden_layer_sizes=(16, 12), max_iter=5, random_state=3).fit(X, y)
    ours = MLPClassifier(hidden_layer_sizes=(16, 12), max_iter=1, random_state=0).fit(X, y)
    assert [c.shape for c in ours.coefs_] == [(8, 16), (16, 12), (12, 3)]
    for lin, coef in zip(ours._fp_model, ours.coefs_):
        np.testing.assert_array_equal(lin.weight.data, coef.T)  # a fusedprop Linear weight is (out, in)
    ours.coefs_ = [c.copy() for c in theirs.coefs_]
    ours.intercepts_ = [b.copy() for b in theirs.intercepts_]
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-12, atol=1e-12)


@no_convergence_warning
@pytest.mark.parametrize("data", [_classes3, _binary], ids=["multiclass", "binary"])
def test_predict_proba_rows_sum_to_one(data):
    X, y = data()
    clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=20, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(np.unique(y)))
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


@no_convergence_warning
def test_binary_has_one_logistic_output_and_multilabel_one_per_label():
    X, y = _binary()
    binary = MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0).fit(X, y)
    assert binary.n_outputs_ == 1 and binary.out_activation_ == "logistic" and binary.coefs_[-1].shape == (10, 1)
    X, Y = _multilabel()
    multi = MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0).fit(X, Y)
    assert multi.n_outputs_ == 4 and multi.out_activation_ == "logistic"
    assert multi.predict(X).shape == Y.shape and set(np.unique(multi.predict(X))) <= {0, 1}
    assert multi.predict_proba(X).shape == Y.shape


@no_convergence_warning
def test_feature_names_in():
    pd = pytest.importorskip("pandas")
    X, y = _regression(1)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(frame, y)
    assert list(reg.feature_names_in_) == list(frame.columns) and reg.n_features_in_ == 8
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        plain = reg.predict(X)
    np.testing.assert_allclose(reg.predict(frame), plain, rtol=1e-15)


# ------------------------------------------------------------------ incremental training
def test_partial_fit_matches_sklearn():
    X, y = _classes3()
    theirs, ours = _pair("clf", solver="sgd", learning_rate_init=0.05)
    classes = np.unique(y)
    for start in (0, 50, 100, 0, 50):
        batch = slice(start, start + 50)
        theirs.partial_fit(X[batch], y[batch], classes=classes)
        ours.partial_fit(X[batch], y[batch], classes=classes)
    assert ours.n_iter_ == 1  # as in scikit-learn: one epoch per call
    _assert_same_fit(ours, theirs)


def test_partial_fit_needs_classes_on_first_call():
    X, y = _classes3()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))


def test_regressor_partial_fit_matches_sklearn():
    X, y = _regression()
    theirs, ours = _pair("reg")
    for _ in range(3):
        theirs.partial_fit(X, y)
        ours.partial_fit(X, y)
    _assert_same_fit(ours, theirs)


@no_convergence_warning
def test_warm_start_matches_sklearn():
    X, y = _classes3()
    theirs, ours = _pair("clf", warm_start=True, max_iter=10)
    for est in (theirs, ours):
        est.fit(X, y)
        est.set_params(max_iter=7)
        est.fit(X, y)
    assert len(ours.loss_curve_) == 17
    _assert_same_fit(ours, theirs)
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        ours.fit(X[y != 2], y[y != 2])
    # hyperparameters changed between warm fits take effect, as in scikit-learn
    for est in (theirs, ours):
        est.set_params(activation="tanh", solver="sgd", max_iter=4)
        est.fit(X, y)
    _assert_same_fit(ours, theirs)


@no_convergence_warning
def test_early_stopping_restores_the_best_weights():
    X, y = _classes3()
    theirs, ours = _pair("clf", early_stopping=True, max_iter=200, n_iter_no_change=3)
    theirs.fit(X, y)
    ours.fit(X, y)
    _assert_same_fit(ours, theirs)
    assert ours.n_iter_ < 200 and ours.best_loss_ is None
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    # the restored coefs_ are the best epoch's, not the last epoch's (held by the fusedprop model)
    assert not np.array_equal(ours.coefs_[0], ours._fp_model[0].weight.data.T)


def test_max_iter_reached_warns():
    X, y = _classes3()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)


# ------------------------------------------------------------------ errors
def test_lbfgs_is_refused_with_a_clear_error():
    X, y = _classes3()
    for est in (MLPClassifier(solver="lbfgs"), MLPRegressor(solver="lbfgs")):
        with pytest.raises(ValueError, match="solver='lbfgs' is not supported by fusedprop"):
            est.fit(X, y)
        assert not hasattr(est, "partial_fit")  # as scikit-learn: only stochastic solvers have it


def test_poisson_loss_is_refused_with_a_clear_error():
    X, y = _regression(1)
    with pytest.raises(ValueError, match="loss='poisson' is not supported"):
        MLPRegressor(loss="poisson").fit(X, np.abs(y))


@pytest.mark.parametrize("params, match", [
    (dict(activation="gelu"), "'activation' parameter of MLPClassifier"),
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes must be > 0"),
    (dict(alpha=-1.0), "'alpha' parameter of MLPClassifier must be a float in the range"),
    (dict(momentum=1.5), "'momentum' parameter"),
    (dict(batch_size=0), "'batch_size' parameter"),
    (dict(n_iter_no_change=0), "'n_iter_no_change' parameter"),
])
def test_bad_hyperparameters_name_the_parameter(params, match):
    X, y = _classes3()
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(X, y)


def test_bad_hyperparameter_type_is_a_type_error():
    X, y = _classes3()
    with pytest.raises(TypeError, match="'max_iter' parameter of MLPClassifier must be an int"):
        MLPClassifier(max_iter=2.5).fit(X, y)


# ------------------------------------------------------------------ scikit-learn's tools
@no_convergence_warning
def test_pipeline_matches_sklearn():
    X, y = _classes3()
    theirs, ours = _pair("clf")
    theirs = make_pipeline(StandardScaler(), theirs).fit(X, y)
    ours = make_pipeline(StandardScaler(), ours).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9, atol=1e-10)


@no_convergence_warning
def test_grid_search_with_two_jobs_matches_sklearn():
    X, y = _classes3()
    grid = {"alpha": [1e-4, 1.0], "hidden_layer_sizes": [(8,), (16,)]}
    theirs = GridSearchCV(sknn.MLPClassifier(max_iter=15, random_state=0), grid, cv=3).fit(X, y)
    ours = GridSearchCV(MLPClassifier(max_iter=15, random_state=0), grid, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"],
                               rtol=1e-12)
    assert ours.best_params_ == theirs.best_params_
    assert isinstance(ours.best_estimator_, MLPClassifier)


def test_clone_keeps_parameters_and_drops_the_fit():
    X, y = _classes3()
    est = MLPClassifier(hidden_layer_sizes=(7, 3), solver="sgd", alpha=0.3, max_iter=2, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_") and not hasattr(copy, "_fp_model")


@no_convergence_warning
def test_pickle_round_trip_predicts_and_trains_on_equally():
    X, y = _classes3()
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0, warm_start=True).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    # the optimizer's state comes along: further training gives the same weights
    est.partial_fit(X, y)
    back.partial_fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, back.coefs_ + back.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_fit_leaves_fusedprops_generator_alone():
    X, y = _classes3()
    fp.manual_seed(5)
    expected = fp.randn(3).numpy()
    fp.manual_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    np.testing.assert_array_equal(fp.randn(3).numpy(), expected)


def test_import_fusedprop_does_not_import_sklearn():
    code = "import sys, fusedprop; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ digits
def test_digits_accuracy_within_a_point_of_sklearn():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    params = dict(hidden_layer_sizes=(256, 256), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
        theirs = sknn.MLPClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    assert theirs > 0.9
    assert abs(ours - theirs) <= 0.01

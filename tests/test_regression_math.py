"""Task 1 math against closed forms: weighted least squares, the IRLS weights, the logistic gradient step."""

import numpy as np
import pytest
import torch

from dlhub.errors import DataError
from dlhub.regression import (
    RegressionModel,
    classification_features,
    irls,
    logistic_curves,
    make_task1_example,
    regression_features,
    select_sigma,
    train_logistic,
    weighted_least_squares,
)


@pytest.fixture
def data():
    reg, clf = make_task1_example(seed=3)
    return {k: v.reshape(-1) for k, v in reg.items()}, clf


def test_features_are_the_courses():
    assert np.allclose(regression_features([2.0]), [[1, 2, 4, 0.5]])
    assert np.allclose(classification_features([[2.0, 3.0]]), [[2, 3, 4, 9, 6, 1]])
    with pytest.raises(DataError, match="1/x"):
        regression_features([1.0, 0.0])


def test_weighted_least_squares_is_the_normal_equation():
    rng = np.random.default_rng(0)
    X, y, a = rng.normal(size=(20, 4)), rng.normal(size=20), rng.uniform(0.1, 1, 20)
    A = np.diag(a)
    closed = np.linalg.inv(X.T @ A @ X) @ X.T @ A @ y
    assert np.allclose(weighted_least_squares(X, y, a), closed)
    assert np.allclose(weighted_least_squares(X, y), np.linalg.inv(X.T @ X) @ X.T @ y)


def test_irls_weights_and_iterates_follow_the_formula(data):
    reg, _ = data
    x, y = reg["X_trn"], reg["Y_trn"]
    X = regression_features(x)
    sigma = 30.0
    one = irls(x, y, reg["X_val"], reg["Y_val"], sigma, n_iter=1)
    ols = np.linalg.inv(X.T @ X) @ X.T @ y
    assert np.allclose(one.ols_weights, ols)
    a = np.exp(-sigma * (X @ ols - y) ** 2)
    w1 = np.linalg.inv(X.T @ np.diag(a) @ X) @ X.T @ np.diag(a) @ y
    val_mse = lambda w: np.mean((regression_features(reg["X_val"]) @ w - reg["Y_val"]) ** 2)  # noqa: E731
    assert np.allclose(one.val_mse, [val_mse(ols), val_mse(w1)])
    assert one.best_iteration == 1  # the outliers make the first reweighting beat OLS on validation
    assert np.allclose(one.weights, w1) and np.allclose(one.sample_weights, a)


def test_irls_keeps_ols_when_reweighting_does_not_help():
    """Clean data on the model's own curve: OLS is exact, so iteration 0 is kept with unit sample weights."""
    x = np.linspace(0.6, 4.0, 30)
    y = regression_features(x) @ np.array([0.1, -0.2, 0.05, 0.3])
    x_val = np.linspace(0.7, 3.9, 10)
    y_val = regression_features(x_val) @ np.array([0.1, -0.2, 0.05, 0.3]) + 0.01
    fit = irls(x, y, x_val, y_val, 30.0, n_iter=3)
    assert fit.best_iteration == 0 and np.allclose(fit.sample_weights, 1.0) and np.allclose(fit.weights,
                                                                                              fit.ols_weights)


def test_irls_keeps_the_iterate_with_lowest_validation_error(data):
    reg, _ = data
    fit = irls(reg["X_trn"], reg["Y_trn"], reg["X_val"], reg["Y_val"], 40.0)
    assert fit.val_mse[fit.best_iteration] == fit.val_mse.min()
    assert fit.val_mse[fit.best_iteration] < fit.val_mse[0]  # outliers: reweighting must beat OLS here


def test_tiny_sigma_is_ordinary_least_squares(data):
    reg, _ = data
    fit = irls(reg["X_trn"], reg["Y_trn"], reg["X_val"], reg["Y_val"], 1e-9, n_iter=5)
    assert np.allclose(fit.val_mse, fit.val_mse[0])


def test_select_sigma_picks_the_grid_minimum(data):
    reg, _ = data
    grid = [1.0, 10.0, 100.0]
    best = select_sigma(reg["X_trn"], reg["Y_trn"], reg["X_val"], reg["Y_val"], sigmas=grid)
    each = [irls(reg["X_trn"], reg["Y_trn"], reg["X_val"], reg["Y_val"], s) for s in grid]
    assert best.val_mse[best.best_iteration] == min(f.val_mse[f.best_iteration] for f in each)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_sigma_is_a_clear_error(data, sigma):
    reg, _ = data
    with pytest.raises(DataError, match="sigma must be a positive number"):
        irls(reg["X_trn"], reg["Y_trn"], reg["X_val"], reg["Y_val"], sigma)


def test_huge_sigma_stops_before_a_singular_system(data):
    reg, _ = data
    fit = irls(reg["X_trn"], reg["Y_trn"], reg["X_val"], reg["Y_val"], 1e12)
    assert np.all(np.isfinite(fit.weights))


def test_logistic_epoch_is_the_closed_form_gradient_step(data):
    _, clf = data
    F, y = classification_features(clf["arr_0"]), clf["arr_2"].reshape(-1)
    torch.manual_seed(0)
    w0 = torch.nn.Linear(6, 1, bias=False, dtype=torch.float64).weight.detach().numpy().reshape(-1)
    p = 1 / (1 + np.exp(-(F @ w0)))
    expected = w0 - 0.5 * F.T @ (p - y) / len(y)
    fit = train_logistic(clf["arr_0"], y, lr=0.5, epochs=1, seed=0)
    assert np.allclose(fit.weights, expected)


def test_logistic_lr_decay_schedule_and_curves(data):
    _, clf = data
    fit = train_logistic(clf["arr_0"], clf["arr_2"], clf["arr_1"], clf["arr_3"], lr=1.0, epochs=50, decay=0.001)
    assert np.allclose(fit.history["lr"], 0.999 ** np.arange(50))
    assert set(fit.history) == {"lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy"}
    loss, acc = logistic_curves(np.zeros((1, 6)), clf["arr_0"], clf["arr_2"])
    assert np.isclose(loss[0], np.log(2))  # p = 0.5 everywhere


def test_logistic_regression_learns_the_example(data):
    _, clf = data
    fit = train_logistic(clf["arr_0"], clf["arr_2"], clf["arr_1"], clf["arr_3"], epochs=2000)
    assert fit.history["test_accuracy"][-1] > 0.85
    assert fit.history["train_loss"][-1] < fit.history["train_loss"][0]


def test_model_predicts_with_its_fitted_weights(data):
    reg, clf = data
    fit = irls(reg["X_trn"], reg["Y_trn"], reg["X_val"], reg["Y_val"], 40.0)
    logistic = train_logistic(clf["arr_0"], clf["arr_2"], epochs=200)
    model = RegressionModel.from_fits(fit, logistic, logistic, x_range=(-5, 5))
    assert np.allclose(model.predict(reg["X_val"]), regression_features(reg["X_val"]) @ fit.weights)
    assert np.allclose(model.predict_ols(reg["X_val"]), regression_features(reg["X_val"]) @ fit.ols_weights)
    p = model.predict_proba(clf["arr_1"])
    assert np.allclose(p, 1 / (1 + np.exp(-(classification_features(clf["arr_1"]) @ logistic.weights))))
    assert np.array_equal(model.classify(clf["arr_1"]), (p > 0.5).astype(int))

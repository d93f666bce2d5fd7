"""The calculation exercises: every number against torch autograd, and z's fixed points and composition."""

import math

import numpy as np
import pytest

from dlhub.exercises import COURSE_WEIGHTS, Z_FIXED_POINTS, Z_LIMIT, mlp_autograd, mlp_step, z, z_composed


def test_course_numbers_by_hand():
    """The course's question: x = (1, 2), label y = 0, lr = 0.1, the course's weights."""
    step = mlp_step(1.0, 2.0, 0.0, 0.1)
    assert step.pre["s3"] == pytest.approx(0.4) and step.pre["s4"] == pytest.approx(1.2)
    assert step.pre["s5"] == pytest.approx(-0.1) and step.act["h5"] == 0.0  # neuron 5's ReLU is off
    assert step.pre["s6"] == pytest.approx(0.4 * -0.2 + 1.2 * 0.5)
    assert step.act["y_hat"] == pytest.approx(0.6271, abs=5e-5)
    assert step.loss_y0 == pytest.approx(0.9866, abs=5e-5) and step.loss_y1 == pytest.approx(0.4666, abs=5e-5)
    assert step.loss == step.loss_y0
    assert step.factors["w36"]["∂L/∂w36"] == pytest.approx(0.6271 * 0.4, abs=5e-5)  # (ŷ − y)·h3
    assert step.updated["w36"] == pytest.approx(-0.2251, abs=5e-5)
    assert step.factors["w25"]["∂L/∂w25"] == 0.0 and step.updated["w25"] == 0.1  # w25 stays 0.1


@pytest.mark.parametrize("seed", range(8))
def test_every_number_matches_autograd(seed):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 2, 2)
    y = float(rng.integers(0, 2))
    weights = {k: float(v) for k, v in zip(COURSE_WEIGHTS, rng.normal(0, 1, 9))}
    step, auto = mlp_step(x1, x2, y, 0.05, weights), mlp_autograd(x1, x2, y, weights)
    assert step.loss == pytest.approx(auto["loss"], rel=1e-12)
    assert step.act["y_hat"] == pytest.approx(auto["y_hat"], rel=1e-12)
    for name in ("w36", "w25"):
        factors = step.factors[name]
        grad = factors[f"∂L/∂{name}"]
        assert grad == pytest.approx(auto[name], rel=1e-9, abs=1e-12)
        assert math.prod(v for k, v in factors.items() if not k.startswith("∂L/∂w")) == pytest.approx(grad, abs=1e-12)
        assert step.updated[name] == pytest.approx(weights[name] - 0.05 * auto[name])


def test_saturated_output_stays_finite_and_exact():
    step, auto = mlp_step(1000.0, 1000.0, 0.0, 0.1), mlp_autograd(1000.0, 1000.0, 0.0)
    assert step.act["y_hat"] == 1.0
    assert step.loss == pytest.approx(auto["loss"]) and math.isfinite(step.loss)
    assert step.factors["w36"]["∂L/∂w36"] == pytest.approx(auto["w36"])


def test_z_definition_and_fixed_points():
    assert z(0.5) == pytest.approx(math.exp(0.5) - math.exp(-0.5))
    assert z(7.0) == pytest.approx(Z_LIMIT) and z(-7.0) == pytest.approx(-Z_LIMIT)
    for p in Z_FIXED_POINTS:
        assert z(p) == pytest.approx(p)


def test_z_composed_1000_times_is_a_step():
    xs = np.array([-3, -1e-200, -1e-9, 1e-9, 0.3, 1e-200, 2.0])
    assert np.allclose(z_composed(xs, 1000), Z_LIMIT * np.sign(xs))
    assert z_composed(0.0, 1000) == 0.0
    assert z_composed(2.0 ** -1010, 1000) < 1  # closer to 0 than ~2^-999: not yet saturated after 1000 steps

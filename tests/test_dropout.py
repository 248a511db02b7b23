"""rnncore.Dropout: inverted dropout in training, the identity in evaluation, its gradient,
its seed, and its place in Sequential."""

import numpy as np
import pytest

import rnncore


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_training_zeroes_a_fraction_p_and_scales_the_rest(dtype, p):
    x = np.random.default_rng(0).uniform(1, 2, (200, 50, 10)).astype(dtype)
    d = rnncore.Dropout(p, seed=1)
    y = d.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.01                       # 100,000 draws: sd 0.0016
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p), rtol=1e-6)
    assert abs(y.mean() / x.mean() - 1) < 0.02                   # expectation kept (inverted dropout)


def test_eval_is_the_identity_and_train_turns_it_back_on():
    x = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    d = rnncore.Dropout(0.5, seed=0)
    assert d.eval() is d and not d.training
    y = d.forward(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), np.ones_like(x))
    d.train()
    assert (d.forward(np.ones((100, 100), np.float32)) == 0).any()


def test_p_zero_and_one():
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(rnncore.Dropout(0.0).forward(x), x)
    d = rnncore.Dropout(1.0, seed=0)
    np.testing.assert_array_equal(d.forward(x), np.zeros_like(x))
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), np.zeros_like(x))


def test_backward_uses_the_forward_mask():
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(7, 3, 5)), rng.normal(size=(7, 3, 5))
    d = rnncore.Dropout(0.3, seed=4)
    y = d.forward(x)
    mask = np.where(y != 0, 1 / 0.7, 0.0)
    np.testing.assert_allclose(d.backward(dy), dy * mask, rtol=1e-15)


def test_gradient_against_finite_differences():
    """The loss of a fixed mask (the generator reset before every forward) is a smooth
    function of the input and of the weights after it: its gradient is checked."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 6))
    d = rnncore.Dropout(0.4, seed=7)
    lin = rnncore.Linear(6, 2, dtype=np.float64, seed=1)
    target = rng.normal(size=(4, 3, 2))
    start = d.rng.bit_generator.state

    def loss():
        d.rng.bit_generator.state = start
        return float(0.5 * np.sum((lin.forward(d.forward(x)) - target) ** 2))

    lin.zero_grad()
    dx = d.backward(lin.backward(_residual(lin, d, x, target, start)))
    report = rnncore.gradcheck(loss, {"x": x, "weight": lin.params["weight"]}, {"x": dx, "weight": lin.grads["weight"]})
    assert report, report
    assert (dx == 0).any() and (dx != 0).any()                   # some inputs were dropped, some were not


def _residual(lin, d, x, target, start):
    d.rng.bit_generator.state = start
    return lin.forward(d.forward(x)) - target


def test_same_seed_same_masks_different_seed_different_masks():
    x = np.ones((50, 40))
    a, b, c = rnncore.Dropout(0.5, seed=3), rnncore.Dropout(0.5, seed=3), rnncore.Dropout(0.5, seed=4)
    for _ in range(3):
        ya, yb, yc = a.forward(x), b.forward(x), c.forward(x)
        np.testing.assert_array_equal(ya, yb)
        assert not np.array_equal(ya, yc)
    assert not np.array_equal(a.forward(x), a.forward(x))      # a new mask at every call


def test_inside_sequential_train_and_eval_reach_it():
    rng = np.random.default_rng(0)
    V, E, H = 7, 8, 5
    drop = rnncore.Dropout(0.5, seed=2)
    model = rnncore.Sequential(rnncore.Embedding(V, E, dtype=np.float64, seed=0), drop,
                               rnncore.LSTM(E, H, dtype=np.float64, seed=1), rnncore.Dropout(0.5, seed=3),
                               rnncore.Linear(H, V, dtype=np.float64, seed=4))
    assert model.params.keys() == {"0.weight", "2.weight_ih_l0", "2.weight_hh_l0", "2.bias_ih_l0", "2.bias_hh_l0",
                                   "4.weight", "4.bias"}  # torch.nn.Sequential's numbering, Dropout included
    ids = rng.integers(0, V, (6, 3))
    model.eval()
    assert not drop.training and not model[3].training
    with rnncore.no_grad():
        a, _ = model.forward(ids)
        b, _ = model.forward(ids)
    np.testing.assert_array_equal(a, b)                         # deterministic in evaluation
    plain = rnncore.Sequential(model[0], model[2], model[4])
    with rnncore.no_grad():
        np.testing.assert_allclose(plain.forward(ids)[0], a, rtol=1e-14)
    model.train()
    assert drop.training and model[3].training
    c, _ = model.forward(ids)
    assert not np.allclose(c, a)
    # backward through both dropouts, checked against finite differences with fixed masks
    starts = [model[1].rng.bit_generator.state, model[3].rng.bit_generator.state]
    target = rng.normal(size=c.shape)

    def loss():
        model[1].rng.bit_generator.state, model[3].rng.bit_generator.state = starts
        return float(0.5 * np.sum((model.forward(ids)[0] - target) ** 2))

    model.zero_grad()
    model.backward(_again(model, ids, starts) - target)
    report = rnncore.gradcheck(loss, dict(model.params), dict(model.grads), max_entries=20)
    assert report, report


def _again(model, ids, starts):
    model[1].rng.bit_generator.state, model[3].rng.bit_generator.state = starts
    return model.forward(ids)[0]


def test_no_grad_forward_saves_nothing():
    d = rnncore.Dropout(0.5, seed=0)
    with rnncore.no_grad():
        d.forward(np.ones((3, 3)))
    with pytest.raises(RuntimeError, match="^backward"):
        d.backward(np.ones((3, 3)))


@pytest.mark.parametrize("p, exc", [(-0.1, ValueError), (1.5, ValueError), ("0.5", TypeError), (None, TypeError)])
def test_bad_p(p, exc):
    with pytest.raises(exc, match="^p"):
        rnncore.Dropout(p)


def test_bad_inputs():
    d = rnncore.Dropout(0.5, seed=0)
    with pytest.raises(TypeError, match="^x"):
        d.forward(np.ones(3, np.int64))
    with pytest.raises(TypeError, match="^x"):
        d.forward([1.0, 2.0])
    with pytest.raises(RuntimeError, match="^backward"):
        rnncore.Dropout(0.5).backward(np.ones(3))
    d.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="^dy"):
        d.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="^dy"):
        d.backward(np.ones((2, 3), np.float32))
    assert repr(d) == "Dropout(p=0.5)"

"""Weight drop (DropConnect on weight_hh, one mask per forward pass): what it computes,
its gradients against finite differences with the mask fixed, evaluation, bad values."""

import numpy as np
import pytest

import rnncore
from rnn_testing import FD_TOL, analytic, assert_close, make_layer, numeric, pack, random_problem

KINDS = [("rnn", {}), ("lstm", {}), ("lstm", {"peephole": True}), ("lstm", {"proj_size": 2}), ("gru", {}), ("gru", {"reset_after": False}),
         ("indrnn", {})]
KIND_IDS = ["rnn", "lstm", "lstm-peephole", "lstm-proj", "gru", "gru-cho", "indrnn"]
T, B, I, H = 6, 3, 4, 5


def _masks(layer, seed, p):
    """The scaled masks a forward pass of layer draws after rng = default_rng(seed), one
    per (layer, direction) in their order: the layer's documented draw."""
    rng = np.random.default_rng(seed)
    out = []
    for w, _ in layer._weights:
        out.append((rng.random(w.w_hh.shape) >= p) / (1 - p))
    return out


@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
def test_forward_runs_with_masked_recurrent_weights(backend, kind, opts):
    p = 0.4
    dropped = make_layer(kind, I, H, backend=backend, weight_drop=p, num_layers=2, bidirectional=True, **opts)
    plain = make_layer(kind, I, H, backend=backend, num_layers=2, bidirectional=True, **opts)
    plain.load_state_dict(dropped.state_dict())
    for (w, _), m in zip(plain._weights, _masks(dropped, 11, p)):
        w.w_hh[...] *= m
    x, states, _, _ = random_problem(dropped, T, B, np.random.default_rng(0))
    dropped.rng = np.random.default_rng(11)
    y, fin = dropped.forward(x, pack(dropped, states), [6, 2, 0])
    y0, fin0 = plain.forward(x, pack(plain, states), [6, 2, 0])
    assert_close(y, y0, 1e-12, "y")
    # a second forward draws a new mask
    y2, _ = dropped.forward(x, pack(dropped, states), [6, 2, 0])
    assert not np.allclose(y2, y)
    # evaluation: weight_hh as it is
    dropped.eval()
    plain.load_state_dict(dropped.state_dict())
    np.testing.assert_array_equal(dropped.forward(x)[0], plain.forward(x)[0])


@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("checkpoint_every", [None, 2])
def test_gradients_match_finite_differences_with_the_mask_fixed(backend, kind, opts, checkpoint_every):
    layer = make_layer(kind, 2, 3, backend=backend, weight_drop=0.3, bidirectional=True,
                       checkpoint_every=checkpoint_every, **opts)
    x, states, wy, ws = random_problem(layer, T, B, np.random.default_rng(3))
    lengths = [6, 1, 4]
    got = analytic(layer, x, states, lengths, wy, ws, rng_seed=9)
    want = numeric(layer, x, states, lengths, wy, ws, rng_seed=9)
    assert set(got) == set(want)
    for name in want:
        assert_close(got[name], want[name], FD_TOL, name)


def test_gradient_of_weight_hh_is_the_masked_gradient(backend):
    p = 0.5
    dropped = rnncore.LSTM(I, H, dtype=np.float64, backend=backend, seed=0, weight_drop=p)
    plain = rnncore.LSTM(I, H, dtype=np.float64, backend=backend, seed=0)
    (mask,) = _masks(dropped, 4, p)
    plain.params["weight_hh_l0"][...] *= mask
    x = np.random.default_rng(1).standard_normal((T, B, I))
    dropped.rng = np.random.default_rng(4)
    dy = np.ones((T, B, H))
    dropped.backward(dropped.forward(x)[0] * 0 + dy)
    plain.backward(plain.forward(x)[0] * 0 + dy)
    assert_close(dropped.grads["weight_hh_l0"], plain.grads["weight_hh_l0"] * mask, 1e-12, "weight_hh")
    assert np.all(dropped.grads["weight_hh_l0"][mask == 0] == 0)
    for name in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0"):
        assert_close(dropped.grads[name], plain.grads[name], 1e-12, name)


def test_drop_everything_cuts_the_recurrence(backend):
    layer = rnncore.GRU(I, H, dtype=np.float64, backend=backend, seed=0, weight_drop=1.0)
    x = np.random.default_rng(2).standard_normal((T, B, I))
    y, _ = layer.forward(x)
    gru = rnncore.GRU(I, H, dtype=np.float64, backend=backend, seed=0)
    gru.params["weight_hh_l0"][...] = 0
    np.testing.assert_allclose(y, gru.forward(x)[0], rtol=0, atol=1e-15)


def test_weight_drop_leaves_the_parameters_alone(backend):
    layer = rnncore.RNN(I, H, dtype=np.float64, backend=backend, seed=0, weight_drop=0.5)
    before = layer.params["weight_hh_l0"].copy()
    layer.forward(np.ones((T, B, I)))
    np.testing.assert_array_equal(layer.params["weight_hh_l0"], before)


@pytest.mark.parametrize("value,error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                         (True, TypeError), ("0.2", TypeError), (None, TypeError)])
def test_bad_weight_drop(value, error):
    with pytest.raises(error, match="weight_drop"):
        rnncore.GRU(3, 4, weight_drop=value)


def test_onnx_export_keeps_the_training_options(tmp_path):
    onnx_mod = pytest.importorskip("rnncore.onnx")
    pytest.importorskip("onnx")
    layer = rnncore.LSTM(I, H, num_layers=2, weight_drop=0.25, checkpoint_every=7, seed=0)
    path = tmp_path / "m.onnx"
    onnx_mod.export(layer, path)
    back = onnx_mod.load(path)
    assert (back.weight_drop, back.checkpoint_every) == (0.25, 7)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    layer.eval()
    back.eval()
    np.testing.assert_array_equal(back.forward(x)[0], layer.forward(x)[0])

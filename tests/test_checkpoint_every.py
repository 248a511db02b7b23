"""Memory-efficient BPTT (``checkpoint_every=k``): the same outputs, final states and
gradients as the full path, for every cell, structure, backend and segment length; finite
differences through the checkpointed path; the activations it keeps; bad values."""

import numpy as np
import pytest

import rnncore
from rnn_testing import FD_TOL, analytic, assert_close, make_layer, numeric, pack, random_problem, unpack

KINDS = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("lstm", {"peephole": True}),
         ("lstm", {"proj_size": 2}), ("gru", {}), ("gru", {"reset_after": False}), ("indrnn", {})]
KIND_IDS = ["rnn", "rnn-relu", "lstm", "lstm-peephole", "lstm-proj", "gru", "gru-cho", "indrnn"]

STRUCTURES = {
    # name: (layer options, lengths of B=4 sequences of T=13 steps, initial state, dy)
    "plain": ({}, None, True, True),
    "lengths-bidir": ({"bidirectional": True}, [13, 5, 0, 9], True, True),
    "2layer-batchfirst-lengths": ({"num_layers": 2, "batch_first": True}, [2, 13, 12, 7], False, True),
    "2layer-bidir-dropout-finalstate-only": ({"num_layers": 2, "bidirectional": True, "dropout": 0.4},
                                             [13, 13, 1, 6], True, False),
    # zoneout and recurrent dropout (masks of absolute steps) with weight drop (one mask per pass)
    "bidir-lengths-zoneout-recurrent-dropout-weight-drop": ({"bidirectional": True, "zoneout": 0.3,
                                                            "recurrent_dropout": 0.4, "weight_drop": 0.3},
                                                           [13, 5, 0, 9], True, True),
}
T, B, I, H = 13, 4, 3, 5


def _run(layer, x, states, lengths, wy, ws, use_dy):
    layer.zero_grad()
    layer.rng = np.random.default_rng(5)  # the same dropout masks in both layers
    y, fin = layer.forward(x, pack(layer, states), lengths)
    dx, d0 = layer.backward(wy if use_dy else None, pack(layer, ws))
    return {"y": y, "dx": dx, **{f"fin{i}": f for i, f in enumerate(unpack(layer, fin))},
            **{f"d0_{i}": d for i, d in enumerate(unpack(layer, d0))},
            **{k: v.copy() for k, v in layer.grads.items()}}


@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("every", [1, 2, 5, 12])
def test_checkpointed_matches_full_path(backend, kind, opts, structure, every):
    layer_opts, lengths, with_state, use_dy = STRUCTURES[structure]
    full = make_layer(kind, I, H, backend=backend, **opts, **layer_opts)
    ckpt = make_layer(kind, I, H, backend=backend, checkpoint_every=every, **opts, **layer_opts)
    x, states, wy, ws = random_problem(full, T, B, np.random.default_rng(every), with_state=with_state)
    want = _run(full, x, states, lengths, wy, ws, use_dy)
    got = _run(ckpt, x, states, lengths, wy, ws, use_dy)
    assert set(got) == set(want)
    for name in want:
        assert_close(got[name], want[name], 1e-12, name)
    # the forward pass runs the same steps in the same order: the same bits
    np.testing.assert_array_equal(got["y"], want["y"])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [2, 9])  # per-step (units) and rows thread plans
def test_checkpointed_float32_and_threads(backend, forced_threads, threads, batch):
    T, B, I, H = 40, batch, 6, 16
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)
    if forced_threads:
        forced_threads(threads)
    full = rnncore.LSTM(I, H, dtype=np.float32, backend=backend, seed=1)
    ckpt = rnncore.LSTM(I, H, dtype=np.float32, backend=backend, seed=1, checkpoint_every=7)
    lengths = rng.integers(0, T + 1, B)
    for layer in (full, ckpt):
        layer.forward(x, lengths=lengths)
    dx_full, _ = full.backward(dy)
    dx_ckpt, _ = ckpt.backward(dy)
    assert_close(dx_ckpt, dx_full, 1e-5, "dx")
    for name in full.grads:
        assert_close(ckpt.grads[name], full.grads[name], 1e-5, name)


# native only: the checkpointed path equals the full path on both backends (above), whose
# reference equals native (test_native.py, test_zoneout_recurrent_dropout.py), so these
# finite differences check both; the reference's Python loop would double the time
@pytest.mark.parametrize("backend", ["native"])
@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("reg", [{}, {"zoneout": 0.3, "recurrent_dropout": 0.4}], ids=["", "regularised"])
def test_checkpointed_gradients_match_finite_differences(backend, kind, opts, reg):
    layer = make_layer(kind, 2, 3, backend=backend, checkpoint_every=3, bidirectional=True, **opts, **reg)
    x, states, wy, ws = random_problem(layer, 8, 3, np.random.default_rng(2))
    lengths = [8, 4, 0]
    got = analytic(layer, x, states, lengths, wy, ws, rng_seed=4)  # the masks fixed
    want = numeric(layer, x, states, lengths, wy, ws, rng_seed=4)
    for name in want:
        assert_close(got[name], want[name], FD_TOL, name)


def test_inference_without_grad_keeps_no_checkpoints(backend):
    layer = rnncore.GRU(I, H, num_layers=2, dtype=np.float64, backend=backend, seed=0, checkpoint_every=4)
    plain = rnncore.GRU(I, H, num_layers=2, dtype=np.float64, backend=backend, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    with rnncore.no_grad():
        y, h = layer.forward(x, lengths=[13, 2, 9, 0])
    y0, h0 = plain.forward(x, lengths=[13, 2, 9, 0])
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(h, h0)
    with pytest.raises(RuntimeError, match="no saved forward"):
        layer.backward(y)


def test_memory_kept_is_segment_sized(backend):
    """The arrays a checkpointed layer holds between forward and backward: k steps of
    activations and T/k starting states, not T steps."""
    T, B, I, H, k = 400, 2, 3, 8, 20
    x = np.zeros((T, B, I), np.float32)
    held = {}
    for every in (None, k):
        layer = rnncore.LSTM(I, H, backend=backend, checkpoint_every=every)
        layer.backward(layer.forward(x)[0])
        held[every] = sum(a.size for a in layer._buffers.values())
    assert held[None] >= T * B * 6 * H  # h, c and the four gates at every step
    assert held[k] <= (2 * k + 2 * T // k + 4) * B * 6 * H


def test_state_given_is_copied_not_referenced(backend):
    layer = rnncore.LSTM(I, H, dtype=np.float64, backend=backend, seed=0, checkpoint_every=3)
    plain = rnncore.LSTM(I, H, dtype=np.float64, backend=backend, seed=0)
    rng = np.random.default_rng(1)
    x, h0, c0, dy = (rng.standard_normal(s) for s in ((T, B, I), (1, B, H), (1, B, H), (T, B, H)))
    plain.forward(x, (h0, c0))
    layer.forward(x, (h0, c0))
    h0 += 1.0  # the caller reuses its buffers between forward and backward
    x += 1.0
    np.testing.assert_allclose(layer.backward(dy)[0], plain.backward(dy)[0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("value,error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError),
                                         ("4", TypeError), (np.float64(4), TypeError)])
def test_bad_checkpoint_every(value, error):
    with pytest.raises(error, match="checkpoint_every"):
        rnncore.LSTM(3, 4, checkpoint_every=value)


def test_repr_shows_the_option():
    assert "checkpoint_every=45" in repr(rnncore.GRU(3, 4, checkpoint_every=45))
    assert "checkpoint_every" not in repr(rnncore.GRU(3, 4))

"""Backward against central finite differences in float64: every gradient (dx, dh0,
dc0, every parameter) of every cell and option, on every backend."""

import numpy as np
import pytest

import rnncore
from rnn_testing import CELLS, FD_EPS, FD_TOL, analytic, assert_close, make_layer, numeric, random_problem

CELL_VARIANTS = [
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
    ("rnn", {"nonlinearity": "sigmoid"}),
    ("lstm", {}),
    ("lstm", {"peephole": True}),
    ("gru", {}),
    ("gru", {"reset_after": False}),
    ("indrnn", {"nonlinearity": "relu"}),
    ("indrnn", {"nonlinearity": "tanh"}),
    ("indrnn", {"nonlinearity": "sigmoid"}),
]
CELL_IDS = ["rnn-tanh", "rnn-relu", "rnn-sigmoid", "lstm", "lstm-peephole", "gru", "gru-cho", "indrnn-relu",
            "indrnn-tanh", "indrnn-sigmoid"]

T, B, I, H = 4, 3, 5, 3
STRUCTURES = {
    # name: (layer options, lengths, with initial state)
    "1layer": ({}, None, True),
    "bidir-lengths": ({"bidirectional": True}, [T, 0, 2], True),
    "2layer-bidir-batchfirst-lengths": ({"num_layers": 2, "bidirectional": True, "batch_first": True},
                                        [3, T, 1], True),
    "3layer-dropout-nobias-zerostate": ({"num_layers": 3, "dropout": 0.3, "bias": False}, None, False),
}


@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("kind,opts", CELL_VARIANTS, ids=CELL_IDS)
def test_layer_gradients_match_finite_differences(backend, kind, opts, structure):
    layer_opts, lengths, with_state = STRUCTURES[structure]
    layer = make_layer(kind, I, H, backend=backend, **opts, **layer_opts)
    rng = np.random.default_rng(1)
    x, states, wy, ws = random_problem(layer, T, B, rng, with_state=with_state)
    seed = 7 if layer.dropout else None  # the same dropout mask in every forward
    got = analytic(layer, x, states, lengths, wy, ws, seed)
    want = numeric(layer, x, states, lengths, wy, ws, seed)
    if not with_state:
        want.pop("h0", None)
        want.pop("c0", None)
        got = {k: v for k, v in got.items() if k in want}
    assert set(got) == set(want)
    for name in want:
        assert_close(got[name], want[name], FD_TOL, f"{name}")


@pytest.mark.parametrize("kind,opts", CELL_VARIANTS, ids=CELL_IDS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_gradients_match_finite_differences(backend, kind, opts, bias):
    cell = CELLS[kind](I, H, bias, dtype=np.float64, backend=backend, seed=3, **opts)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, I))
    state = [rng.standard_normal((B, H)) for _ in range(2 if kind == "lstm" else 1)]
    w = [rng.standard_normal((B, H)) for _ in state]

    def loss():
        out = cell.forward(x, tuple(state) if kind == "lstm" else state[0])
        out = out if kind == "lstm" else (out,)
        cell.clear_saved()
        return sum(float(np.sum(o * wi)) for o, wi in zip(out, w))

    cell.zero_grad()
    cell.forward(x, tuple(state) if kind == "lstm" else state[0])
    dx, dstate = cell.backward(tuple(w) if kind == "lstm" else w[0])
    got = {"x": dx, **{f"state{i}": d for i, d in enumerate(dstate if kind == "lstm" else [dstate])}}
    got.update({k: v.copy() for k, v in cell.grads.items()})
    targets = {"x": x, **{f"state{i}": s for i, s in enumerate(state)}, **cell.params}
    for name, arr in targets.items():
        num = rnncore.numeric_gradient(loss, arr, eps=FD_EPS)
        assert_close(got[name], num, FD_TOL, name)

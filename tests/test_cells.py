"""One-step cells: a Python loop of cell steps, backpropagated last in first out,
equals the sequence layer; cells keep their own copies; errors are clear."""

import numpy as np
import pytest

import rnncore
from rnn_testing import CELLS, assert_close, make_layer

VARIANTS = [("rnn", {"nonlinearity": "sigmoid"}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}),
            ("lstm", {"peephole": True}), ("gru", {}), ("gru", {"reset_after": False}), ("indrnn", {}),
            ("indrnn", {"nonlinearity": "tanh"})]
IDS = ["rnn-sigmoid", "rnn-relu", "lstm", "lstm-peephole", "gru", "gru-cho", "indrnn-relu", "indrnn-tanh"]


def cell_state(kind, s):
    return tuple(s) if kind == "lstm" else s[0]


@pytest.mark.parametrize("kind,opts", VARIANTS, ids=IDS)
def test_cell_loop_equals_layer(backend, dtype, kind, opts):
    T, B, I, H = 6, 3, 4, 5
    layer = make_layer(kind, I, H, dtype=dtype, backend=backend, **opts)
    cell = CELLS[kind](I, H, dtype=dtype, backend=backend, **opts)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})  # drop "_l0"
    rng = np.random.default_rng(0)
    k = 2 if kind == "lstm" else 1
    x = rng.standard_normal((T, B, I)).astype(dtype)
    s0 = [rng.standard_normal((B, H)).astype(dtype) for _ in range(k)]
    wy = rng.standard_normal((T, B, H)).astype(dtype)

    y, _ = layer.forward(x, tuple(s[None] for s in s0) if k == 2 else s0[0][None])
    dx, dst = layer.backward(wy)

    state = cell_state(kind, s0)
    ys = []
    for t in range(T):
        state = cell.forward(x[t], state)
        ys.append(state[0] if k == 2 else state)
    assert cell.num_saved == T
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert_close(np.stack(ys), y, tol, "y")
    carry = [np.zeros((B, H), dtype) for _ in range(k)]
    dxs = []
    for t in reversed(range(T)):
        carry[0] = carry[0] + wy[t]
        dx_t, dprev = cell.backward(tuple(carry) if k == 2 else carry[0])
        carry = list(dprev) if k == 2 else [dprev]
        dxs.append(dx_t)
    assert cell.num_saved == 0
    assert_close(np.stack(dxs[::-1]), dx, tol, "dx")
    for c, d in zip(carry, dst if k == 2 else [dst]):
        assert_close(c, d[0], tol, "dstate0")
    for name, g in cell.grads.items():
        assert_close(g, layer.grads[name + "_l0"], tol, name)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "indrnn"])
def test_cell_copies_what_it_saves(backend, kind):
    cell = CELLS[kind](3, 4, dtype=np.float64, backend=backend)
    x = np.ones((2, 3))
    cell.forward(x)
    grad = (np.ones((2, 4)), None) if kind == "lstm" else np.ones((2, 4))
    ref = cell.backward(grad)[0]
    cell.forward(x)
    x[:] = 5.0  # the caller reuses its buffer
    np.testing.assert_array_equal(cell.backward(grad)[0], ref)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "indrnn"])
def test_cell_errors(backend, kind):
    cell = CELLS[kind](3, 4, dtype=np.float32, backend=backend)
    grad = (np.zeros((2, 4), np.float32), None) if kind == "lstm" else np.zeros((2, 4), np.float32)
    with pytest.raises(RuntimeError, match="no saved step"):
        cell.backward(grad)
    with pytest.raises(TypeError, match="x: expected float32"):
        cell.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x: expected shape"):
        cell.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="x: expected 2-D"):
        cell.forward(np.zeros(3, np.float32))
    bad = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="h"):
        cell.forward(np.zeros((2, 3), np.float32), (bad, bad) if kind == "lstm" else bad)
    cell.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="dh"):
        cell.backward((bad, None) if kind == "lstm" else bad)
    assert cell.num_saved == 1  # a rejected backward consumes nothing
    cell.backward(grad)
    with rnncore.no_grad():
        cell.forward(np.zeros((2, 3), np.float32))
    assert cell.num_saved == 0
    cell.forward(np.zeros((2, 3), np.float32))
    cell.clear_saved()
    assert cell.num_saved == 0

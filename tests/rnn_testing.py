"""Shared test helpers: tolerances, error measures, layer builders, finite differences
(through the public rnncore.numeric_gradient)."""

from __future__ import annotations

import numpy as np

import rnncore

# One tolerance table by dtype: relative error, max |a - b| / max |b| over an array.
TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}
FD_EPS = 1e-6     # central-difference step (float64)
FD_TOL = 1e-6     # relative error allowed between finite differences and backward

LAYERS = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU, "indrnn": rnncore.IndRNN}
CELLS = {"rnn": rnncore.RNNCell, "lstm": rnncore.LSTMCell, "gru": rnncore.GRUCell, "indrnn": rnncore.IndRNNCell}

# Largest relative error seen against PyTorch, per dtype (printed at the end of a run).
WORST_VS_TORCH: dict[str, float] = {}
# Largest relative error seen against ONNX Runtime and ONNX's reference evaluator.
WORST_VS_ONNX: dict[str, float] = {}


def rel_err(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    if actual.size == 0:
        return 0.0
    diff = np.max(np.abs(actual - expected))
    if not np.isfinite(diff):
        return np.inf
    scale = np.max(np.abs(expected))
    return 0.0 if diff == 0 else diff / max(scale, np.finfo(np.float64).tiny)


def assert_close(actual, expected, tol, what):
    err = rel_err(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"
    return err


def make_layer(kind, I, H, *, dtype=np.float64, backend=None, seed=0, **opts):
    return LAYERS[kind](I, H, dtype=dtype, backend=backend, seed=seed, **opts)


def random_problem(layer, T, B, rng, with_state=True):
    """x in the layer's layout, initial states (or None), loss weights for y and the final states."""
    dt = layer.dtype
    I, H = layer.input_size, layer.hidden_size
    P = getattr(layer, "proj_size", 0) or H  # h's width (LSTM with a projection: P)
    LD = layer.num_layers * layer.num_directions
    x_shape = (B, T, I) if layer.batch_first else (T, B, I)
    y_shape = x_shape[:2] + (layer.num_directions * P,)
    x = rng.standard_normal(x_shape).astype(dt)
    widths = (P, H)[:n_states_of(layer)]
    states = [rng.standard_normal((LD, B, w)).astype(dt) for w in widths] if with_state else None
    wy = rng.standard_normal(y_shape).astype(dt)
    wstates = [rng.standard_normal((LD, B, w)).astype(dt) for w in widths]
    return x, states, wy, wstates


def n_states_of(layer):
    return 2 if isinstance(layer, (rnncore.LSTM, rnncore.LSTMCell)) else 1


def pack(layer, states):
    if states is None:
        return None
    return tuple(states) if n_states_of(layer) == 2 else states[0]


def unpack(layer, states):
    return list(states) if n_states_of(layer) == 2 else [states]


def loss_of(layer, x, states, lengths, wy, wstates, rng_seed=None):
    """The scalar sum(y * wy) + sum(final_state * wstate) and the forward outputs."""
    if rng_seed is not None:
        layer.rng = np.random.default_rng(rng_seed)
    y, fin = layer.forward(x, pack(layer, states), lengths)
    loss = float(np.sum(y.astype(np.float64) * wy))
    for f, w in zip(unpack(layer, fin), wstates):
        loss += float(np.sum(f.astype(np.float64) * w))
    return loss, y, fin


def analytic(layer, x, states, lengths, wy, wstates, rng_seed=None):
    """Backward's gradients of loss_of, by name: x, h0 (c0), and every parameter."""
    layer.zero_grad()
    loss_of(layer, x, states, lengths, wy, wstates, rng_seed)
    dx, dstates = layer.backward(wy, pack(layer, wstates))
    grads = {"x": dx}
    for name, d in zip(("h0", "c0"), unpack(layer, dstates)):
        grads[name] = d
    grads.update({k: v.copy() for k, v in layer.grads.items()})
    return grads


def numeric(layer, x, states, lengths, wy, wstates, rng_seed=None):
    """Central finite differences (rnncore.numeric_gradient) of loss_of with respect to the
    same arrays."""
    targets = {"x": x}
    for name, s in zip(("h0", "c0"), states or []):
        targets[name] = s
    targets.update(layer.params)
    loss = lambda: loss_of(layer, x, states, lengths, wy, wstates, rng_seed)[0]  # noqa: E731
    return {name: rnncore.numeric_gradient(loss, arr, eps=FD_EPS) for name, arr in targets.items()}


def copy_weights(src, dst):
    dst.load_state_dict(src.state_dict())

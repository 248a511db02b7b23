"""Property-based tests (hypothesis): on random shapes and options the native layers equal
the reference; random garbage given to the low-level functions raises, never crashes.

Examples are derandomized (the same ones every run, so CI cannot flake); set
RNNCORE_HYPOTHESIS_RANDOM=1 to explore new ones."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnncore
from rnncore import _core

SETTINGS = dict(deadline=None, database=None, derandomize=not os.environ.get("RNNCORE_HYPOTHESIS_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layer_problems(draw):
    kind = draw(st.sampled_from(["rnn", "lstm", "gru", "indrnn"]))
    T, B = draw(st.integers(0, 6)), draw(st.integers(0, 5))
    I, H = draw(st.integers(1, 6)), draw(st.integers(1, 40))
    opts = dict(num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()), bias=draw(st.booleans()),
                batch_first=draw(st.booleans()))
    if kind in ("rnn", "indrnn"):
        opts["nonlinearity"] = draw(st.sampled_from(["tanh", "relu", "sigmoid"]))
    elif kind == "lstm":
        opts["peephole"] = draw(st.booleans())
    else:
        opts["reset_after"] = draw(st.booleans())
    lengths = draw(st.none() | st.lists(st.integers(0, T), min_size=B, max_size=B))
    return kind, T, B, I, H, opts, lengths, draw(st.booleans()), draw(st.integers(0, 2 ** 16))


@settings(max_examples=120, **SETTINGS)
@given(layer_problems())
def test_native_equals_reference_on_random_problems(problem):
    kind, T, B, I, H, opts, lengths, threaded, seed = problem
    cls = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU, "indrnn": rnncore.IndRNN}[kind]
    before = _core._parallel_threshold()
    if threaded:
        _core._set_parallel_threshold(0)
    try:
        outs = []
        for backend in ("native", "reference"):
            layer = cls(I, H, dtype=np.float64, backend=backend, seed=seed, **opts)
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((B, T, I) if opts["batch_first"] else (T, B, I))
            y, fin = layer.forward(x, lengths=lengths)
            dx, d0 = layer.backward(rng.standard_normal(y.shape))
            fin = list(fin) if kind == "lstm" else [fin]
            d0 = list(d0) if kind == "lstm" else [d0]
            outs.append([y, dx] + fin + d0 + list(layer.grads.values()))
    finally:
        _core._set_parallel_threshold(before)
    for a, b in zip(*outs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def garbage():
    """Anything a careless caller might pass: None, numbers, strings, lists, and small arrays
    of any dtype, shape and layout."""
    arrays = st.builds(
        lambda shape, dtype, fortran, seed: (np.asfortranarray if fortran else np.ascontiguousarray)(
            np.random.default_rng(seed).standard_normal(shape).astype(dtype)),
        st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple),
        st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.bool_, np.float16]),
        st.booleans(), st.integers(0, 1000))
    return st.one_of(st.none(), st.integers(-3, 10), st.floats(allow_nan=True), st.text(max_size=3),
                     st.lists(st.integers(0, 3), max_size=4), arrays)


CORE_FUNCTIONS = [(name, n) for name, n in [
    ("elman_forward", 9), ("elman_backward", 13), ("lstm_forward", 10), ("lstm_backward", 17), ("gru_forward", 9),
    ("gru_backward", 15), ("elman_step_forward", 7), ("elman_step_backward", 11), ("lstm_step_forward", 8),
    ("lstm_step_backward", 15), ("gru_step_forward", 7), ("gru_step_backward", 12), ("indrnn_forward", 9),
    ("indrnn_backward", 13), ("indrnn_step_forward", 7), ("indrnn_step_backward", 11), ("softmax_xent_forward", 3),
    ("softmax_xent_backward", 4), ("clip_grad_norm", 2), ("clip_grad_value", 2), ("linear_forward", 3),
    ("linear_backward", 6), ("embedding_forward", 2), ("embedding_backward", 3), ("TensorGroup", 1),
    ("sgd_step", 7), ("adagrad_step", 5), ("adam_step", 10), ("sample_logits", 3), ("generate", 9)]]


@pytest.mark.parametrize("name,nargs", CORE_FUNCTIONS, ids=[n for n, _ in CORE_FUNCTIONS])
@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_garbage_never_crashes(name, nargs, data):
    args = [data.draw(garbage(), label=f"arg{i}") for i in range(nargs)]
    try:
        getattr(_core, name)(*args)
    except (TypeError, ValueError, MemoryError):
        pass

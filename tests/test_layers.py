"""Layer API behaviour: shapes, options, accumulation, chunking, dropout, state dicts,
and clear errors for bad input."""

import numpy as np
import pytest

import rnncore
from rnn_testing import (LAYERS, TOL, assert_close, make_layer, n_states_of, pack, random_problem,
                         unpack)

KINDS = ["rnn", "lstm", "gru", "indrnn"]


def forward_backward(layer, x, states, lengths, wy, ws):
    y, fin = layer.forward(x, pack(layer, states), lengths)
    dx, dst = layer.backward(wy, pack(layer, ws))
    return y, fin, dx, dst


# ---- construction -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_parameter_names_and_shapes_follow_torch(kind):
    layer = make_layer(kind, 5, 3, num_layers=2, bidirectional=True)
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    expected = {}
    for k in range(2):
        for sfx in ("", "_reverse"):
            expected[f"weight_ih_l{k}{sfx}"] = (G * 3, 5 if k == 0 else 6)
            expected[f"weight_hh_l{k}{sfx}"] = (G * 3, 3)
            expected[f"bias_ih_l{k}{sfx}"] = (G * 3,)
            expected[f"bias_hh_l{k}{sfx}"] = (G * 3,)
    assert {k: v.shape for k, v in layer.params.items()} == expected
    assert list(layer.params) == list(expected)  # torch's order
    assert {k: v.shape for k, v in layer.grads.items()} == expected
    assert layer.weight_hh_l1_reverse is layer.params["weight_hh_l1_reverse"]


def test_indrnn_parameters_follow_rnn_with_a_vector_recurrence():
    layer = rnncore.IndRNN(5, 3, num_layers=2, bidirectional=True)
    expected = {}
    for k in range(2):
        for sfx in ("", "_reverse"):
            expected[f"weight_ih_l{k}{sfx}"] = (3, 5 if k == 0 else 6)
            expected[f"weight_hh_l{k}{sfx}"] = (3,)
            expected[f"bias_ih_l{k}{sfx}"] = (3,)
            expected[f"bias_hh_l{k}{sfx}"] = (3,)
    assert {k: v.shape for k, v in layer.params.items()} == expected
    assert list(layer.params) == list(expected)
    assert layer.nonlinearity == "relu" and rnncore.IndRNN(2, 3, nonlinearity="tanh").nonlinearity == "tanh"
    assert set(rnncore.IndRNNCell(5, 3).params) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    assert rnncore.IndRNNCell(5, 3).params["weight_hh"].shape == (3,)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnncore.IndRNN(2, 3, nonlinearity="gelu")


def test_peephole_adds_diagonal_weights():
    layer = rnncore.LSTM(4, 3, num_layers=2, peephole=True)
    assert layer.params["weight_ch_l0"].shape == (9,)
    assert layer.params["weight_ch_l1"].shape == (9,)


def test_initialisation_is_uniform_in_bound_and_seeded():
    a = rnncore.LSTM(8, 16, seed=3)
    b = rnncore.LSTM(8, 16, seed=3)
    c = rnncore.LSTM(8, 16, seed=4)
    bound = 1 / np.sqrt(16)
    for name, p in a.params.items():
        assert np.all(np.abs(p) <= bound)
        assert np.abs(p).max() > 0.8 * bound
        np.testing.assert_array_equal(p, b.params[name])
        assert not np.array_equal(p, c.params[name])
    assert a.params["weight_ih_l0"].dtype == np.float32


@pytest.mark.parametrize("bad,exc,match", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=-1), ValueError, "hidden_size"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(input_size=2.5), TypeError, "input_size"),
    (dict(hidden_size=True), TypeError, "hidden_size"),
    (dict(dropout=1.5), ValueError, "dropout"),
    (dict(dropout="0.1"), TypeError, "dropout"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype=np.float16), TypeError, "dtype"),
    (dict(backend="cuda"), ValueError, "backend"),
])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_constructor_arguments_raise(kind, bad, exc, match):
    args = dict(input_size=3, hidden_size=4)
    args.update(bad)
    with pytest.raises(exc, match=match):
        LAYERS[kind](**args)


def test_unknown_nonlinearity_raises():
    with pytest.raises(ValueError, match="nonlinearity"):
        rnncore.RNN(3, 4, nonlinearity="gelu")


def test_unknown_keyword_raises():
    with pytest.raises(TypeError):
        rnncore.LSTM(3, 4, proj_sizes=2)


# ---- forward/backward semantics -------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_output_shapes(backend, dtype, kind):
    layer = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, dtype=dtype, backend=backend)
    x = np.ones((5, 2, 3), dtype)
    y, fin = layer(x)
    assert y.shape == (5, 2, 8) and y.dtype == dtype
    for f in unpack(layer, fin):
        assert f.shape == (4, 2, 4) and f.dtype == dtype
    dx, dst = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == dtype
    for d in unpack(layer, dst):
        assert d.shape == (4, 2, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_two_backward_passes_accumulate_exactly_twice(backend, dtype, kind):
    layer = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, dtype=dtype, backend=backend)
    x, st, wy, ws = random_problem(layer, 5, 2, np.random.default_rng(0))
    forward_backward(layer, x, st, [5, 3], wy, ws)
    once = {k: v.copy() for k, v in layer.grads.items()}
    forward_backward(layer, x, st, [5, 3], wy, ws)
    for k, v in layer.grads.items():
        np.testing.assert_array_equal(v, 2 * once[k], err_msg=k)
    layer.zero_grad()
    assert all(not v.any() for v in layer.grads.values())


@pytest.mark.parametrize("kind", KINDS)
def test_accumulation_over_different_batches_is_the_sum(backend, kind):
    layer = make_layer(kind, 3, 4, backend=backend)
    rng = np.random.default_rng(1)
    p1, p2 = random_problem(layer, 4, 2, rng), random_problem(layer, 6, 3, rng)
    sums = {}
    for p in (p1, p2):
        layer.zero_grad()
        forward_backward(layer, p[0], p[1], None, p[2], p[3])
        for k, v in layer.grads.items():
            sums[k] = sums.get(k, 0) + v
    layer.zero_grad()
    for p in (p1, p2):
        forward_backward(layer, p[0], p[1], None, p[2], p[3])
    for k, v in layer.grads.items():
        assert_close(v, sums[k], 1e-12, k)


@pytest.mark.parametrize("kind", KINDS)
def test_chunked_sequence_equals_whole(backend, kind):
    """Carrying the state across chunks reproduces the whole sequence's forward, and
    passing the initial-state gradient of a later chunk into the earlier chunk's
    backward reproduces full BPTT."""
    whole = make_layer(kind, 3, 4, num_layers=2, backend=backend)
    first = make_layer(kind, 3, 4, num_layers=2, backend=backend)
    second = make_layer(kind, 3, 4, num_layers=2, backend=backend)
    x, st, wy, ws = random_problem(whole, 9, 2, np.random.default_rng(2))
    y, fin, dx, dst = forward_backward(whole, x, st, None, wy, ws)

    y1, mid = first.forward(x[:4], pack(first, st))
    y2, fin2 = second.forward(x[4:], mid)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=0, atol=1e-14)
    for a, b in zip(unpack(whole, fin), unpack(second, fin2)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    dx2, dmid = second.backward(wy[4:], pack(second, ws))
    dx1, dst1 = first.backward(wy[:4], dmid)
    assert_close(np.concatenate([dx1, dx2]), dx, 1e-12, "dx")
    for a, b in zip(unpack(whole, dst), unpack(first, dst1)):
        assert_close(b, a, 1e-12, "dstate0")
    for k in whole.grads:
        assert_close(first.grads[k] + second.grads[k], whole.grads[k], 1e-12, k)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_first_equals_time_major(backend, kind):
    tm = make_layer(kind, 3, 4, bidirectional=True, backend=backend)
    bf = make_layer(kind, 3, 4, bidirectional=True, batch_first=True, backend=backend)
    x, st, wy, ws = random_problem(tm, 5, 3, np.random.default_rng(3))
    y, fin, dx, dst = forward_backward(tm, x, st, [2, 5, 4], wy, ws)
    yb, finb, dxb, dstb = forward_backward(bf, x.transpose(1, 0, 2), st, [2, 5, 4],
                                           wy.transpose(1, 0, 2), ws)
    np.testing.assert_array_equal(yb, y.transpose(1, 0, 2))
    np.testing.assert_array_equal(dxb, dx.transpose(1, 0, 2))
    for k in tm.grads:
        assert_close(bf.grads[k], tm.grads[k], 1e-13, k)


@pytest.mark.parametrize("kind", KINDS)
def test_lengths_semantics(backend, kind):
    """Zero outputs at padding, the final state from each sequence's last step, a length
    of 0 passes h0 through, and padded steps take no gradient."""
    layer = make_layer(kind, 3, 4, bidirectional=True, backend=backend)
    x, st, wy, ws = random_problem(layer, 6, 3, np.random.default_rng(4))
    lengths = [6, 0, 3]
    y, fin, dx, dst = forward_backward(layer, x, st, lengths, wy, ws)
    assert not y[3:, 2].any() and not y[:, 1].any()
    for f, s in zip(unpack(layer, fin), st):
        np.testing.assert_array_equal(f[:, 1], s[:, 1])  # length 0: h0 passes through
    for d, w in zip(unpack(layer, dst), ws):
        np.testing.assert_array_equal(d[:, 1], w[:, 1])
    assert not dx[3:, 2].any() and not dx[:, 1].any()
    # sequence 2 alone, cut to its length, gives the same results as with padding
    y3, fin3 = layer.forward(np.ascontiguousarray(x[:3, 2:3]), pack(layer, [s[:, 2:3] for s in st]))
    np.testing.assert_allclose(y3[:, 0], y[:3, 2], rtol=0, atol=1e-14)
    for a, b in zip(unpack(layer, fin3), unpack(layer, fin)):
        np.testing.assert_allclose(a[:, 0], b[:, 2], rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_values_do_not_matter(backend, kind):
    layer = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, backend=backend)
    x, st, wy, ws = random_problem(layer, 5, 2, np.random.default_rng(5))
    y, fin, dx, dst = forward_backward(layer, x, st, [2, 5], wy, ws)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    x2, wy2 = x.copy(), wy.copy()
    x2[2:, 0] = 1e3   # garbage in the padding of sequence 0, and in its output gradient
    wy2[2:, 0] = -7.0
    layer.zero_grad()
    y2, fin2, dx2, dst2 = forward_backward(layer, x2, st, [2, 5], wy2, ws)
    np.testing.assert_allclose(y2, y, rtol=0, atol=1e-13)
    np.testing.assert_allclose(dx2, dx, rtol=0, atol=1e-13)
    for a, b in zip(unpack(layer, fin) + unpack(layer, dst), unpack(layer, fin2) + unpack(layer, dst2)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-13)
    for k in grads:
        assert_close(layer.grads[k], grads[k], 1e-12, k)


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
@pytest.mark.parametrize("kind", KINDS)
def test_non_contiguous_and_readonly_inputs(backend, kind, layout):
    layer = make_layer(kind, 3, 4, backend=backend)
    x, st, wy, ws = random_problem(layer, 5, 2, np.random.default_rng(6))
    ref = forward_backward(layer, x, st, None, wy, ws)

    def odd(a):
        if layout == "fortran":
            return np.asfortranarray(a)
        if layout == "strided":
            big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
            big[..., ::2] = a
            return big[..., ::2]
        b = a.copy()
        b.flags.writeable = False
        return b

    got = forward_backward(layer, odd(x), [odd(s) for s in st], None, odd(wy), [odd(w) for w in ws])
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[2], ref[2])


@pytest.mark.parametrize("kind", KINDS)
def test_forward_does_not_keep_a_reference_to_the_callers_input(backend, kind):
    layer = make_layer(kind, 3, 4, backend=backend)
    x, st, wy, ws = random_problem(layer, 4, 2, np.random.default_rng(7))
    ref = forward_backward(layer, x, st, None, wy, ws)[2]
    xx = x.copy()
    layer.forward(xx, pack(layer, st))
    xx[:] = 0  # the caller reuses its buffer before backward
    dx, _ = layer.backward(wy, pack(layer, ws))
    np.testing.assert_array_equal(dx, ref)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_time_and_batch(backend, kind):
    """T=0 gives an empty output and passes the state through; B=0 gives empty results."""
    layer = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, backend=backend)
    x, st, wy, ws = random_problem(layer, 0, 2, np.random.default_rng(8))
    y, fin, dx, dst = forward_backward(layer, x, st, [0, 0], wy, ws)
    assert y.shape == (0, 2, 8) and dx.shape == (0, 2, 3)
    for f, s in zip(unpack(layer, fin), st):
        np.testing.assert_array_equal(f, s)
    for d, w in zip(unpack(layer, dst), ws):
        np.testing.assert_array_equal(d, w)
    assert all(not g.any() for g in layer.grads.values())
    x, st, wy, ws = random_problem(layer, 5, 0, np.random.default_rng(8))
    y, fin, dx, dst = forward_backward(layer, x, st, None, wy, ws)
    assert y.shape == (5, 0, 8) and dx.shape == (5, 0, 3)
    assert unpack(layer, fin)[0].shape == (4, 0, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_input_propagates(backend, kind):
    layer = make_layer(kind, 3, 4, backend=backend)
    x = np.zeros((3, 2, 3))
    x[1, 0, 0] = np.nan
    y, _ = layer(x)
    assert np.isnan(y[1:, 0]).all() and not np.isnan(y[0]).any() and not np.isnan(y[:, 1]).any()


def test_no_grad_saves_nothing(backend):
    layer = make_layer("lstm", 3, 4, backend=backend)
    x = np.ones((2, 1, 3))
    with rnncore.no_grad():
        assert not rnncore.is_grad_enabled()
        layer(x)
    assert rnncore.is_grad_enabled()
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones((2, 1, 4)))


# ---- dropout --------------------------------------------------------------------------

def test_dropout_only_between_layers_and_only_in_training(backend):
    layer = make_layer("gru", 3, 50, num_layers=2, dropout=0.5, backend=backend, seed=1)
    plain = make_layer("gru", 3, 50, num_layers=2, backend=backend, seed=1)
    x = np.random.default_rng(0).standard_normal((4, 8, 3))
    y_eval, _ = layer.eval()(x)
    np.testing.assert_array_equal(y_eval, plain(x)[0])
    y1, _ = layer.train()(x)
    y2, _ = layer(x)
    assert not np.allclose(y1, y_eval) and not np.allclose(y1, y2)  # fresh mask each call
    mask = layer._saved.masks[0]
    assert layer._saved.masks[1] is None  # never after the last layer
    kept = mask != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(mask[kept], 2.0)


def test_dropout_one_zeroes_the_next_layers_input(backend):
    layer = make_layer("rnn", 3, 4, num_layers=2, dropout=1.0, bias=False, backend=backend)
    y, _ = layer(np.ones((3, 2, 3)))
    assert not y.any()  # the second layer sees zeros, has no bias, and starts from zero


# ---- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_bad_forward_arguments_raise_naming_the_argument(backend, kind):
    layer = make_layer(kind, 3, 4, num_layers=2, dtype=np.float32, backend=backend)
    x = np.zeros((5, 2, 3), np.float32)
    h = np.zeros((2, 2, 4), np.float32)
    st = (h, h) if kind == "lstm" else h
    cases = [
        (dict(x=x.astype(np.float64)), TypeError, "x: expected float32"),
        (dict(x=x.astype(np.int32)), TypeError, "x: expected float32"),
        (dict(x=[[[0.0] * 3] * 2] * 5), TypeError, "x:"),
        (dict(x=x[0]), ValueError, "x: expected 3-D"),
        (dict(x=np.zeros((5, 2, 4), np.float32)), ValueError, "x: expected shape"),
        (dict(h0=(np.zeros((2, 3, 4), np.float32),) * 2 if kind == "lstm" else np.zeros((2, 3, 4), np.float32)),
         ValueError, "h0"),
        (dict(h0=(h.astype(np.float64), h) if kind == "lstm" else h.astype(np.float64)), TypeError, "h0"),
        (dict(lengths=[5, 6]), ValueError, "lengths"),
        (dict(lengths=[5, -1]), ValueError, "lengths"),
        (dict(lengths=[5]), ValueError, "lengths"),
        (dict(lengths=np.array([5.0, 2.0])), TypeError, "lengths"),
        (dict(lengths=[5, 2.0]), TypeError, "lengths"),
        (dict(lengths=np.array([[5, 2]])), ValueError, "lengths"),
        (dict(lengths=[True, False]), TypeError, "lengths"),
    ]
    if kind == "lstm":
        cases.append((dict(h0=h), TypeError, "h0"))
    for override, exc, match in cases:
        args = dict(x=x, h0=st, lengths=None)
        args.update(override)
        with pytest.raises(exc, match=match):
            layer.forward(args["x"], args["h0"], args["lengths"])


@pytest.mark.parametrize("kind", KINDS)
def test_bad_backward_arguments_raise(backend, kind):
    layer = make_layer(kind, 3, 4, dtype=np.float32, backend=backend)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.zeros((5, 2, 4), np.float32))
    y, _ = layer(np.zeros((5, 2, 3), np.float32))
    with pytest.raises(ValueError, match="dy"):
        layer.backward(np.zeros((5, 3, 4), np.float32))
    with pytest.raises(TypeError, match="dy"):
        layer.backward(np.zeros((5, 2, 4), np.float64))
    bad_state = np.zeros((1, 3, 4), np.float32)
    with pytest.raises(ValueError, match="dh_n"):
        layer.backward(y, (bad_state, None) if kind == "lstm" else bad_state)
    dx, _ = layer.backward(None)  # no gradient at all is allowed and gives zeros
    assert not dx.any()


# ---- state dicts ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip(backend, kind):
    a = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, backend=backend, seed=1)
    b = make_layer(kind, 3, 4, num_layers=2, bidirectional=True, backend=backend, seed=2)
    sd = a.state_dict()
    sd["weight_ih_l0"][:] = 0  # a copy: changing it leaves a alone
    assert a.params["weight_ih_l0"].any()
    b_arrays = dict(b.params)
    b.load_state_dict(a.state_dict())
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
        assert b.params[k] is b_arrays[k]  # loaded in place


def test_load_state_dict_checks_keys_shapes_and_dtypes():
    layer = rnncore.GRU(3, 4)
    good = layer.state_dict()
    with pytest.raises(KeyError, match="missing"):
        layer.load_state_dict({k: v for k, v in good.items() if k != "bias_hh_l0"})
    with pytest.raises(KeyError, match="unexpected"):
        layer.load_state_dict({**good, "weight_ih_l1": good["weight_ih_l0"]})
    before = layer.params["weight_ih_l0"].copy()
    with pytest.raises(ValueError, match="weight_hh_l0"):
        layer.load_state_dict({**{k: v + 1 for k, v in good.items()}, "weight_hh_l0": np.zeros((12, 5))})
    np.testing.assert_array_equal(layer.params["weight_ih_l0"], before)  # nothing half-loaded
    with pytest.raises(TypeError, match="bias_ih_l0"):
        layer.load_state_dict({**good, "bias_ih_l0": np.zeros(12, np.int64)})
    layer.load_state_dict({k: v.astype(np.float64) for k, v in good.items()})  # converts precision
    assert layer.params["weight_ih_l0"].dtype == np.float32


# ---- the reference backend needs no compiled code ----------------------------------------

NO_CORE = """
import sys, types
import numpy as np


class Untouchable(types.ModuleType):
    def __getattr__(self, name):
        raise AssertionError("the reference backend used rnncore._core." + name)


sys.modules["rnncore._core"] = Untouchable("rnncore._core")
import rnncore

rng = np.random.default_rng(0)
for cls, cell in ((rnncore.RNN, rnncore.RNNCell), (rnncore.LSTM, rnncore.LSTMCell), (rnncore.GRU, rnncore.GRUCell),
                  (rnncore.IndRNN, rnncore.IndRNNCell)):
    layer = cls(3, 4, num_layers=2, bidirectional=True, dropout=0.2, backend="reference", seed=0)
    y, _ = layer.forward(rng.standard_normal((5, 2, 3)).astype(np.float32), lengths=[5, 2])
    dx, _ = layer.backward(np.ones_like(y))
    assert np.isfinite(dx).all() and any(g.any() for g in layer.grads.values())
    c = cell(3, 4, backend="reference", seed=0)
    out = c.forward(rng.standard_normal((2, 3)).astype(np.float32))
    c.backward(tuple(np.ones_like(o) for o in out) if isinstance(out, tuple) else np.ones_like(out))
print("ok")
"""


def test_reference_backend_runs_without_the_compiled_extension():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", NO_CORE], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "ok"

"""Zoneout and variational recurrent dropout (cpp/driver/regularise.h): what they compute on
a tiny case against a loop written here, native against reference with the same masks,
gradients against finite differences with the masks fixed, evaluation, the limits z=0, z=1
and p=0, segments (checkpoint_every), threads, the one-step cells, ONNX, bad values."""

import numpy as np
import pytest

import rnncore
from rnn_testing import (CELLS, FD_TOL, analytic, assert_close, make_layer, numeric, pack, random_problem,
                         rel_err, unpack)

KINDS = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("lstm", {"peephole": True}),
         ("lstm", {"proj_size": 2}), ("lstm", {"proj_size": 2, "peephole": True}),
         ("gru", {}), ("gru", {"reset_after": False}), ("indrnn", {})]
KIND_IDS = ["rnn", "rnn-relu", "lstm", "lstm-peephole", "lstm-proj", "lstm-proj-peephole", "gru", "gru-cho",
            "indrnn"]
OPTIONS = {"zoneout": {"zoneout": 0.3}, "dropout": {"recurrent_dropout": 0.4},
           "both": {"zoneout": 0.3, "recurrent_dropout": 0.4}}
STRUCTURES = {
    # name: (layer options, lengths of B=3 sequences of T=6 steps)
    "bidir-lengths": ({"bidirectional": True}, [6, 1, 4]),
    "stacked": ({"num_layers": 2, "dropout": 0.2}, None),
    "checkpointed-bidir-lengths": ({"bidirectional": True, "checkpoint_every": 2}, [6, 0, 3]),
    # weight drop masks w_hh before the kernels, the regularisers act inside them
    "weight-drop-checkpointed-lengths": ({"weight_drop": 0.3, "checkpoint_every": 4}, [6, 2, 5]),
}
T, B, I, H = 6, 3, 4, 5
native = pytest.mark.skipif(not rnncore.backend_available("native"), reason="native backend not built")


# ---- the masks, written out here from the documented hash (on Python ints): splitmix64 of
# (seed, stream, t, b) folded to 32 bits, then murmur3's 32-bit finaliser per unit ----

M64 = 2 ** 64 - 1
M32 = 2 ** 32 - 1
GOLDEN = 0x9e3779b97f4a7c15


def _mix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def _next(key, v):
    return _mix((key + (v + 1) * GOLDEN) & M64)


def _fmix32(x):
    x ^= x >> 16
    x = (x * 0x85ebca6b) & M32
    x ^= x >> 13
    x = (x * 0xc2b2ae35) & M32
    return x ^ (x >> 16)


def _uniform(seed, stream, t, b, j):
    key = _next(_next(_next(seed, stream), t), b)
    key32 = (key ^ (key >> 32)) & M32
    return _fmix32((key32 + (j + 1) * 0x9e3779b9) & M32) * 2.0 ** -32


def _zoneout_mask(seed, k, t, B, H, z):
    return np.array([[_uniform(seed, 1 + k, t, b, j) < z for j in range(H)] for b in range(B)])


def _dropout_mask(seed, B, H, p):
    return np.array([[(_uniform(seed, 0, 0, b, j) >= p) / (1 - p) for j in range(H)] for b in range(B)])


def _seeds(layer_seed, count):
    """The seeds a training forward pass draws after rng = default_rng(layer_seed): one per
    (layer, direction), in their order (no weight drop, no inter-layer dropout)."""
    rng = np.random.default_rng(layer_seed)
    return [int(rng.integers(0, 2 ** 64, dtype=np.uint64)) for _ in range(count)]


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# ---- what they compute -----------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_elman_by_hand(backend, training):
    z, p = 0.4, 0.3
    layer = rnncore.RNN(I, H, dtype=np.float64, backend=backend, seed=0, zoneout=z, recurrent_dropout=p)
    layer.train(training)
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((1, B, H))
    layer.rng = np.random.default_rng(7)
    y, h_n = layer.forward(x, h0)
    (seed,) = _seeds(7, 1)
    P = layer.params
    M = _dropout_mask(seed, B, H, p) if training else np.ones((B, H))
    h = h0[0]
    for t in range(T):
        new = np.tanh(x[t] @ P["weight_ih_l0"].T + P["bias_ih_l0"] + (h * M) @ P["weight_hh_l0"].T + P["bias_hh_l0"])
        m = _zoneout_mask(seed, 0, t, B, H, z) if training else z
        h = m * h + (1 - m) * new
        np.testing.assert_allclose(y[t], h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(h_n[0], h, rtol=0, atol=1e-13)


def test_lstm_zoneout_by_hand_mixes_h_and_c_with_their_own_masks(backend):
    z = 0.5
    layer = rnncore.LSTM(I, H, dtype=np.float64, backend=backend, seed=0, zoneout=z)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I))
    layer.rng = np.random.default_rng(3)
    y, (h_n, c_n) = layer.forward(x)
    (seed,) = _seeds(3, 1)
    P = layer.params
    h = c = np.zeros((B, H))
    for t in range(T):
        a = x[t] @ P["weight_ih_l0"].T + P["bias_ih_l0"] + h @ P["weight_hh_l0"].T + P["bias_hh_l0"]
        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        mh, mc = _zoneout_mask(seed, 0, t, B, H, z), _zoneout_mask(seed, 1, t, B, H, z)
        assert (mh != mc).any()
        h, c = np.where(mh, h, h_new), np.where(mc, c, c_new)
        np.testing.assert_allclose(y[t], h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(c_n[0], c, rtol=0, atol=1e-13)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_projected_lstm_by_hand(backend, training):
    """proj_size=P: zoneout mixes the projected h (P units, its own mask) and c (H units);
    the dropout mask covers the P units of h entering weight_hh [4H,P]."""
    z, p, P = 0.4, 0.3, 3
    layer = rnncore.LSTM(I, H, proj_size=P, dtype=np.float64, backend=backend, seed=0, zoneout=z,
                         recurrent_dropout=p)
    layer.train(training)
    rng = np.random.default_rng(12)
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((1, B, P)), rng.standard_normal((1, B, H))
    layer.rng = np.random.default_rng(13)
    y, (h_n, c_n) = layer.forward(x, (h0, c0))
    (seed,) = _seeds(13, 1)
    W = layer.params
    M = _dropout_mask(seed, B, P, p) if training else np.ones((B, P))
    h, c = h0[0], c0[0]
    for t in range(T):
        a = x[t] @ W["weight_ih_l0"].T + W["bias_ih_l0"] + (h * M) @ W["weight_hh_l0"].T + W["bias_hh_l0"]
        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c_new = f * c + i * g
        h_new = (o * np.tanh(c_new)) @ W["weight_hr_l0"].T
        mh = _zoneout_mask(seed, 0, t, B, P, z) if training else z
        mc = _zoneout_mask(seed, 1, t, B, H, z) if training else z
        h, c = mh * h + (1 - mh) * h_new, mc * c + (1 - mc) * c_new
        np.testing.assert_allclose(y[t], h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(h_n[0], h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(c_n[0], c, rtol=0, atol=1e-13)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_recurrent_dropout_by_hand(backend, reset_after):
    """The mask is on the state entering the products (and in r * h for the Cho form);
    z * h_{t-1} keeps the unmasked state."""
    p = 0.5
    layer = rnncore.GRU(I, H, dtype=np.float64, backend=backend, seed=0, recurrent_dropout=p,
                        reset_after=reset_after)
    rng = np.random.default_rng(4)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((1, B, H))
    layer.rng = np.random.default_rng(5)
    y, _ = layer.forward(x, h0)
    (seed,) = _seeds(5, 1)
    M = _dropout_mask(seed, B, H, p)
    P = layer.params
    W, U, bi, bh = P["weight_ih_l0"], P["weight_hh_l0"], P["bias_ih_l0"], P["bias_hh_l0"]
    h = h0[0]
    for t in range(T):
        ax = x[t] @ W.T + bi
        hm = h * M
        r = sigmoid(ax[:, :H] + hm @ U[:H].T + bh[:H])
        zg = sigmoid(ax[:, H:2 * H] + hm @ U[H:2 * H].T + bh[H:2 * H])
        if reset_after:
            n = np.tanh(ax[:, 2 * H:] + r * (hm @ U[2 * H:].T + bh[2 * H:]))
        else:
            n = np.tanh(ax[:, 2 * H:] + (r * hm) @ U[2 * H:].T + bh[2 * H:])
        h = (1 - zg) * n + zg * h
        np.testing.assert_allclose(y[t], h, rtol=0, atol=1e-13)


def test_reference_masks_are_the_documented_hash():
    from rnncore.reference.common import uniforms
    seed = 2 ** 64 - 12345
    got = uniforms(seed, 2, 17, 3, 4)
    want = [[_uniform(seed, 2, 17, b, j) for j in range(4)] for b in range(3)]
    np.testing.assert_array_equal(got, want)


# ---- native against reference ------------------------------------------------------------

def _kernel_run(ops, kind, opts, reg, x, states0, w, lengths, reverse, dy, dstates_n):
    """Forward then backward of one direction through the kernels of ops; returns every
    output and gradient by name. w: w_ih, w_hh, b_ih, b_hh, w_ch, w_hr (LSTMP: the lstmp
    kernels, which take w_hr after w_hh and dw_hr after dw_hh)."""
    name = {"rnn": "elman"}.get(kind, kind) + ("p" if w[5] is not None else "")
    fwd, bwd = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
    extra = {"rnn": (opts.get("nonlinearity", "tanh"),), "indrnn": ("relu",), "lstm": (w[4],),
             "gru": (opts.get("reset_after", True),)}[kind]
    proj = () if w[5] is None else (w[5],)
    R = 0 if kind == "gru" else 1
    # (the new states the cell's backward reads: h for the Elman RNN and IndRNN, c for the
    # LSTM, H wide with a projection too)
    unmixed = np.zeros((R, *x.shape[:2], H)) if reg.get("zoneout", 0) > 0 and R else None
    out = fwd(x, *states0, w[0], w[1], *proj, *w[2:4], *extra, lengths, reverse, unmixed=unmixed, **reg)
    S = len(states0)
    grads = [np.zeros_like(a) for a in w[:4]]
    if kind == "lstm":
        grads.append(None if w[4] is None else np.zeros_like(w[4]))
    dproj = [np.zeros_like(a) for a in proj]
    back = bwd(dy, *dstates_n, x, *out[1:], w[0], w[1], *proj, *extra, lengths, reverse, grads[0], grads[1], *dproj,
               *grads[2:], unmixed=unmixed, **reg)
    grads += dproj
    res = {"y": out[0], **{f"state{k}": s for k, s in enumerate(out[1:1 + S])},
           **{f"d{k}": d for k, d in enumerate(back)}, **{f"g{k}": g for k, g in enumerate(grads) if g is not None}}
    if unmixed is not None and lengths is None:  # (padded steps: unspecified in both)
        res["unmixed"] = unmixed
    return res


@native
@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("lengths,reverse", [(None, False), ([6, 2, 0], True), ([3, 6, 5], False)])
def test_native_matches_reference(kind, opts, option, training, lengths, reverse):
    from rnncore import _core, reference
    rng = np.random.default_rng(11)
    G, S = {"rnn": 1, "indrnn": 1, "gru": 3, "lstm": 4}[kind], 2 if kind == "lstm" else 1
    P = opts.get("proj_size") or H  # the width of h (LSTMP: the projection's)
    x = rng.standard_normal((T, B, I))
    w = [rng.standard_normal((G * H, I)) * 0.5,
         rng.standard_normal(H) * 0.5 if kind == "indrnn" else rng.standard_normal((G * H, P)) * 0.5,
         rng.standard_normal(G * H), rng.standard_normal(G * H),
         rng.standard_normal(3 * H) * 0.5 if opts.get("peephole") else None,
         rng.standard_normal((P, H)) * 0.5 if opts.get("proj_size") else None]
    states0 = [rng.standard_normal((B, P if k == 0 else H)) for k in range(S)]
    dy, dstates_n = rng.standard_normal((T, B, P)), [rng.standard_normal((B, P if k == 0 else H)) for k in range(S)]
    reg = dict(OPTIONS[option], seed=2 ** 63 + 12345, t0=7, training=training)
    lengths = None if lengths is None else np.array(lengths, np.int64)
    got = _kernel_run(_core, kind, opts, reg, x, states0, w, lengths, reverse, dy, dstates_n)
    want = _kernel_run(reference, kind, opts, reg, x, states0, w, lengths, reverse, dy, dstates_n)
    assert set(got) == set(want)
    for name in want:
        assert_close(got[name], want[name], 1e-12, name)


# ---- gradients ------------------------------------------------------------------------------

# native only: the reference equals native to 1e-12 with the same masks (tested above),
# so these finite differences check both; the reference's Python loop would double the time
@pytest.mark.parametrize("backend", ["native"])
@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_gradients_match_finite_differences_with_the_masks_fixed(backend, kind, opts, option, structure):
    layer_opts, lengths = STRUCTURES[structure]
    layer = make_layer(kind, 2, 3, backend=backend, **opts, **layer_opts, **OPTIONS[option])
    x, states, wy, ws = random_problem(layer, T, B, np.random.default_rng(3))
    got = analytic(layer, x, states, lengths, wy, ws, rng_seed=9)
    want = numeric(layer, x, states, lengths, wy, ws, rng_seed=9)
    assert set(got) == set(want)
    for name in want:
        assert_close(got[name], want[name], FD_TOL, name)


@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
def test_gradients_in_evaluation_mode(backend, kind, opts):
    """Backward through zoneout's expectation (evaluation), recurrent dropout off."""
    layer = make_layer(kind, 2, 3, backend=backend, bidirectional=True, **opts, **OPTIONS["both"])
    layer.eval()
    x, states, wy, ws = random_problem(layer, T, B, np.random.default_rng(4))
    got = analytic(layer, x, states, [6, 3, 1], wy, ws)
    want = numeric(layer, x, states, [6, 3, 1], wy, ws)
    for name in want:
        assert_close(got[name], want[name], FD_TOL, name)


# ---- evaluation, limits, segments -------------------------------------------------------------

def _run(layer, x, states, lengths, wy, ws, seed=5):
    layer.zero_grad()
    layer.rng = np.random.default_rng(seed)
    y, fin = layer.forward(x, pack(layer, states), lengths)
    dx, d0 = layer.backward(wy, pack(layer, ws))
    return {"y": y, "dx": dx, **{f"fin{i}": f for i, f in enumerate(unpack(layer, fin))},
            **{f"d0_{i}": d for i, d in enumerate(unpack(layer, d0))},
            **{k: v.copy() for k, v in layer.grads.items()}}


@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_zero_probabilities_are_the_plain_layer_bit_for_bit(backend, kind, opts, training):
    plain = make_layer(kind, I, H, backend=backend, num_layers=2, bidirectional=True, dropout=0.3, **opts)
    zero = make_layer(kind, I, H, backend=backend, num_layers=2, bidirectional=True, dropout=0.3, zoneout=0.0,
                      recurrent_dropout=0.0, **opts)
    plain.train(training)
    zero.train(training)
    x, states, wy, ws = random_problem(plain, T, B, np.random.default_rng(0))
    want, got = _run(plain, x, states, [6, 2, 5], wy, ws), _run(zero, x, states, [6, 2, 5], wy, ws)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
def test_evaluation_uses_the_expectation_and_no_recurrent_dropout(backend, kind, opts):
    """eval(): zoneout mixes with z itself, the same as recurrent dropout's layer without
    it; the reference's loop with z is checked in test_elman_by_hand."""
    both = make_layer(kind, I, H, backend=backend, bidirectional=True, **opts, **OPTIONS["both"])
    zoneout_only = make_layer(kind, I, H, backend=backend, bidirectional=True, **opts, **OPTIONS["zoneout"])
    plain = make_layer(kind, I, H, backend=backend, bidirectional=True, **opts)
    x = np.random.default_rng(1).standard_normal((T, B, I))
    for layer in (both, zoneout_only, plain):
        layer.eval()
    y_both, y_z = both.forward(x, lengths=[6, 4, 0])[0], zoneout_only.forward(x, lengths=[6, 4, 0])[0]
    np.testing.assert_array_equal(y_both, y_z)  # no dropout, and no draw from rng
    assert not np.allclose(y_z, plain.forward(x, lengths=[6, 4, 0])[0])
    dropout_only = make_layer(kind, I, H, backend=backend, bidirectional=True, **opts, **OPTIONS["dropout"])
    dropout_only.eval()
    np.testing.assert_array_equal(dropout_only.forward(x)[0], plain.forward(x)[0])


@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
def test_zoneout_one_keeps_the_initial_state(backend, kind, opts):
    layer = make_layer(kind, I, H, backend=backend, zoneout=1.0, **opts)
    x, states, wy, ws = random_problem(layer, T, B, np.random.default_rng(2))
    y, fin = layer.forward(x, pack(layer, states))
    np.testing.assert_array_equal(y, np.broadcast_to(states[0], y.shape))
    for f, s in zip(unpack(layer, fin), states):
        np.testing.assert_array_equal(f, s)
    dx, d0 = layer.backward(wy, pack(layer, ws))
    np.testing.assert_allclose(unpack(layer, d0)[0], ws[0] + wy.sum(0), rtol=1e-13, atol=1e-13)
    assert not dx.any()
    assert not any(g.any() for g in layer.grads.values())


def test_recurrent_dropout_one_cuts_the_recurrence(backend):
    layer = rnncore.LSTM(I, H, dtype=np.float64, backend=backend, seed=0, recurrent_dropout=1.0)
    plain = rnncore.LSTM(I, H, dtype=np.float64, backend=backend, seed=0)
    plain.params["weight_hh_l0"][...] = 0
    x = np.random.default_rng(3).standard_normal((T, B, I))
    np.testing.assert_array_equal(layer.forward(x)[0], plain.forward(x)[0])


@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("every", [1, 4])
def test_checkpointed_draws_the_masks_of_the_whole_sequence(backend, kind, opts, every):
    """Masks indexed by absolute time: checkpoint_every gives the full path's results."""
    layer_opts = dict(num_layers=2, bidirectional=True, **opts, **OPTIONS["both"])
    full = make_layer(kind, I, H, backend=backend, **layer_opts)
    ckpt = make_layer(kind, I, H, backend=backend, checkpoint_every=every, **layer_opts)
    x, states, wy, ws = random_problem(full, T, B, np.random.default_rng(every))
    want, got = _run(full, x, states, [6, 5, 0], wy, ws), _run(ckpt, x, states, [6, 5, 0], wy, ws)
    np.testing.assert_array_equal(got["y"], want["y"])
    for name in want:
        assert_close(got[name], want[name], 1e-12, name)


@pytest.mark.parametrize("kind,opts", [("lstm", {"proj_size": 2}), ("gru", {}), ("rnn", {})],
                         ids=["lstm-proj", "gru", "rnn"])
def test_checkpointed_with_weight_drop_matches_the_full_path(backend, kind, opts):
    """Weight drop masks w_hh once per pass (before the kernels); the regularisers run
    inside every segment from its absolute first step: the full path's results."""
    layer_opts = dict(bidirectional=True, weight_drop=0.4, **opts, **OPTIONS["both"])
    full = make_layer(kind, I, H, backend=backend, **layer_opts)
    ckpt = make_layer(kind, I, H, backend=backend, checkpoint_every=2, **layer_opts)
    x, states, wy, ws = random_problem(full, T, B, np.random.default_rng(21))
    want, got = _run(full, x, states, [6, 3, 1], wy, ws), _run(ckpt, x, states, [6, 3, 1], wy, ws)
    np.testing.assert_array_equal(got["y"], want["y"])
    for name in want:
        assert_close(got[name], want[name], 1e-12, name)


def test_reseeding_reproduces_the_masks_and_each_pass_draws_new_ones(backend):
    layer = rnncore.GRU(I, H, dtype=np.float64, backend=backend, seed=0, zoneout=0.3, recurrent_dropout=0.3)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    layer.rng = np.random.default_rng(1)
    y1, y2 = layer.forward(x)[0], layer.forward(x)[0]
    layer.rng = np.random.default_rng(1)
    np.testing.assert_array_equal(layer.forward(x)[0], y1)
    assert not np.allclose(y1, y2)


# ---- threads ----------------------------------------------------------------------------------

@native
@pytest.mark.parametrize("kind,opts", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [2, 11])  # per-step (IndRNN: units) and rows thread plans
def test_native_threads_match_the_reference(forced_threads, kind, opts, threads, batch):
    forced_threads(threads)
    T, I, H = 9, 5, 40
    layers = [make_layer(kind, I, H, backend=b, bidirectional=True, **opts, **OPTIONS["both"])
              for b in ("native", "reference")]
    rng = np.random.default_rng(batch)
    x, states, wy, ws = random_problem(layers[0], T, batch, rng)
    lengths = rng.integers(0, T + 1, batch)
    got, want = (_run(layer, x, states, lengths, wy, ws) for layer in layers)
    for name in want:
        assert_close(got[name], want[name], 1e-12, name)


# ---- one-step cells ------------------------------------------------------------------------

CELL_KINDS = [("rnn", {}), ("lstm", {}), ("lstm", {"peephole": True}), ("lstm", {"proj_size": 2}),
              ("gru", {}), ("gru", {"reset_after": False}), ("indrnn", {})]
CELL_IDS = ["rnn", "lstm", "lstm-peephole", "lstm-proj", "gru", "gru-cho", "indrnn"]


def _cell_loss(cell, xs, state, wy, seed):
    """sum over steps of the step's h times wy[t], running the steps in a loop."""
    cell.rng = np.random.default_rng(seed)
    loss = 0.0
    for x, w in zip(xs, wy):
        state = cell.forward(x, state)
        loss += float(np.sum((state[0] if isinstance(state, tuple) else state) * w))
    return loss, state


@pytest.mark.parametrize("kind,opts", CELL_KINDS, ids=CELL_IDS)
@pytest.mark.parametrize("option", list(OPTIONS))
def test_cells_gradients_match_finite_differences(backend, kind, opts, option):
    cell = CELLS[kind](2, 3, dtype=np.float64, backend=backend, seed=0, **opts, **OPTIONS[option])
    P = opts.get("proj_size") or 3  # the width of h
    rng = np.random.default_rng(6)
    xs, wy = rng.standard_normal((4, B, 2)), rng.standard_normal((4, B, P))
    lstm = kind == "lstm"
    s0 = tuple(rng.standard_normal((B, P if k == 0 else 3)) for k in range(2 if lstm else 1))
    state0 = s0 if lstm else s0[0]
    cell.zero_grad()
    _cell_loss(cell, xs, state0, wy, 8)
    dstate = (np.zeros((B, P)), np.zeros((B, 3))) if lstm else np.zeros((B, 3))
    dxs = []
    for t in reversed(range(4)):  # the loss's share at step t plus what step t+1 sent back
        dstate = (dstate[0] + wy[t], dstate[1]) if lstm else dstate + wy[t]
        dx, dstate = cell.backward(dstate)
        dxs.append(dx)
    got = {"x": np.stack(dxs[::-1]), **{f"s{k}": d for k, d in enumerate(dstate if lstm else (dstate,))},
           **{k: v.copy() for k, v in cell.grads.items()}}

    def loss():
        with rnncore.no_grad():
            return _cell_loss(cell, xs, state0, wy, 8)[0]
    want = {"x": rnncore.numeric_gradient(loss, xs),
            **{f"s{k}": rnncore.numeric_gradient(loss, s) for k, s in enumerate(s0)},
            **{k: rnncore.numeric_gradient(loss, p) for k, p in cell.params.items()}}
    assert cell.num_saved == 0
    for name in want:
        assert_close(got[name], want[name], FD_TOL, name)


@pytest.mark.parametrize("kind,opts", CELL_KINDS, ids=CELL_IDS)
def test_cells_step_like_a_one_step_layer(backend, kind, opts):
    """A cell's step draws the masks of a layer's single step with the same seed."""
    cell = CELLS[kind](I, H, dtype=np.float64, backend=backend, seed=0, **opts, **OPTIONS["both"])
    layer = make_layer(kind, I, H, backend=backend, **opts, **OPTIONS["both"])
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((1, B, I))
    cell.rng, layer.rng = np.random.default_rng(4), np.random.default_rng(4)
    new = cell.forward(x[0])
    y, _ = layer.forward(x)
    np.testing.assert_array_equal(new[0] if isinstance(new, tuple) else new, y[0])


# ---- options -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["zoneout", "recurrent_dropout"])
@pytest.mark.parametrize("value,error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                         (True, TypeError), ("0.2", TypeError), (None, TypeError)])
def test_bad_values(name, value, error):
    with pytest.raises(error, match=name):
        rnncore.LSTM(3, 4, **{name: value})
    with pytest.raises(error, match=name):
        rnncore.GRUCell(3, 4, **{name: value})


@native
@pytest.mark.parametrize("name,value,error", [("zoneout", 1.5, ValueError), ("recurrent_dropout", True, TypeError),
                                              ("seed", -1, ValueError), ("t0", -2, ValueError),
                                              ("unmixed", None, ValueError)])
def test_kernel_arguments_are_checked(name, value, error):
    from rnncore import _core
    x, w_ih, w_hh = np.zeros((2, 1, 3)), np.zeros((4, 3)), np.zeros((4, 4))
    kw = {"zoneout": 0.5, "unmixed": np.zeros((1, 2, 1, 4)), name: value}
    with pytest.raises(error, match=name):
        _core.elman_forward(x, None, w_ih, w_hh, None, None, **kw)


def test_repr_shows_the_options():
    s = repr(rnncore.GRU(3, 4, zoneout=0.1, recurrent_dropout=0.25))
    assert "zoneout=0.1" in s and "recurrent_dropout=0.25" in s
    assert "zoneout" not in repr(rnncore.GRU(3, 4))


def test_onnx_export_refuses_zoneout_and_keeps_recurrent_dropout(tmp_path):
    onnx_mod = pytest.importorskip("rnncore.onnx")
    pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="zoneout"):
        onnx_mod.export(rnncore.GRU(I, H, zoneout=0.2), path)
    assert not path.exists()
    layer = rnncore.LSTM(I, H, num_layers=2, recurrent_dropout=0.25, seed=0)
    onnx_mod.export(layer, path)
    back = onnx_mod.load(path)
    assert back.recurrent_dropout == 0.25
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    layer.eval()
    back.eval()
    np.testing.assert_array_equal(back.forward(x)[0], layer.forward(x)[0])


def test_float32_matches_float64(backend):
    layers = [rnncore.LSTM(I, H, dtype=dt, backend=backend, seed=0, **OPTIONS["both"])
              for dt in (np.float32, np.float64)]
    layers[0].load_state_dict({k: v.astype(np.float32) for k, v in layers[1].state_dict().items()})
    x = np.random.default_rng(0).standard_normal((T, B, I))
    ys = []
    for layer in layers:
        layer.rng = np.random.default_rng(2)
        ys.append(layer.forward(x.astype(layer.dtype))[0])
    assert rel_err(ys[0], ys[1]) < 1e-5


# ---- rnncore.torch -----------------------------------------------------------------------------

class _Seeds:
    """A stand-in for a layer's rng that hands out given seeds (rnncore.torch draws them
    from torch's generator instead)."""

    def __init__(self, seeds):
        self._seeds = iter(seeds)

    def integers(self, *args, **kwargs):
        return np.uint64(next(self._seeds))


TORCH_KINDS = [("rnn", "RNN", {}), ("lstm", "LSTM", {}), ("lstm", "LSTM", {"proj_size": 2}), ("gru", "GRU", {}),
               ("gru", "GRU", {"reset_after": False})]
TORCH_IDS = ["rnn", "lstm", "lstm-proj", "gru", "gru-cho"]


@pytest.mark.parametrize("kind,cls,opts", TORCH_KINDS, ids=TORCH_IDS)
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_torch_modules_match_the_layers(backend, kind, cls, opts, option, training):
    torch = pytest.importorskip("torch")
    rt = pytest.importorskip("rnncore.torch")
    module = getattr(rt, cls)(I, H, num_layers=2, bidirectional=True, dtype=torch.float64, backend=backend,
                              **opts, **OPTIONS[option])
    layer = make_layer(kind, I, H, backend=backend, num_layers=2, bidirectional=True, **opts, **OPTIONS[option])
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    module.train(training)
    layer.train(training)
    x, states, wy, ws = random_problem(layer, T, B, np.random.default_rng(0))
    torch.manual_seed(3)
    seeds = [int(torch.randint(0, 2 ** 63 - 1, (), dtype=torch.int64)) for _ in range(4)]
    torch.manual_seed(3)
    xt = torch.tensor(x, requires_grad=True)
    y, fin = module(xt, lengths=[6, 2, 5])
    loss = (y * torch.tensor(wy)).sum() + sum((f * torch.tensor(w)).sum() for f, w in zip(unpack(layer, fin), ws))
    loss.backward()
    want = _run(layer, x, None, [6, 2, 5], wy, ws) if not training else None
    if training:
        layer.zero_grad()
        layer.rng = _Seeds(seeds)
        yl, _ = layer.forward(x, None, [6, 2, 5])
        dx, _ = layer.backward(wy, pack(layer, ws))
        want = {"y": yl, "dx": dx, **{k: v.copy() for k, v in layer.grads.items()}}
    assert_close(y.detach().numpy(), want["y"], 1e-12, "y")
    assert_close(xt.grad.numpy(), want["dx"], 1e-12, "dx")
    for name, p in module.named_parameters():
        assert_close(p.grad.numpy(), want[name], 1e-12, name)


# native only: the reference equals native to 1e-12 with the same masks (tested above),
# so these finite differences check both; the reference's Python loop would double the time
@pytest.mark.parametrize("backend", ["native"])
@pytest.mark.parametrize("cls,opts", [("RNN", {}), ("LSTM", {}), ("LSTM", {"proj_size": 2}), ("GRU", {}),
                                      ("GRU", {"checkpoint_every": 2, "weight_drop": 0.3}),
                                      ("LSTM", {"proj_size": 2, "checkpoint_every": 2, "weight_drop": 0.3})],
                         ids=["rnn", "lstm", "lstm-proj", "gru", "gru-ckpt-weightdrop", "lstm-proj-ckpt-weightdrop"])
def test_torch_modules_gradcheck_with_the_masks_fixed(backend, cls, opts):
    torch = pytest.importorskip("torch")
    rt = pytest.importorskip("rnncore.torch")
    module = getattr(rt, cls)(2, 3, bidirectional=True, dtype=torch.float64, backend=backend, **opts,
                              **OPTIONS["both"])
    names = [n for n, _ in module.named_parameters()]
    x = torch.randn(5, 3, 2, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        torch.manual_seed(0)  # the same masks at every evaluation
        y, _ = torch.func.functional_call(module, dict(zip(names, params)), (x,))
        return y

    assert torch.autograd.gradcheck(run, (x, *module.parameters()))


@pytest.mark.parametrize("kind,cls,opts", TORCH_KINDS, ids=TORCH_IDS)
@pytest.mark.parametrize("weight_drop", [0.0, 0.3], ids=["", "weight-drop"])
def test_torch_checkpointed_matches_the_full_path(backend, kind, cls, opts, weight_drop):
    """rnncore.torch's checkpoint_every with zoneout and recurrent dropout (and weight drop):
    each segment runs with its pass's seed and absolute first step, in forward and in the
    recomputation of backward, so the results are the full path's."""
    torch = pytest.importorskip("torch")
    rt = pytest.importorskip("rnncore.torch")
    modules = [getattr(rt, cls)(I, H, num_layers=2, bidirectional=True, dtype=torch.float64, backend=backend,
                                weight_drop=weight_drop, checkpoint_every=every, **opts, **OPTIONS["both"])
               for every in (None, 2)]
    modules[1].load_state_dict(modules[0].state_dict())
    x = np.random.default_rng(5).standard_normal((T, B, I))
    res = []
    for module in modules:
        torch.manual_seed(11)
        xt = torch.tensor(x, requires_grad=True)
        y, _ = module(xt, lengths=[6, 1, 4])
        (y * torch.linspace(-1, 1, y.numel(), dtype=torch.float64).reshape(y.shape)).sum().backward()
        res.append({"y": y.detach().numpy(), "dx": xt.grad.numpy(),
                    **{n: p.grad.numpy().copy() for n, p in module.named_parameters()}})
    np.testing.assert_array_equal(res[1]["y"], res[0]["y"])
    for name in res[0]:
        assert_close(res[1][name], res[0][name], 1e-12, name)

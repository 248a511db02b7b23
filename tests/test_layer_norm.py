"""Layer-normalised LSTM and GRU (layer_norm=True; haste's LayerNormLSTM and LayerNormGRU,
Ba et al. 2016): the formulation against a loop written here, that the norms act (scale
invariance), finite differences of every parameter, the input and the initial states
(lengths, both directions, stacks, the regularisers and checkpointing, the one-step cells),
native against the reference at 1 and 2 threads in both thread plans, the kernels' contract,
rnncore.torch, the ONNX export's refusal and bad input."""

import numpy as np
import pytest

import rnncore
from rnncore import reference as R
from rnn_testing import FD_TOL, TOL, analytic, assert_close, numeric, random_problem

native = pytest.mark.skipif(not rnncore.backend_available("native"), reason="native backend not built")
F64 = np.dtype(np.float64)
T, B, I, H = 4, 3, 5, 4
KINDS = {"lstm": (rnncore.LSTM, rnncore.LSTMCell), "gru": (rnncore.GRU, rnncore.GRUCell)}


def randomise(module, rng, scale=0.5):
    """Every parameter random, the gains around 1: no gradient is special."""
    for name, p in module.params.items():
        p[...] = rng.standard_normal(p.shape) * (0.3 if name.startswith("ln_") else scale)
        if name.startswith("ln_weight"):
            p += 1


def make(kind, backend="native", seed=0, **opts):
    layer = KINDS[kind][0](I, H, layer_norm=True, dtype=np.float64, backend=backend, seed=seed, **opts)
    randomise(layer, np.random.default_rng(seed + 100))
    return layer


# ---- the formulation, written out here ------------------------------------------------------------

def ln(v):
    mu = v.mean(-1, keepdims=True)
    return (v - mu) / np.sqrt(((v - mu) ** 2).mean(-1, keepdims=True) + 1e-5)


def sig(a):
    return 1 / (1 + np.exp(-a))


def lstm_by_hand(p, x, h, c):
    ys = []
    for t in range(x.shape[0]):
        a = (ln(x[t] @ p["weight_ih_l0"].T) * p["ln_weight_ih_l0"] + ln(h @ p["weight_hh_l0"].T) * p["ln_weight_hh_l0"]
             + p["bias_ih_l0"] + p["bias_hh_l0"])
        i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(ln(c) * p["ln_weight_c_l0"] + p["ln_bias_c_l0"])
        ys.append(h)
    return np.stack(ys), h, c


def gru_by_hand(p, x, h):
    ys = []
    for t in range(x.shape[0]):
        ax = ln(x[t] @ p["weight_ih_l0"].T) * p["ln_weight_ih_l0"] + p["bias_ih_l0"]
        ah = ln(h @ p["weight_hh_l0"].T) * p["ln_weight_hh_l0"] + p["bias_hh_l0"]
        r, z = sig(ax[:, :H] + ah[:, :H]), sig(ax[:, H:2 * H] + ah[:, H:2 * H])
        n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
        h = (1 - z) * n + z * h
        ys.append(h)
    return np.stack(ys), h


def test_layers_compute_haste_formulation(backend):
    rng = np.random.default_rng(1)
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((1, B, H)), rng.standard_normal((1, B, H))
    lstm = make("lstm", backend)
    y, (h, c) = lstm.forward(x, (h0, c0))
    want = lstm_by_hand(lstm.params, x, h0[0], c0[0])
    for name, a, b in (("y", y, want[0]), ("h", h[0], want[1]), ("c", c[0], want[2])):
        assert_close(a, b, 1e-13, name)
    gru = make("gru", backend)
    y, h = gru.forward(x, h0)
    want = gru_by_hand(gru.params, x, h0[0])
    assert_close(y, want[0], 1e-13, "y")
    assert_close(h[0], want[1], 1e-13, "h")


def test_parameters_names_and_initial_values():
    lstm = rnncore.LSTM(I, H, num_layers=2, bidirectional=True, layer_norm=True, seed=0)
    shapes = {k: v.shape for k, v in lstm.params.items()}
    for sfx in ("_l0", "_l1_reverse"):
        assert shapes["ln_weight_ih" + sfx] == (4 * H,) and shapes["ln_weight_hh" + sfx] == (4 * H,)
        assert shapes["ln_weight_c" + sfx] == (H,) and shapes["ln_bias_c" + sfx] == (H,)
        assert (lstm.params["ln_weight_ih" + sfx] == 1).all() and (lstm.params["ln_bias_c" + sfx] == 0).all()
        assert shapes["weight_ih" + sfx][0] == 4 * H and "bias_hh" + sfx in shapes
    assert "layer_norm=True" in repr(lstm) and "layer_norm" not in repr(rnncore.LSTM(I, H))
    gru = rnncore.GRU(I, H, layer_norm=True, bias=False)
    assert sorted(gru.params) == ["ln_weight_hh_l0", "ln_weight_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    cell = rnncore.LSTMCell(I, H, layer_norm=True)
    assert {"ln_weight_ih", "ln_weight_hh", "ln_weight_c", "ln_bias_c"} <= set(cell.params)
    assert "layer_norm=True" in repr(cell) and "layer_norm=True" in repr(rnncore.GRUCell(I, H, layer_norm=True))


def test_checkpoint_round_trip(tmp_path):
    layer = rnncore.LSTM(I, H, bidirectional=True, layer_norm=True, seed=0)
    randomise(layer, np.random.default_rng(1))
    layer.save(tmp_path / "ln.npz")
    again = rnncore.LSTM(I, H, bidirectional=True, layer_norm=True, seed=1)
    again.load(tmp_path / "ln.npz")
    for k, v in layer.params.items():
        np.testing.assert_array_equal(again.params[k], v)
    x = np.random.default_rng(2).standard_normal((T, B, I)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x)[0], layer.forward(x)[0])
    with pytest.raises(KeyError, match="ln_weight"):  # a layer without the norms is another model
        rnncore.LSTM(I, H, bidirectional=True).load(tmp_path / "ln.npz")


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_norms_act(backend, kind):
    """With the gains at 1 and the norms' biases at 0, scaling weight_ih or weight_hh by a
    positive constant leaves the outputs unchanged (up to eps), which it does not without
    layer_norm."""
    rng = np.random.default_rng(2)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((1, B, H))
    state = (h0, h0) if kind == "lstm" else h0
    for layer_norm in (True, False):
        layer = KINDS[kind][0](I, H, layer_norm=layer_norm, dtype=np.float64, backend=backend, seed=3)
        for name in ("weight_ih_l0", "weight_hh_l0"):
            layer.params[name] *= 10  # pre-activations' variance well above eps
        y = layer.forward(x, state)[0]
        for name, s in (("weight_ih_l0", 3.0), ("weight_hh_l0", 0.5)):
            layer.params[name] *= s
            y2 = layer.forward(x, state)[0]
            layer.params[name] /= s
            err = np.abs(y2 - y).max()
            assert err < 1e-4 if layer_norm else err > 1e-2, (name, layer_norm, err)


# ---- finite differences ------------------------------------------------------------------------

STRUCTURES = {
    "bidir-lengths": ({"bidirectional": True}, [T, 0, 2]),
    "2layer-bidir-batchfirst-lengths-nobias": ({"num_layers": 2, "bidirectional": True, "batch_first": True,
                                               "bias": False}, [3, T, 1]),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_layer_gradients_match_finite_differences(backend, kind, structure):
    opts, lengths = STRUCTURES[structure]
    layer = make(kind, backend, seed=1, **opts)
    x, states, wy, ws = random_problem(layer, T, B, np.random.default_rng(2))
    got = analytic(layer, x, states, lengths, wy, ws)
    want = numeric(layer, x, states, lengths, wy, ws)
    assert set(got) == set(want) and any(k.startswith("ln_") for k in want)
    for name in want:
        assert_close(got[name], want[name], FD_TOL, name)


REGULARISED = {
    "zoneout-dropout-bidir-lengths": ({"bidirectional": True, "zoneout": 0.3, "recurrent_dropout": 0.4}, [T, 1, 3]),
    "checkpointed-weight-drop-zoneout": ({"checkpoint_every": 2, "weight_drop": 0.3, "zoneout": 0.3}, [T, 0, 3]),
}


# native only: the reference equals native to 1e-12 with the same masks (below)
@native
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("structure", list(REGULARISED))
def test_gradients_through_the_regularisers_with_the_masks_fixed(kind, structure):
    opts, lengths = REGULARISED[structure]
    layer = make(kind, "native", seed=4, **opts)
    x, states, wy, ws = random_problem(layer, T + 2, B, np.random.default_rng(5))
    got = analytic(layer, x, states, lengths, wy, ws, rng_seed=9)
    want = numeric(layer, x, states, lengths, wy, ws, rng_seed=9)
    for name in want:
        assert_close(got[name], want[name], FD_TOL, name)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bias", [True, False])
def test_cell_gradients_match_finite_differences(backend, kind, bias):
    cell = KINDS[kind][1](I, H, bias, layer_norm=True, dtype=np.float64, backend=backend, seed=3,
                          zoneout=0.2 if bias else 0.0, recurrent_dropout=0.3 if bias else 0.0)
    randomise(cell, np.random.default_rng(7))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, I))
    n = 2 if kind == "lstm" else 1
    state = [rng.standard_normal((B, H)) for _ in range(n)]
    w = [rng.standard_normal((B, H)) for _ in range(n)]
    pack = (lambda s: tuple(s)) if n == 2 else (lambda s: s[0])

    def loss():
        cell.rng = np.random.default_rng(8)
        out = cell.forward(x, pack(state))
        cell.clear_saved()
        return sum(float(np.sum(o * wi)) for o, wi in zip(out if n == 2 else (out,), w))

    cell.zero_grad()
    cell.rng = np.random.default_rng(8)
    cell.forward(x, pack(state))
    dx, dprev = cell.backward(pack(w))
    got = {"x": dx, **{f"s{k}": d for k, d in enumerate(dprev if n == 2 else (dprev,))},
           **{k: v.copy() for k, v in cell.grads.items()}}
    targets = {"x": x, **{f"s{k}": s for k, s in enumerate(state)}, **cell.params}
    assert any(k.startswith("ln_") for k in targets)
    for name, arr in targets.items():
        assert_close(got[name], rnncore.numeric_gradient(loss, arr, eps=1e-6), FD_TOL, name)


# ---- native against the reference ------------------------------------------------------------------

@native
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("Bn", [3, 16], ids=["per-step", "rows"])
def test_native_matches_reference(forced_threads, kind, nt, Bn):
    """Outputs, final states and every gradient, bidirectional with lengths and the
    regularisers, H=37 (threads split the units of a step in the per-step plan)."""
    forced_threads(nt)
    results = []
    for backend in ("native", "reference"):
        layer = KINDS[kind][0](3, 37, layer_norm=True, bidirectional=True, zoneout=0.2, recurrent_dropout=0.3,
                               dtype=np.float64, backend=backend, seed=0)
        randomise(layer, np.random.default_rng(1))
        x, states, wy, ws = random_problem(layer, 5, Bn, np.random.default_rng(2))
        lengths = [5, 0, 3] + [4] * (Bn - 3)
        layer.rng = np.random.default_rng(3)
        y, fin = layer.forward(x, tuple(states) if kind == "lstm" else states[0], lengths)
        results.append((y, fin, analytic(layer, x, states, lengths, wy, ws, rng_seed=3)))
    (y1, f1, g1), (y2, f2, g2) = results
    assert_close(y1, y2, 1e-12, "y")
    for a, b in zip(f1 if kind == "lstm" else (f1,), f2 if kind == "lstm" else (f2,)):
        assert_close(a, b, 1e-12, "final state")
    assert set(g1) == set(g2)
    for name in g1:
        assert_close(g1[name], g2[name], 1e-12, name)


@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_matches_float64(backend, kind):
    """float32 (the fast approximations of tanh and sigmoid natively) against float64."""
    results = []
    for dtype in (np.float32, np.float64):
        layer = KINDS[kind][0](I, H, layer_norm=True, bidirectional=True, dtype=dtype, backend=backend, seed=0)
        randomise(layer, np.random.default_rng(1))
        for p in layer.params.values():
            p[...] = p.astype(np.float32)
        x, states, wy, ws = random_problem(layer, T, B, np.random.default_rng(2))
        x, wy = x.astype(np.float32).astype(dtype), wy.astype(np.float32).astype(dtype)
        states = [s.astype(np.float32).astype(dtype) for s in states]
        results.append(analytic(layer, x, states, [T, 1, 3], wy, ws))
    for name in results[1]:
        assert_close(results[0][name], results[1][name], TOL[np.dtype(np.float32)], name)


@native
@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("Bn", [3, 300], ids=["per-step", "rows"])
def test_step_kernels_match_reference(forced_threads, nt, Bn):
    from rnncore import _core
    forced_threads(nt)
    rng = np.random.default_rng(Bn)
    I_, H_ = 5, 37
    x, h, c, dh, dc = (rng.standard_normal(s) for s in ((Bn, I_), (Bn, H_), (Bn, H_), (Bn, H_), (Bn, H_)))
    for kind, G, n in (("lstm_ln", 4, 10), ("gru_ln", 3, 6)):
        w = [0.3 * rng.standard_normal(s) for s in ((G * H_, I_), (G * H_, H_), (G * H_,), (G * H_,))]
        lnp = 1 + 0.3 * rng.standard_normal(n * H_)
        results = []
        for ops in (_core, R):
            fwd, bwd = getattr(ops, kind + "_step_forward"), getattr(ops, kind + "_step_backward")
            g = [np.zeros_like(a) for a in w] + [np.zeros_like(lnp)]
            if kind == "lstm_ln":
                h1, c1, wx, acts = out = fwd(x, h, c, *w, lnp)
                dx, *dprev = bwd(dh, dc, x, h, c, wx, acts, *w[:2], lnp, *g)
            else:
                h1, wx, acts = out = fwd(x, h, *w, lnp)
                dx, *dprev = bwd(dh, x, h, wx, acts, *w[:2], lnp, *g)
            results.append([*out, dx, *dprev, *g])
        for i, (a, b) in enumerate(zip(*results)):
            assert_close(a, b, 1e-12, f"{kind} output {i}")


@native
@pytest.mark.parametrize("kind", ["lstm_ln", "gru_ln"])
def test_backward_adds_into_the_gradients(kind):
    """Two backward calls give exactly twice one, the gains' and biases' gradients included;
    padded steps output zero."""
    from rnncore import _core
    rng = np.random.default_rng(3)
    G, n, S = (4, 10, 2) if kind == "lstm_ln" else (3, 6, 1)
    x = rng.standard_normal((T, B, I))
    s0 = [rng.standard_normal((B, H)) for _ in range(S)]
    w = [rng.standard_normal((G * H, I)), rng.standard_normal((G * H, H)), rng.standard_normal(G * H),
         rng.standard_normal(G * H)]
    lnp = rng.standard_normal(n * H)
    lengths = np.array([T, 2, 0])
    y, *rest = getattr(_core, kind + "_forward")(x, *s0, *w, lnp, lengths)
    assert not y[2:, 1].any() and not y[:, 2].any()
    dy = rng.standard_normal((T, B, H))
    grads = [np.zeros_like(a) for a in (*w, lnp)]
    args = (dy, *([None] * S), x, *rest, w[0], w[1], lnp, lengths, False)
    _core.__dict__[kind + "_backward"](*args, *grads)
    once = [g.copy() for g in grads]
    _core.__dict__[kind + "_backward"](*args, *grads)
    for a, b in zip(once, grads):
        np.testing.assert_array_equal(b, 2 * a)


# ---- the surface: ONNX, bad input ------------------------------------------------------------------

def test_onnx_export_refuses_layer_norm(tmp_path):
    pytest.importorskip("onnx")
    import rnncore.onnx

    for model in (rnncore.LSTM(I, H, layer_norm=True), rnncore.GRU(I, H, layer_norm=True),
                  rnncore.Sequential(rnncore.Embedding(10, I), rnncore.LSTM(I, H, layer_norm=True),
                                     rnncore.Linear(H, 10))):
        with pytest.raises(ValueError, match="layer_norm=True"):
            rnncore.onnx.export(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cls", [rnncore.LSTM, rnncore.LSTMCell, rnncore.GRU, rnncore.GRUCell])
def test_bad_input(cls):
    with pytest.raises(TypeError, match="layer_norm: expected a bool"):
        cls(I, H, layer_norm="yes")
    with pytest.raises(TypeError, match="layer_norm: expected a bool"):
        cls(I, H, layer_norm=1)
    if cls in (rnncore.LSTM, rnncore.LSTMCell):
        with pytest.raises(ValueError, match="layer_norm and proj_size"):
            cls(I, H, layer_norm=True, proj_size=2)
        with pytest.raises(ValueError, match="layer_norm and peephole"):
            cls(I, H, layer_norm=True, peephole=True)
    else:
        with pytest.raises(ValueError, match="layer_norm and reset_after"):
            cls(I, H, layer_norm=True, reset_after=False)


@pytest.mark.parametrize("ops", ["native", "reference"])
def test_kernels_require_the_gains(ops):
    if ops == "native" and not rnncore.backend_available("native"):
        pytest.skip("native backend not built")
    mod = __import__("rnncore._core", fromlist=["x"]) if ops == "native" else R
    x, h = np.zeros((B, I)), np.zeros((B, H))
    w = [np.zeros((4 * H, I)), np.zeros((4 * H, H)), None, None]
    with pytest.raises(ValueError, match="ln: required"):
        mod.lstm_ln_step_forward(x, h, h, *w, None)
    if ops == "native":  # the reference trusts its caller (rnncore._checks)
        with pytest.raises(ValueError, match="ln"):
            mod.lstm_ln_step_forward(x, h, h, *w, np.ones(9 * H))


# ---- rnncore.torch ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
def test_torch_modules_match_the_layers_and_gradcheck(backend, kind):
    torch = pytest.importorskip("torch")
    import rnncore.torch as rt

    cls = {"lstm": rt.LSTM, "gru": rt.GRU}[kind]
    module = cls(3, 4, bidirectional=True, layer_norm=True, dtype=torch.float64, backend=backend)
    assert "layer_norm=True" in repr(module)
    assert all(float(p.detach().sum()) == p.numel() for n, p in module.named_parameters() if n.startswith("ln_weight"))
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.3 * torch.randn(p.shape, dtype=torch.float64))
    layer = KINDS[kind][0](3, 4, bidirectional=True, layer_norm=True, dtype=np.float64, backend=backend)
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 3))
    states = [rng.standard_normal((2, 2, 4)) for _ in range(2 if kind == "lstm" else 1)]
    want_y, _ = layer.forward(x, tuple(states) if kind == "lstm" else states[0])
    tstates = [torch.tensor(s, requires_grad=True) for s in states]
    y, _ = module(torch.tensor(x), tuple(tstates) if kind == "lstm" else tstates[0])
    assert_close(y.detach().numpy(), want_y, TOL[F64], "y")

    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    xt = torch.tensor(x, requires_grad=True)

    def f(x, *rest):
        s, ps = rest[:len(states)], rest[len(states):]
        y, fin = torch.func.functional_call(module, dict(zip(names, ps)), (x, tuple(s) if kind == "lstm" else s[0]))
        return (y, *fin) if kind == "lstm" else (y, fin)

    assert torch.autograd.gradcheck(f, (xt, *tstates, *params))
    # checkpoint_every and zoneout's expectation (evaluation) through autograd too
    module = cls(3, 4, layer_norm=True, checkpoint_every=2, zoneout=0.3, dtype=torch.float64, backend=backend).eval()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    assert torch.autograd.gradcheck(lambda x, *ps: torch.func.functional_call(module, dict(zip(names, ps)), (x,))[0],
                                    (xt, *params))
    cell = {"lstm": rt.LSTMCell, "gru": rt.GRUCell}[kind](3, 4, layer_norm=True, dtype=torch.float64, backend=backend)
    cnames = [n for n, _ in cell.named_parameters()]
    assert "ln_weight_ih" in cnames and "layer_norm=True" in repr(cell)
    cparams = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    cs = [torch.randn(2, 4, dtype=torch.float64, requires_grad=True) for _ in states]

    def g(x, *rest):
        s, ps = rest[:len(cs)], rest[len(cs):]
        return torch.func.functional_call(cell, dict(zip(cnames, ps)), (x, tuple(s) if kind == "lstm" else s[0]))

    assert torch.autograd.gradcheck(g, (xt[0].detach().clone().requires_grad_(), *cs, *cparams))
    with pytest.raises(ValueError, match="layer_norm and"):
        cls(3, 4, layer_norm=True, **({"proj_size": 2} if kind == "lstm" else {"reset_after": False}))


@pytest.mark.parametrize("kind", list(KINDS))
def test_generate_runs_the_norms(kind):
    """generate's native loop has no layer norm: such a model runs its forward per token,
    and the ids are those of feeding each one back by hand."""
    from rnncore.training import _native_layers

    model = rnncore.Sequential(rnncore.Embedding(7, I, seed=0), KINDS[kind][0](I, H, layer_norm=True, seed=1),
                               rnncore.Linear(H, 7, seed=2))
    randomise(model.layers[1], np.random.default_rng(3), scale=1.0)
    _, state = model.forward(np.array([[1], [2]]))
    assert _native_layers(model, state) is None
    ids = rnncore.generate(model, np.array([1, 2]), 5, temperature=0)
    logits, state = model.forward(np.array([[1], [2]]))
    want = []
    for _ in range(5):
        want.append(int(np.argmax(logits[-1, 0])))
        logits, state = model.forward(np.array([[want[-1]]]), state)
    assert ids.tolist() == want

"""LSTM with torch.nn.LSTM's proj_size (h_t = W_hr (o_t * tanh(c_t)), h P wide, c H wide):
the layer against torch.nn.LSTM(proj_size=P) in outputs, final states and every gradient,
on both backends, with lengths through packed sequences, and natively at 1 and 2 threads
on batches that take the rows and the per-step thread plans; the kernels against the
reference; finite differences for the layer and the one-step cell (with peepholes too);
rnncore.torch.LSTM against torch.nn.LSTM; checkpoints; the ONNX export's refusal."""

import copy

import numpy as np
import pytest

import rnncore
from rnncore import _core
from rnncore import reference as R
from rnn_testing import FD_EPS, FD_TOL, TOL, WORST_VS_TORCH, assert_close

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import rnncore.torch as rt  # noqa: E402

TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

# torch's own note that its float32 CPU path for projections is not oneDNN's
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")


def record(dtype, err):
    key = str(np.dtype(dtype))
    WORST_VS_TORCH[key] = max(WORST_VS_TORCH.get(key, 0.0), err)
    return err


# ---- a problem: the layer, its inputs and the weights of the loss -------------------------------
def problem(layer, T, B, rng, with_state=True):
    """x, (h0, c0) or None, and the loss weights for y, h_n, c_n, in the layer's shapes."""
    dt, D, L = layer.dtype, layer.num_directions, layer.num_layers
    H, P = layer.hidden_size, layer.proj_size
    x_shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = rng.standard_normal(x_shape).astype(dt)
    shapes = [(L * D, B, P), (L * D, B, H)]
    states = [rng.standard_normal(s).astype(dt) for s in shapes] if with_state else None
    wy = rng.standard_normal(x_shape[:2] + (D * P,)).astype(dt)
    ws = [rng.standard_normal(s).astype(dt) for s in shapes]
    return x, states, wy, ws


def torch_twin(layer):
    twin = torch.nn.LSTM(layer.input_size, layer.hidden_size, num_layers=layer.num_layers, bias=layer.bias,
                         batch_first=layer.batch_first, bidirectional=layer.bidirectional,
                         proj_size=layer.proj_size, dtype=TORCH_DTYPE[layer.dtype])
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.state_dict().items()})
    return twin


def torch_run(twin, layer, x, states, lengths, wy, ws):
    """Forward and backward of sum(y*wy) + sum(h_n*w_h) + sum(c_n*w_c) in torch, by name."""
    T = x.shape[1] if layer.batch_first else x.shape[0]
    xt = torch.tensor(x, requires_grad=True)
    st = None if states is None else [torch.tensor(s, requires_grad=True) for s in states]
    inp = xt
    if lengths is not None:
        inp = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=layer.batch_first, enforce_sorted=False)
    y, fin = twin(inp, None if st is None else tuple(st))
    if lengths is not None:
        y, _ = pad_packed_sequence(y, batch_first=layer.batch_first, total_length=T)
    loss = (y * torch.tensor(wy)).sum() + sum((f * torch.tensor(w)).sum() for f, w in zip(fin, ws))
    loss.backward()
    out = {"y": y.detach().numpy(), "h_n": fin[0].detach().numpy(), "c_n": fin[1].detach().numpy(),
           "x.grad": xt.grad.numpy()}
    if st is not None:
        out["h0.grad"], out["c0.grad"] = st[0].grad.numpy(), st[1].grad.numpy()
    out.update({name: p.grad.numpy() for name, p in twin.named_parameters()})
    return out


def ours_run(layer, x, states, lengths, wy, ws):
    layer.zero_grad()
    y, (h_n, c_n) = layer.forward(x, None if states is None else tuple(states), lengths)
    dx, (dh0, dc0) = layer.backward(wy, tuple(ws))
    out = {"y": y, "h_n": h_n, "c_n": c_n, "x.grad": dx}
    if states is not None:
        out["h0.grad"], out["c0.grad"] = dh0, dc0
    out.update({k: v.copy() for k, v in layer.grads.items()})
    return out


def random_config(rng, case):
    if case == 0:  # the smallest projection: one step, one sequence, H = 2, P = 1
        T, B, I, H = 1, 1, 1, 2
    else:
        T, B, I, H = (int(v) for v in (rng.integers(1, 8), rng.integers(1, 6), rng.integers(1, 7),
                                       rng.integers(2, 9)))
    P = int(rng.integers(1, H))
    opts = dict(num_layers=int(rng.integers(1, 3)), bidirectional=bool(rng.integers(2)),
                batch_first=bool(rng.integers(2)), bias=bool(rng.integers(4)))
    lengths = rng.integers(1, T + 1, size=B).tolist() if rng.integers(2) else None
    return T, B, I, H, P, opts, lengths, bool(rng.integers(3))


# every combination of layers, directions and batch_first appears in the 16 cases
@pytest.mark.parametrize("case", range(16))
def test_layer_matches_torch(backend, dtype, case):
    rng = np.random.default_rng(4000 + case)
    T, B, I, H, P, opts, lengths, with_state = random_config(rng, case)
    opts.update(num_layers=1 + case % 2, bidirectional=bool(case // 2 % 2), batch_first=bool(case // 4 % 2))
    layer = rnncore.LSTM(I, H, proj_size=P, dtype=dtype, backend=backend, seed=case, **opts)
    x, states, wy, ws = problem(layer, T, B, rng, with_state)
    want = torch_run(torch_twin(layer), layer, x, states, lengths, wy, ws)
    got = ours_run(layer, x, states, lengths, wy, ws)
    assert set(got) == set(want)
    assert "weight_hr_l0" in got
    for name in want:
        assert got[name].dtype == dtype
        record(dtype, assert_close(got[name], want[name], TOL[dtype], name))


# B = 3 runs the per-step plan at 2 threads (the units of each part split among the
# threads, H and P into different panels), B = 16 the rows plan; 1 thread runs serially.
@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("B", [3, 16], ids=["per-step", "rows"])
def test_native_threads_match_torch(threads, nt, B):
    _core.set_num_threads(nt)
    _core._set_parallel_threshold(0)
    rng = np.random.default_rng(B)
    T, I, H, P = 6, 7, 70, 33
    lengths = rng.integers(0, T + 1, B).tolist()
    lengths[0] = T
    layer = rnncore.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, dtype=np.float64, seed=B)
    x, states, wy, ws = problem(layer, T, B, rng)
    want = torch_run(torch_twin(layer), layer, x, states, [max(n, 1) for n in lengths], wy, ws)
    # torch packs no empty sequence: lengths of 0 run against the reference instead
    got = ours_run(layer, x, states, [max(n, 1) for n in lengths], wy, ws)
    for name in want:
        record(np.float64, assert_close(got[name], want[name], TOL[np.dtype(np.float64)], name))
    ref = rnncore.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, dtype=np.float64, backend="reference")
    ref.load_state_dict(layer.state_dict())
    got, want = ours_run(layer, x, states, lengths, wy, ws), ours_run(ref, x, states, lengths, wy, ws)
    for name in want:
        assert_close(got[name], want[name], TOL[np.dtype(np.float64)], name)
    again = ours_run(layer, x, states, lengths, wy, ws)
    for name in got:
        np.testing.assert_array_equal(again[name], got[name])


# a single step splits its units among threads below G*H rows, its rows at or above
@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("B", [3, 300], ids=["per-step", "rows"])
@pytest.mark.parametrize("peephole", [False, True])
def test_step_kernels_match_reference(threads, nt, B, peephole):
    _core.set_num_threads(nt)
    _core._set_parallel_threshold(0)
    rng = np.random.default_rng(B + peephole)
    I, H, P = 5, 70, 33
    x, h, c, dh, dc = (rng.standard_normal(s) for s in ((B, I), (B, P), (B, H), (B, P), (B, H)))
    w = [0.3 * rng.standard_normal(s) for s in ((4 * H, I), (4 * H, P), (P, H), (4 * H,), (4 * H,))]
    w_ch = rng.standard_normal(3 * H) if peephole else None
    results = []
    for ops in (_core, R):
        h1, c1, gates, m = ops.lstmp_step_forward(x, h, c, *w, w_ch)
        g = [np.zeros_like(a) for a in w] + [None if w_ch is None else np.zeros_like(w_ch)]
        dx, dh_prev, dc_prev = ops.lstmp_step_backward(dh, dc, x, h, c, c1, gates, m, *w[:3], w_ch, *g)
        results.append([h1, c1, gates, m, dx, dh_prev, dc_prev] + [a for a in g if a is not None])
    for i, (a, b) in enumerate(zip(*results)):
        assert_close(a, b, TOL[np.dtype(np.float64)], f"output {i}")


def test_backward_adds_into_the_gradients():
    """Two backward calls give exactly twice one (dw_hr included)."""
    rng = np.random.default_rng(3)
    T, B, I, H, P = 4, 3, 5, 6, 2
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, P)), rng.standard_normal((B, H))
    w_ih, w_hh, w_hr = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, P)), rng.standard_normal((P, H))
    b1, b2, w_ch = rng.standard_normal(4 * H), rng.standard_normal(4 * H), rng.standard_normal(3 * H)
    lengths = np.array([4, 2, 0])
    y, h, c, gates, m = _core.lstmp_forward(x, h0, c0, w_ih, w_hh, w_hr, b1, b2, w_ch, lengths)
    assert y.shape == (T, B, P) and h.shape == (T + 1, B, P) and c.shape == (T + 1, B, H) and m.shape == (T, B, H)
    assert not y[2:, 1].any() and not y[:, 2].any()
    dy = rng.standard_normal((T, B, P))
    grads = [np.zeros_like(a) for a in (w_ih, w_hh, w_hr, b1, b2, w_ch)]
    args = (dy, None, None, x, h, c, gates, m, w_ih, w_hh, w_hr, w_ch, lengths, False)
    _core.lstmp_backward(*args, *grads)
    once = [g.copy() for g in grads]
    _core.lstmp_backward(*args, *grads)
    for a, b in zip(once, grads):
        np.testing.assert_array_equal(b, 2 * a)


# ---- finite differences --------------------------------------------------------------------------
T, B, I, H, P = 4, 3, 5, 4, 2
STRUCTURES = {
    "1layer": ({}, None),
    "bidir-lengths": ({"bidirectional": True}, [T, 0, 2]),
    "2layer-bidir-batchfirst-lengths": ({"num_layers": 2, "bidirectional": True, "batch_first": True}, [3, T, 1]),
}


def loss_of(layer, x, states, lengths, wy, ws):
    y, fin = layer.forward(x, tuple(states), lengths)
    return float(np.sum(y * wy)) + sum(float(np.sum(f * w)) for f, w in zip(fin, ws))


@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_layer_gradients_match_finite_differences(backend, structure, peephole):
    opts, lengths = STRUCTURES[structure]
    layer = rnncore.LSTM(I, H, proj_size=P, peephole=peephole, dtype=np.float64, backend=backend, seed=1, **opts)
    x, states, wy, ws = problem(layer, T, B, np.random.default_rng(2))
    got = ours_run(layer, x, states, lengths, wy, ws)
    targets = {"x.grad": x, "h0.grad": states[0], "c0.grad": states[1],
               **{k: v for k, v in layer.params.items()}}
    for name, arr in targets.items():
        num = rnncore.numeric_gradient(lambda: loss_of(layer, x, states, lengths, wy, ws), arr, eps=FD_EPS)
        assert_close(got[name], num, FD_TOL, name)


@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_gradients_match_finite_differences(backend, peephole, bias):
    cell = rnncore.LSTMCell(I, H, bias, proj_size=P, peephole=peephole, dtype=np.float64, backend=backend, seed=3)
    assert cell.params["weight_hh"].shape == (4 * H, P) and cell.params["weight_hr"].shape == (P, H)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, I))
    state = [rng.standard_normal((B, P)), rng.standard_normal((B, H))]
    w = [rng.standard_normal((B, P)), rng.standard_normal((B, H))]

    def loss():
        out = cell.forward(x, tuple(state))
        cell.clear_saved()
        return sum(float(np.sum(o * wi)) for o, wi in zip(out, w))

    cell.zero_grad()
    h, c = cell.forward(x, tuple(state))
    assert h.shape == (B, P) and c.shape == (B, H)
    dx, (dh, dc) = cell.backward(tuple(w))
    got = {"x": dx, "h": dh, "c": dc, **{k: v.copy() for k, v in cell.grads.items()}}
    for name, arr in {"x": x, "h": state[0], "c": state[1], **cell.params}.items():
        assert_close(got[name], rnncore.numeric_gradient(loss, arr, eps=FD_EPS), FD_TOL, name)


def test_cell_is_one_step_of_torch_lstm(backend, dtype):
    """LSTMCell(proj_size) (rnncore's own: torch.nn.LSTMCell has none) is one step of
    torch.nn.LSTM(proj_size)."""
    cell = rnncore.LSTMCell(I, H, proj_size=P, dtype=dtype, backend=backend, seed=5)
    twin = torch.nn.LSTM(I, H, proj_size=P, dtype=TORCH_DTYPE[dtype])
    twin.load_state_dict({k + "_l0": torch.from_numpy(v.copy()) for k, v in cell.state_dict().items()})
    rng = np.random.default_rng(6)
    x, h, c = (rng.standard_normal(s).astype(dtype) for s in ((B, I), (B, P), (B, H)))
    wh, wc = rng.standard_normal((B, P)).astype(dtype), rng.standard_normal((B, H)).astype(dtype)
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    _, (hn, cn) = twin(xt[None], (ht[None], ct[None]))
    ((hn[0] * torch.tensor(wh)).sum() + (cn[0] * torch.tensor(wc)).sum()).backward()
    h1, c1 = cell.forward(x, (h, c))
    dx, (dh, dc) = cell.backward((wh, wc))
    tol = TOL[dtype]
    for name, a, b in (("h", h1, hn[0]), ("c", c1, cn[0]), ("x.grad", dx, xt.grad), ("h.grad", dh, ht.grad),
                       ("c.grad", dc, ct.grad)):
        record(dtype, assert_close(a, b.detach().numpy(), tol, name))
    for name, p in twin.named_parameters():
        record(dtype, assert_close(cell.grads[name[:-3]], p.grad.numpy(), tol, name))


# ---- the layer's surface ----------------------------------------------------------------------------
def test_shapes_repr_and_checkpoint(tmp_path):
    layer = rnncore.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, seed=0)
    shapes = {k: v.shape for k, v in layer.params.items()}
    assert shapes["weight_ih_l1"] == (4 * H, 2 * P) and shapes["weight_hh_l1_reverse"] == (4 * H, P)
    assert shapes["weight_hr_l0"] == (P, H) and shapes["weight_hr_l1_reverse"] == (P, H)
    assert "proj_size=2" in repr(layer) and "proj_size" not in repr(rnncore.LSTM(I, H))
    assert "proj_size=2" in repr(rnncore.LSTMCell(I, H, proj_size=P))
    y, (h, c) = layer.forward(np.zeros((T, B, I), np.float32))
    assert y.shape == (T, B, 2 * P) and h.shape == (4, B, P) and c.shape == (4, B, H)
    layer.save(tmp_path / "lstmp.npz")
    again = rnncore.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, seed=1)
    again.load(tmp_path / "lstmp.npz")
    for k, v in layer.params.items():
        np.testing.assert_array_equal(again.params[k], v)
    with pytest.raises(KeyError, match="weight_hr"):  # a layer without the projection is another model
        rnncore.LSTM(I, H, num_layers=2, bidirectional=True).load(tmp_path / "lstmp.npz")


def test_onnx_export_refuses_the_projection(tmp_path):
    pytest.importorskip("onnx")
    import rnncore.onnx

    for model in (rnncore.LSTM(I, H, proj_size=P),
                  rnncore.Sequential(rnncore.Embedding(10, I), rnncore.LSTM(I, H, proj_size=P),
                                     rnncore.Linear(P, 10))):
        with pytest.raises(ValueError, match="proj_size=2"):
            rnncore.onnx.export(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


# ---- rnncore.torch.LSTM ---------------------------------------------------------------------------------
@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
def test_torch_module_initialises_and_loads_as_torch(backend, peephole):
    torch.manual_seed(11)
    want = torch.nn.LSTM(I, H, 2, bidirectional=True, proj_size=P)
    torch.manual_seed(11)
    got = rt.LSTM(I, H, 2, bidirectional=True, proj_size=P, peephole=peephole, backend=backend)
    names = [n for n, _ in got.named_parameters() if not n.startswith("weight_ch")]
    assert names == [n for n, _ in want.named_parameters()]
    if not peephole:  # same registration order: the same draws
        for (_, a), (_, b) in zip(got.named_parameters(), want.named_parameters()):
            assert torch.equal(a, b)
    assert "proj_size=2" in repr(got)
    want.load_state_dict({k: v for k, v in got.state_dict().items() if not k.startswith("weight_ch")})


@pytest.mark.parametrize("case", range(6))
def test_torch_module_matches_torch_lstm(backend, dtype, case):
    rng = np.random.default_rng(500 + case)
    Tc, Bc, Ic, Hc, Pc, opts, lengths, _ = random_config(rng, case)
    opts.update(num_layers=1 + case % 2, bidirectional=bool(case // 2 % 2))
    tdt = TORCH_DTYPE[dtype]
    want = torch.nn.LSTM(Ic, Hc, proj_size=Pc, dtype=tdt, **opts)
    got = rt.LSTM(Ic, Hc, proj_size=Pc, dtype=tdt, backend=backend, **opts)
    got.load_state_dict(want.state_dict())
    D = 2 if opts["bidirectional"] else 1
    x = torch.tensor(rng.standard_normal((Bc, Tc, Ic) if opts["batch_first"] else (Tc, Bc, Ic)), dtype=tdt)
    hx = (torch.tensor(rng.standard_normal((opts["num_layers"] * D, Bc, Pc)), dtype=tdt),
          torch.tensor(rng.standard_normal((opts["num_layers"] * D, Bc, Hc)), dtype=tdt))
    results = []
    for module in (want, got):
        module.zero_grad()
        xs = x.clone().requires_grad_()
        hs = tuple(s.clone().requires_grad_() for s in hx)
        inp = xs if lengths is None else pack_padded_sequence(xs, torch.tensor(lengths), opts["batch_first"],
                                                              enforce_sorted=False)
        y, (h, c) = module(inp, hs)
        if lengths is not None:
            y = pad_packed_sequence(y, opts["batch_first"], total_length=Tc)[0]
        gen = torch.Generator().manual_seed(case)
        loss = sum((t * torch.randn(t.shape, generator=gen, dtype=tdt)).sum() for t in (y, h, c))
        loss.backward()
        results.append([y, h, c, xs.grad, *(s.grad for s in hs), *(p.grad for p in module.parameters())])
    for i, (a, b) in enumerate(zip(*results)):
        record(dtype, assert_close(b.detach().numpy(), a.detach().numpy(), TOL[dtype], f"output {i}"))


def test_torch_module_gradcheck(backend):
    module = rt.LSTM(3, 4, 2, bidirectional=True, proj_size=2, dtype=torch.float64, backend=backend)
    names = [n for n, _ in module.named_parameters()]
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]

    def f(x, h0, c0, *ps):
        y, (h, c) = torch.func.functional_call(module, dict(zip(names, ps)), (x, (h0, c0)))
        return y, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, *params))
    xs = torch.randn(3, 3, dtype=torch.float64)  # unbatched
    y, (h, c) = module(xs)
    assert y.shape == (3, 4) and h.shape == (4, 2) and c.shape == (4, 4)
    assert torch.equal(copy.deepcopy(module)(xs)[0], y)  # the copy keeps the projected kernels

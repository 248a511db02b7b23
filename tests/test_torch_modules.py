"""rnncore.torch: the modules are torch.nn.RNN/LSTM/GRU (and the cells) on rnncore's kernels.

Same initial weights under the same seed; state dicts load both ways; with the same
weights the same outputs, final states and gradients (input, initial states, every
parameter by name) as torch.nn, packed sequences included, in float64 and float32;
torch.autograd.gradcheck in float64 on every module and option; a training script
that changes only its import trains to the same losses; torch.compile runs; bad
arguments raise errors that name them."""

import numpy as np
import pytest

import rnncore
from rnn_testing import WORST_VS_TORCH, rel_err

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnncore.torch")
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence  # noqa: E402

F64, F32 = torch.float64, torch.float32
# relative error, max |a - b| / max |b| per array; float32 sequences up to 7 steps and 3 layers
TOL = {F64: 1e-10, F32: 2e-5}
OURS = {"rnn": rt.RNN, "lstm": rt.LSTM, "gru": rt.GRU}
THEIRS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
OUR_CELLS = {"rnn": rt.RNNCell, "lstm": rt.LSTMCell, "gru": rt.GRUCell}
THEIR_CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}
NUMPY_LAYERS = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU}
NUMPY_CELLS = {"rnn": rnncore.RNNCell, "lstm": rnncore.LSTMCell, "gru": rnncore.GRUCell}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch's own operations on one thread: on a loaded 2-core machine its second OpenMP
    thread waits for a time slice at every parallel region (nothing here is timed)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def check(name, actual, expected, dtype):
    assert actual is not None, f"{name}: no gradient"
    err = rel_err(actual.detach().numpy(), expected.detach().numpy())
    key = f"rnncore.torch vs torch.nn {str(dtype).replace('torch.', '')}"
    WORST_VS_TORCH[key] = max(WORST_VS_TORCH.get(key, 0.0), err)
    assert err <= TOL[dtype], f"{name}: relative error {err:.3g} > {TOL[dtype]:g}"


def twins(kind, seed, dtype, **opts):
    """(ours, theirs) built under the same seed: they must start with the same weights."""
    torch.manual_seed(seed)
    ours = OURS[kind](dtype=dtype, **opts)
    torch.manual_seed(seed)
    theirs = THEIRS[kind](dtype=dtype, **opts)
    return ours, theirs


# ---- construction, parameters, state dicts ------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_same_parameters_and_initial_values_as_torch(kind):
    opts = dict(input_size=5, hidden_size=3, num_layers=2, bidirectional=True)
    for bias in (True, False):
        ours, theirs = twins(kind, 7, F32, bias=bias, **opts)
        a, b = dict(ours.named_parameters()), dict(theirs.named_parameters())
        assert list(a) == list(b)
        for name in b:
            assert isinstance(a[name], torch.nn.Parameter) and a[name].shape == b[name].shape, name
            assert torch.equal(a[name], b[name]), name
    torch.manual_seed(3)
    ours_cell = OUR_CELLS[kind](4, 6)
    torch.manual_seed(3)
    their_cell = THEIR_CELLS[kind](4, 6)
    for (n1, p1), (n2, p2) in zip(ours_cell.named_parameters(), their_cell.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2), n1


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_state_dict_loads_both_ways(kind):
    opts = dict(input_size=4, hidden_size=3, num_layers=2, bidirectional=True, dtype=F64)
    ours, theirs = OURS[kind](**opts), THEIRS[kind](**opts)
    ours.load_state_dict(theirs.state_dict())
    for name, p in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], p), name
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(1.0)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2, 4, dtype=F64)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], rtol=1e-12, atol=1e-12)
    # and from rnncore's NumPy layers (the same names and shapes)
    layer = NUMPY_LAYERS[kind](4, 3, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    ours.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    np.testing.assert_allclose(ours(x)[0].detach().numpy(), layer.forward(x.numpy())[0], rtol=1e-12, atol=1e-13)


def test_copies_and_pickles(tmp_path):
    """copy.deepcopy and torch.save/torch.load of whole modules (best-model snapshots, EMA)."""
    import copy
    model = torch.nn.Sequential(rt.GRU(3, 4, batch_first=True, reset_after=False, backend="reference"))
    cell = rt.LSTMCell(3, 4, peephole=True)
    x = torch.randn(2, 5, 3)
    for m, inp in ((model, x), (cell, x[:, 0])):
        twin = copy.deepcopy(m)
        torch.save(m, tmp_path / "m.pt")
        loaded = torch.load(tmp_path / "m.pt", weights_only=False)
        for other in (twin, loaded):
            a, b = m(inp), other(inp)
            a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
            assert torch.equal(a, b)
    assert loaded.backend == "native" and twin.backend == "native"
    assert copy.deepcopy(model)[0].backend == "reference"


def test_repr_and_options_beyond_torch():
    assert "peephole=True" in repr(rt.LSTM(3, 4, peephole=True))
    assert "reset_after=False" in repr(rt.GRU(3, 4, reset_after=False))
    assert "nonlinearity='sigmoid'" in repr(rt.RNN(3, 4, nonlinearity="sigmoid"))
    assert "backend='reference'" in repr(rt.LSTMCell(3, 4, backend="reference"))
    names = [n for n, _ in rt.LSTM(3, 4, num_layers=2, peephole=True).named_parameters()]
    assert "weight_ch_l0" in names and "weight_ch_l1" in names
    assert rt.LSTMCell(3, 4, peephole=True).weight_ch.shape == (12,)
    lstm = rt.LSTM(3, 4, num_layers=2)
    lstm.flatten_parameters()  # code written for cuDNN calls it
    assert [len(w) for w in lstm.all_weights] == [4, 4]


# ---- the same results and gradients as torch.nn ----------------------------------------------------
def random_case(rng, kind):
    opts = dict(input_size=int(rng.integers(1, 7)), hidden_size=int(rng.integers(1, 6)),
                num_layers=int(rng.integers(1, 4)), bias=bool(rng.random() < 0.8),
                batch_first=bool(rng.random() < 0.4), bidirectional=bool(rng.random() < 0.5))
    if kind == "rnn":
        opts["nonlinearity"] = str(rng.choice(["tanh", "relu"]))
    T, B = int(rng.integers(1, 8)), int(rng.integers(1, 5))
    mode = str(rng.choice(["dense", "packed", "packed_sorted", "lengths", "unbatched"]))
    return opts, T, B, mode, bool(rng.random() < 0.6)


def run_both(ours, theirs, kind, opts, T, B, mode, with_state, rng, dtype):
    """Forward and backward of a random linear function of every output in both; the
    results by name."""
    L, D, H, I = opts["num_layers"], 2 if opts["bidirectional"] else 1, opts["hidden_size"], opts["input_size"]
    bf = opts["batch_first"]
    unbatched = mode == "unbatched"
    x_shape = ((T, I) if unbatched else (B, T, I) if bf else (T, B, I))
    x0 = torch.from_numpy(rng.standard_normal(x_shape)).to(dtype)
    s_shape = (L * D, H) if unbatched else (L * D, B, H)
    k = 2 if kind == "lstm" else 1
    s0 = [torch.from_numpy(rng.standard_normal(s_shape)).to(dtype) for _ in range(k)]
    lengths = None
    if mode in ("packed", "packed_sorted", "lengths"):
        lengths = rng.integers(1, T + 1, size=B)
        lengths[rng.integers(B)] = T
        if mode == "packed_sorted":
            lengths = -np.sort(-lengths)
    results = []
    weights = None
    for module in (ours, theirs):
        x = x0.clone().requires_grad_()
        states = [s.clone().requires_grad_() for s in s0] if with_state else None
        hx = None if states is None else (tuple(states) if k == 2 else states[0])
        inp = x
        if mode in ("packed", "packed_sorted") or (mode == "lengths" and module is theirs):
            inp = pack_padded_sequence(x, torch.from_numpy(lengths), batch_first=bf,
                                       enforce_sorted=mode == "packed_sorted")
        if mode == "lengths" and module is ours:
            y, fin = module(inp, hx, lengths=torch.from_numpy(lengths))
        else:
            y, fin = module(inp, hx)
        if isinstance(y, PackedSequence):
            assert isinstance(inp, PackedSequence)
            if mode == "lengths":
                y, _ = pad_packed_sequence(y, batch_first=bf, total_length=T)
            else:
                assert torch.equal(y.batch_sizes, inp.batch_sizes)
                y = y.data
        fin = list(fin) if k == 2 else [fin]
        if weights is None:
            weights = [torch.from_numpy(rng.standard_normal(tuple(t.shape))).to(dtype) for t in [y] + fin]
        loss = sum((t * w).sum() for t, w in zip([y] + fin, weights))
        loss.backward()
        out = {"y": y, "x.grad": x.grad}
        out.update({f"final[{i}]": f for i, f in enumerate(fin)})
        if states is not None:
            out.update({f"hx[{i}].grad": s.grad for i, s in enumerate(states)})
        out.update({f"{n}.grad": p.grad for n, p in module.named_parameters()})
        results.append(out)
    return results


@pytest.mark.parametrize("dtype", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("case", range(10))
def test_matches_torch(kind, dtype, case):
    rng = np.random.default_rng(1000 * case + len(kind) + (dtype == F32))
    opts, T, B, mode, with_state = random_case(rng, kind)
    if case == 0:  # the degenerate corner: one step, one sequence, one unit
        opts.update(input_size=1, hidden_size=1, num_layers=1)
        T, B = 1, 1
    ours, theirs = twins(kind, case, dtype, **opts)
    mine, ref = run_both(ours, theirs, kind, opts, T, B, mode, with_state, rng, dtype)
    assert set(mine) == set(ref)
    for name in ref:
        check(f"{kind} {opts} T={T} B={B} {mode}: {name}", mine[name], ref[name], dtype)


@pytest.mark.parametrize("dtype", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cells_match_torch(kind, dtype):
    rng = np.random.default_rng(len(kind))
    for bias, batched, with_state in ((True, True, True), (False, True, False), (True, False, True)):
        opts = dict(bias=bias) | ({"nonlinearity": "relu"} if kind == "rnn" and not bias else {})
        torch.manual_seed(5)
        ours = OUR_CELLS[kind](5, 3, dtype=dtype, **opts)
        torch.manual_seed(5)
        theirs = THEIR_CELLS[kind](5, 3, dtype=dtype, **opts)
        T, B = 6, 4
        xs0 = torch.from_numpy(rng.standard_normal((T, B, 5) if batched else (T, 5))).to(dtype)
        s_shape = (B, 3) if batched else (3,)
        s00 = [torch.from_numpy(rng.standard_normal(s_shape)).to(dtype) for _ in range(2 if kind == "lstm" else 1)]
        wts = torch.from_numpy(rng.standard_normal((T,) + s_shape)).to(dtype)
        out = []
        for cell in (ours, theirs):
            xs = xs0.clone().requires_grad_()
            s0 = [s.clone().requires_grad_() for s in s00]
            state = (tuple(s0) if kind == "lstm" else s0[0]) if with_state else None
            loss = 0
            for t in range(T):  # unrolled: backpropagation through time by autograd
                state = cell(xs[t], state)
                h = state[0] if kind == "lstm" else state
                loss = loss + (h * wts[t]).sum() + (state[1].sum() if kind == "lstm" else 0)
            loss.backward()
            r = {"h_T": h, "xs.grad": xs.grad}
            if with_state:
                r.update({f"hx[{i}].grad": s.grad for i, s in enumerate(s0)})
            r.update({f"{n}.grad": p.grad for n, p in cell.named_parameters()})
            out.append(r)
        assert set(out[0]) == set(out[1])
        for name in out[1]:
            check(f"{kind} cell {opts} batched={batched}: {name}", out[0][name], out[1][name], dtype)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_dropout_masks_are_torchs(kind):
    """Between layers, in training mode: the same masks as torch.nn under the same seed
    (the dropout is torch's own, on the same tensors)."""
    ours, theirs = twins(kind, 2, F64, input_size=3, hidden_size=4, num_layers=3, dropout=0.4)
    x = torch.randn(6, 2, 3, dtype=F64)
    torch.manual_seed(9)
    a = ours(x)[0]
    torch.manual_seed(9)
    b = theirs(x)[0]
    check(f"{kind} dropout", a, b, F64)
    ours.eval()
    theirs.eval()
    check(f"{kind} eval", ours(x)[0], theirs(x)[0], F64)
    assert not torch.equal(ours(x)[0], a)


# ---- options torch.nn does not have: against rnncore's NumPy layers ---------------------------------
BEYOND = [("lstm", dict(peephole=True)), ("gru", dict(reset_after=False)), ("rnn", dict(nonlinearity="sigmoid"))]


@pytest.mark.parametrize("kind,option", BEYOND, ids=["peephole", "reset_before", "sigmoid"])
@pytest.mark.parametrize("dtype", [F64, F32], ids=["f64", "f32"])
def test_options_beyond_torch_match_rnncore_layers(kind, option, dtype):
    npdt = np.float64 if dtype == F64 else np.float32
    rng = np.random.default_rng(4)
    T, B, I, H = 5, 3, 4, 3
    ours = OURS[kind](I, H, num_layers=2, bidirectional=True, dtype=dtype, **option)
    layer = NUMPY_LAYERS[kind](I, H, num_layers=2, bidirectional=True, dtype=npdt, **option)
    layer.load_state_dict({k: v.detach().numpy() for k, v in ours.state_dict().items()})
    x = rng.standard_normal((T, B, I)).astype(npdt)
    lengths = np.array([5, 0, 3])
    k = 2 if kind == "lstm" else 1
    s0 = [rng.standard_normal((4, B, H)).astype(npdt) for _ in range(k)]
    wy = rng.standard_normal((T, B, 2 * H)).astype(npdt)
    ws = [rng.standard_normal((4, B, H)).astype(npdt) for _ in range(k)]
    y, fin = layer.forward(x, tuple(s0) if k == 2 else s0[0], lengths)
    dx, ds0 = layer.backward(wy, tuple(ws) if k == 2 else ws[0])
    xt = torch.from_numpy(x).requires_grad_()
    st = [torch.from_numpy(s).requires_grad_() for s in s0]
    yt, fint = ours(xt, tuple(st) if k == 2 else st[0], lengths=lengths)
    fint = list(fint) if k == 2 else [fint]
    (sum((a * torch.from_numpy(w)).sum() for a, w in zip([yt] + fint, [wy] + ws))).backward()
    fin, ds0 = (list(fin), list(ds0)) if k == 2 else ([fin], [ds0])
    pairs = [("y", yt, y), ("x.grad", xt.grad, dx)] + [(f"final[{i}]", fint[i], fin[i]) for i in range(k)]
    pairs += [(f"hx[{i}].grad", st[i].grad, ds0[i]) for i in range(k)]
    pairs += [(f"{n}.grad", p.grad, layer.grads[n]) for n, p in ours.named_parameters()]
    for name, a, b in pairs:
        err = rel_err(a.detach().numpy(), b)
        assert err <= TOL[dtype], f"{kind} {option}: {name}: relative error {err:.3g}"


@pytest.mark.parametrize("kind,option", BEYOND, ids=["peephole", "reset_before", "sigmoid"])
def test_cell_options_beyond_torch_match_rnncore_cells(kind, option):
    rng = np.random.default_rng(5)
    ours = OUR_CELLS[kind](4, 3, dtype=F64, **option)
    cell = NUMPY_CELLS[kind](4, 3, dtype=np.float64, **option)
    cell.load_state_dict({k: v.detach().numpy() for k, v in ours.state_dict().items()})
    x, h, c = (rng.standard_normal(s) for s in ((2, 4), (2, 3), (2, 3)))
    dh, dc = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    lstm = kind == "lstm"
    new = cell.forward(x, (h, c) if lstm else h)
    dx, dstate = cell.backward((dh, dc) if lstm else dh)
    xt, ht, ct = (torch.from_numpy(a).requires_grad_() for a in (x, h, c))
    newt = ours(xt, (ht, ct) if lstm else ht)
    if lstm:
        ((newt[0] * torch.from_numpy(dh)).sum() + (newt[1] * torch.from_numpy(dc)).sum()).backward()
        pairs = [("h'", newt[0], new[0]), ("c'", newt[1], new[1]), ("h.grad", ht.grad, dstate[0]),
                 ("c.grad", ct.grad, dstate[1])]
    else:
        (newt * torch.from_numpy(dh)).sum().backward()
        pairs = [("h'", newt, new), ("h.grad", ht.grad, dstate)]
    pairs += [("x.grad", xt.grad, dx)] + [(f"{n}.grad", p.grad, cell.grads[n]) for n, p in ours.named_parameters()]
    for name, a, b in pairs:
        assert rel_err(a.detach().numpy(), b) <= TOL[F64], f"{kind} {option}: {name}"


def test_zero_lengths_and_empty_dimensions():
    """lengths of 0 pass the initial state through with zero outputs; T = 0 and B = 0 give
    empty outputs (torch.nn refuses T = 0), and backward runs."""
    lstm = rt.LSTM(3, 2, num_layers=2, bidirectional=True, dtype=F64)
    x = torch.randn(4, 3, 3, dtype=F64)
    h0, c0 = torch.randn(4, 3, 2, dtype=F64), torch.randn(4, 3, 2, dtype=F64)
    y, (h, c) = lstm(x, (h0, c0), lengths=[4, 0, 2])
    assert torch.all(y[:, 1] == 0) and torch.equal(h[:, 1], h0[:, 1]) and torch.equal(c[:, 1], c0[:, 1])
    assert torch.all(y[2:, 2] == 0) and not torch.equal(h[:, 2], h0[:, 2])
    for T, B in ((0, 3), (4, 0)):
        x = torch.randn(T, B, 3, dtype=F64, requires_grad=True)
        h0 = torch.randn(4, B, 2, dtype=F64, requires_grad=True)
        y, (h, c) = lstm(x, (h0, torch.zeros(4, B, 2, dtype=F64)))
        assert y.shape == (T, B, 4) and h.shape == (4, B, 2)
        (y.sum() + h.sum()).backward()
        assert x.grad.shape == x.shape
        if T == 0:
            assert torch.equal(h, h0) and torch.equal(h0.grad, torch.ones_like(h0))


# ---- autograd: accumulation, memory sharing, version checks, what cannot be differentiated -------
def test_gradients_accumulate_in_grad_like_any_parameter():
    lstm = rt.LSTM(3, 4, num_layers=2, dtype=F64)
    x = torch.randn(5, 2, 3, dtype=F64)
    lstm(x)[0].sum().backward()
    once = {n: p.grad.clone() for n, p in lstm.named_parameters()}
    lstm(x)[0].sum().backward()
    for n, p in lstm.named_parameters():
        assert torch.equal(p.grad, 2 * once[n]), n
    # torch.autograd.grad gives them without touching .grad; frozen weights get none
    lstm.zero_grad()
    lstm.weight_hh_l1.requires_grad_(False)
    grads = torch.autograd.grad(lstm(x)[0].sum(), [lstm.weight_ih_l0, lstm.bias_hh_l1])
    assert torch.equal(grads[0], once["weight_ih_l0"]) and torch.equal(grads[1], once["bias_hh_l1"])
    assert all(p.grad is None for p in lstm.parameters())


class Spy:
    """Stands in for a backend: records the arrays the kernels receive and return."""

    def __init__(self, ops):
        self.ops, self.calls = ops, []

    def __getattr__(self, name):
        fn = getattr(self.ops, name)

        def call(*args, **kwargs):
            result = fn(*args, **kwargs)
            self.calls.append((name, args, result))
            return result
        return call


def test_tensors_and_arrays_share_memory():
    lstm = rt.LSTM(3, 4)
    lstm._kernels.ops = spy = Spy(lstm._kernels.ops)
    x = torch.randn(6, 2, 3, requires_grad=True)
    y, (h, c) = lstm(x)
    name, args, result = spy.calls[0]
    assert name == "lstm_forward"
    assert args[0].ctypes.data == x.data_ptr()  # the input, not a copy
    assert args[3].ctypes.data == lstm.weight_ih_l0.data_ptr() and args[4].ctypes.data == lstm.weight_hh_l0.data_ptr()
    assert y.data_ptr() == result[0].ctypes.data  # the kernel's output array, not a copy
    y.sum().backward()
    name, args, result = spy.calls[1]
    assert name == "lstm_backward" and args[3].ctypes.data == x.data_ptr()
    assert x.grad.data_ptr() == result[0].ctypes.data
    assert torch.equal(lstm.weight_hh_l0.grad, torch.from_numpy(args[13]))  # what the kernel added into


def test_modifying_saved_tensors_in_place_is_an_error_not_a_wrong_gradient():
    lstm = rt.LSTM(3, 4)
    x = torch.randn(5, 2, 3, requires_grad=True)
    y, _ = lstm(x)
    with torch.no_grad():
        lstm.weight_hh_l0.mul_(2)  # e.g. an optimizer step between forward and backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    cell = rt.RNNCell(3, 4)
    h = cell(torch.randn(2, 3, requires_grad=True))
    h2 = cell(torch.randn(2, 3), h)
    h.mul_(0.5)  # the state the second step read (and the first step's saved output)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        h2.sum().backward()


def test_no_grad_inference_and_retain_graph():
    gru = rt.GRU(3, 4, dtype=F64)
    x = torch.randn(5, 2, 3, dtype=F64)
    with torch.no_grad():
        y0, _ = gru(x)
    assert not y0.requires_grad
    xg = x.clone().requires_grad_()
    y, h = gru(xg)
    torch.testing.assert_close(y, y0, rtol=0, atol=0)
    y.sum().backward(retain_graph=True)
    first = xg.grad.clone()
    gru(xg)  # another forward in between
    y.sum().backward()
    torch.testing.assert_close(xg.grad, 2 * first, rtol=0, atol=0)


def test_double_backward_is_an_error():
    lstm = rt.LSTM(3, 4, dtype=F64)
    x = torch.randn(5, 2, 3, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(lstm(x)[0].square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        g.sum().backward()


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch
def test_forward_mode_is_an_error_naming_the_argument():
    import torch.autograd.forward_ad as fwAD
    lstm = rt.LSTM(3, 4, dtype=F64)
    x = torch.randn(5, 2, 3, dtype=F64)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, torch.ones_like(x))
        with pytest.raises(TypeError, match="^input: forward-mode"):
            lstm(dual)
        h0 = fwAD.make_dual(torch.zeros(1, 2, 4, dtype=F64), torch.ones(1, 2, 4, dtype=F64))
        with pytest.raises(TypeError, match=r"^hx\[0\]: forward-mode"):
            lstm(x, (h0, torch.zeros(1, 2, 4, dtype=F64)))


# ---- bad arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((0, 4), {}, ValueError, "^input_size"),
    ((3, 2.5), {}, TypeError, "^hidden_size"),
    ((3, 4, 0), {}, ValueError, "^num_layers"),
    ((3, 4), {"dropout": 1.5}, ValueError, "^dropout"),
    ((3, 4), {"bias": "yes"}, TypeError, "^bias"),
    ((3, 4), {"bidirectional": 1}, TypeError, "^bidirectional"),
    ((3, 4), {"proj_size": 4}, ValueError, "^proj_size"),
    ((3, 4), {"proj_size": -1}, ValueError, "^proj_size"),
    ((3, 4), {"proj_size": 2.0}, TypeError, "^proj_size"),
    ((3, 4), {"proj_size": True}, TypeError, "^proj_size"),
    ((3, 4), {"dtype": torch.float16}, TypeError, "^dtype"),
    ((3, 4), {"device": "cuda"}, ValueError, "^device"),
    ((3, 4), {"backend": "fast"}, ValueError, "^backend"),
])
def test_bad_constructor_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rt.LSTM(*args, **kwargs)


def test_bad_constructor_arguments_of_the_others():
    with pytest.raises(ValueError, match="^nonlinearity"):
        rt.RNN(3, 4, nonlinearity="softplus")
    with pytest.raises(ValueError, match="^nonlinearity"):
        rt.RNNCell(3, 4, nonlinearity="gelu")
    with pytest.raises(TypeError, match="^reset_after"):
        rt.GRU(3, 4, reset_after=None)
    with pytest.raises(TypeError, match="^peephole"):
        rt.LSTMCell(3, 4, peephole="no")
    with pytest.raises(ValueError, match="^input_size"):
        rt.GRUCell(-1, 4)


def test_bad_forward_arguments():
    lstm = rt.LSTM(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    h = torch.zeros(2, 2, 4)
    bad = [
        (lambda: lstm(x.double()), TypeError, "^input: expected torch.float32"),
        (lambda: lstm(x.half()), TypeError, "^input"),
        (lambda: lstm(x.long()), TypeError, "^input"),
        (lambda: lstm(x.numpy()), TypeError, "^input: expected a torch.Tensor"),
        (lambda: lstm(x.to("meta")), ValueError, "^input: rnncore runs on the CPU"),
        (lambda: lstm(x.to_sparse()), TypeError, "^input"),
        (lambda: lstm(torch.randn(5, 2, 4)), ValueError, "^input: expected 3 features"),
        (lambda: lstm(torch.randn(5)), ValueError, "^input: expected a 3-D"),
        (lambda: lstm(x, h), TypeError, "^hx: expected a tuple"),
        (lambda: lstm(x, (h, h.double())), TypeError, r"^hx\[1\]"),
        (lambda: lstm(x, (h[:, :1], h)), ValueError, r"^hx\[0\]: expected shape \(2, 2, 4\)"),
        (lambda: lstm(x, lengths=[5, 6]), ValueError, "^lengths: every length must be in"),
        (lambda: lstm(x, lengths=[5]), ValueError, "^lengths: expected 2 lengths"),
        (lambda: lstm(x, lengths=torch.tensor([5.0, 1.0])), TypeError, "^lengths: expected integers"),
        (lambda: lstm(x, lengths="5, 5"), TypeError, "^lengths"),
        (lambda: lstm(x[:, 0], lengths=[5]), ValueError, "^lengths: only for batched"),
        (lambda: lstm(pack_padded_sequence(x, torch.tensor([5, 3])), lengths=[5, 3]), ValueError, "^lengths"),
        (lambda: lstm(pack_padded_sequence(x.double(), torch.tensor([5, 3]))), TypeError, "^input.data"),
    ]
    for fn, exc, match in bad:
        with pytest.raises(exc, match=match):
            fn()
    half = rt.GRU(3, 4).half()
    with pytest.raises(TypeError, match="^weight_ih_l0: rnncore computes in"):
        half(x.half())
    gru = rt.GRU(3, 4)
    gru.bias_hh_l0.data = gru.bias_hh_l0.data.double()
    with pytest.raises(TypeError, match="^bias_hh_l0: torch.float64, but the module's other parameters"):
        gru(x)
    meta = rt.RNN(3, 4).to("meta")
    with pytest.raises(ValueError, match="^weight_ih_l0: rnncore runs on the CPU"):
        meta(x)
    cell = rt.LSTMCell(3, 4)
    with pytest.raises(TypeError, match="^hx: expected a tuple"):
        cell(x[0], h[0])
    with pytest.raises(ValueError, match=r"^hx\[1\]: expected shape \(2, 4\)"):
        cell(x[0], (h[0], h[0, :1]))
    with pytest.raises(ValueError, match="^input: expected a 2-D"):
        cell(x)
    with pytest.raises(TypeError, match="^input: expected torch.float32"):
        rt.RNNCell(3, 4)(x[0].double())


def test_converted_modules_follow_their_parameters():
    """module.double() / .float() convert the parameters; the module computes in their dtype."""
    lstm = rt.LSTM(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    y32 = lstm(x)[0]
    lstm.double()
    y64 = lstm(x.double())[0]
    assert y64.dtype == F64
    torch.testing.assert_close(y64.float(), y32, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="^input: expected torch.float64"):
        lstm(x)


# ---- gradcheck on every module and option --------------------------------------------------------------
GRADCHECK = dict(eps=1e-6, atol=1e-8, rtol=1e-6)
LAYER_CASES = [
    ("rnn", dict(nonlinearity="tanh", num_layers=2, bidirectional=True), "dense"),
    ("rnn", dict(nonlinearity="relu", batch_first=True), "lengths"),
    ("rnn", dict(nonlinearity="sigmoid", bias=False, num_layers=2), "packed"),
    ("lstm", dict(num_layers=2, bidirectional=True), "packed"),
    ("lstm", dict(peephole=True, bidirectional=True, batch_first=True), "lengths"),
    ("lstm", dict(peephole=True, bias=False, num_layers=2), "unbatched"),
    ("lstm", dict(num_layers=3, dropout=0.3), "dense"),
    ("lstm", dict(backend="reference", bidirectional=True), "lengths"),
    ("gru", dict(num_layers=2, bidirectional=True, batch_first=True), "packed"),
    ("gru", dict(reset_after=False, bidirectional=True), "lengths"),
    ("gru", dict(reset_after=False, bias=False, num_layers=2, dropout=0.5), "dense"),
    ("gru", dict(backend="reference", reset_after=False), "unbatched"),
]


@pytest.mark.parametrize("kind,opts,mode", LAYER_CASES,
                         ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in o.items())}-{m}" for k, o, m in LAYER_CASES])
def test_gradcheck_layers(kind, opts, mode):
    torch.manual_seed(0)
    module = OURS[kind](3, 2, dtype=F64, **opts)
    names = [n for n, _ in module.named_parameters()]
    L, D = module.num_layers, module.num_directions
    T, B = 4, 3
    bf = module.batch_first
    x = torch.randn((T, 3) if mode == "unbatched" else (B, T, 3) if bf else (T, B, 3), dtype=F64, requires_grad=True)
    k = 2 if kind == "lstm" else 1
    s_shape = (L * D, 2) if mode == "unbatched" else (L * D, B, 2)
    states = [torch.randn(s_shape, dtype=F64, requires_grad=True) for _ in range(k)]
    lengths = torch.tensor([4, 1, 3])

    def f(x, *rest):
        st, ps = rest[:k], rest[k:]
        hx = tuple(st) if k == 2 else st[0]
        inp, kw = x, {}
        if mode == "packed":
            inp = pack_padded_sequence(x, lengths, batch_first=bf, enforce_sorted=False)
        elif mode == "lengths":
            kw["lengths"] = lengths
        torch.manual_seed(1)  # the same dropout masks at every evaluation
        y, fin = torch.func.functional_call(module, dict(zip(names, ps)), (inp, hx), kw)
        y = y.data if isinstance(y, PackedSequence) else y
        return (y,) + (tuple(fin) if k == 2 else (fin,))

    assert torch.autograd.gradcheck(f, (x, *states, *module.parameters()), **GRADCHECK)


CELL_CASES = [
    ("rnn", dict(nonlinearity="tanh"), True), ("rnn", dict(nonlinearity="relu", bias=False), True),
    ("rnn", dict(nonlinearity="sigmoid"), False),
    ("lstm", {}, True), ("lstm", dict(peephole=True), True), ("lstm", dict(peephole=True, bias=False), False),
    ("gru", {}, True), ("gru", dict(reset_after=False), True), ("gru", dict(reset_after=False, bias=False), False),
    ("lstm", dict(backend="reference", peephole=True), True), ("gru", dict(backend="reference"), True),
]


@pytest.mark.parametrize("kind,opts,batched", CELL_CASES,
                         ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in o.items())}-{'batched' if b else 'unbatched'}"
                              for k, o, b in CELL_CASES])
def test_gradcheck_cells(kind, opts, batched):
    torch.manual_seed(0)
    cell = OUR_CELLS[kind](3, 4, dtype=F64, **opts)
    names = [n for n, _ in cell.named_parameters()]
    shape = (2,) if batched else ()
    x = torch.randn(shape + (3,), dtype=F64, requires_grad=True)
    k = 2 if kind == "lstm" else 1
    states = [torch.randn(shape + (4,), dtype=F64, requires_grad=True) for _ in range(k)]

    def f(x, *rest):
        st, ps = rest[:k], rest[k:]
        params = dict(zip(names, ps))
        s = tuple(st) if k == 2 else st[0]
        out = []
        for _ in range(2):  # two steps: the second differentiates through the first's output
            s = torch.func.functional_call(cell, params, (x, s))
            out.extend(s if k == 2 else [s])
        return tuple(out)

    assert torch.autograd.gradcheck(f, (x, *states, *cell.parameters()), **GRADCHECK)


# ---- a training script that swaps its import ----------------------------------------------------------
SCRIPT = """
import torch
{import_line}

torch.manual_seed(0)
V = 11
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, 6)
        self.rnn = {cls}(6, 8, num_layers=2, dropout=0.25, batch_first=True)
        self.head = torch.nn.Linear(8, V)
    def forward(self, x, state=None):
        y, state = self.rnn(self.embed(x), state)
        return self.head(y), state
model = Model().to(DTYPE)
opt = torch.optim.Adam(model.parameters(), lr=0.03)
offsets = torch.randint(0, V, (4, 1), generator=torch.Generator().manual_seed(1))
data = (offsets + 3 * torch.arange(41)) % V  # each token 3 more than the previous, mod V
losses, state = [], None
for step in range(16):
    chunk = data[:, (step % 4) * 10:(step % 4) * 10 + 11]
    if step % 4 == 0:
        state = None
    opt.zero_grad()
    logits, state = model(chunk[:, :-1], state)
    state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), chunk[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    losses.append(loss.item())
"""


@pytest.mark.parametrize("dtype", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_training_script_with_swapped_import_trains_to_the_same_losses(cls, dtype):
    runs = []
    for import_line in (f"from torch.nn import {cls}", f"from rnncore.torch import {cls}"):
        scope = {"DTYPE": dtype}
        exec(SCRIPT.format(import_line=import_line, cls=cls), scope)
        assert scope[cls].__module__.startswith("rnncore" if "rnncore" in import_line else "torch")
        runs.append(np.array(scope["losses"]))
    theirs, ours = runs
    assert theirs[-1] < theirs[0] - 0.3  # it learns
    err = np.max(np.abs(ours - theirs) / np.abs(theirs))
    assert err <= (1e-10 if dtype == F64 else 1e-5), f"losses differ by {err:.3g}: {ours} vs {theirs}"


# ---- torch.compile --------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")  # both raised
@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # inside torch's compiler
def test_torch_compile_runs_a_model_with_these_modules():
    """Inductor compiles the embedding and the heads; each rnncore module is a graph break
    (its kernels are opaque to the compiler). Same outputs and gradients as eager."""
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 6)
            self.lstm = rt.LSTM(6, 8, bidirectional=True)
            self.cell = rt.GRUCell(16, 5)
            self.head = torch.nn.Linear(5, 10)

        def forward(self, x):
            y, _ = self.lstm(torch.tanh(self.embed(x)))
            return self.head(self.cell(y[-1]))

    torch.manual_seed(0)
    model = Model().double()
    x = torch.randint(0, 10, (7, 3))
    eager = model(x)
    eager.square().sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model)
    out = compiled(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, eager, rtol=1e-12, atol=1e-12)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[n], rtol=1e-12, atol=1e-12, msg=n)

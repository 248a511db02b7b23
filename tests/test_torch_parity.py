"""Same weights, same inputs: rnncore matches torch.nn.RNN/LSTM/GRU (and the cells) in
outputs, final states and every gradient, over random shapes and options, with
variable lengths through packed sequences on the torch side."""

import numpy as np
import pytest

from rnn_testing import (CELLS, TOL, WORST_VS_TORCH, assert_close, make_layer, n_states_of, pack,
                         random_problem, unpack)

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

TORCH_LAYERS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
TORCH_CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}
TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def record(dtype, err):
    key = str(np.dtype(dtype))
    WORST_VS_TORCH[key] = max(WORST_VS_TORCH.get(key, 0.0), err)


def torch_twin(layer, kind):
    opts = dict(num_layers=layer.num_layers, bias=layer.bias, batch_first=layer.batch_first,
                bidirectional=layer.bidirectional, dtype=TORCH_DTYPE[layer.dtype])
    if kind == "rnn":
        opts["nonlinearity"] = layer.nonlinearity
    twin = TORCH_LAYERS[kind](layer.input_size, layer.hidden_size, **opts)
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.state_dict().items()})
    return twin


def torch_run(twin, layer, x, states, lengths, wy, wstates):
    """Forward and backward of sum(y*wy) + sum(final*wstate) in torch; results by name."""
    T = x.shape[1] if layer.batch_first else x.shape[0]
    xt = torch.tensor(x, requires_grad=True)
    st = None
    if states is not None:
        st = [torch.tensor(s, requires_grad=True) for s in states]
    inp = xt
    if lengths is not None:
        inp = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=layer.batch_first,
                                   enforce_sorted=False)
    y, fin = twin(inp, None if st is None else (tuple(st) if len(st) == 2 else st[0]))
    if lengths is not None:
        y, _ = pad_packed_sequence(y, batch_first=layer.batch_first, total_length=T)
    fin = list(fin) if isinstance(fin, tuple) else [fin]
    loss = (y * torch.tensor(wy)).sum() + sum((f * torch.tensor(w)).sum() for f, w in zip(fin, wstates))
    loss.backward()
    out = {"y": y.detach().numpy(), "x.grad": xt.grad.numpy()}
    for i, f in enumerate(fin):
        out[f"final{i}"] = f.detach().numpy()
    if st is not None:
        for i, s in enumerate(st):
            out[f"state{i}.grad"] = s.grad.numpy()
    for name, p in twin.named_parameters():
        out[name] = p.grad.numpy()
    return out


def ours_run(layer, x, states, lengths, wy, wstates):
    layer.zero_grad()
    y, fin = layer.forward(x, pack(layer, states), lengths)
    out = {"y": y}
    for i, f in enumerate(unpack(layer, fin)):
        out[f"final{i}"] = f
    dx, dst = layer.backward(wy, pack(layer, wstates))
    out["x.grad"] = dx
    if states is not None:
        for i, d in enumerate(unpack(layer, dst)):
            out[f"state{i}.grad"] = d
    out.update(layer.grads)
    return out


def random_config(rng, kind, case):
    if case == 0:  # the degenerate corner: one step, one sequence, one unit
        T, B, I, H = 1, 1, 1, 1
    else:
        T, B, I, H = (int(v) for v in (rng.integers(1, 8), rng.integers(1, 6), rng.integers(1, 7),
                                       rng.integers(1, 7)))
    opts = dict(num_layers=int(rng.integers(1, 4)), bidirectional=bool(rng.integers(2)),
                batch_first=bool(rng.integers(2)), bias=bool(rng.integers(4)))
    if kind == "rnn":
        opts["nonlinearity"] = ["tanh", "relu"][int(rng.integers(2))]
    lengths = rng.integers(1, T + 1, size=B).tolist() if rng.integers(2) else None
    return T, B, I, H, opts, lengths, bool(rng.integers(3))


@pytest.mark.parametrize("case", range(12))
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_layer_matches_torch(backend, dtype, kind, case):
    rng = np.random.default_rng(1000 * case + len(kind))
    T, B, I, H, opts, lengths, with_state = random_config(rng, kind, case)
    layer = make_layer(kind, I, H, dtype=dtype, backend=backend, seed=case, **opts)
    x, states, wy, ws = random_problem(layer, T, B, rng, with_state=with_state)
    want = torch_run(torch_twin(layer, kind), layer, x, states, lengths, wy, ws)
    got = ours_run(layer, x, states, lengths, wy, ws)
    assert set(got) == set(want)
    for name in want:
        record(dtype, assert_close(got[name], want[name], TOL[dtype], name))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_torch(backend, dtype, kind, bias):
    rng = np.random.default_rng(5)
    B, I, H = 3, 4, 5
    cell = CELLS[kind](I, H, bias, dtype=dtype, backend=backend, seed=1)
    twin = TORCH_CELLS[kind](I, H, bias, dtype=TORCH_DTYPE[dtype])
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in cell.state_dict().items()})
    k = n_states_of(cell)
    x = rng.standard_normal((B, I)).astype(dtype)
    st = [rng.standard_normal((B, H)).astype(dtype) for _ in range(k)]
    w = [rng.standard_normal((B, H)).astype(dtype) for _ in range(k)]

    xt = torch.tensor(x, requires_grad=True)
    stt = [torch.tensor(s, requires_grad=True) for s in st]
    out = twin(xt, tuple(stt) if k == 2 else stt[0])
    out = list(out) if k == 2 else [out]
    sum((o * torch.tensor(wi)).sum() for o, wi in zip(out, w)).backward()

    ours = cell.forward(x, tuple(st) if k == 2 else st[0])
    ours = list(ours) if k == 2 else [ours]
    dx, dst = cell.backward(tuple(w) if k == 2 else w[0])
    dst = list(dst) if k == 2 else [dst]
    tol = TOL[dtype]
    for o, ot in zip(ours, out):
        record(dtype, assert_close(o, ot.detach().numpy(), tol, "state"))
    record(dtype, assert_close(dx, xt.grad.numpy(), tol, "x.grad"))
    for d, s in zip(dst, stt):
        record(dtype, assert_close(d, s.grad.numpy(), tol, "state.grad"))
    for name, p in twin.named_parameters():
        record(dtype, assert_close(cell.grads[name], p.grad.numpy(), tol, name))


# IndRNN has no torch module, but it is torch's Elman RNN with a diagonal recurrent matrix:
# weight_hh = diag(w). The twin carries that matrix; its gradient's diagonal is ours.

def indrnn_twin(layer):
    opts = dict(num_layers=layer.num_layers, bias=layer.bias, batch_first=layer.batch_first,
                bidirectional=layer.bidirectional, dtype=TORCH_DTYPE[layer.dtype], nonlinearity=layer.nonlinearity)
    twin = torch.nn.RNN(layer.input_size, layer.hidden_size, **opts)
    twin.load_state_dict({k: torch.from_numpy(np.diag(v) if k.startswith("weight_hh") else v.copy())
                          for k, v in layer.state_dict().items()})
    return twin


@pytest.mark.parametrize("case", range(8))
def test_indrnn_matches_torch_rnn_with_diagonal_recurrence(backend, dtype, case):
    rng = np.random.default_rng(77 + case)
    T, B, I, H, opts, lengths, with_state = random_config(rng, "rnn", case)
    layer = make_layer("indrnn", I, H, dtype=dtype, backend=backend, seed=case, **opts)
    x, states, wy, ws = random_problem(layer, T, B, rng, with_state=with_state)
    want = torch_run(indrnn_twin(layer), layer, x, states, lengths, wy, ws)
    want = {k: np.diagonal(v).copy() if k.startswith("weight_hh") else v for k, v in want.items()}
    got = ours_run(layer, x, states, lengths, wy, ws)
    assert set(got) == set(want)
    for name in want:
        record(dtype, assert_close(got[name], want[name], TOL[dtype], name))


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_indrnn_cell_matches_torch_rnn_cell_with_diagonal_recurrence(backend, dtype, nonlinearity):
    rng = np.random.default_rng(6)
    B, I, H = 3, 4, 5
    cell = CELLS["indrnn"](I, H, dtype=dtype, backend=backend, seed=2, nonlinearity=nonlinearity)
    twin = torch.nn.RNNCell(I, H, nonlinearity=nonlinearity, dtype=TORCH_DTYPE[dtype])
    twin.load_state_dict({k: torch.from_numpy(np.diag(v) if k == "weight_hh" else v.copy())
                          for k, v in cell.state_dict().items()})
    x, h, w = (rng.standard_normal(s).astype(dtype) for s in ((B, I), (B, H), (B, H)))
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    out = twin(xt, ht)
    (out * torch.tensor(w)).sum().backward()
    ours = cell.forward(x, h)
    dx, dh = cell.backward(w)
    tol = TOL[dtype]
    record(dtype, assert_close(ours, out.detach().numpy(), tol, "state"))
    record(dtype, assert_close(dx, xt.grad.numpy(), tol, "x.grad"))
    record(dtype, assert_close(dh, ht.grad.numpy(), tol, "state.grad"))
    for name, p in twin.named_parameters():
        g = np.diagonal(p.grad.numpy()) if name == "weight_hh" else p.grad.numpy()
        record(dtype, assert_close(cell.grads[name], g, tol, name))

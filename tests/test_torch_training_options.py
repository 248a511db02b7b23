"""rnncore.torch's training options: checkpoint_every (the same outputs and gradients as
the full path, packed sequences and lengths included; gradcheck) and weight_drop (the
masked torch.nn module's results under the same torch seed; off in eval); bad values."""

import copy

import numpy as np
import pytest

from rnn_testing import rel_err

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnncore.torch")
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

OURS = {"rnn": rt.RNN, "lstm": rt.LSTM, "gru": rt.GRU}
THEIRS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _states(kind, LD, B, H, gen, P=None):
    h = torch.randn(LD, B, P or H, dtype=torch.float64, generator=gen, requires_grad=True)
    if kind != "lstm":
        return h, [h]
    c = torch.randn(LD, B, H, dtype=torch.float64, generator=gen, requires_grad=True)
    return (h, c), [h, c]


def _grads(module, inputs, out, weights):
    y, fin = out
    fin = fin if isinstance(fin, tuple) else (fin,)
    loss = (y * weights[0]).sum() + sum((f * w).sum() for f, w in zip(fin, weights[1:]))
    module.zero_grad()
    for t in inputs:
        t.grad = None
    loss.backward()
    return [t.grad.clone() for t in inputs] + [p.grad.clone() for p in module.parameters()]


CHECKPOINT_CASES = [(kind, opts, lengths) for kind in OURS
                    for opts, lengths in [({}, None), ({"bidirectional": True, "num_layers": 2}, [9, 4, 0]),
                                          ({"batch_first": True}, [2, 9, 9])]]
CHECKPOINT_CASES.append(("lstm", {"proj_size": 2, "bidirectional": True, "num_layers": 2}, [9, 4, 0]))


@pytest.mark.parametrize("kind,opts,lengths", CHECKPOINT_CASES)
def test_checkpointed_module_matches_full_path(kind, opts, lengths):
    torch.manual_seed(0)
    full = OURS[kind](3, 4, dtype=torch.float64, **opts)
    ckpt = OURS[kind](3, 4, dtype=torch.float64, checkpoint_every=2, **opts)
    ckpt.load_state_dict(full.state_dict())
    gen = torch.Generator().manual_seed(1)
    T, B = 9, 3
    shape = (B, T, 3) if opts.get("batch_first") else (T, B, 3)
    x = torch.randn(*shape, dtype=torch.float64, generator=gen, requires_grad=True)
    hx, leaves = _states(kind, full.num_layers * full.num_directions, B, 4, gen, opts.get("proj_size"))
    lens = None if lengths is None else torch.tensor(lengths)
    outs = [m(x, hx, lengths=lens) for m in (full, ckpt)]
    weights = [torch.randn_like(outs[0][0])] + [torch.randn_like(s) for s in leaves]
    g_full, g_ckpt = (_grads(m, [x] + leaves, o, weights) for m, o in zip((full, ckpt), outs))
    assert rel_err(outs[1][0].detach().numpy(), outs[0][0].detach().numpy()) <= 1e-13
    for a, b in zip(g_ckpt, g_full):
        assert rel_err(a.numpy(), b.numpy()) <= 1e-12


def test_checkpointed_packed_sequence_and_gradcheck():
    torch.manual_seed(0)
    lstm = rt.LSTM(2, 3, dtype=torch.float64, checkpoint_every=2, bidirectional=True)
    ref = rt.LSTM(2, 3, dtype=torch.float64, bidirectional=True)
    ref.load_state_dict(lstm.state_dict())
    x = torch.randn(7, 3, 2, dtype=torch.float64, requires_grad=True)
    packed = pack_padded_sequence(x, torch.tensor([7, 2, 5]), enforce_sorted=False)
    np.testing.assert_allclose(lstm(packed)[0].data.detach().numpy(), ref(packed)[0].data.detach().numpy(),
                               rtol=0, atol=1e-14)
    h0 = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([7, 2, 5])

    def f(x, h0, c0, *weights):
        y, (h, c) = torch.func.functional_call(lstm, dict(zip(names, weights)), (x, (h0, c0)),
                                               {"lengths": lengths})
        return y, h, c

    names = [n for n, _ in lstm.named_parameters()]
    assert torch.autograd.gradcheck(f, (x, h0, c0, *lstm.parameters()))


@pytest.mark.parametrize("kind,opts", [(kind, {}) for kind in OURS] + [("lstm", {"proj_size": 2})])
def test_weight_drop_is_torch_nn_with_masked_recurrent_weights(kind, opts):
    p = 0.3
    torch.manual_seed(0)
    ours = OURS[kind](3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, weight_drop=p, **opts)
    theirs = THEIRS[kind](3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, **opts)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    torch.manual_seed(7)
    y, _ = ours(x)
    y.sum().backward()
    # the masks drawn after manual_seed(7): one per (layer, direction), in that order
    torch.manual_seed(7)
    masks = {}
    for name, w in theirs.named_parameters():
        if name.startswith("weight_hh"):
            masks[name] = torch.empty_like(w).bernoulli_(1 - p) / (1 - p)
    masked = copy.deepcopy(theirs)
    with torch.no_grad():
        for name, m in masks.items():
            getattr(masked, name).mul_(m)
    y_ref, _ = masked(x)
    y_ref.sum().backward()
    assert rel_err(y.detach().numpy(), y_ref.detach().numpy()) <= 1e-12
    ours_params = dict(ours.named_parameters())
    for name, w in masked.named_parameters():
        want = w.grad * masks[name] if name in masks else w.grad
        assert rel_err(ours_params[name].grad.numpy(), want.numpy()) <= 1e-12, name
    # evaluation: no mask
    ours.eval()
    np.testing.assert_allclose(ours(x)[0].detach().numpy(), theirs(x)[0].detach().numpy(), rtol=0, atol=1e-14)


@pytest.mark.parametrize("kwargs,error", [({"weight_drop": -0.5}, ValueError), ({"weight_drop": 2}, ValueError),
                                          ({"weight_drop": True}, ValueError),
                                          ({"weight_drop": float("nan")}, ValueError),
                                          ({"checkpoint_every": 0}, ValueError),
                                          ({"checkpoint_every": 1.5}, TypeError),
                                          ({"checkpoint_every": False}, TypeError)])
@pytest.mark.parametrize("kind", list(OURS))
def test_bad_training_options(kind, kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        OURS[kind](3, 4, **kwargs)

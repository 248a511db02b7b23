"""The training toolkit: heads, losses, optimizers, clipping, gradcheck, Sequential,
truncated BPTT, sampling (plots: test_plotting.py)."""

import numpy as np
import pytest

import rnncore
from rnncore.heads import Activation
from rnncore.text import Vocab
from rnn_testing import assert_close


def f64(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- heads and Sequential -------------------------------------------------------------

def test_sequential_names_and_gradients_match_finite_differences():
    model = rnncore.Sequential(rnncore.LSTM(3, 5, num_layers=2, dtype=np.float64, seed=0),
                               Activation("tanh"), rnncore.Linear(5, 4, dtype=np.float64, seed=1))
    assert "0.weight_ih_l1" in model.params and "2.weight" in model.params
    assert model.params["0.weight_hh_l0"] is model[0].params["weight_hh_l0"]
    report = rnncore.gradcheck_module(model, f64(6, 2, 3))
    assert report, str(report)
    assert "x" in report.errors and report.checked > 200


def test_embedding_gradients_and_errors():
    emb = rnncore.Embedding(7, 3, dtype=np.float64, seed=0)
    ids = np.array([[1, 4, 1], [6, 0, 1]])
    y = emb(ids)
    np.testing.assert_array_equal(y, emb.weight[ids])
    dy = f64(2, 3, 3)
    assert emb.backward(dy) is None
    want = np.zeros((7, 3))
    for (i, j), k in np.ndenumerate(ids):
        want[k] += dy[i, j]
    assert_close(emb.grads["weight"], want, 1e-14, "dweight")
    with pytest.raises(ValueError, match="ids: every id must be in"):
        emb(np.array([7]))
    with pytest.raises(TypeError, match="ids"):
        emb(np.array([1.0]))


def test_linear_and_embedding_in_a_model_with_gradcheck():
    model = rnncore.Sequential(rnncore.Embedding(5, 4, dtype=np.float64, seed=0),
                               rnncore.GRU(4, 3, dtype=np.float64, seed=1),
                               rnncore.Linear(3, 5, dtype=np.float64, seed=2))
    ids = np.array([[0, 1], [4, 2], [3, 3]])
    report = rnncore.gradcheck_module(model, ids)
    assert report, str(report)
    assert "x" not in report.errors  # ids have no gradient


def test_gradcheck_reports_a_wrong_gradient():
    w = f64(3, 4)
    x = f64(4, seed=1)

    def loss():
        return float(np.sum(np.tanh(w @ x)))

    good = {"w": (1 - np.tanh(w @ x) ** 2)[:, None] * x[None, :]}
    assert rnncore.gradcheck(loss, {"w": w}, good)
    bad = {"w": good["w"].copy()}
    bad["w"][2, 1] += 0.1
    report = rnncore.gradcheck(loss, {"w": w}, bad)
    assert not report
    assert report.worst == "w" and report.index == (2, 1)
    assert "FAILED" in str(report) and "w[2, 1]" in str(report)
    with pytest.raises(TypeError, match="float64"):
        rnncore.gradcheck(loss, {"w": w.astype(np.float32)}, good)


# ---- losses ---------------------------------------------------------------------------

def test_softmax_cross_entropy_mask_equals_ignore_index():
    logits = f64(4, 3, 6)
    targets = np.random.default_rng(0).integers(0, 6, (4, 3))
    mask = np.random.default_rng(1).random((4, 3)) < 0.6
    a = rnncore.SoftmaxCrossEntropy()
    la = a(logits, targets, mask)
    b = rnncore.SoftmaxCrossEntropy()
    lb = b(logits, np.where(mask, targets, -100))
    assert la == pytest.approx(lb, rel=1e-14)
    np.testing.assert_array_equal(a.backward(), b.backward())
    assert not a.backward()[~mask].any()
    with pytest.raises(TypeError, match="mask"):
        a(logits, targets, mask.astype(np.int8))


@pytest.mark.parametrize("half,reduction", [(False, "mean"), (True, "sum"), (True, "mean")])
def test_mse_loss(half, reduction):
    pred, target = f64(5, 3), f64(5, 3, seed=1)
    mse = rnncore.MSELoss(reduction, half)
    loss = mse(pred, target)
    sq = np.sum((pred - target) ** 2) * (0.5 if half else 1.0)
    assert loss == pytest.approx(sq / (15 if reduction == "mean" else 1), rel=1e-14)
    grad = mse.backward()
    report = rnncore.gradcheck(lambda: rnncore.MSELoss(reduction, half)(pred, target), {"pred": pred}, {"pred": grad})
    assert report, str(report)
    with pytest.raises(ValueError, match="target"):
        mse(pred, f64(3, 5))


# ---- optimizers and clipping --------------------------------------------------------------

def quadratic_problem():
    p = {"a": np.array([3.0, -2.0]), "b": np.array([[1.0, 0.5]])}
    g = {k: np.zeros_like(v) for k, v in p.items()}
    return p, g


def run_opt(opt, p, g, steps=200):
    for _ in range(steps):
        for k in p:
            g[k][...] = 2 * p[k] + np.sin(p[k])  # gradient of sum(p^2 - cos p)
        opt.step()


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.05, momentum=0.9)),
                                         ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
                                         ("Adagrad", dict(lr=0.5)),
                                         ("Adam", dict(lr=0.05, weight_decay=0.01))])
def test_optimizers_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    p, g = quadratic_problem()
    opt = getattr(rnncore, name)(p, g, **kwargs)
    tp = [torch.tensor(v.copy(), requires_grad=True) for v in quadratic_problem()[0].values()]
    tkw = dict(kwargs)
    if name == "Adagrad":
        tkw["eps"] = 0.0  # min-char-rnn puts eps inside the square root; exact only without it
        opt.eps = 1e-300
    topt = getattr(torch.optim, name)(tp, **tkw)
    for _ in range(50):
        for k in p:
            g[k][...] = 2 * p[k] + np.sin(p[k])
        opt.step()
        topt.zero_grad()
        sum((t * t - torch.cos(t)).sum() for t in tp).backward()
        topt.step()
    for v, t in zip(p.values(), tp):
        assert_close(v, t.detach().numpy(), 1e-10, name)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "Adam"])
def test_optimizers_minimise_and_round_trip_their_state(name):
    lr = {"SGD": 0.1, "Adagrad": 0.5, "Adam": 0.1}[name]
    p, g = quadratic_problem()
    opt = getattr(rnncore, name)(p, g, lr=lr)
    run_opt(opt, p, g, 100)
    saved_p = {k: v.copy() for k, v in p.items()}
    state = {k: np.array(v, copy=True) for k, v in opt.state_dict().items()}
    run_opt(opt, p, g, 10)
    after = {k: v.copy() for k, v in p.items()}
    p2 = {k: v.copy() for k, v in saved_p.items()}
    g2 = {k: np.zeros_like(v) for k, v in p2.items()}
    opt2 = getattr(rnncore, name)(p2, g2, lr=lr)
    opt2.load_state_dict(state)
    run_opt(opt2, p2, g2, 10)
    for k in p:
        np.testing.assert_array_equal(p2[k], after[k])
    run_opt(opt, p, g, 400)
    assert max(np.abs(v).max() for v in p.values()) < 0.05


def test_optimizer_errors():
    p, g = quadratic_problem()
    with pytest.raises(ValueError, match="lr"):
        rnncore.Adam(p, g, lr=-1)
    with pytest.raises(KeyError):
        rnncore.SGD(p, {"a": g["a"]})
    with pytest.raises(ValueError, match="grads"):
        rnncore.SGD(p, {"a": g["a"], "b": np.zeros(3)})


def test_clip_grad_norm_is_pascanus_algorithm():
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(5)}
    norm = np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in grads.values()))
    before = {k: v.copy() for k, v in grads.items()}
    got = rnncore.clip_grad_norm(grads, 1.0)
    assert got == pytest.approx(norm, rel=1e-12)
    for k in grads:
        assert_close(grads[k], before[k] * (1.0 / norm), 1e-6, k)
    assert rnncore.clip_grad_norm(grads, 10.0) == pytest.approx(1.0, rel=1e-6)  # below: untouched
    for k in grads:
        assert_close(grads[k], before[k] / norm, 1e-6, k)
    grads["b"][0] = np.nan
    kept = {k: v.copy() for k, v in grads.items()}
    assert np.isnan(rnncore.clip_grad_norm(grads, 1e-3))
    np.testing.assert_array_equal(grads["a"], kept["a"])  # non-finite norm: untouched
    with pytest.raises(ValueError, match="max_norm"):
        rnncore.clip_grad_norm(grads, 0)
    with pytest.raises(TypeError, match="grads"):
        rnncore.clip_grad_norm([np.zeros(3, np.int64)], 1.0)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        rnncore.clip_grad_norm([ro], 1.0)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((4, 5)) * 3, rng.standard_normal(7)]
    tensors = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    for t, a in zip(tensors, arrays):
        t.grad = torch.tensor(a.copy())
    want = float(torch.nn.utils.clip_grad_norm_(tensors, 2.0))
    got = rnncore.clip_grad_norm(arrays, 2.0)
    assert got == pytest.approx(want, rel=1e-12)
    for a, t in zip(arrays, tensors):
        assert_close(a, t.grad.numpy(), 1e-6, "clipped")


def test_clip_grad_value():
    g = [np.array([-3.0, 0.5, 2.0, np.nan]), np.array([[4.0]], np.float32)]
    rnncore.clip_grad_value(g, 1.0)
    np.testing.assert_array_equal(g[0][:3], [-1.0, 0.5, 1.0])
    assert np.isnan(g[0][3]) and g[1][0, 0] == 1.0


# ---- truncated BPTT -----------------------------------------------------------------------

def test_tbptt_chunks_carry_state_but_not_gradient():
    """One tbptt pass equals a manual loop over chunks; accumulation sums (averages)."""
    def model():
        return rnncore.Sequential(rnncore.LSTM(3, 4, dtype=np.float64, seed=0),
                                  rnncore.Linear(4, 5, dtype=np.float64, seed=1))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 2, 3))
    t = rng.integers(0, 5, (10, 2))
    a = model()
    loss, state, updates = rnncore.tbptt(a, rnncore.SoftmaxCrossEntropy(), x, t, 4, accumulate=3)
    assert updates == 0 and len(state) == 1
    b = model()
    xent = rnncore.SoftmaxCrossEntropy()
    st, losses = None, []
    for sl in (slice(0, 4), slice(4, 8), slice(8, 10)):
        y, st = b.forward(x[sl], st)
        losses.append(xent(y, t[sl]))
        b.backward(xent.backward(1 / 3))
    assert loss == pytest.approx(np.mean(losses), rel=1e-14)
    for k in a.grads:
        assert_close(a.grads[k], b.grads[k], 1e-14, k)
    for u, v in zip(state[0], st[0]):
        np.testing.assert_array_equal(u, v)
    # the truncation: the first chunk's gradients see no loss from later chunks
    c = model()
    y, _ = c.forward(x[:4])
    xent(y, t[:4])
    c.backward(xent.backward())
    d = model()
    rnncore.tbptt(d, rnncore.SoftmaxCrossEntropy(), x[:4], t[:4], 4)
    for k in c.grads:
        assert_close(d.grads[k], c.grads[k], 1e-14, k)


def test_tbptt_with_optimizer_counts_updates_and_learns():
    model = rnncore.Sequential(rnncore.GRU(2, 8, seed=0), rnncore.Linear(8, 2, seed=1))
    opt = rnncore.Adam(model.params, model.grads, lr=0.02)
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (200, 8))
    x = np.eye(2, dtype=np.float32)[bits]
    first = None
    for epoch in range(15):
        loss, _, updates = rnncore.tbptt(model, rnncore.SoftmaxCrossEntropy(), x, bits, 20, opt, accumulate=2,
                                         clip_norm=1.0)
        first = first if first is not None else loss
    assert updates == 5
    assert loss < 0.05 < first  # the target is the input itself: learnt


# ---- sampling, text ----------------------------------------------------------------

def test_sampling_follows_the_distribution_and_temperature():
    logits = np.log(np.array([0.1, 0.2, 0.7]))
    rng = np.random.default_rng(0)
    draws = np.bincount([rnncore.sample_logits(logits, 1.0, rng) for _ in range(20000)], minlength=3) / 20000
    np.testing.assert_allclose(draws, [0.1, 0.2, 0.7], atol=0.015)
    assert rnncore.sample_logits(logits, 0) == 2
    cold = np.bincount([rnncore.sample_logits(logits, 0.2, rng) for _ in range(2000)], minlength=3)
    assert cold[2] > 1900
    from rnncore import _text
    assert _text.sample_index(np.array([0.0, 0.0, 1.0]), 0.999999) == 2
    with pytest.raises(ValueError, match="probs"):
        _text.sample_index(np.array([0.5, np.nan]), 0.5)
    with pytest.raises(ValueError, match="probs"):
        _text.sample_index(np.zeros(3), 0.5)


def test_vocab_end_token():
    v = Vocab.from_text("abcab")
    ids = v.encode("abz", end=True)
    assert list(ids) == [v.index["a"], v.index["b"], Vocab.UNKNOWN_ID, Vocab.END_ID]
    assert v.decode(ids) == "ab\ufffd" and v.decode(ids, end="<end>") == "ab\ufffd<end>"

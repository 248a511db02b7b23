"""The Cython text pipeline, the native softmax cross-entropy and the Linear head."""

import numpy as np
import pytest

import rnncore
from rnn_testing import FD_EPS, assert_close
from rnncore import _core
from rnncore.heads import Linear
from rnncore.losses import SoftmaxCrossEntropy
from rnncore.text import UNKNOWN, Vocab, batchify


def test_vocab_round_trip_and_unknowns():
    v = Vocab.from_text("hello world")
    ids = v.encode("hello world")
    assert ids.dtype == np.int32 and ids.shape == (11,)
    assert v.decode(ids) == "hello world"
    assert list(v.encode("hz\U0001F600")) == [v.index["h"], 0, 0]  # unknown -> id 0
    assert v.decode(v.encode("zz")) == UNKNOWN * 2
    with pytest.raises(ValueError, match="ids"):
        v.decode(np.array([len(v)]))


def test_batchify_lanes_continue_across_chunks():
    ids = np.arange(103, dtype=np.int32)
    x, y = batchify(ids, batch_size=4, steps=5)
    assert x.shape == y.shape == (5, 5, 4)  # lanes of 25 tokens, 5 chunks of 5 steps
    np.testing.assert_array_equal(y, x + 1)
    lane0 = x[:, :, 0].reshape(-1)
    np.testing.assert_array_equal(lane0, np.arange(25))
    np.testing.assert_array_equal(x[:, :, 3].reshape(-1), np.arange(75, 100))
    with pytest.raises(ValueError, match="too few"):
        batchify(ids[:3], 4, 5)
    with pytest.raises(ValueError, match="positive"):
        batchify(ids, 0, 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((4, 3, 7)) * 5).astype(dtype)
    targets = rng.integers(0, 7, size=(4, 3))
    targets[1, 2] = -100
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn(logits, targets)
    z = logits.astype(np.float64).reshape(-1, 7)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    t = targets.reshape(-1)
    keep = t != -100
    want = -logp[keep, t[keep]].mean()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert abs(loss - want) <= tol * abs(want)
    d = loss_fn.backward()
    p = np.exp(logp)
    p[keep, t[keep]] -= 1
    p[~keep] = 0
    assert_close(d.reshape(-1, 7), p / keep.sum(), tol, "dlogits")


def test_softmax_cross_entropy_finite_differences_and_extremes():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 4))
    targets = np.array([0, 3, 1, 1, 2])
    loss_fn = SoftmaxCrossEntropy(reduction="sum")
    loss_fn(logits, targets)
    d = loss_fn.backward(scale=2.0)
    num = 2.0 * rnncore.numeric_gradient(lambda: loss_fn(logits, targets), logits, eps=FD_EPS)
    assert_close(d, num, 1e-7, "dlogits")
    big = np.array([[1000.0, -1000.0, 0.0]], np.float32)  # no overflow: max subtracted
    assert SoftmaxCrossEntropy()(big, np.array([1])) == pytest.approx(2000.0, rel=1e-6)


def test_softmax_cross_entropy_bad_input():
    loss_fn = SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="targets"):
        loss_fn(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="targets: expected shape"):
        loss_fn(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="targets"):
        loss_fn(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="logits"):
        loss_fn(np.zeros((2, 3), np.int64), np.array([0, 1]))
    with pytest.raises(TypeError, match="logits"):
        _core.softmax_xent_forward(np.zeros((2, 3), np.float16), np.array([0, 1]))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.softmax_xent_forward(np.zeros((3, 2)).T, np.array([0, 1]))
    with pytest.raises(TypeError, match="targets: expected int64"):
        _core.softmax_xent_forward(np.zeros((2, 3)), np.array([0, 1], np.int32))
    with pytest.raises(RuntimeError, match="forward"):
        SoftmaxCrossEntropy().backward()


def test_linear_gradients():
    rng = np.random.default_rng(2)
    lin = Linear(4, 3, dtype=np.float64, seed=0)
    x = rng.standard_normal((5, 2, 4))
    w = rng.standard_normal((5, 2, 3))
    lin.forward(x)
    dx = lin.backward(w)
    assert_close(dx, w @ lin.weight, 1e-14, "dx")
    assert_close(lin.grads["weight"], w.reshape(-1, 3).T @ x.reshape(-1, 4), 1e-14, "dW")
    assert_close(lin.grads["bias"], w.reshape(-1, 3).sum(0), 1e-14, "db")
    with pytest.raises(ValueError, match="x"):
        lin.forward(np.zeros((2, 5)))

"""The ops around the recurrent layers, in NumPy: dense layer, embedding, softmax
cross-entropy, clipping and optimizer steps.

Each function has the name, arguments and results of its native counterpart in
``rnncore._core`` (``cpp/ops/``), so that ``backend="reference"`` runs a whole training
step without the compiled extension. The maths, with N rows (positions), I inputs and
O outputs::

    linear:      y = x @ weight.T + bias;   dx = dy @ weight;  dweight += dy.T @ x;
                 dbias += dy summed over rows
    embedding:   y[n] = weight[ids[n]];     dweight[ids[n]] += dy[n]
    softmax cross-entropy, per row n with target t:
                 p = softmax(z);  loss = logsumexp(z) - z[t];  dz = scale * (p - onehot(t))
    clipping by global norm (Pascanu et al. 2013, algorithm 1): g *= max_norm / ||g||
                 when ||g|| > max_norm (and finite)
    optimizers:  see SGD, Adagrad and Adam in rnncore.optim

"""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float(name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64 array, got {a.dtype}")
    return a


def _shaped(name, a, dtype, shape):
    _float(name, a)
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} array, got {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    return a


def _out(out, shape, dtype):
    if out is None:
        return np.empty(shape, dtype)
    return _shaped("out", out, dtype, shape)


# ---- dense layer and embedding --------------------------------------------------------

def linear_forward(x, weight, bias=None, *, out=None):
    """y (N,O) = x (N,I) @ weight (O,I).T + bias (O,)."""
    _float("weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"weight: expected 2-D array (O, I), got shape {weight.shape}")
    O, I = weight.shape
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError("x: expected 2-D array (N, I)")
    _shaped("x", x, weight.dtype, (x.shape[0], I))
    y = _out(out, (x.shape[0], O), weight.dtype)
    np.matmul(x, weight.T, out=y)
    if bias is not None:
        y += _shaped("bias", bias, weight.dtype, (O,))
    return y


def linear_backward(dy, x, weight, dweight, dbias=None, need_dx=True, *, out=None):
    """dweight += dy.T @ x, dbias += dy.sum(0); returns dx = dy @ weight (or None)."""
    O, I = weight.shape
    N = x.shape[0]
    _shaped("dy", dy, weight.dtype, (N, O))
    _shaped("dweight", dweight, weight.dtype, (O, I))
    dweight += dy.T @ x
    if dbias is not None:
        _shaped("dbias", dbias, weight.dtype, (O,))
        dbias += dy.sum(0)
    if not need_dx:
        return None
    dx = _out(out, (N, I), weight.dtype)
    np.matmul(dy, weight, out=dx)
    return dx


def _ids(ids, V):
    if not isinstance(ids, np.ndarray) or ids.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise TypeError("ids: expected an int32 or int64 array")
    if ids.ndim != 1:
        raise ValueError(f"ids: expected 1-D array (N,), got shape {ids.shape}")
    bad = ids[(ids < 0) | (ids >= V)]
    if bad.size:
        raise ValueError(f"ids: every id must be in [0, {V}), got {bad[0]}")
    return ids


def embedding_forward(ids, weight, *, out=None):
    """The rows weight[ids] (N,E)."""
    ids = _ids(ids, weight.shape[0])
    y = _out(out, (ids.shape[0], weight.shape[1]), weight.dtype)
    np.take(weight, ids, axis=0, out=y)
    return y


def embedding_backward(dy, ids, dweight):
    """dweight[ids[n]] += dy[n] (repeated ids add up)."""
    ids = _ids(ids, dweight.shape[0])
    np.add.at(dweight, ids, _shaped("dy", dy, dweight.dtype, (ids.shape[0], dweight.shape[1])))


# ---- softmax cross-entropy ------------------------------------------------------------

def _targets(targets, V, ignore_index):
    bad = targets[((targets < 0) | (targets >= V)) & (targets != ignore_index)]
    if bad.size:
        raise ValueError(f"targets: every target must be in [0, {V}) or equal ignore_index, got {bad[0]}")


def softmax_xent_forward(logits, targets, ignore_index=-100):
    """(loss (N,), probs (N,V)); loss 0 at rows whose target is ignore_index."""
    _float("logits", logits)
    _targets(targets, logits.shape[1], ignore_index)
    z = logits - logits.max(axis=1, keepdims=True)
    with np.errstate(under="ignore"):
        e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    probs = e / total
    keep = targets != ignore_index
    rows = np.flatnonzero(keep)
    loss = np.zeros(logits.shape[0], logits.dtype)
    loss[rows] = np.log(total[rows, 0]) - z[rows, targets[rows]]
    return loss, probs


def softmax_xent_backward(probs, targets, ignore_index=-100, scale=1.0):
    """scale * (probs - onehot(targets)), zero at ignored rows."""
    _targets(targets, probs.shape[1], ignore_index)
    d = probs * probs.dtype.type(scale)
    rows = np.flatnonzero(targets != ignore_index)
    d[rows, targets[rows]] -= probs.dtype.type(scale)
    d[targets == ignore_index] = 0
    return d


# ---- groups of arrays: clipping and optimizers ---------------------------------------

class TensorGroup:
    """A model's parameter (or gradient) arrays, one float dtype, held for optimizer steps."""

    def __init__(self, arrays):
        self.arrays = [_float(f"arrays[{i}]", a) for i, a in enumerate(arrays)]
        if len({a.dtype for a in self.arrays}) > 1:
            raise TypeError("arrays: expected one float dtype")
        self.size = sum(a.size for a in self.arrays)
        self.dtype = self.arrays[0].dtype if self.arrays else np.dtype(np.float32)

    def __len__(self):
        return len(self.arrays)

    def views(self, flat):
        """flat (size,) cut into arrays shaped like the group's."""
        out, at = [], 0
        for a in self.arrays:
            out.append(flat[at:at + a.size].reshape(a.shape))
            at += a.size
        return out


def _arrays(grads):
    return grads.arrays if isinstance(grads, TensorGroup) else [_float(f"grads[{i}]", g) for i, g in enumerate(grads)]


def clip_grad_norm(grads, max_norm):
    """Scale every array by max_norm / norm when their global norm exceeds max_norm;
    returns the norm (a non-finite norm leaves them unchanged)."""
    if not max_norm > 0:
        raise ValueError("max_norm: expected a positive number")
    arrays = _arrays(grads)
    norm = float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in arrays)))
    if np.isfinite(norm) and norm > max_norm:
        for g in arrays:
            g *= g.dtype.type(max_norm / norm)
    return norm


def clip_grad_value(grads, clip):
    """Every element clipped to [-clip, clip] (NaN stays NaN)."""
    if not clip > 0:
        raise ValueError("clip: expected a positive number")
    for g in _arrays(grads):
        np.clip(g, -clip, clip, out=g)


def sgd_step(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    """v = momentum v + g; p -= lr (nesterov ? g + momentum v : v), g with weight decay."""
    vs = params.views(velocity) if velocity is not None else [None] * len(params)
    for p, g, v in zip(params.arrays, grads.arrays, vs):
        if weight_decay:
            g = g + weight_decay * p
        if v is None:
            p -= lr * g
            continue
        v *= momentum
        v += g
        p -= lr * (g + momentum * v if nesterov else v)


def adagrad_step(params, grads, sums, lr, eps):
    """s += g^2; p -= lr g / sqrt(s + eps)."""
    for p, g, s in zip(params.arrays, grads.arrays, params.views(sums)):
        s += g * g
        p -= lr * g / np.sqrt(s + eps)


def adam_step(params, grads, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    c1, c2 = 1 - beta1 ** step, 1 - beta2 ** step
    for p, g, mk, vk in zip(params.arrays, grads.arrays, params.views(m), params.views(v)):
        if weight_decay:
            g = g + weight_decay * p
        mk *= beta1
        mk += (1 - beta1) * g
        vk *= beta2
        vk += (1 - beta2) * g * g
        p -= (lr / c1) * mk / (np.sqrt(vk) / np.sqrt(c2) + eps)


# ---- sampling ---------------------------------------------------------------------------

def sample_logits(logits, temperature, u):
    """The first index whose cumulative softmax(logits / temperature) probability exceeds
    u in [0, 1) (computed in float64, maximum subtracted); temperature 0: the argmax."""
    if not temperature >= 0 or np.isinf(temperature):
        raise ValueError(f"temperature: expected a finite number >= 0, got {temperature}")
    if not 0 <= u < 1:
        raise ValueError(f"u: expected a uniform draw in [0, 1), got {u}")
    z = np.asarray(_float("logits", logits), np.float64)
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"logits: expected a non-empty 1-D array, got shape {z.shape}")
    if temperature == 0:
        return int(np.argmax(z))
    z = z / temperature
    if np.isnan(z).any() or (z == np.inf).any() or (z == -np.inf).all():
        raise ValueError("logits: not a distribution (NaN, +inf, or every logit -inf)")
    p = np.exp(z - z.max())
    acc = np.cumsum(p)
    i = int(np.searchsorted(acc, u * acc[-1], side="right"))
    return i if i < z.size else int(np.flatnonzero(p > 0)[-1])

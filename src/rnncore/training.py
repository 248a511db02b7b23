"""Training loops the seed notes describe: truncated backpropagation through time with
mini-batch gradient accumulation, and sampling from a trained model."""

from __future__ import annotations

import numpy as np

from . import _checks, _text
from ._module import no_grad
from .optim import clip_grad_norm


def chunks(T, k):
    """The slices [0:k), [k:2k), ... covering T steps (the last may be shorter)."""
    k = _checks.positive_int("k", k)
    return [slice(s, min(s + k, T)) for s in range(0, T, k)]


def tbptt(model, loss_fn, inputs, targets, k, optimizer=None, *, state=None, clip_norm=None, accumulate=1):
    """Truncated BPTT over one long sequence (batch), k steps at a time.

    model: a Sequential (or anything with forward(x, state) -> (y, state), backward(dy),
        zero_grad() and params/grads). inputs, targets: time-major (T, B, ...) arrays.

    Each chunk runs forward from the state the previous chunk ended in, then backward
    from its own loss only: the state is carried forward, the gradient is not carried
    back across the chunk boundary (the truncation). Gradients of ``accumulate``
    consecutive chunks are summed (each loss scaled by 1/accumulate, so the update uses
    their mean) before one optimizer step, after clipping to ``clip_norm`` if given.
    Returns (the mean loss per chunk, the final state, the number of updates)."""
    accumulate = _checks.positive_int("accumulate", accumulate)
    if len(inputs) != len(targets):
        raise ValueError(f"targets: expected {len(inputs)} steps like inputs, got {len(targets)}")
    losses, pending, updates = [], 0, 0
    if optimizer is not None:
        model.zero_grad()
    for sl in chunks(len(inputs), k):
        y, state = model.forward(inputs[sl], state)
        losses.append(loss_fn.forward(y, targets[sl]))
        model.backward(loss_fn.backward(1.0 / accumulate))
        pending += 1
        if optimizer is not None and pending == accumulate:
            _update(model, optimizer, clip_norm)
            pending, updates = 0, updates + 1
    if optimizer is not None and pending:
        _update(model, optimizer, clip_norm)
        updates += 1
    return float(np.mean(losses)) if losses else 0.0, state, updates


def _update(model, optimizer, clip_norm):
    if clip_norm is not None:
        clip_grad_norm(model.grads, clip_norm)
    optimizer.step()
    model.zero_grad()


def sample_logits(logits, temperature=1.0, rng=None):
    """Draw a class index from softmax(logits / temperature) (logits: 1-D). temperature
    0 takes the argmax."""
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return int(np.argmax(logits))
    if temperature < 0:
        raise ValueError(f"temperature: expected >= 0, got {temperature}")
    z = logits / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    rng = np.random.default_rng() if rng is None else rng
    return _text.sample_index(p, rng.random())


def generate(model, prime, steps, *, temperature=1.0, rng=None, end=None):
    """Sample ids from a model that maps ids to logits (e.g. Sequential(Embedding, LSTM,
    Linear)): run the prime ids (a non-empty 1-D int array) through it, then feed each
    sampled id back in, for ``steps`` ids or until ``end`` is drawn (included).
    Returns the sampled ids (int64)."""
    prime = np.asarray(prime, np.int64)
    if prime.ndim != 1 or prime.size == 0:
        raise ValueError("prime: expected a non-empty 1-D array of ids")
    out = []
    with no_grad():
        logits, state = model.forward(prime[:, None])
        for _ in range(steps):
            nxt = sample_logits(logits[-1, 0], temperature, rng)
            out.append(nxt)
            if end is not None and nxt == end:
                break
            logits, state = model.forward(np.array([[nxt]]), state)
    return np.array(out, np.int64)

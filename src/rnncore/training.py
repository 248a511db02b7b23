"""Training loops the seed notes describe: truncated backpropagation through time with
mini-batch gradient accumulation, and sampling from a trained model."""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _checks, backends
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


def _temperature(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 <= value < math.inf):
        raise ValueError(f"temperature: expected a finite number >= 0, got {value!r}")
    return float(value)


def sample_logits(logits, temperature=1.0, rng=None, *, backend=None):
    """Draw a class index from softmax(logits / temperature) (logits: 1-D), natively:
    with u = rng.random(), the first index whose cumulative probability exceeds u.
    temperature 0 takes the argmax (and draws nothing from rng)."""
    temperature = _temperature(temperature)
    logits = np.asarray(logits)
    if logits.dtype not in (np.float32, np.float64):
        logits = logits.astype(np.float64)
    if logits.ndim != 1 or logits.size == 0:
        raise ValueError(f"logits: expected a non-empty 1-D array, got shape {logits.shape}")
    u = 0.0
    if temperature > 0:
        u = (np.random.default_rng() if rng is None else rng).random()
    return int(backends.resolve_ops(backend)[1].sample_logits(np.ascontiguousarray(logits), temperature, u))


def generate(model, prime, steps, *, temperature=1.0, rng=None, end=None):
    """Sample ids from a model that maps ids to logits (e.g. Sequential(Embedding, LSTM,
    Linear)): run the prime ids (a non-empty 1-D int array) through it, then feed each
    sampled id back in, for ``steps`` ids or until ``end`` is drawn (included).
    Returns the sampled ids (int64).

    A Sequential of an Embedding, recurrent layers (one direction, native backend) and a
    Linear runs token by token in one native call (cpp/ops/generate.h): no interpreter
    work per token. Other models run their forward once per token. Both draw one
    ``rng.random()`` per sampled id (none at temperature 0), so they give the same ids."""
    prime = np.asarray(prime)
    if prime.dtype.kind not in "iu":
        raise TypeError(f"prime: expected integer ids, got {prime.dtype}")
    prime = prime.astype(np.int64)
    if prime.ndim != 1 or prime.size == 0:
        raise ValueError("prime: expected a non-empty 1-D array of ids")
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps: expected an int >= 0, got {steps!r}")
    steps = int(steps)
    temperature = _temperature(temperature)
    with no_grad():
        logits, state = model.forward(prime[:, None])
        native = _native_layers(model, state)
        if native is not None:
            return _generate_native(*native, logits[-1, 0], steps, temperature, rng, end)
        out = []
        for _ in range(steps):
            nxt = sample_logits(logits[-1, 0], temperature, rng)
            out.append(nxt)
            if end is not None and nxt == end:
                break
            logits, state = model.forward(np.array([[nxt]]), state)
    return np.array(out, np.int64)


def _native_layers(model, state):
    """(the Embedding, the (cell, option, weights..., h, c) tuples of every recurrent layer,
    the Linear) of a model that the native generator runs exactly as model.forward
    would, else None."""
    from .dropout import Dropout
    from .heads import Embedding, Linear
    from .layers import GRU, LSTM, RNN, IndRNN
    from .sequential import Sequential

    if type(model) is not Sequential or len(model.layers) < 3:
        return None
    layers = []
    for layer in model.layers:  # Dropout layers are the identity in eval mode
        if type(layer) is Dropout:
            if layer.training and layer.p > 0:
                return None
            continue
        layers.append(layer)
    if len(layers) < 3:
        return None
    first, *middle, last = layers
    if type(first) is not Embedding or type(last) is not Linear or first.backend != "native" \
            or last.backend != "native":
        return None
    specs, width = [], first.embedding_dim
    for layer, s in zip(middle, state):
        # the native loop's cells carry H-wide states (no projection) and have no norms
        if type(layer) not in (RNN, IndRNN, LSTM, GRU) or layer.backend != "native" or layer.bidirectional \
                or layer.batch_first or (layer.training and layer.dropout > 0) or layer.input_size != width \
                or layer.proj_size or getattr(layer, "layer_norm", False):
            return None
        h = s[0] if isinstance(layer, LSTM) else s
        c = s[1] if isinstance(layer, LSTM) else None
        for k in range(layer.num_layers):
            p = layer.params
            sfx = f"_l{k}"
            if isinstance(layer, LSTM):
                cell, option, w_ch = "lstm", None, p.get(f"weight_ch{sfx}")
            elif isinstance(layer, GRU):
                cell, option, w_ch = "gru", layer.reset_after, None
            elif isinstance(layer, IndRNN):
                cell, option, w_ch = "indrnn", layer.nonlinearity, None
            else:
                cell, option, w_ch = "elman", layer.nonlinearity, None
            specs.append((cell, option, p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"], p.get(f"bias_ih{sfx}"),
                          p.get(f"bias_hh{sfx}"), w_ch, h[k, 0].copy(), None if c is None else c[k, 0].copy()))
        width = layer.hidden_size
    if len(middle) != len(state) or last.in_features != width:
        return None
    return first, specs, last


def _generate_native(first, layers, last, logits0, steps, temperature, rng, end):
    """generate's loop in one native call: first the Embedding, last the Linear."""
    if steps == 0:
        return np.empty(0, np.int64)
    uniforms = None
    if temperature > 0:
        rng = np.random.default_rng() if rng is None else rng
        before = rng.bit_generator.state
        uniforms = rng.random(steps)
    end_id = -1 if end is None else int(end)
    try:
        ids = _native_ops().generate(first.params["weight"], layers, last.params["weight"], last.params.get("bias"),
                                     np.ascontiguousarray(logits0), steps, temperature, uniforms, end_id)
    finally:
        if uniforms is not None:  # leave rng as if one draw had been made per sampled id
            rng.bit_generator.state = before
    if uniforms is not None:
        rng.random(len(ids))
    return ids


def _native_ops():
    return backends.resolve_ops("native")[1]

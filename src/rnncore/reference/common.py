"""Shared pieces of the NumPy reference: dimension letters, activations, masks.

Dimension letters, used word for word in ``cpp/common.h``:

    T  time steps          B  batch           I  input size
    H  hidden size         G  gates per cell (Elman 1, GRU 3, LSTM 4)
    L  layers              D  directions (1, or 2 when bidirectional)

Layouts are time-major and C-contiguous: ``x [T,B,I]``, gate pre-activations and
post-activations ``[T,B,G*H]`` with the gates in PyTorch's order as contiguous
blocks of H, and the state history ``h [T+1,B,H]``.

The state history of one direction is stored in *time* order so that the weight
gradients are single matrix products after the backward loop:

* forward direction: ``h[0]`` is the initial state, ``h[t+1]`` the state after
  step ``t``; the state fed into step ``t`` is ``h[t]`` and the final state ``h[T]``.
* reverse direction: ``h[T]`` is the initial state, ``h[t]`` the state after step
  ``t`` (steps run ``t = T-1 ... 0``); the state fed into step ``t`` is
  ``h[t+1]`` and the final state ``h[0]``.

Variable lengths: for sequence ``b`` the steps ``t >= lengths[b]`` are padding. A
padded step leaves the state unchanged and writes a zero output, so the forward
direction ends on each sequence's last valid step and the reverse direction starts
there. In backward a padded step passes the state gradient through unchanged and
contributes nothing to any weight gradient.
"""

from __future__ import annotations

import numpy as np

NONLINEARITIES = ("tanh", "relu", "sigmoid")


def sigmoid(a):
    """Logistic function 1 / (1 + exp(-a)); exact in both tails (exp overflow gives 0)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def activate(a, nonlinearity):
    """phi(a) for the Elman cell."""
    if nonlinearity == "tanh":
        return np.tanh(a)
    if nonlinearity == "relu":
        return np.maximum(a, 0)
    if nonlinearity == "sigmoid":
        return sigmoid(a)
    raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")


def activate_grad(y, nonlinearity):
    """phi'(a) written in terms of the output y = phi(a), as the kernels do."""
    if nonlinearity == "tanh":
        return 1 - y * y
    if nonlinearity == "relu":
        return (y > 0).astype(y.dtype)
    if nonlinearity == "sigmoid":
        return y * (1 - y)
    raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")


def step_order(T, reverse):
    """Time indices in the order a direction visits them."""
    return range(T - 1, -1, -1) if reverse else range(T)


def prev_index(t, reverse):
    """Index into the state history h [T+1,B,H] of the state fed into step t."""
    return t + 1 if reverse else t


def next_index(t, reverse):
    """Index into the state history of the state produced by step t."""
    return t if reverse else t + 1


def valid_mask(T, B, lengths, dtype):
    """[T,B,1] array, 1 where step t of sequence b is real, 0 where it is padding.

    None when every step is real (lengths is None)."""
    if lengths is None:
        return None
    t = np.arange(T)[:, None]
    return (t < np.asarray(lengths)[None, :]).astype(dtype)[:, :, None]


def final_state(h, reverse):
    """The final state of a direction from its state history [T+1,B,H]."""
    return h[0] if reverse else h[-1]


def initial_state(h, reverse):
    return h[-1] if reverse else h[0]


def into(out, results):
    """Return results, copied into the caller's buffers where ``out`` gives them.

    The native kernels take ``out=(...)`` to reuse buffers across calls; the reference
    accepts the same argument so that the two backends are interchangeable."""
    if out is None:
        return results
    if not isinstance(out, tuple) or len(out) != len(results):
        raise TypeError(f"out: expected None or a tuple of {len(results)} arrays")
    done = []
    for buf, r in zip(out, results):
        if buf is None:
            done.append(r)
        else:
            buf[...] = r
            done.append(buf)
    return tuple(done)

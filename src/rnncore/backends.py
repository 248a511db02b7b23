"""Backend selection. A backend is a module with the four kernel functions of every cell
(``<cell>_forward``, ``_backward``, ``_step_forward``, ``_step_backward`` for elman, lstm,
lstmp (LSTM with proj_size), gru, indrnn, lstm_ln and gru_ln (layer_norm=True)) that
``rnncore.reference`` defines, with the same arguments: ``"native"`` is the C++ extension ``rnncore._core`` (the default),
``"reference"`` the pure-NumPy ``rnncore.reference``, which needs no compiled code."""

from __future__ import annotations

BACKENDS = ("native", "reference")
DEFAULT_BACKEND = "native"


def resolve(name):
    """The kernel module for a backend name (None: the default)."""
    if name is None:
        name = DEFAULT_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(map(repr, BACKENDS))}, got {name!r}")
    if name == "reference":
        from . import reference

        return name, reference
    from . import _core

    return name, _core


def backend_available(name):
    """Whether a backend can run in this installation."""
    try:
        resolve(name)
    except (NotImplementedError, ImportError):
        return False
    return True


def resolve_ops(name):
    """The module of the ops around the recurrent layers (dense layer, embedding, softmax
    cross-entropy, clipping, optimizer steps) for a backend name: ``rnncore._core`` or
    ``rnncore.reference.ops``, with the same functions."""
    name, kernels = resolve(name)
    if name == "reference":
        from .reference import ops

        return name, ops
    return name, kernels

"""Argument checks shared by every public entry point.

Each check raises TypeError (wrong kind or dtype) or ValueError (wrong value or
shape) with a message that starts with the argument's name. Arrays come back
C-contiguous (a copy only when the caller's array is not), never cast.

Who checks what: the layers, cells and heads check what a user gives them here, once,
with these messages (any layout, lists for lengths, states in tuples), and hand the
kernels exactly what they take. ``rnncore._core`` is public too and must never crash, so
its bindings guard the kernels' contract (exact dtype, C-contiguous, shapes, lengths in
[0, T], no aliasing), each argument once, with the same messages; the reference kernels
trust their caller.
"""

from __future__ import annotations

import numbers
import operator
import os

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return value


def proj_size(value, hidden_size):
    """LSTM's projection size: 0 (none) or an int in [1, hidden_size)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"proj_size: expected an int (0 for no projection), got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if value < 0:
        raise ValueError(f"proj_size: expected 0 (no projection) or a positive int, got {value}")
    if value >= hidden_size:
        raise ValueError(f"proj_size: must be smaller than hidden_size ({hidden_size}), got {value}")
    return value


def layer_norm(value, *, proj_size=0, peephole=False, reset_after=True):
    """The LSTM's and GRU's layer_norm: a bool, and not with the options it does not combine
    with (proj_size, peephole; the GRU's reset_after=False)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"layer_norm: expected a bool, got {type(value).__name__} {value!r}")
    value = bool(value)
    if value and proj_size:
        raise ValueError(f"layer_norm and proj_size: layer_norm=True does not combine with proj_size (got {proj_size})")
    if value and peephole:
        raise ValueError("layer_norm and peephole: layer_norm=True does not combine with peephole=True")
    if value and not reset_after:
        raise ValueError("layer_norm and reset_after: layer_norm=True is the reset-after GRU only (haste's "
                         "LayerNormGRU), got reset_after=False")
    return value


def float_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def one_of(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def probability(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float in [0, 1], got {type(value).__name__}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a float in [0, 1], got {value}")
    return value


def array(name, a, dtype, shape):
    """Check a float array against dtype and shape; return it C-contiguous.

    shape is a tuple of ints, or None for a free dimension; its length is the
    required ndim."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of {dtype}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} array, got {a.dtype} "
                        f"(rnncore never casts silently: convert with .astype(np.{dtype}))")
    if a.ndim != len(shape):
        raise ValueError(f"{name}: expected {len(shape)}-D array of shape {_fmt(shape)}, "
                         f"got {a.ndim}-D of shape {a.shape}")
    for axis, (want, got) in enumerate(zip(shape, a.shape)):
        if want is not None and want != got:
            raise ValueError(f"{name}: expected shape {_fmt(shape)}, got {a.shape} "
                             f"(dimension {axis} is {got}, expected {want})")
    return np.ascontiguousarray(a)


def lengths(value, T, B):
    """Check per-sequence lengths: B integers in [0, T]. Returns int64 (B,) or None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        a = value
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                   for v in value):
            raise TypeError("lengths: expected integers")
        a = np.asarray(value, dtype=np.int64)
    else:
        raise TypeError(f"lengths: expected a 1-D integer array or list, got {type(value).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected an integer array, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"lengths: expected a 1-D array of {B} lengths, got shape {a.shape}")
    if a.shape[0] != B:
        raise ValueError(f"lengths: expected {B} lengths (one per sequence), got {a.shape[0]}")
    if a.size and (a.min() < 0 or a.max() > T):
        bad = a[(a < 0) | (a > T)][0]
        raise ValueError(f"lengths: every length must be in [0, {T}], got {bad}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _fmt(shape):
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"


def ids(name, value, n):
    """Integer class or token ids, each in [0, n). Returns an int64 array (a copy only
    when the caller's is not already int64 and contiguous)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected an integer numpy.ndarray, got {type(value).__name__}")
    if value.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got {value.dtype}")
    if value.size and (value.min() < 0 or value.max() >= n):
        bad = value[(value < 0) | (value >= n)].flat[0]
        raise ValueError(f"{name}: every id must be in [0, {n}), got {bad}")
    return np.ascontiguousarray(value, dtype=np.int64)


def physical_memory():
    """Bytes of RAM on this machine (None when the platform does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits_in_memory(nbytes, what):
    """Raise MemoryError before allocating something larger than the machine's RAM: such
    an allocation can only fail, or succeed and get the process killed when touched."""
    ram = physical_memory()
    if ram is not None and nbytes > ram:
        raise MemoryError(f"{what} would need {nbytes / 2 ** 30:,.1f} GiB; this machine has "
                          f"{ram / 2 ** 30:,.1f} GiB of RAM")


def uniform(rng, bound, shape, dtype):
    """U(-bound, bound) drawn straight into dtype (no float64 intermediate)."""
    a = rng.random(shape, dtype=dtype)
    a *= 2 * bound
    a -= bound
    return a

"""What every layer shares: named parameters and gradients, train/eval, state dicts."""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from . import _checks, _threads

_grad_state = threading.local()


def is_grad_enabled():
    """False inside ``rnncore.no_grad()`` (in this thread): forward saves nothing."""
    return getattr(_grad_state, "enabled", True)


class no_grad:
    """Run forward passes without saving what backward needs (inference).

    Saves the memory of the activations and the copy of the input. A backward after
    such a forward raises RuntimeError. Thread-local; usable as a context manager or a
    decorator."""

    def __enter__(self):
        self._before = is_grad_enabled()
        _grad_state.enabled = False
        return self

    def __exit__(self, *exc):
        _grad_state.enabled = self._before
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def exclusive(method):
    """Run a Module method under the module's one-thread-at-a-time guard."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._exclusive(method.__name__):
            return method(self, *args, **kwargs)
    return wrapper


class Module:
    """Parameters in ``params`` and their gradients in ``grads``, both dicts of
    NumPy arrays keyed by PyTorch's parameter names. ``backward`` adds into
    ``grads``; ``zero_grad`` clears them in place (so references held by an
    optimizer stay valid)."""

    def __init__(self, dtype):
        self.dtype = _checks.float_dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self._busy = threading.Lock()

    @contextlib.contextmanager
    def _exclusive(self, what):
        """A layer keeps what its last forward saved for backward, so two threads may not
        run it at once: the second gets a clear error instead of corrupted state."""
        if getattr(self, "backend", None) == "native":
            _threads.claim_cores()
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(f"{type(self).__name__}.{what}: this layer is already running in another thread; "
                               f"give each thread its own layer (load_state_dict copies weights)")
        try:
            yield
        finally:
            self._busy.release()

    def _add_param(self, name, value):
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])

    def __getattr__(self, name):
        # called only when normal lookup fails: expose parameters as attributes, like torch
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def num_parameters(self):
        return sum(p.size for p in self.params.values())

    def state_dict(self):
        """Copies of the parameters, keyed by PyTorch's names, in PyTorch's order."""
        return {name: p.copy() for name, p in self.params.items()}

    def save(self, path, meta=None):
        """Write the parameters to a verified, pickle-free checkpoint (rnncore.checkpoint)."""
        from . import checkpoint
        checkpoint.save(path, self.state_dict(), {"class": type(self).__name__, **(meta or {})})

    def load(self, path):
        """Load parameters saved by save(); returns the checkpoint's meta dict. Raises
        CheckpointError for a damaged file, KeyError/ValueError for another model's."""
        from . import checkpoint
        arrays, meta = checkpoint.load(path)
        self.load_state_dict(arrays)
        return meta

    def load_state_dict(self, state, strict=True):
        """Copy parameters in place from a mapping of name -> array.

        Floating arrays of another precision are converted (loading float32 torch
        weights into a float64 layer is the common case); integer or complex
        arrays and shape mismatches raise. With strict, missing or unexpected
        names raise KeyError."""
        if not hasattr(state, "keys"):
            raise TypeError(f"state: expected a mapping of name -> array, got {type(state).__name__}")
        if strict:
            missing = [k for k in self.params if k not in state]
            unexpected = [k for k in state if k not in self.params]
            if missing or unexpected:
                raise KeyError(f"state: missing keys {missing}, unexpected keys {unexpected}")
        staged = {}
        for name, p in self.params.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.dtype.kind != "f":
                raise TypeError(f"state[{name!r}]: expected a floating array, got {value.dtype}")
            if value.shape != p.shape:
                raise ValueError(f"state[{name!r}]: expected shape {p.shape}, got {value.shape}")
            staged[name] = value
        for name, value in staged.items():  # all checked first: no half-loaded model
            self.params[name][...] = value

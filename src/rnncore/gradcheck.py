"""Finite-difference checks of backward, for rnncore's layers and for your own models::

    model = rnncore.Sequential(rnncore.LSTM(3, 5, dtype=np.float64), Linear(5, 2, dtype=np.float64))
    print(rnncore.gradcheck_module(model, x))          # every parameter and dx

    # any model: a loss function of arrays that are perturbed in place, and your grads
    report = rnncore.gradcheck(loss_fn, {"w": w, "x": x}, {"w": dw, "x": dx})
    assert report, report

    # the differences themselves, an array of w's shape
    dw_numeric = rnncore.numeric_gradient(loss_fn, w)

Central differences (f(a + eps) - f(a - eps)) / 2 eps, in float64: with eps = 1e-6 they
agree with a correct backward to about 1e-8 relative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GradcheckReport:
    """Result of a check. Truthy when every array is within tolerance; ``str()`` gives a
    table of the errors and the worst entry.

    Attributes:
        ok: every array's error is at most ``rtol``.
        errors: relative error per array name, ``max |numeric - analytic| / max |numeric|``.
        worst: the name of the array with the largest error.
        index: its worst entry's index.
        analytic: the analytic gradient at that entry.
        numeric: the finite-difference gradient at that entry.
        rtol: the tolerance.
        checked: how many entries were checked in all.
    """

    ok: bool
    errors: dict = field(default_factory=dict)
    worst: str = ""
    index: tuple = ()
    analytic: float = 0.0
    numeric: float = 0.0
    rtol: float = 0.0
    checked: int = 0

    def __bool__(self):
        return self.ok

    def __str__(self):
        lines = [f"gradcheck {'passed' if self.ok else 'FAILED'}: {self.checked} entries, "
                 f"tolerance {self.rtol:g} (relative to each array's largest gradient)"]
        for name, err in self.errors.items():
            flag = "" if err <= self.rtol else "   <-- over tolerance"
            lines.append(f"  {name:30s} {err:.3g}{flag}")
        if self.worst:
            lines.append(f"worst entry: {self.worst}{list(self.index)}: analytic {self.analytic:.10g}, "
                         f"numeric {self.numeric:.10g}")
        return "\n".join(lines)


def numeric_gradient(loss_fn, a, *, eps=1e-6, entries=None):
    """Central finite differences (f(a + eps) - f(a - eps)) / 2 eps of the scalar
    ``loss_fn()`` with respect to each entry of the float64 array ``a``, perturbed in place
    (and restored). Returns an array of a's shape, or, with ``entries`` (flat indices), the
    differences at those entries only. The one finite-difference loop of rnncore: gradcheck
    and the tests use it."""
    flat = a.reshape(-1)
    if not np.shares_memory(flat, a):
        raise ValueError("a: must be contiguous (it is perturbed in place)")
    idx = np.arange(flat.size) if entries is None else np.asarray(entries)
    num = np.empty(len(idx))
    for n, i in enumerate(idx):
        orig = flat[i]
        flat[i] = orig + eps
        up = float(loss_fn())
        flat[i] = orig - eps
        down = float(loss_fn())
        flat[i] = orig
        num[n] = (up - down) / (2 * eps)
    return num.reshape(a.shape) if entries is None else num


def gradcheck(loss_fn, arrays, grads, *, eps=1e-6, rtol=1e-6, max_entries=None, seed=0):
    """Compare analytic gradients with central finite differences.

    Args:
        loss_fn: called with no arguments, returns the scalar loss computed from the
            current contents of ``arrays``.
        arrays: name -> float64 array; each entry is perturbed in place (and restored).
        grads: name -> the analytic gradient of the loss for that array (same shape).
        eps: the finite-difference step.
        rtol: the largest relative error (per array, against its largest gradient) that
            passes.
        max_entries: check at most this many randomly chosen entries per array (None:
            all).
        seed: seeds the choice of entries.

    Returns:
        GradcheckReport: truthy when every array's relative error is at most ``rtol``.

    Raises:
        KeyError: an array without a gradient in ``grads``.
        TypeError: an array that is not float64.
        ValueError: a gradient whose shape differs from its array's.
    """
    if set(arrays) - set(grads):
        raise KeyError(f"grads: missing {sorted(set(arrays) - set(grads))}")
    rng = np.random.default_rng(seed)
    report = GradcheckReport(ok=True, rtol=rtol)
    worst_err = -1.0
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype != np.float64:
            raise TypeError(f"arrays[{name!r}]: finite differences need float64 arrays, got "
                            f"{getattr(a, 'dtype', type(a).__name__)}")
        g = np.asarray(grads[name], np.float64)
        if g.shape != a.shape:
            raise ValueError(f"grads[{name!r}]: shape {g.shape} != the array's {a.shape}")
        flat = a.reshape(-1)
        if not np.shares_memory(flat, a):
            raise ValueError(f"arrays[{name!r}]: must be contiguous (it is perturbed in place)")
        idx = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            idx = np.sort(rng.choice(flat.size, max_entries, replace=False))
        num = numeric_gradient(loss_fn, a, eps=eps, entries=idx)
        ana = g.reshape(-1)[idx]
        diff = np.abs(num - ana)
        scale = max(np.max(np.abs(num)) if num.size else 0.0, np.finfo(np.float64).tiny)
        err = float(np.max(diff) / scale) if num.size and np.max(diff) > 0 else 0.0
        if not np.isfinite(err):
            err = float("inf")
        report.errors[name] = err
        report.checked += len(idx)
        if err > rtol:
            report.ok = False
        if num.size and err > worst_err:
            worst_err = err
            j = int(np.argmax(diff))
            report.worst, report.index = name, tuple(int(i) for i in np.unravel_index(idx[j], a.shape))
            report.analytic, report.numeric = float(ana[j]), float(num[j])
    return report


def gradcheck_module(module, x, *, state=None, lengths=None, eps=1e-6, rtol=1e-6, max_entries=None, seed=0):
    """Check a layer or composed model (rnncore.RNN/LSTM/GRU, Sequential, Linear, or
    anything with forward/backward and params/grads dicts) on input x.

    The loss is ``sum(output * W)`` (``+ sum(final state * V)`` for recurrent models) with
    fixed random W, V; backward gets W (and V). Checks dx (unless the model starts with
    an Embedding) and every parameter. The model must be float64; dropout should be off
    (``model.eval()``) or the check compares two different random masks.

    Args:
        module: the model, float64.
        x: its input (float64, or integer ids for a model starting with an Embedding).
        state: the initial state passed to a recurrent model's forward (None: zeros).
        lengths: sequence lengths passed to a recurrent model's forward.
        eps, rtol, max_entries, seed: as in :func:`gradcheck`.

    Returns:
        GradcheckReport: over ``dx`` and every parameter (``model.params``' names).
    """
    rng = np.random.default_rng(seed)
    recurrent = _is_recurrent(module)

    def run():
        if recurrent:
            return module.forward(x, state, lengths) if lengths is not None else module.forward(x, state)
        return module.forward(x), None

    y, fin = run()
    wy = rng.standard_normal(np.shape(y))
    wf = None if fin is None else _map(lambda a: rng.standard_normal(np.shape(a)), fin)

    def loss():
        y, fin = run()
        total = float(np.sum(y * wy))
        if wf is not None:
            total += sum(float(np.sum(a * w)) for a, w in zip(_flatten(fin), _flatten(wf)))
        return total

    module.zero_grad()
    run()
    back = module.backward(wy, wf) if recurrent else module.backward(wy)
    dx = back[0] if recurrent else back
    arrays, grads = dict(module.params), {k: v.copy() for k, v in module.grads.items()}
    if dx is not None and isinstance(x, np.ndarray) and x.dtype == np.float64:
        arrays["x"], grads["x"] = x, dx
    return gradcheck(loss, arrays, grads, eps=eps, rtol=rtol, max_entries=max_entries, seed=seed)


def _is_recurrent(module):
    from .layers import _Recurrent
    from .sequential import Sequential
    return isinstance(module, _Recurrent) or (isinstance(module, Sequential) and bool(module.recurrent))


def _flatten(s):
    if s is None:
        return []
    if isinstance(s, np.ndarray):
        return [s]
    return [a for item in s for a in _flatten(item)]


def _map(fn, s):
    if s is None:
        return None
    if isinstance(s, np.ndarray):
        return fn(s)
    return type(s)(_map(fn, item) for item in s) if isinstance(s, tuple) else [_map(fn, item) for item in s]

"""Data parallelism for rnncore models over ``torch.distributed`` (gloo, CPU).

Each process (a *rank*) holds a copy of the model and trains on its own share of each
batch; between ``backward`` and the optimizer's step, ``average_gradients()`` replaces
every rank's gradients by their average over the ranks (an all-reduce), so that every
rank takes the same step and the copies stay bit-identical::

    import rnncore, rnncore.distributed as rd

    rd.init()                                  # torchrun's environment; gloo
    model = rd.DataParallel(rnncore.Sequential(...))   # every rank starts from rank 0's weights
    opt = rnncore.Adam(model.params, model.grads)
    for x, y in batches:                       # this rank's lanes: x[:, rd.lanes(B)]
        model.zero_grad()
        loss = xent.forward(model.forward(x)[0], y)
        model.backward(xent.backward())
        model.average_gradients()              # all-reduce, in place
        opt.step()

Launch with ``torchrun --nproc-per-node 2 script.py`` on one machine, or across machines
with ``torchrun --nnodes N --nproc-per-node P --rdzv-backend c10d --rdzv-endpoint
HOST:PORT script.py`` on each. The process group may also be initialised by the caller
(``torch.distributed.init_process_group("gloo", ...)``).

Failures: a collective that cannot complete raises ``DistributedError`` (a RuntimeError)
on the ranks still running, never hangs. A rank that dies or is killed closes its
connections, and the others raise as soon as they next wait on it (0.03-0.06 s after
``kill -9``, measured on one machine); a rank that stops responding without closing them (a hung process, a
machine cut off from the network) is given up on after the process group's timeout
(``init(timeout=...)``, default ``DEFAULT_TIMEOUT`` = 60 s, or ``RNNCORE_DIST_TIMEOUT``
seconds). Such an error also shuts the process group down (it cannot be used again): exit,
and restart from the last checkpoint.

The helpers that only read the launcher's environment (``launched``, ``rank``,
``world_size``, ``lanes``...) do not import PyTorch; ``init``, ``DataParallel`` and the
collectives do (``pip install rnncore[torch]``).
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import time

import numpy as np

__all__ = ["DataParallel", "DistributedError", "init", "shutdown", "launched", "is_initialized", "rank",
           "world_size", "local_world_size", "is_main", "lanes", "barrier", "all_gather_object",
           "gather_lanes", "file_from_main", "default_threads", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0
WAIT_TIMEOUT = 1800.0  # barrier(): ranks waiting for rank 0's evaluation, sampling, checkpoint
_patient = None  # the process group barrier() uses (same ranks, the long timeout)


class DistributedError(RuntimeError):
    """A collective operation failed: a rank died, was killed, or stopped responding."""


def _env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: expected an integer in the environment, got {value!r}") from None


def _dist():
    try:
        import torch.distributed as dist
    except ImportError as exc:
        raise ImportError("rnncore.distributed needs PyTorch: pip install 'rnncore[torch]'") from exc
    if not dist.is_available():
        raise ImportError("rnncore.distributed: this PyTorch build has no torch.distributed")
    return dist


# ---- where this process stands (from the launcher's environment until init) -------------------
def launched():
    """True when a launcher (torchrun) started this process as one of several
    (WORLD_SIZE > 1 in the environment)."""
    return _env_int("WORLD_SIZE", 1) > 1


def is_initialized():
    """True once the default process group exists (never imports PyTorch to find out)."""
    if "torch" not in sys.modules:
        return False
    dist = sys.modules["torch"].distributed
    return dist.is_available() and dist.is_initialized()


def rank():
    """This process's rank: from the process group once initialised, else RANK when
    launched as one of several, else 0."""
    if is_initialized():
        return _dist().get_rank()
    return _env_int("RANK", 0) if launched() else 0


def world_size():
    """The number of processes: from the process group once initialised, else WORLD_SIZE (1)."""
    return _dist().get_world_size() if is_initialized() else _env_int("WORLD_SIZE", 1)


def local_world_size():
    """Processes on this machine (torchrun's LOCAL_WORLD_SIZE; 1 when not launched)."""
    return _env_int("LOCAL_WORLD_SIZE", 1)


def is_main():
    """True on rank 0, the rank that prints, evaluates and writes files."""
    return rank() == 0


def default_threads():
    """Kernel threads per process when several share this machine: its CPUs divided
    among them (at least 1)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, local_world_size()))


def lanes(n, rank=None, world_size=None):
    """This rank's share of n lanes (batch rows) as a slice: contiguous blocks in rank
    order, sizes differing by at most one (the first n % world_size ranks get one more).
    Concatenating every rank's slice in rank order gives range(n)."""
    r = globals()["rank"]() if rank is None else rank
    w = globals()["world_size"]() if world_size is None else world_size
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive number of lanes, got {n!r}")
    if not 0 <= r < w:
        raise ValueError(f"rank: expected 0 <= rank < world_size ({w}), got {r}")
    if n < w:
        raise ValueError(f"n: {n} lanes cannot be shared among {w} processes (at least one each)")
    q, extra = divmod(int(n), w)
    start = r * q + min(r, extra)
    return slice(start, start + q + (r < extra))


# ---- the process group ------------------------------------------------------------------------
def init(timeout=None, *, backend="gloo", init_method=None, rank=None, world_size=None):
    """Join the process group that torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK,
    WORLD_SIZE) or ``init_method``/``rank``/``world_size`` describe. Returns True when this
    process is one of several (False, and nothing is done, for a single process).

    timeout: seconds a collective (and joining) may wait for the other ranks before it
    raises; default RNNCORE_DIST_TIMEOUT from the environment, else 60. A rank that dies
    is noticed sooner (its connections close). Idempotent: an existing process group is
    kept."""
    if is_initialized():
        return _dist().get_world_size() > 1
    if world_size is None and not launched():
        return False
    name = "timeout"
    if timeout is None:
        name, timeout = "RNNCORE_DIST_TIMEOUT", os.environ.get("RNNCORE_DIST_TIMEOUT", DEFAULT_TIMEOUT)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number of seconds, got {timeout!r}") from None
    if not 0 < timeout < float("inf"):
        raise ValueError(f"{name}: expected a positive number of seconds, got {timeout!r}")
    dist = _dist()
    kwargs = {} if init_method is None else {"init_method": init_method}
    if rank is not None:
        kwargs["rank"] = rank
    if world_size is not None:
        kwargs["world_size"] = world_size
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout), **kwargs)
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"init: could not join the process group within {timeout:g} s "
                               f"(every rank must start; check MASTER_ADDR/MASTER_PORT or the rendezvous "
                               f"endpoint): {exc}") from exc
    return dist.get_world_size() > 1


def shutdown():
    """Leave the process group (no-op when there is none)."""
    global _patient
    _patient = None
    if is_initialized():
        try:
            _dist().destroy_process_group()
        except RuntimeError:  # a group a failed collective left behind: nothing more to release
            pass


def _require_group(what):
    if not is_initialized():
        raise RuntimeError(f"{what}: no process group; call rnncore.distributed.init() (under torchrun) or "
                           f"torch.distributed.init_process_group('gloo', ...) first")
    return _dist()


def _collective(what, fn):
    """Run fn (a collective), turning the failures of a dead or silent rank into DistributedError."""
    start = time.monotonic()
    try:
        return fn()
    except DistributedError:
        raise
    except RuntimeError as exc:
        elapsed = time.monotonic() - start
        n = world_size()
        shutdown()  # unusable now; torn down here, an exiting process cannot abort in its destructors
        raise DistributedError(
            f"{what}: the collective over {n} processes failed after {elapsed:.1f} s: another rank died, was "
            f"killed or stopped responding ({type(exc).__name__}: {exc}). The process group has been shut "
            f"down: exit, and restart from the last checkpoint.") from exc


def barrier(timeout=WAIT_TIMEOUT):
    """Wait until every rank arrives, for up to ``timeout`` seconds (default 30 minutes:
    ranks wait here while rank 0 evaluates, samples or writes a checkpoint, which may take
    longer than a collective's timeout). Uses a second process group, created on first use
    (every rank must call barrier the same number of times)."""
    global _patient
    dist = _require_group("barrier")
    if dist.get_world_size() == 1:
        return
    if _patient is None:
        _patient = _collective("barrier", lambda: dist.new_group(
            backend="gloo", timeout=datetime.timedelta(seconds=timeout)))
    _collective("barrier", lambda: dist.barrier(group=_patient))


def all_gather_object(obj, group=None):
    """Every rank's obj (picklable), in rank order, on every rank."""
    dist = _require_group("all_gather_object")
    out = [None] * dist.get_world_size(group)
    _collective("all_gather_object", lambda: dist.all_gather_object(out, obj, group=group))
    return out


def gather_lanes(arrays, axis=1):
    """Concatenate each rank's arrays along ``axis`` in rank order (the inverse of taking
    ``lanes``), on every rank. arrays: an array, or a (nested) tuple/list of arrays with
    the same structure on every rank; None stays None."""
    parts = all_gather_object(arrays)

    def join(items):
        first = items[0]
        if first is None:
            return None
        if isinstance(first, (tuple, list)):
            return type(first)(join([it[i] for it in items]) for i in range(len(first)))
        return np.concatenate(items, axis=axis)

    return join(parts)


def file_from_main(path):
    """Rank 0's file at ``path`` on every rank: rank 0 returns path (or None when it has no
    such file); the others receive its bytes and return the path of a local temporary copy
    (deleted at exit), or None. For resuming on machines that do not share a filesystem."""
    dist = _require_group("file_from_main")
    payload = [None]
    if dist.get_rank() == 0 and os.path.isfile(path):
        with open(path, "rb") as f:
            payload = [f.read()]
    _collective("file_from_main", lambda: dist.broadcast_object_list(payload, src=0))
    if payload[0] is None:
        return None
    if dist.get_rank() == 0:
        return path
    fd, local = tempfile.mkstemp(prefix="rnncore-rank", suffix=os.path.splitext(path)[1])
    with os.fdopen(fd, "wb") as f:
        f.write(payload[0])
    import atexit
    atexit.register(lambda: os.path.exists(local) and os.unlink(local))
    return local


# ---- data parallelism -----------------------------------------------------------------------------
class DataParallel:
    """Data parallelism for any rnncore module with ``params`` and ``grads`` (Sequential,
    layers, cells, heads).

    At construction every rank checks that the others hold the same parameters (names,
    shapes, dtypes) and takes rank 0's values (a broadcast). ``average_gradients()``
    replaces each rank's gradients by the average over ranks, in place; call it between
    backward and the optimizer's step. ``forward``, ``backward``, ``params``, ``grads``,
    ``zero_grad``, ``train``, ``eval`` and every other attribute are the module's.

    The gradients travel in flat buckets of at most ``bucket_mb`` MiB (one all-reduce
    each, all in flight at once), NumPy buffers shared with torch through
    ``torch.from_numpy``; an array larger than a bucket is reduced where it lies, without
    a copy. Results are identical on every rank (each rank divides the same sums)."""

    def __init__(self, module, *, group=None, bucket_mb=25.0):
        dist = _require_group("DataParallel")
        if not hasattr(module, "params") or not hasattr(module, "grads"):
            raise TypeError(f"module: expected an rnncore module with params and grads, got {type(module).__name__}")
        if not bucket_mb > 0:
            raise ValueError(f"bucket_mb: expected a positive size in MiB, got {bucket_mb!r}")
        backend = dist.get_backend(group)
        if backend not in ("gloo", "mpi"):
            raise ValueError(f"group: rnncore's arrays live in CPU memory; the process group's backend is "
                             f"{backend!r}: use gloo")
        self.module, self.group = module, group
        self.world_size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        names = list(module.params)
        if set(names) != set(module.grads):
            raise ValueError("module: params and grads have different names")
        for n in names:
            p, g = module.params[n], module.grads[n]
            if not (isinstance(p, np.ndarray) and isinstance(g, np.ndarray)):
                raise TypeError(f"module.params[{n!r}]: expected NumPy arrays in params and grads")
            if p.shape != g.shape or p.dtype != g.dtype or not p.flags.c_contiguous or not g.flags.c_contiguous:
                raise ValueError(f"module.grads[{n!r}]: expected a C-contiguous array like its parameter")
        signature = [(n, module.params[n].shape, module.params[n].dtype.str) for n in names]
        everyone = all_gather_object(signature, group=group)
        for r, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                diff = sorted(set(map(str, theirs)) ^ set(map(str, everyone[0])))[:4]
                raise ValueError(f"module: rank {r}'s parameters differ from rank 0's (e.g. {diff}); every rank "
                                 f"must build the same model")
        self._names = names
        self._plan = self._buckets(names, int(bucket_mb * 2 ** 20))
        self.broadcast_parameters()

    def _buckets(self, names, cap):
        """[(names, flat buffer)]: runs of same-dtype arrays packed into flat buffers of at
        most cap bytes; an array of more than cap bytes alone, with None for its buffer
        (reduced where it lies)."""
        plan, run = [], []

        def close():
            if run:
                plan.append((list(run), np.empty(sum(self.module.grads[n].size for n in run),
                                                 self.module.grads[run[0]].dtype)))
                run.clear()

        for n in names:
            g = self.module.grads[n]
            if g.nbytes > cap:
                close()
                plan.append(([n], None))
                continue
            if run and (g.dtype != self.module.grads[run[0]].dtype
                        or sum(self.module.grads[m].nbytes for m in run) + g.nbytes > cap):
                close()
            run.append(n)
        close()
        return plan

    def __getattr__(self, name):
        # called only when normal lookup fails: everything else is the module's
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    def __call__(self, *args, **kwargs):
        return self.module.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self.module.forward(*args, **kwargs)

    def backward(self, *args, **kwargs):
        return self.module.backward(*args, **kwargs)

    def _start(self, what, table, op, factor=None):
        """Start op (a broadcast or an all-reduce) on every bucket of ``table`` (params or
        grads), packing each first (times ``factor`` when given). Returns what ``_finish``
        waits on."""
        import torch
        dist = _dist()
        pending = []
        for names, flat in self._plan:
            if flat is None:
                buf = table[names[0]]
                if factor is not None:
                    buf *= factor
            else:
                buf, at = flat, 0
                for n in names:
                    a = table[n].reshape(-1)
                    if factor is None:
                        flat[at:at + a.size] = a
                    else:
                        np.multiply(a, factor, out=flat[at:at + a.size])
                    at += a.size
            work = _collective(what, lambda b=buf: op(dist, torch.from_numpy(b)))
            pending.append((names, flat, buf, work))
        return pending

    def _finish(self, what, pending, table, divisor=None):
        """Wait for each bucket in turn and unpack it into table (divided by ``divisor``)."""
        for names, flat, buf, work in pending:
            _collective(what, work.wait)
            d = None if divisor is None else np.asarray(divisor, dtype=buf.dtype)
            if flat is None:
                if d is not None:
                    np.divide(buf, d, out=buf)
                continue
            at = 0
            for n in names:
                a = table[n]
                src = flat[at:at + a.size].reshape(a.shape)
                if d is None:
                    a[...] = src
                else:
                    np.divide(src, d, out=a)
                at += a.size

    def broadcast_parameters(self, src=0):
        """Overwrite every rank's parameters with rank ``src``'s (done at construction;
        again e.g. after loading a checkpoint on one rank only)."""
        group = self.group
        pending = self._start("broadcast_parameters", self.module.params,
                              lambda dist, t: dist.broadcast(t, src=src, group=group, async_op=True))
        self._finish("broadcast_parameters", pending, self.module.params)

    def average_gradients(self, weight=None, values=()):
        """Replace each rank's gradients by their average over the ranks, in place.

        weight: this rank's share, e.g. its number of examples when ranks hold different
        numbers (each rank's gradient being a mean over its own examples); the result is
        sum_r weight_r * grad_r / sum_r weight_r. None: every rank counts the same.
        values: numbers to average with the same weights (e.g. the loss, for printing),
        returned as a list of floats (empty if none); they travel in float64, in a small
        all-reduce of their own, in flight with the gradients'."""
        import torch
        dist = _dist()
        values = [float(v) for v in values]
        if weight is not None:
            weight = float(weight)
            if not (weight > 0 and np.isfinite(weight)):
                raise ValueError(f"weight: expected a positive finite number, got {weight!r}")
        group = self.group
        pending = self._start("average_gradients", self.module.grads,
                              lambda dist, t: dist.all_reduce(t, group=group, async_op=True), weight)
        total = float(self.world_size)
        extra = None
        if weight is not None or values:
            w = 1.0 if weight is None else weight
            extra = np.array([w] + [v * w for v in values], np.float64)
            work = _collective("average_gradients",
                               lambda: dist.all_reduce(torch.from_numpy(extra), group=group, async_op=True))
            _collective("average_gradients", work.wait)
            total = float(extra[0])
        self._finish("average_gradients", pending, self.module.grads, total)
        return [] if extra is None else [float(v) / total for v in extra[1:]]

    def __repr__(self):
        return f"DataParallel(rank {self.rank} of {self.world_size}, {self.module!r})"

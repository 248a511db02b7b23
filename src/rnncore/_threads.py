"""Thread control: rnncore.set_num_threads, the thread policy (one runtime owns the
cores), and a threadpoolctl controller so that ``threadpoolctl.threadpool_limits``
(which pins NumPy's BLAS too) also pins rnncore.

Why a policy: NumPy ships its own OpenBLAS, whose worker threads spin (busy-wait, about
0.1 s on x86-64) after every multi-threaded matrix product, and PyTorch's OpenMP workers
spin after each parallel operation. On a machine with few cores, a loop that calls a
NumPy product between rnncore calls then runs rnncore's second thread at half speed or
less: measured, the main job's model with the user's own NumPy output layer ran at the
speed of one thread. Under the default policy "own", the first time an rnncore layer runs
with more than one thread, rnncore asks the other thread pools in the process that
threadpoolctl knows (NumPy's and SciPy's OpenBLAS, MKL, BLIS, OpenMP runtimes such as
PyTorch's) to run one thread each, so their workers never wake; their original counts are
kept, and ``release_cores()`` or ``set_thread_policy("share")`` gives them back. Pools
loaded later (a library imported after the first call) are limited when rnncore next
runs. A count the user sets on such a pool afterwards (threadpoolctl, torch.set_num_threads)
is left as the user set it. No environment variable is read or changed.
"""

from __future__ import annotations

import operator
import sys
import threading
import warnings

POLICIES = ("own", "share")
_lock = threading.Lock()
_policy = "own"
_scanned_modules = -1   # len(sys.modules) when the pools were last scanned
_limited = {}           # filepath -> (threadpoolctl controller, the count before rnncore limited it)


def set_num_threads(n):
    """Threads one kernel call may use (default: the CPUs this process may run on).

    A kernel call uses threads only when a time step has enough work to pay for the
    synchronisation (B*G*H*H >= 2**17 multiply-adds): then each thread runs the whole
    time loop on a slice of the batch, or, for small batches, every step is split over
    slices of the hidden units with a barrier between steps. A call falls back to the
    calling thread alone when the operating system takes the other cores away (another
    thread pool spinning on them). BLAS calls inside rnncore always run single-threaded.
    Results are bitwise reproducible at a given thread count.

    Args:
        n: a positive int.

    Raises:
        TypeError: n is not an integer.
        ValueError: n is not positive.
    """
    from . import _core

    try:
        n = operator.index(n)
    except TypeError as exc:
        raise TypeError(f"n: expected a positive int, got {type(n).__name__}") from exc
    _core.set_num_threads(n)


def get_num_threads():
    """The threads one kernel call may use (see :func:`set_num_threads`)."""
    from . import _core

    return _core.get_num_threads()


def set_thread_policy(policy):
    """How rnncore shares the machine with the other thread pools in the process.

    "own" (the default): while rnncore runs with more than one thread, the other pools
    that threadpoolctl can control (NumPy's and SciPy's BLAS, OpenMP runtimes such as
    PyTorch's) run one thread each, so that their spinning workers do not take the cores
    rnncore's threads need between calls. "share": leave them as they are (and give back
    what "own" took); rnncore's workers still step aside when they lose their cores, so a
    call never stalls, but it may run at one thread's speed."""
    global _policy
    if policy not in POLICIES:
        raise ValueError(f"policy: expected one of {', '.join(map(repr, POLICIES))}, got {policy!r}")
    with _lock:
        _policy = policy
    if policy == "share":
        release_cores()


def get_thread_policy():
    return _policy


def release_cores():
    """Give the other thread pools back the thread counts they had before rnncore limited
    them (under the "own" policy the next rnncore call with more than one thread limits
    them again)."""
    global _scanned_modules
    with _lock:
        for ctl, before in _limited.values():
            try:
                ctl.set_num_threads(before)
            except Exception:  # a library unloaded since: nothing to give back
                pass
        _limited.clear()
        _scanned_modules = -1


def limited_pools():
    """{library path: thread count before rnncore limited it} of the pools now limited."""
    return {path: before for path, (_, before) in _limited.items()}


def _own_blas_dir():
    """rnncore's own OpenBLAS (scipy-openblas32), which its kernels keep at one thread."""
    try:
        import scipy_openblas32
        return scipy_openblas32.get_lib_dir()
    except Exception:
        return None


def claim_cores():
    """Called by the native layers before they run: under the "own" policy, with more than
    one rnncore thread, limit the other pools to one thread (once per set of loaded
    modules; a length comparison otherwise)."""
    global _scanned_modules
    if _policy != "own" or _scanned_modules == len(sys.modules):
        return
    from . import _core

    if _core.get_num_threads() < 2:
        return
    with _lock:
        n = len(sys.modules)
        if _policy != "own" or _scanned_modules == n:
            return
        _scanned_modules = n
        try:
            import threadpoolctl
        except ImportError:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # threadpoolctl's notes about OpenMP runtimes are not ours to raise
            try:
                controllers = threadpoolctl.ThreadpoolController().lib_controllers
            except Exception:
                return
            own = _own_blas_dir()
            for ctl in controllers:
                if ctl.user_api not in ("blas", "openmp") or ctl.filepath in _limited \
                        or (own and ctl.filepath.startswith(own)):
                    continue
                try:
                    before = ctl.num_threads
                    if before > 1:
                        ctl.set_num_threads(1)
                        _limited[ctl.filepath] = (ctl, before)
                except Exception:
                    continue


def _register_threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        return
    if getattr(threadpoolctl, "_rnncore_registered", False) or not hasattr(threadpoolctl, "register"):
        return

    class RnncoreController(threadpoolctl.LibController):
        user_api = "rnncore"
        internal_api = "rnncore"
        filename_prefixes = ("_core",)
        check_symbols = ("rnncore_get_num_threads", "rnncore_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.rnncore_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.rnncore_set_num_threads(int(num_threads))

        def get_version(self):
            from . import __version__
            return __version__

    threadpoolctl.register(RnncoreController)
    threadpoolctl._rnncore_registered = True

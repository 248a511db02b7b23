"""Thread control: rnncore.set_num_threads, and a threadpoolctl controller so that
``threadpoolctl.threadpool_limits`` (which pins NumPy's BLAS too) also pins rnncore."""

from __future__ import annotations

import operator


def set_num_threads(n):
    """Threads one kernel call may use (default: the CPUs this process may run on).

    A kernel call uses threads only when a time step has enough work to pay for the
    synchronisation (B*G*H*H >= 2**17 multiply-adds): then each thread runs the whole
    time loop on a slice of the batch, or, for small batches, every step is split over
    slices of the hidden units with a barrier between steps. A call falls back to the
    calling thread alone when the operating system takes the other cores away (another
    thread pool spinning on them). BLAS calls inside rnncore always run single-threaded.
    Results are bitwise reproducible at a given thread count."""
    from . import _core

    try:
        n = operator.index(n)
    except TypeError as exc:
        raise TypeError(f"n: expected a positive int, got {type(n).__name__}") from exc
    _core.set_num_threads(n)


def get_num_threads():
    from . import _core

    return _core.get_num_threads()


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

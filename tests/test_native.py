"""The native kernels on their own: agreement with the reference for every cell and
option, guard buffers, thread counts, concurrent callers, every instruction-set path,
and clear errors at the rnncore._core entry points."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from rnncore import _core
from rnncore import reference as R
from rnn_testing import TOL, assert_close

CELLS = [("elman", {"nonlinearity": "tanh"}), ("elman", {"nonlinearity": "relu"}),
         ("elman", {"nonlinearity": "sigmoid"}), ("lstm", {}), ("lstm", {"peephole": True}),
         ("gru", {"reset_after": True}), ("gru", {"reset_after": False}), ("indrnn", {"nonlinearity": "relu"}),
         ("indrnn", {"nonlinearity": "tanh"}), ("indrnn", {"nonlinearity": "sigmoid"})]
CELL_IDS = ["elman-tanh", "elman-relu", "elman-sigmoid", "lstm", "lstm-peephole", "gru", "gru-cho", "indrnn-relu",
            "indrnn-tanh", "indrnn-sigmoid"]
GATES = {"elman": 1, "lstm": 4, "gru": 3, "indrnn": 1}
ONE_STATE = ("elman", "indrnn")  # cells whose kernels take a nonlinearity and one state


class Problem:
    """Random inputs and weights for one direction of one cell, callable on a backend."""

    def __init__(self, kind, opts, T, B, I, H, dtype, lengths=None, reverse=False, bias=True, seed=0):
        rng = np.random.default_rng(seed)
        G = GATES[kind]
        self.kind, self.opts, self.reverse, self.dtype = kind, opts, reverse, np.dtype(dtype)
        f = lambda *shape: rng.uniform(-0.6, 0.6, shape).astype(dtype)  # noqa: E731
        self.x, self.h0, self.c0 = f(T, B, I), f(B, H), f(B, H)
        self.w_ih, self.w_hh = f(G * H, I), f(H) if kind == "indrnn" else f(G * H, H)
        self.b_ih, self.b_hh = (f(G * H), f(G * H)) if bias else (None, None)
        self.w_ch = f(3 * H) if opts.get("peephole") else None
        self.lengths = None if lengths is None else np.asarray(lengths, np.int64)
        self.dy, self.dh_n, self.dc_n = f(T, B, H), f(B, H), f(B, H)

    def grads(self):
        g = [np.zeros_like(self.w_ih), np.zeros_like(self.w_hh),
             None if self.b_ih is None else np.zeros_like(self.b_ih),
             None if self.b_hh is None else np.zeros_like(self.b_hh)]
        if self.kind == "lstm":
            g.append(None if self.w_ch is None else np.zeros_like(self.w_ch))
        return g

    def forward(self, ops, out=None):
        kw = {} if out is None else {"out": out}
        if self.kind in ONE_STATE:
            return getattr(ops, f"{self.kind}_forward")(self.x, self.h0, self.w_ih, self.w_hh, self.b_ih, self.b_hh,
                                                        self.opts["nonlinearity"], self.lengths, self.reverse, **kw)
        if self.kind == "lstm":
            return ops.lstm_forward(self.x, self.h0, self.c0, self.w_ih, self.w_hh, self.b_ih, self.b_hh,
                                    self.w_ch, self.lengths, self.reverse, **kw)
        return ops.gru_forward(self.x, self.h0, self.w_ih, self.w_hh, self.b_ih, self.b_hh,
                               self.opts["reset_after"], self.lengths, self.reverse, **kw)

    def backward(self, ops, saved, grads, out=None):
        kw = {} if out is None else {"out": out}
        if self.kind in ONE_STATE:
            return getattr(ops, f"{self.kind}_backward")(self.dy, self.dh_n, self.x, saved[1], self.w_ih, self.w_hh,
                                                         self.opts["nonlinearity"], self.lengths, self.reverse,
                                                         *grads, **kw)
        if self.kind == "lstm":
            return ops.lstm_backward(self.dy, self.dh_n, self.dc_n, self.x, *saved[1:], self.w_ih, self.w_hh,
                                     self.w_ch, self.lengths, self.reverse, *grads, **kw)
        return ops.gru_backward(self.dy, self.dh_n, self.x, *saved[1:], self.w_ih, self.w_hh,
                                self.opts["reset_after"], self.lengths, self.reverse, *grads, **kw)

    def run(self, ops):
        """Forward outputs, backward outputs and gradients, as one flat list. The saved
        per-step buffers (gates, hn) are unspecified at padded steps: zeroed there."""
        fwd = self.forward(ops)
        g = self.grads()
        bwd = self.backward(ops, fwd, g)
        fwd = list(fwd)
        if self.lengths is not None:
            pad = np.arange(self.x.shape[0])[:, None] >= self.lengths[None, :]
            per_step = {"elman": (), "lstm": (3,), "gru": (2, 3), "indrnn": ()}[self.kind]
            for i in per_step:
                fwd[i] = np.where(pad[:, :, None], 0, fwd[i])
        return fwd + list(bwd) + [a for a in g if a is not None]


# ---- agreement with the reference ----------------------------------------------------

@pytest.mark.parametrize("kind,opts", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(5, 3, 7, 4), (7, 2, 5, 33), (3, 9, 4, 70), (1, 1, 1, 1)])
@pytest.mark.parametrize("variant", ["plain", "lengths-reverse", "nobias"])
def test_kernels_match_reference(dtype, kind, opts, shape, variant):
    T, B, I, H = shape
    lengths = None
    if variant == "lengths-reverse":
        lengths = np.random.default_rng(1).integers(0, T + 1, B)
        lengths[0] = T
    p = Problem(kind, opts, T, B, I, H, dtype, lengths=lengths, reverse=variant == "lengths-reverse",
                bias=variant != "nobias")
    got, want = p.run(_core), p.run(R)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == dtype
        assert_close(a, b, TOL[dtype], f"output {i}")


@pytest.mark.parametrize("kind,opts", CELLS, ids=CELL_IDS)
def test_step_kernels_match_reference(dtype, kind, opts):
    p = Problem(kind, opts, 1, 3, 5, 6, dtype)
    x, h, c = p.x[0], p.h0, p.c0
    g_n, g_r = p.grads(), p.grads()
    if kind in ONE_STATE:
        nl = opts["nonlinearity"]
        fn = [getattr(_core, f"{kind}_step_forward")(x, h, p.w_ih, p.w_hh, p.b_ih, p.b_hh, nl)]
        fr = [getattr(R, f"{kind}_step_forward")(x, h, p.w_ih, p.w_hh, p.b_ih, p.b_hh, nl)]
        bn = getattr(_core, f"{kind}_step_backward")(p.dh_n, x, h, fn[0], p.w_ih, p.w_hh, nl, *g_n)
        br = getattr(R, f"{kind}_step_backward")(p.dh_n, x, h, fr[0], p.w_ih, p.w_hh, nl, *g_r)
    elif kind == "lstm":
        fn = _core.lstm_step_forward(x, h, c, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.w_ch)
        fr = R.lstm_step_forward(x, h, c, p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.w_ch)
        bn = _core.lstm_step_backward(p.dh_n, p.dc_n, x, h, c, fn[1], fn[2], p.w_ih, p.w_hh, p.w_ch, *g_n)
        br = R.lstm_step_backward(p.dh_n, p.dc_n, x, h, c, fr[1], fr[2], p.w_ih, p.w_hh, p.w_ch, *g_r)
    else:
        ra = opts["reset_after"]
        fn = _core.gru_step_forward(x, h, p.w_ih, p.w_hh, p.b_ih, p.b_hh, ra)
        fr = R.gru_step_forward(x, h, p.w_ih, p.w_hh, p.b_ih, p.b_hh, ra)
        bn = _core.gru_step_backward(p.dh_n, x, h, fn[1], fn[2], p.w_ih, p.w_hh, ra, *g_n)
        br = R.gru_step_backward(p.dh_n, x, h, fr[1], fr[2], p.w_ih, p.w_hh, ra, *g_r)
    for a, b in zip(list(fn) + list(bn) + [v for v in g_n if v is not None],
                    list(fr) + list(br) + [v for v in g_r if v is not None]):
        assert_close(a, b, TOL[dtype], "step")


# ---- guard buffers --------------------------------------------------------------------

def padded(shape, dtype, fill, pad=37):
    """A C-contiguous array of `shape` inside a larger buffer of sentinels; (array, buffer)."""
    n = int(np.prod(shape))
    buf = np.full(n + 2 * pad, fill, dtype)
    return buf[pad:pad + n].reshape(shape), buf


@pytest.mark.parametrize("kind,opts", CELLS, ids=CELL_IDS)
def test_outputs_fully_written_and_surroundings_untouched(dtype, kind, opts):
    T, B, I, H = 6, 4, 5, 7
    p = Problem(kind, opts, T, B, I, H, dtype, lengths=[6, 0, 3, 5])
    fresh = p.forward(_core)
    sentinel = dtype.type(-7.25e13)
    outs, bufs = zip(*[padded(a.shape, dtype, np.nan) for a in fresh])
    fwd = p.forward(_core, out=tuple(outs))
    for a, buf, ref in zip(fwd, bufs, fresh):
        assert not np.isnan(a).any(), "an output element was not written"
        assert np.isnan(buf[:37]).all() and np.isnan(buf[-37:]).all(), "wrote outside the output"
        np.testing.assert_array_equal(a, ref)
    # gradients land in padded accumulators and padded outputs, surroundings untouched
    grads, gbufs = [], []
    for g in p.grads():
        if g is None:
            grads.append(None)
            continue
        a, buf = padded(g.shape, dtype, sentinel)
        a[...] = 0
        grads.append(a)
        gbufs.append(buf)
    ref_grads = p.grads()
    ref_b = p.backward(_core, fresh, ref_grads)
    want = list(fresh) + list(ref_b) + [g for g in ref_grads if g is not None]
    douts, dbufs = zip(*[padded(a.shape, dtype, np.nan) for a in ref_b])
    bwd = p.backward(_core, fwd, grads, out=tuple(douts))
    for a, buf in zip(bwd, dbufs):
        assert not np.isnan(a).any()
        assert np.isnan(buf[:37]).all() and np.isnan(buf[-37:]).all()
    for buf in gbufs:
        assert (buf[:37] == sentinel).all() and (buf[-37:] == sentinel).all()
    for a, b in zip(list(fwd) + list(bwd) + [g for g in grads if g is not None], want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind,opts", CELLS, ids=CELL_IDS)
def test_backward_adds_into_gradients(kind, opts):
    p = Problem(kind, opts, 4, 3, 5, 6, np.float64)
    fwd = p.forward(_core)
    once = p.grads()
    p.backward(_core, fwd, once)
    twice = p.grads()
    p.backward(_core, fwd, twice)
    p.backward(_core, fwd, twice)
    for a, b in zip(once, twice):
        if a is not None:
            np.testing.assert_array_equal(b, 2 * a)


# ---- threads --------------------------------------------------------------------------

@pytest.mark.parametrize("B", [5, 13], ids=["split-units", "split-rows"])
@pytest.mark.parametrize("kind,opts", CELLS, ids=CELL_IDS)
def test_thread_counts_agree_and_repeat_bitwise(threads, kind, opts, B):
    """Forced onto the threaded path (threshold 0), 1, 2 and 3 threads agree, and each
    count repeats its own results bit for bit. A small batch splits the hidden units
    across threads, a larger one the rows."""
    _core._set_parallel_threshold(0)
    lengths = np.random.default_rng(B).integers(0, 7, B)
    lengths[0] = 6
    p = Problem(kind, opts, 6, B, 7, 100, np.float32, lengths=lengths, reverse=True)
    results = {}
    for n in (1, 2, 3):
        _core.set_num_threads(n)
        results[n] = p.run(_core)
        again = p.run(_core)
        for a, b in zip(results[n], again):
            np.testing.assert_array_equal(a, b)
    for n in (2, 3):
        for a, b in zip(results[n], results[1]):
            assert_close(a, b, 1e-5, f"{n} threads vs 1")


def test_concurrent_python_threads_match_serial(threads):
    """Kernels release the GIL; threads calling them at once get the serial results."""
    _core.set_num_threads(2)
    _core._set_parallel_threshold(0)
    problems = [Problem(kind, opts, 20, 8, 16, 64, np.float32, lengths=[20, 3, 7, 20, 0, 11, 20, 19], seed=i)
                for i, (kind, opts) in enumerate(CELLS)]
    serial = [p.run(_core) for p in problems]
    results = [None] * len(problems)
    errors = []

    def work(i):
        try:
            for _ in range(5):
                results[i] = problems[i].run(_core)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for got, want in zip(results, serial):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_thread_settings_validate():
    with pytest.raises(ValueError, match="n"):
        _core.set_num_threads(0)
    assert _core.get_num_threads() >= 1


# ---- instruction sets -----------------------------------------------------------------

SUBPROCESS_CHECK = """
import numpy as np, sys
sys.path.insert(0, {tests!r})
from test_native import CELLS, Problem
from rnncore import _core, reference as R
assert _core.kernel_isa() == {isa!r}, _core.kernel_isa()
for kind, opts in CELLS:
    for shape in [(5, 3, 7, 4), (4, 13, 6, 41)]:
        p = Problem(kind, opts, *shape, np.float64, lengths=[shape[0]] + [2] * (shape[1] - 1), reverse=True)
        for a, b in zip(p.run(_core), p.run(R)):
            err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-300) if a.size else 0
            assert err < 1e-12, (kind, opts, shape, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["avx2", "sse2"])
def test_narrower_instruction_sets(isa):
    """The AVX2 and SSE2 micro-kernels, forced with RNNCORE_ISA on a wider CPU."""
    order = ["sse2", "avx2", "avx512"]
    if order.index(isa) > order.index(_core.kernel_isa()):
        pytest.skip(f"this CPU has no {isa}")
    env = dict(os.environ, RNNCORE_ISA=isa)
    code = SUBPROCESS_CHECK.format(tests=os.path.dirname(__file__), isa=isa)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "ok"


# ---- bad input at the low level -------------------------------------------------------

def lstm_args(dtype=np.float32, T=3, B=2, I=4, H=5):
    z = lambda *s: np.zeros(s, dtype)  # noqa: E731
    return dict(x=z(T, B, I), h0=z(B, H), c0=z(B, H), w_ih=z(4 * H, I), w_hh=z(4 * H, H), b_ih=z(4 * H),
                b_hh=z(4 * H), w_ch=None, lengths=None, reverse=False)


@pytest.mark.parametrize("name,value,exc,match", [
    ("x", np.zeros((3, 2, 4), np.float16), TypeError, "x: expected float32 or float64"),
    ("h0", np.zeros((2, 5), np.float64), TypeError, "h0: expected float32"),
    ("w_hh", np.zeros((20, 5), np.int32), TypeError, "w_hh: expected float32"),
    ("x", np.zeros((3, 2), np.float32), ValueError, "x: expected 3-D"),
    ("w_ih", np.zeros((20, 3), np.float32), ValueError, "w_ih: expected shape"),
    ("w_hh", np.zeros((19, 5), np.float32), ValueError, "w_hh: expected shape"),
    ("w_hh", np.zeros((0, 0), np.float32), ValueError, "w_hh: the hidden size"),
    ("b_ih", None, ValueError, "b_ih, b_hh: give both"),
    ("w_ch", np.zeros(14, np.float32), ValueError, "w_ch: expected shape"),
    ("c0", np.zeros((5, 2), np.float32).T, ValueError, "c0: expected a C-contiguous"),
    ("lengths", np.array([3, 4]), ValueError, "lengths: every length must be in"),
    ("lengths", np.array([3, -1]), ValueError, "lengths"),
    ("lengths", np.array([3]), ValueError, "lengths: expected shape"),
    ("lengths", np.array([3, 1], np.int32), TypeError, "lengths: expected int64"),
    ("lengths", [3, 1], TypeError, "lengths"),
    ("x", [[[0.0]]], TypeError, "x"),
])
def test_low_level_bad_arguments(name, value, exc, match):
    args = lstm_args()
    args[name] = value
    with pytest.raises(exc, match=match):
        _core.lstm_forward(**args)


def test_low_level_outputs_must_be_writable_and_separate():
    args = lstm_args()
    y, h, c, g = _core.lstm_forward(**args)
    ro = np.zeros_like(h)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.lstm_forward(**args, out=(None, ro, None, None))
    with pytest.raises(ValueError, match="overlaps"):
        _core.lstm_forward(**args, out=(None, h, h, None))
    big = np.zeros(4 * 2 * 5 * 10, np.float32)
    with pytest.raises(ValueError, match="overlaps the input x"):
        x = big[:3 * 2 * 4].reshape(3, 2, 4)
        _core.lstm_forward(**{**args, "x": x}, out=(big[:3 * 2 * 5].reshape(3, 2, 5), None, None, None))
    with pytest.raises(TypeError, match="out"):
        _core.lstm_forward(**args, out=(None, None))
    grads = [np.zeros_like(args["w_ih"]), np.zeros_like(args["w_hh"]), np.zeros(20, np.float32),
             np.zeros(20, np.float32)]
    with pytest.raises(ValueError, match="dw_hh: output buffer overlaps the input w_hh"):
        _core.lstm_backward(None, None, None, args["x"], h, c, g, args["w_ih"], args["w_hh"], None, None, False,
                            grads[0], args["w_hh"], grads[2], grads[3], None)
    with pytest.raises(ValueError, match="dw_ch"):
        _core.lstm_backward(None, None, None, args["x"], h, c, g, args["w_ih"], args["w_hh"], None, None, False,
                            *grads, np.zeros(15, np.float32))


def test_low_level_other_cells_name_their_arguments():
    x = np.zeros((3, 2, 4), np.float32)
    h0 = np.zeros((2, 5), np.float32)
    with pytest.raises(ValueError, match="nonlinearity"):
        _core.elman_forward(x, h0, np.zeros((5, 4), np.float32), np.zeros((5, 5), np.float32), None, None, "gelu")
    with pytest.raises(ValueError, match="w_ih: expected shape"):
        _core.gru_forward(x, h0, np.zeros((5, 4), np.float32), np.zeros((15, 5), np.float32), None, None)
    with pytest.raises(TypeError, match="h_prev: expected float32"):
        _core.gru_step_forward(x[0], h0.astype(np.float64), np.zeros((15, 4), np.float32),
                               np.zeros((15, 5), np.float32), None, None)


def test_empty_dimensions_at_the_low_level():
    for T, B in ((0, 2), (3, 0), (0, 0)):
        p = Problem("lstm", {}, T, B, 4, 5, np.float32)
        out = p.run(_core)
        ref = p.run(R)
        for a, b in zip(out, ref):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=0, atol=0)


def test_set_num_threads_and_threadpoolctl(threads):
    import rnncore
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rnncore.set_num_threads(3)
    assert rnncore.get_num_threads() == 3
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "rnncore"]
    assert len(info) == 1 and info[0]["num_threads"] == 3
    with threadpoolctl.threadpool_limits(1):
        assert rnncore.get_num_threads() == 1
    assert rnncore.get_num_threads() == 3
    with pytest.raises(ValueError):
        rnncore.set_num_threads(0)
    with pytest.raises(TypeError):
        rnncore.set_num_threads(1.5)

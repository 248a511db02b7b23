"""Bad input at every public entry point: a clear TypeError/ValueError naming the
argument, or a documented result; never a crash, a hang or silent garbage.

The low-level rnncore._core functions are checked on their own (they must be safe
without the Python layer in front): for every array argument of every function, every
kind of bad array."""

import numpy as np
import pytest

import rnncore
from rnncore import _core

F = np.float32


def z(*shape, dtype=F):
    return np.zeros(shape, dtype)


T, B, I, H = 3, 2, 4, 5
P = 3  # LSTM's projection (lstmp_*)


def core_calls():
    """name -> (function, dict of valid keyword arguments, names of array arguments that
    are outputs or accumulators)."""
    y, h, c, g = _core.lstm_forward(z(T, B, I), z(B, H), z(B, H), z(4 * H, I), z(4 * H, H), z(4 * H), z(4 * H))
    ye, he = _core.elman_forward(z(T, B, I), z(B, H), z(H, I), z(H, H), z(H), z(H))
    yg, hg, gg, hng = _core.gru_forward(z(T, B, I), z(B, H), z(3 * H, I), z(3 * H, H), z(3 * H), z(3 * H))
    hs, cs, gs = _core.lstm_step_forward(z(B, I), z(B, H), z(B, H), z(4 * H, I), z(4 * H, H), z(4 * H), z(4 * H))
    hgs, ggs, hngs = _core.gru_step_forward(z(B, I), z(B, H), z(3 * H, I), z(3 * H, H), z(3 * H), z(3 * H))
    yi, hi = _core.indrnn_forward(z(T, B, I), z(B, H), z(H, I), z(H), z(H), z(H))
    yp, hp, cp, gp, mp = _core.lstmp_forward(z(T, B, I), z(B, P), z(B, H), z(4 * H, I), z(4 * H, P), z(P, H),
                                             z(4 * H), z(4 * H))
    hps, cps, gps, mps = _core.lstmp_step_forward(z(B, I), z(B, P), z(B, H), z(4 * H, I), z(4 * H, P), z(P, H),
                                                  z(4 * H), z(4 * H))
    yl, hl, cl, wxl, al = _core.lstm_ln_forward(z(T, B, I), z(B, H), z(B, H), z(4 * H, I), z(4 * H, H), z(4 * H),
                                                z(4 * H), z(10 * H))
    hls, cls, wxls, als = _core.lstm_ln_step_forward(z(B, I), z(B, H), z(B, H), z(4 * H, I), z(4 * H, H), z(4 * H),
                                                     z(4 * H), z(10 * H))
    ygl, hgl, wxgl, agl = _core.gru_ln_forward(z(T, B, I), z(B, H), z(3 * H, I), z(3 * H, H), z(3 * H), z(3 * H),
                                               z(6 * H))
    hgls, wxgls, agls = _core.gru_ln_step_forward(z(B, I), z(B, H), z(3 * H, I), z(3 * H, H), z(3 * H), z(3 * H),
                                                  z(6 * H))
    return {
        "lstm_ln_forward": (_core.lstm_ln_forward, dict(
            x=z(T, B, I), h0=z(B, H), c0=z(B, H), w_ih=z(4 * H, I), w_hh=z(4 * H, H), b_ih=z(4 * H), b_hh=z(4 * H),
            ln=z(10 * H), lengths=np.array([3, 1])), ()),
        "lstm_ln_backward": (_core.lstm_ln_backward, dict(
            dy=z(T, B, H), dh_n=z(B, H), dc_n=z(B, H), x=z(T, B, I), h=hl, c=cl, wx=wxl, acts=al, w_ih=z(4 * H, I),
            w_hh=z(4 * H, H), ln=z(10 * H), lengths=np.array([3, 1]), reverse=False, dw_ih=z(4 * H, I),
            dw_hh=z(4 * H, H), db_ih=z(4 * H), db_hh=z(4 * H), dln=z(10 * H)),
            ("dw_ih", "dw_hh", "db_ih", "db_hh", "dln")),
        "lstm_ln_step_forward": (_core.lstm_ln_step_forward, dict(
            x=z(B, I), h_prev=z(B, H), c_prev=z(B, H), w_ih=z(4 * H, I), w_hh=z(4 * H, H), b_ih=z(4 * H),
            b_hh=z(4 * H), ln=z(10 * H)), ()),
        "lstm_ln_step_backward": (_core.lstm_ln_step_backward, dict(
            dh=z(B, H), dc=z(B, H), x=z(B, I), h_prev=z(B, H), c_prev=z(B, H), wx=wxls, acts=als, w_ih=z(4 * H, I),
            w_hh=z(4 * H, H), ln=z(10 * H), dw_ih=z(4 * H, I), dw_hh=z(4 * H, H), db_ih=z(4 * H), db_hh=z(4 * H),
            dln=z(10 * H)), ("dw_ih", "dw_hh", "db_ih", "db_hh", "dln")),
        "gru_ln_forward": (_core.gru_ln_forward, dict(
            x=z(T, B, I), h0=z(B, H), w_ih=z(3 * H, I), w_hh=z(3 * H, H), b_ih=z(3 * H), b_hh=z(3 * H),
            ln=z(6 * H), lengths=np.array([2, 3])), ()),
        "gru_ln_backward": (_core.gru_ln_backward, dict(
            dy=z(T, B, H), dh_n=z(B, H), x=z(T, B, I), h=hgl, wx=wxgl, acts=agl, w_ih=z(3 * H, I), w_hh=z(3 * H, H),
            ln=z(6 * H), lengths=None, reverse=True, dw_ih=z(3 * H, I), dw_hh=z(3 * H, H), db_ih=z(3 * H),
            db_hh=z(3 * H), dln=z(6 * H)), ("dw_ih", "dw_hh", "db_ih", "db_hh", "dln")),
        "gru_ln_step_forward": (_core.gru_ln_step_forward, dict(
            x=z(B, I), h_prev=z(B, H), w_ih=z(3 * H, I), w_hh=z(3 * H, H), b_ih=z(3 * H), b_hh=z(3 * H),
            ln=z(6 * H)), ()),
        "gru_ln_step_backward": (_core.gru_ln_step_backward, dict(
            dh=z(B, H), x=z(B, I), h_prev=z(B, H), wx=wxgls, acts=agls, w_ih=z(3 * H, I), w_hh=z(3 * H, H),
            ln=z(6 * H), dw_ih=z(3 * H, I), dw_hh=z(3 * H, H), db_ih=z(3 * H), db_hh=z(3 * H), dln=z(6 * H)),
            ("dw_ih", "dw_hh", "db_ih", "db_hh", "dln")),
        "lstmp_forward": (_core.lstmp_forward, dict(
            x=z(T, B, I), h0=z(B, P), c0=z(B, H), w_ih=z(4 * H, I), w_hh=z(4 * H, P), w_hr=z(P, H), b_ih=z(4 * H),
            b_hh=z(4 * H), w_ch=z(3 * H), lengths=np.array([3, 1])), ()),
        "lstmp_backward": (_core.lstmp_backward, dict(
            dy=z(T, B, P), dh_n=z(B, P), dc_n=z(B, H), x=z(T, B, I), h=hp, c=cp, gates=gp, m=mp, w_ih=z(4 * H, I),
            w_hh=z(4 * H, P), w_hr=z(P, H), w_ch=z(3 * H), lengths=np.array([3, 1]), reverse=False,
            dw_ih=z(4 * H, I), dw_hh=z(4 * H, P), dw_hr=z(P, H), db_ih=z(4 * H), db_hh=z(4 * H), dw_ch=z(3 * H)),
            ("dw_ih", "dw_hh", "dw_hr", "db_ih", "db_hh", "dw_ch")),
        "lstmp_step_forward": (_core.lstmp_step_forward, dict(
            x=z(B, I), h_prev=z(B, P), c_prev=z(B, H), w_ih=z(4 * H, I), w_hh=z(4 * H, P), w_hr=z(P, H),
            b_ih=z(4 * H), b_hh=z(4 * H), w_ch=z(3 * H)), ()),
        "lstmp_step_backward": (_core.lstmp_step_backward, dict(
            dh=z(B, P), dc=z(B, H), x=z(B, I), h_prev=z(B, P), c_prev=z(B, H), c=cps, gates=gps, m=mps,
            w_ih=z(4 * H, I), w_hh=z(4 * H, P), w_hr=z(P, H), w_ch=None, dw_ih=z(4 * H, I), dw_hh=z(4 * H, P),
            dw_hr=z(P, H), db_ih=z(4 * H), db_hh=z(4 * H), dw_ch=None), ("dw_ih", "dw_hh", "dw_hr", "db_ih", "db_hh")),
        "lstm_forward": (_core.lstm_forward, dict(
            x=z(T, B, I), h0=z(B, H), c0=z(B, H), w_ih=z(4 * H, I), w_hh=z(4 * H, H), b_ih=z(4 * H), b_hh=z(4 * H),
            w_ch=z(3 * H), lengths=np.array([3, 1])), ()),
        "lstm_backward": (_core.lstm_backward, dict(
            dy=z(T, B, H), dh_n=z(B, H), dc_n=z(B, H), x=z(T, B, I), h=h, c=c, gates=g, w_ih=z(4 * H, I),
            w_hh=z(4 * H, H), w_ch=z(3 * H), lengths=np.array([3, 1]), reverse=False, dw_ih=z(4 * H, I),
            dw_hh=z(4 * H, H), db_ih=z(4 * H), db_hh=z(4 * H), dw_ch=z(3 * H)),
            ("dw_ih", "dw_hh", "db_ih", "db_hh", "dw_ch")),
        "elman_forward": (_core.elman_forward, dict(
            x=z(T, B, I), h0=z(B, H), w_ih=z(H, I), w_hh=z(H, H), b_ih=z(H), b_hh=z(H), nonlinearity="relu",
            lengths=np.array([0, 3])), ()),
        "elman_backward": (_core.elman_backward, dict(
            dy=z(T, B, H), dh_n=z(B, H), x=z(T, B, I), h=he, w_ih=z(H, I), w_hh=z(H, H), nonlinearity="tanh",
            lengths=None, reverse=True, dw_ih=z(H, I), dw_hh=z(H, H), db_ih=z(H), db_hh=z(H)),
            ("dw_ih", "dw_hh", "db_ih", "db_hh")),
        "gru_forward": (_core.gru_forward, dict(
            x=z(T, B, I), h0=z(B, H), w_ih=z(3 * H, I), w_hh=z(3 * H, H), b_ih=z(3 * H), b_hh=z(3 * H),
            reset_after=False, lengths=np.array([2, 3])), ()),
        "gru_backward": (_core.gru_backward, dict(
            dy=z(T, B, H), dh_n=z(B, H), x=z(T, B, I), h=hg, gates=gg, hn=hng, w_ih=z(3 * H, I), w_hh=z(3 * H, H),
            reset_after=True, lengths=None, reverse=False, dw_ih=z(3 * H, I), dw_hh=z(3 * H, H), db_ih=z(3 * H),
            db_hh=z(3 * H)), ("dw_ih", "dw_hh", "db_ih", "db_hh")),
        "lstm_step_forward": (_core.lstm_step_forward, dict(
            x=z(B, I), h_prev=z(B, H), c_prev=z(B, H), w_ih=z(4 * H, I), w_hh=z(4 * H, H), b_ih=z(4 * H),
            b_hh=z(4 * H), w_ch=None), ()),
        "lstm_step_backward": (_core.lstm_step_backward, dict(
            dh=z(B, H), dc=z(B, H), x=z(B, I), h_prev=z(B, H), c_prev=z(B, H), c=cs, gates=gs, w_ih=z(4 * H, I),
            w_hh=z(4 * H, H), w_ch=None, dw_ih=z(4 * H, I), dw_hh=z(4 * H, H), db_ih=z(4 * H), db_hh=z(4 * H),
            dw_ch=None), ("dw_ih", "dw_hh", "db_ih", "db_hh")),
        "elman_step_forward": (_core.elman_step_forward, dict(
            x=z(B, I), h_prev=z(B, H), w_ih=z(H, I), w_hh=z(H, H), b_ih=z(H), b_hh=z(H), nonlinearity="sigmoid"), ()),
        "elman_step_backward": (_core.elman_step_backward, dict(
            dh=z(B, H), x=z(B, I), h_prev=z(B, H), h=z(B, H), w_ih=z(H, I), w_hh=z(H, H), nonlinearity="tanh",
            dw_ih=z(H, I), dw_hh=z(H, H), db_ih=z(H), db_hh=z(H)), ("dw_ih", "dw_hh", "db_ih", "db_hh")),
        "gru_step_forward": (_core.gru_step_forward, dict(
            x=z(B, I), h_prev=z(B, H), w_ih=z(3 * H, I), w_hh=z(3 * H, H), b_ih=z(3 * H), b_hh=z(3 * H),
            reset_after=True), ()),
        "gru_step_backward": (_core.gru_step_backward, dict(
            dh=z(B, H), x=z(B, I), h_prev=z(B, H), gates=ggs, hn=hngs, w_ih=z(3 * H, I), w_hh=z(3 * H, H),
            reset_after=True, dw_ih=z(3 * H, I), dw_hh=z(3 * H, H), db_ih=z(3 * H), db_hh=z(3 * H)),
            ("dw_ih", "dw_hh", "db_ih", "db_hh")),
        "indrnn_forward": (_core.indrnn_forward, dict(
            x=z(T, B, I), h0=z(B, H), w_ih=z(H, I), w_hh=z(H), b_ih=z(H), b_hh=z(H), nonlinearity="tanh",
            lengths=np.array([3, 0])), ()),
        "indrnn_backward": (_core.indrnn_backward, dict(
            dy=z(T, B, H), dh_n=z(B, H), x=z(T, B, I), h=hi, w_ih=z(H, I), w_hh=z(H), nonlinearity="relu",
            lengths=np.array([1, 3]), reverse=True, dw_ih=z(H, I), dw_hh=z(H), db_ih=z(H), db_hh=z(H)),
            ("dw_ih", "dw_hh", "db_ih", "db_hh")),
        "indrnn_step_forward": (_core.indrnn_step_forward, dict(
            x=z(B, I), h_prev=z(B, H), w_ih=z(H, I), w_hh=z(H), b_ih=z(H), b_hh=z(H), nonlinearity="relu"), ()),
        "indrnn_step_backward": (_core.indrnn_step_backward, dict(
            dh=z(B, H), x=z(B, I), h_prev=z(B, H), h=z(B, H), w_ih=z(H, I), w_hh=z(H), nonlinearity="sigmoid",
            dw_ih=z(H, I), dw_hh=z(H), db_ih=z(H), db_hh=z(H)), ("dw_ih", "dw_hh", "db_ih", "db_hh")),
        "softmax_xent_forward": (_core.softmax_xent_forward, dict(logits=z(6, 4), targets=np.array([0, 1, 2, 3, 0, 1]),
                                                                  ignore_index=-100), ()),
        "softmax_xent_backward": (_core.softmax_xent_backward, dict(probs=z(6, 4), targets=np.array([0, 1, 2, 3, 0, 1]),
                                                                    ignore_index=-100, scale=1.0), ()),
    }


def mutations(a):
    """(label, bad array) pairs for a valid float32 array argument."""
    out = [("float64", a.astype(np.float64)), ("float16", a.astype(np.float16)), ("int32", a.astype(np.int32)),
           ("complex64", a.astype(np.complex64)), ("bool", a.astype(bool)), ("object", a.astype(object)),
           ("list", a.tolist()), ("scalar", 1.0), ("string", "x"),
           ("ndim+1", a[..., None]), ("ndim-1", a.reshape(-1)[:max(a.size - 1, 0)] if a.ndim == 1 else a[0])]
    for axis in range(a.ndim):
        bigger = list(a.shape)
        bigger[axis] += 1
        out.append((f"dim{axis}+1", np.zeros(bigger, a.dtype)))
    if a.ndim >= 2 and a.shape[-1] > 1 and a.shape[-2] > 1:
        out.append(("fortran", np.asfortranarray(a)))
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else None
    if big is not None and a.shape[-1] > 1:
        out.append(("strided", big[..., ::2]))
        out.append(("zero-stride", np.broadcast_to(a[..., :1], a.shape)))
    return out


CALLS = core_calls()
CASES = []
for fname, (fn, kwargs, outputs) in CALLS.items():
    for arg, value in kwargs.items():
        if isinstance(value, np.ndarray) and value.dtype == F:
            for label, bad in mutations(value):
                CASES.append((fname, arg, label))


# changes that are still valid calls: a forward's T is free (lengths stay within it), and
# the class axis of softmax is free (the targets stay within it), and softmax takes either
# precision (its only float argument sets it)
LEGAL = {(f, "x", "dim0+1") for f in ("lstm_forward", "lstmp_forward", "elman_forward", "gru_forward",
                                       "indrnn_forward", "lstm_ln_forward", "gru_ln_forward")} | {
    ("softmax_xent_forward", "logits", "dim1+1"), ("softmax_xent_backward", "probs", "dim1+1"),
    ("softmax_xent_forward", "logits", "float64"), ("softmax_xent_backward", "probs", "float64")}


@pytest.mark.parametrize("fname,arg,label", CASES, ids=[f"{f}-{a}-{m}" for f, a, m in CASES])
def test_core_rejects_bad_arrays(fname, arg, label):
    fn, kwargs, outputs = CALLS[fname]
    bad = dict(mutations(kwargs[arg]))[label]
    args = dict(kwargs, **{arg: bad})
    if (fname, arg, label) in LEGAL:
        fn(**args)
        return
    with pytest.raises((TypeError, ValueError)) as info:
        fn(**args)
    msg = str(info.value)
    # the message names the argument, or (for a float64 x) the first argument that then mismatches
    assert arg in msg or "x" in msg or "logits" in msg or "probs" in msg or "incompatible function arguments" in msg, msg


@pytest.mark.parametrize("fname", [f for f, (_, _, outs) in CALLS.items() if outs])
def test_core_refuses_read_only_and_aliased_accumulators(fname):
    fn, kwargs, outputs = CALLS[fname]
    for out in outputs:
        if kwargs.get(out) is None:
            continue
        ro = kwargs[out].copy()
        ro.flags.writeable = False
        with pytest.raises(ValueError, match=f"{out}.*read-only|read-only"):
            fn(**dict(kwargs, **{out: ro}))
        alias_of = "w_ih" if "w_ih" in kwargs and kwargs["w_ih"].shape == kwargs[out].shape else None
        if alias_of:
            with pytest.raises(ValueError, match="overlaps"):
                fn(**dict(kwargs, **{out: kwargs[alias_of]}))


@pytest.mark.parametrize("fname", [f for f in CALLS if f.endswith("forward") and "softmax" not in f
                                   and "step" not in f])
def test_core_lengths_and_options(fname):
    fn, kwargs, _ = CALLS[fname]
    for bad, exc in ((np.array([3, 4]), ValueError), (np.array([-1, 0]), ValueError), (np.array([1]), ValueError),
                     (np.array([1, 2], np.int32), TypeError), (np.array([1.0, 2.0]), TypeError), ([1, 2], TypeError),
                     (np.array([[1, 2]]), ValueError)):
        with pytest.raises(exc, match="lengths"):
            fn(**dict(kwargs, lengths=bad))
    if "b_ih" in kwargs:
        with pytest.raises(ValueError, match="b_ih, b_hh"):
            fn(**dict(kwargs, b_ih=None))


def test_core_rejects_sizes_beyond_blas_range():
    """T*B > 2**31-1 rows: refused before anything is allocated or computed (the input is
    an untouched 8.6 GB virtual allocation)."""
    x = np.empty((2 ** 16, 2 ** 15 + 1, 1), F)
    with pytest.raises(ValueError, match="BLAS"):
        _core.elman_forward(x, None, z(1, 1), z(1, 1), None, None)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_absurd_layer_sizes_fail_cleanly(kind):
    cls = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU}[kind]
    with pytest.raises(MemoryError, match="GiB"):
        cls(1, 2 ** 31)
    with pytest.raises(MemoryError, match="parameters"):
        cls(1, 300_000)  # 360 GB of weights: refused before allocating
    layer = cls(2, 3)
    x = np.lib.stride_tricks.as_strided(np.zeros(1, F), (2 ** 30, 2 ** 20, 2), (0, 0, 0))
    with pytest.raises((MemoryError, ValueError)):  # NumPy itself refuses to copy it
        layer.forward(x)
    from rnncore import _checks
    with pytest.raises(MemoryError, match="activations"):
        _checks.fits_in_memory(1 << 62, "the activations")


def test_softmax_bad_targets_and_empty_classes():
    with pytest.raises(ValueError, match="targets"):
        _core.softmax_xent_forward(z(2, 3), np.array([0, 3]))
    with pytest.raises(ValueError, match="logits"):
        _core.softmax_xent_forward(z(2, 0), np.array([0, 0]))
    loss, probs = _core.softmax_xent_forward(z(0, 3), np.zeros(0, np.int64))
    assert loss.shape == (0,) and probs.shape == (0, 3)


# ---- NaN and Inf: propagate, never hang ------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "indrnn"])
@pytest.mark.parametrize("where", ["input", "weight", "inf-input"])
def test_nan_and_inf_propagate(backend, kind, where):
    cls = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU, "indrnn": rnncore.IndRNN}[kind]
    layer = cls(3, 4, backend=backend, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(F)
    if where == "input":
        x[2, 0, 1] = np.nan
    elif where == "weight":
        layer.params["weight_hh_l0"].flat[0] = np.nan
    else:
        x[2, 0, 1] = np.inf
    with np.errstate(all="ignore"):  # the NumPy reference warns about inf * 0, as NumPy does
        y, _ = layer(x)
        dx, _ = layer.backward(np.ones_like(y))
    if where == "input":
        assert np.isnan(y[2:, 0]).all() and np.isfinite(y[:, 1]).all() and np.isfinite(y[:2]).all()
    elif where == "weight":
        assert np.isnan(y[1:]).any()
    else:  # a saturating cell turns +inf into finite values or NaN, never hangs
        assert y.shape == (5, 2, 4)
    assert dx.shape == x.shape


def test_clipping_and_optimizers_with_nan():
    g = {"a": np.array([np.nan, 1.0])}
    assert np.isnan(rnncore.clip_grad_norm(g, 1.0))
    p = {"a": np.zeros(2)}
    rnncore.SGD(p, g, lr=0.1).step()
    assert np.isnan(p["a"][0])  # documented: NaN gradients poison the parameters they touch


# ---- heads, losses, optimizers ---------------------------------------------------------

def test_heads_losses_and_optimizers_name_bad_arguments():
    lin = rnncore.Linear(3, 2)
    with pytest.raises(TypeError, match="x"):
        lin(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x"):
        lin(np.zeros((4, 2), F))
    lin(np.zeros((4, 3), F))
    with pytest.raises(ValueError, match="dy"):
        lin.backward(np.zeros((5, 2), F))
    with pytest.raises(ValueError, match="in_features"):
        rnncore.Linear(0, 2)
    emb = rnncore.Embedding(4, 2)
    with pytest.raises(ValueError, match="ids"):
        emb(np.array([-1]))
    with pytest.raises(RuntimeError, match="forward"):
        rnncore.Embedding(4, 2).backward(np.zeros((1, 2), F))
    with pytest.raises(ValueError, match="reduction"):
        rnncore.SoftmaxCrossEntropy(reduction="max")
    with pytest.raises(TypeError, match="pred"):
        rnncore.MSELoss()(np.zeros(3, np.int64), np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="params, grads"):
        rnncore.Adam([1], [2])
    with pytest.raises(ValueError, match="betas"):
        rnncore.Adam({"a": np.zeros(1)}, {"a": np.zeros(1)}, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="clip"):
        rnncore.clip_grad_value([np.zeros(2)], -1)
    with pytest.raises(ValueError, match="state"):
        rnncore.Sequential(rnncore.LSTM(2, 3)).forward(np.zeros((1, 1, 2), F), state=[None, None])
    with pytest.raises(TypeError, match="layers"):
        rnncore.Sequential(rnncore.LSTM(2, 3), object())
    with pytest.raises(TypeError, match="mixed dtypes"):
        rnncore.Sequential(rnncore.LSTM(2, 3), rnncore.Linear(3, 2, dtype=np.float64))


# ---- LSTM's proj_size ----------------------------------------------------------------------------
@pytest.mark.parametrize("value,exc,match", [
    (-1, ValueError, "proj_size: expected 0 .* got -1"),
    (5, ValueError, r"proj_size: must be smaller than hidden_size \(5\), got 5"),
    (7, ValueError, "hidden_size"),
    (2.0, TypeError, "proj_size: expected an int"),
    (True, TypeError, "proj_size: expected an int"),
    (np.bool_(True), TypeError, "proj_size: expected an int"),
    ("2", TypeError, "proj_size"),
    (None, TypeError, "proj_size"),
])
@pytest.mark.parametrize("cls", [rnncore.LSTM, rnncore.LSTMCell])
def test_bad_proj_size(cls, value, exc, match):
    with pytest.raises(exc, match=match):
        cls(I, H, proj_size=value)


def test_proj_size_accepts_numpy_ints_and_zero():
    assert rnncore.LSTM(I, H, proj_size=np.int64(2)).proj_size == 2
    assert rnncore.LSTM(I, H, proj_size=0).spec is rnncore.LSTM.spec


def test_projected_states_of_the_wrong_shape(backend):
    layer = rnncore.LSTM(I, H, num_layers=2, proj_size=P, backend=backend)
    x = z(T, B, I)
    with pytest.raises(ValueError, match=r"^h0: expected shape \(2, 2, 3\)"):
        layer.forward(x, (z(2, B, H), None))  # h is P wide
    with pytest.raises(ValueError, match=r"^c0: expected shape \(2, 2, 5\)"):
        layer.forward(x, (None, z(2, B, P)))  # c stays H wide
    layer.forward(x)
    with pytest.raises(ValueError, match="^dy"):
        layer.backward(z(T, B, H))
    with pytest.raises(ValueError, match="^dh_n"):
        layer.backward(None, (z(2, B, H), None))
    cell = rnncore.LSTMCell(I, H, proj_size=P, backend=backend)
    with pytest.raises(ValueError, match="^h: expected shape"):
        cell.forward(z(B, I), (z(B, H), z(B, H)))
    with pytest.raises(ValueError, match="^c: expected shape"):
        cell.forward(z(B, I), (z(B, P), z(B, P)))


def test_core_projection_shapes_name_the_argument():
    fn, kwargs, _ = CALLS["lstmp_forward"]
    with pytest.raises(ValueError, match=r"^w_hh: expected shape \(20, 3\)"):
        fn(**dict(kwargs, w_hh=z(4 * H, H)))
    with pytest.raises(ValueError, match=r"^w_hr: expected 2-D array \(P, H\)"):
        fn(**dict(kwargs, w_hr=z(P)))
    with pytest.raises(ValueError, match="^w_hr: the projection size P"):
        fn(**dict(kwargs, w_hr=z(0, H), w_hh=z(4 * H, 0)))
    with pytest.raises(ValueError, match="^h0"):
        fn(**dict(kwargs, h0=z(B, H)))

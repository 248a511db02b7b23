"""The ops around the recurrent layers on rnncore's runtime (cpp/ops/): dense layer,
embedding, softmax cross-entropy, clipping and optimizer steps. Native against the
NumPy reference (rnncore.reference.ops), at one and two threads with the threaded paths
forced on, the same bits at any thread count where the order of additions allows it,
and both backends end to end through the public modules."""

import numpy as np
import pytest

import rnncore
from rnncore import _core
from rnncore.reference import ops as ref
from rnn_testing import TOL, assert_close

SIZES = [(1, 1, 1), (7, 5, 3), (37, 19, 23), (130, 33, 70)]


@pytest.fixture(params=[1, 2], ids=["1t", "2t"])
def threads(request):
    """Thread count, with the threshold below which calls stay on one thread lowered to 0."""
    before_n, before_t = rnncore.get_num_threads(), _core._parallel_threshold()
    rnncore.set_num_threads(request.param)
    _core._set_parallel_threshold(0)
    yield request.param
    rnncore.set_num_threads(before_n)
    _core._set_parallel_threshold(before_t)


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("N,I,O", SIZES)
def test_linear_native_matches_reference(N, I, O, dtype, threads):
    rng = np.random.default_rng(N * 100 + O)
    x, w, b, dy = rand(rng, (N, I), dtype), rand(rng, (O, I), dtype), rand(rng, (O,), dtype), rand(rng, (N, O), dtype)
    for bias in (b, None):
        assert_close(_core.linear_forward(x, w, bias), ref.linear_forward(x, w, bias), TOL[dtype], "y")
        got = [rand(rng, (O, I), dtype), rand(rng, (O,), dtype)]
        want = [a.copy() for a in got]
        dx = _core.linear_backward(dy, x, w, got[0], got[1] if bias is not None else None)
        dx_ref = ref.linear_backward(dy, x, w, want[0], want[1] if bias is not None else None)
        assert_close(dx, dx_ref, TOL[dtype], "dx")
        assert_close(got[0], want[0], TOL[dtype], "dweight")  # added to what was there
        assert_close(got[1], want[1], TOL[dtype], "dbias")
    dw = np.zeros((O, I), dtype)
    assert _core.linear_backward(dy, x, w, dw, None, False) is None
    assert_close(dw, dy.T.astype(np.float64) @ x, TOL[dtype], "dweight without dx")


def test_linear_out_buffer_and_errors():
    x, w = np.ones((4, 3), np.float32), np.ones((2, 3), np.float32)
    out = np.full((4, 2), np.nan, np.float32)
    assert _core.linear_forward(x, w, out=out) is out and (out == 3).all()
    with pytest.raises(TypeError, match="x"):
        _core.linear_forward(x.astype(np.float64), w)
    with pytest.raises(ValueError, match="x"):
        _core.linear_forward(np.ones((4, 2), np.float32), w)
    with pytest.raises(ValueError, match="bias"):
        _core.linear_forward(x, w, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="out"):
        _core.linear_forward(x, w, out=x)  # overlaps an input (and has the wrong shape)
    with pytest.raises(ValueError, match="out"):
        _core.linear_forward(x, w, out=np.empty((2, 4), np.float32))
    with pytest.raises(ValueError, match="dweight"):
        _core.linear_backward(np.ones((4, 2), np.float32), x, w, np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.linear_forward(np.asfortranarray(np.ones((4, 3), np.float32)), w)


@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("N,V,E", [(1, 1, 1), (50, 11, 40), (300, 7, 70)])
def test_embedding_native_matches_reference_bit_for_bit(N, V, E, id_dtype, dtype, threads):
    rng = np.random.default_rng(N + V + E)
    w, dy = rand(rng, (V, E), dtype), rand(rng, (N, E), dtype)
    ids = rng.integers(0, V, N).astype(id_dtype)
    np.testing.assert_array_equal(_core.embedding_forward(ids, w), w[ids])
    got, want = rand(rng, (V, E), dtype), None
    want = got.copy()
    _core.embedding_backward(dy, ids, got)
    ref.embedding_backward(dy, ids, want)  # np.add.at: the same order of additions per element
    np.testing.assert_array_equal(got, want)


def test_embedding_ids_are_checked_before_anything_is_written():
    w = np.ones((4, 3))
    dw = np.zeros((4, 3))
    for bad in (np.array([0, 4]), np.array([-1, 0])):
        with pytest.raises(ValueError, match=r"ids: every id must be in \[0, 4\)"):
            _core.embedding_forward(bad, w)
        with pytest.raises(ValueError, match="ids"):
            _core.embedding_backward(np.ones((2, 3)), bad, dw)
        with pytest.raises(ValueError, match="ids"):
            ref.embedding_forward(bad, w)
    assert (dw == 0).all()
    with pytest.raises(TypeError, match="ids"):
        _core.embedding_forward(np.array([0.0, 1.0]), w)
    with pytest.raises(TypeError, match="ids"):
        _core.embedding_forward(np.array([0, 1], np.int16), w)
    with pytest.raises(ValueError, match="ids"):
        _core.embedding_forward(np.zeros((2, 2), np.int64), w)


@pytest.mark.parametrize("N,V", [(1, 1), (9, 5), (500, 97)])
def test_softmax_xent_native_matches_reference(N, V, dtype, threads):
    rng = np.random.default_rng(N + V)
    z = rand(rng, (N, V), dtype) * 3
    t = rng.integers(0, V, N).astype(np.int64)
    t[::4] = -100
    loss, probs = _core.softmax_xent_forward(z, t, -100)
    loss_ref, probs_ref = ref.softmax_xent_forward(z, t, -100)
    assert_close(loss, loss_ref, TOL[dtype], "loss")
    assert_close(probs, probs_ref, TOL[dtype], "probs")
    assert_close(_core.softmax_xent_backward(probs, t, -100, 0.5), ref.softmax_xent_backward(probs, t, -100, 0.5),
                 TOL[dtype], "dlogits")
    with pytest.raises(ValueError, match="targets"):
        ref.softmax_xent_forward(z, np.full(N, V, np.int64), -100)


def param_arrays(rng, dtype, shapes=((3, 4), (40000,), (7,), (1,), (129, 130))):
    return [rand(rng, s, dtype) for s in shapes]


def test_clip_grad_norm_same_bits_at_any_thread_count(dtype):
    rng = np.random.default_rng(3)
    grads = param_arrays(rng, dtype)
    results = []
    for n in (1, 2):
        rnncore.set_num_threads(n)
        g = [a.copy() for a in grads]
        results.append((_core.clip_grad_norm(g, 1.0), g))
    rnncore.set_num_threads(_core_default_threads())
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)
    want = [a.copy() for a in grads]
    assert ref.clip_grad_norm(want, 1.0) == pytest.approx(results[0][0], rel=1e-12)
    for a, b in zip(results[0][1], want):
        assert_close(a, b, TOL[dtype], "clipped")


def _core_default_threads():
    import os
    return len(os.sched_getaffinity(0))


def test_clip_grad_norm_mixed_dtypes_and_value_clipping(threads):
    rng = np.random.default_rng(4)
    grads = [rand(rng, (50000,), np.float32) * 3, rand(rng, (7, 3), np.float64) * 3]
    want = [a.copy() for a in grads]
    norm = _core.clip_grad_norm(grads, 2.0)
    assert norm == pytest.approx(ref.clip_grad_norm(want, 2.0), rel=1e-12)
    for a, b in zip(grads, want):
        assert_close(a, b, TOL[a.dtype], "clipped")
    want = [a.copy() for a in grads]
    _core.clip_grad_value(grads, 0.5)
    ref.clip_grad_value(want, 0.5)
    for a, b in zip(grads, want):
        np.testing.assert_array_equal(a, b)


OPTIMIZERS = [("sgd", dict(lr=0.1, momentum=0.0, weight_decay=0.0, nesterov=False)),
              ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
              ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False)),
              ("adagrad", dict(lr=0.5, eps=1e-8)),
              ("adam", dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)),
              ("adam", dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1))]


def optimizer_run(backend, kind, kw, params, grads_per_step):
    ps = [p.copy() for p in params]
    P = backend.TensorGroup(ps)
    total = P.size
    state = [np.zeros(total, params[0].dtype) for _ in range(2)]
    for step, grads in enumerate(grads_per_step, 1):
        G = backend.TensorGroup(grads)
        if kind == "sgd":
            backend.sgd_step(P, G, state[0] if kw["momentum"] else None, kw["lr"], kw["momentum"],
                             kw["weight_decay"], kw["nesterov"])
        elif kind == "adagrad":
            backend.adagrad_step(P, G, state[0], kw["lr"], kw["eps"])
        else:
            backend.adam_step(P, G, state[0], state[1], kw["lr"], kw["beta1"], kw["beta2"], kw["eps"],
                              kw["weight_decay"], step)
    return ps, state


@pytest.mark.parametrize("kind,kw", OPTIMIZERS, ids=[f"{k}{i}" for i, (k, _) in enumerate(OPTIMIZERS)])
def test_optimizer_steps_native_match_reference(kind, kw, dtype, threads):
    rng = np.random.default_rng(5)
    params = param_arrays(rng, dtype)
    steps = [[rand(rng, p.shape, dtype) for p in params] for _ in range(3)]
    got, got_state = optimizer_run(_core, kind, kw, params, steps)
    want, want_state = optimizer_run(ref, kind, kw, params, steps)
    tol = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}[np.dtype(dtype)]
    for a, b in zip(got + got_state, want + want_state):
        assert_close(a, b, tol, kind)


def test_optimizer_steps_same_bits_at_any_thread_count():
    rng = np.random.default_rng(6)
    params = param_arrays(rng, np.float32)
    steps = [[rand(rng, p.shape, np.float32) for p in params] for _ in range(2)]
    runs = []
    for n in (1, 2):
        rnncore.set_num_threads(n)
        runs.append(optimizer_run(_core, "adam", OPTIMIZERS[4][1], params, steps))
    rnncore.set_num_threads(_core_default_threads())
    for a, b in zip(runs[0][0] + runs[0][1], runs[1][0] + runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_tensor_group_and_step_errors():
    a, b = np.zeros(3), np.zeros((2, 2))
    with pytest.raises(TypeError, match=r"arrays\[1\]"):
        _core.TensorGroup([a, b.astype(np.float32)])
    with pytest.raises(TypeError, match=r"arrays\[0\]"):
        _core.TensorGroup([np.zeros(3, np.int64)])
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.TensorGroup([np.zeros((3, 4)).T])
    ro = np.zeros(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.TensorGroup([ro])
    with pytest.raises(ValueError, match="overlaps"):
        _core.TensorGroup([b, b.reshape(-1)[:2]])
    P, G = _core.TensorGroup([a, b]), _core.TensorGroup([np.ones(3), np.ones((2, 2))])
    assert len(P) == 2 and P.size == 7 and P.dtype == np.float64
    with pytest.raises(ValueError, match="m"):
        _core.adam_step(P, G, np.zeros(6), np.zeros(7), 0.1, 0.9, 0.999, 1e-8, 0.0, 1)
    m = np.zeros(7)
    with pytest.raises(ValueError, match="v"):
        _core.adam_step(P, G, m, m, 0.1, 0.9, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match="step"):
        _core.adam_step(P, G, m, np.zeros(7), 0.1, 0.9, 0.999, 1e-8, 0.0, 0)
    with pytest.raises(ValueError, match="grads"):
        _core.sgd_step(P, _core.TensorGroup([np.ones(3)]), None, 0.1, 0.0, 0.0, False)
    with pytest.raises(ValueError, match="grads"):
        _core.sgd_step(P, P, None, 0.1, 0.0, 0.0, False)  # the gradients are the parameters
    with pytest.raises(TypeError, match="grads"):
        _core.sgd_step(P, _core.TensorGroup([np.ones(3, np.float32), np.ones((2, 2), np.float32)]), None, 0.1, 0.0,
                       0.0, False)
    with pytest.raises(TypeError, match="grads"):
        _core.clip_grad_norm(None, 1.0)


# ---- the public modules on both backends ----------------------------------------------

def small_lm(backend, seed=0):
    V = 13
    return rnncore.Sequential(rnncore.Embedding(V, 6, seed=seed, backend=backend, dtype=np.float64),
                              rnncore.LSTM(6, 8, dtype=np.float64, seed=seed + 1, backend=backend),
                              rnncore.Linear(8, V, seed=seed + 2, backend=backend, dtype=np.float64)), V


@pytest.mark.parametrize("opt", ["SGD", "Adagrad", "Adam"])
def test_training_steps_agree_across_backends(opt):
    rng = np.random.default_rng(7)
    runs = {}
    for backend in ("native", "reference"):
        model, V = small_lm(backend)
        xent = rnncore.SoftmaxCrossEntropy(backend=backend)
        optimizer = getattr(rnncore, opt)(model.params, model.grads, lr=0.05, backend=backend)
        data = np.random.default_rng(1).integers(0, V, (5, 9, 3))
        losses = []
        for x in data:
            model.zero_grad()
            logits, _ = model.forward(x[:-1])
            losses.append(xent.forward(logits, x[1:]))
            model.backward(xent.backward())
            rnncore.clip_grad_norm(model.grads, 0.5, backend=backend)
            optimizer.step()
        runs[backend] = (losses, {k: v.copy() for k, v in model.params.items()})
    np.testing.assert_allclose(runs["native"][0], runs["reference"][0], rtol=1e-12)
    for k in runs["native"][1]:
        assert_close(runs["native"][1][k], runs["reference"][1][k], 1e-11, k)
    del rng


def test_linear_and_embedding_gradients_by_finite_differences():
    model, V = small_lm("native")
    x = np.random.default_rng(2).integers(0, V, (4, 3))
    report = rnncore.gradcheck_module(model, x)
    assert report, str(report)
    assert "0.weight" in report.errors and "2.weight" in report.errors and "2.bias" in report.errors


def test_modules_keep_their_own_copy_of_inputs():
    lin = rnncore.Linear(3, 2, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    lin.forward(x)
    x_before = x.copy()
    x[...] = 1e6  # the caller reuses its buffer before backward
    lin.backward(np.ones((4, 2)))
    np.testing.assert_allclose(lin.grads["weight"], np.ones((2, 4)) @ x_before)
    emb = rnncore.Embedding(5, 2, dtype=np.float64)
    ids = np.array([1, 1, 3], np.int64)
    emb.forward(ids)
    ids[...] = 0
    emb.backward(np.ones((3, 2)))
    np.testing.assert_array_equal(emb.grads["weight"][:, 0], [0, 2, 0, 1, 0])


def test_optimizer_follows_replaced_arrays_and_rejects_other_shapes():
    p = {"a": np.zeros(3)}
    g = {"a": np.ones(3)}
    opt = rnncore.SGD(p, g, lr=0.5)
    opt.step()
    np.testing.assert_array_equal(p["a"], -0.5)
    p["a"] = np.zeros(3)  # replaced, same shape: the next step updates the new array
    opt.step()
    np.testing.assert_array_equal(p["a"], -0.5)
    p["a"] = np.zeros(4)
    with pytest.raises(ValueError, match="a"):
        opt.step()
    with pytest.raises(TypeError, match="mixed dtypes"):
        rnncore.Adam({"a": np.zeros(2), "b": np.zeros(2, np.float32)}, {"a": np.zeros(2), "b": np.zeros(2, np.float32)})


# ---- sampling and generation ------------------------------------------------------------

def test_sample_logits_native_matches_reference():
    rng = np.random.default_rng(8)
    for V in (1, 2, 9, 300):
        for dt in (np.float32, np.float64):
            z = (rng.standard_normal(V) * 4).astype(dt)
            z[rng.random(V) < 0.2] = -np.inf
            if np.isinf(z).all():
                z[0] = 0
            for temperature in (0.0, 0.3, 1.0, 7.0):
                for u in (0.0, 0.25, 0.5, 0.999999, rng.random()):
                    assert _core.sample_logits(z, temperature, u) == ref.sample_logits(z, temperature, u)


def test_sample_logits_rejects_what_is_not_a_distribution():
    for z in (np.array([np.nan, 1.0]), np.array([np.inf, 0.0]), np.array([-np.inf, -np.inf])):
        with pytest.raises(ValueError, match="logits"):
            _core.sample_logits(z, 1.0, 0.5)
        with pytest.raises(ValueError, match="logits"):
            ref.sample_logits(z, 1.0, 0.5)
    assert _core.sample_logits(np.array([0.0, np.nan, 5.0]), 0.0, 0.0) == 1  # numpy.argmax's NaN
    with pytest.raises(ValueError, match="temperature"):
        _core.sample_logits(np.zeros(3), -1.0, 0.5)
    with pytest.raises(ValueError, match="u"):
        _core.sample_logits(np.zeros(3), 1.0, 1.0)
    with pytest.raises(ValueError, match="temperature"):
        rnncore.sample_logits(np.zeros(3), float("nan"))


GEN_MODELS = [(rnncore.LSTM, {}), (rnncore.LSTM, {"peephole": True}), (rnncore.GRU, {}),
              (rnncore.GRU, {"reset_after": False}), (rnncore.RNN, {"nonlinearity": "relu"}),
              (rnncore.RNN, {"nonlinearity": "sigmoid", "bias": False}), (rnncore.IndRNN, {}),
              (rnncore.IndRNN, {"nonlinearity": "tanh"})]


def gen_model(cls, kw, dtype, V=17):
    return rnncore.Sequential(rnncore.Embedding(V, 5, seed=1, dtype=dtype),
                              cls(5, 8, num_layers=2, seed=2, dtype=dtype, **kw), cls(8, 6, seed=3, dtype=dtype, **kw),
                              rnncore.Linear(6, V, seed=4, dtype=dtype)).eval()


@pytest.mark.parametrize("cls,kw", GEN_MODELS, ids=[f"{c.__name__}{k}" for c, k in GEN_MODELS])
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_native_generation_gives_the_ids_of_the_per_token_forward(cls, kw, temperature, dtype, monkeypatch, threads):
    from rnncore import training
    model = gen_model(cls, kw, dtype)
    rng_native, rng_python = np.random.default_rng(5), np.random.default_rng(5)
    native = rnncore.generate(model, np.array([1, 2, 3]), 60, temperature=temperature, rng=rng_native, end=11)
    monkeypatch.setattr(training, "_native_layers", lambda model, state: None)
    python = rnncore.generate(model, np.array([1, 2, 3]), 60, temperature=temperature, rng=rng_python, end=11)
    np.testing.assert_array_equal(native, python)
    assert rng_native.random() == rng_python.random()  # one draw per sampled id in both


def test_generation_stops_at_end_and_leaves_the_model_alone():
    model = gen_model(rnncore.LSTM, {}, np.float32)
    before = {k: v.copy() for k, v in model.params.items()}
    greedy = rnncore.generate(model, np.array([4]), 40, temperature=0)
    end = int(greedy[5])
    first = int(np.flatnonzero(greedy == end)[0])
    stopped = rnncore.generate(model, np.array([4]), 40, temperature=0, end=end)
    np.testing.assert_array_equal(stopped, greedy[:first + 1])
    assert len(rnncore.generate(model, np.array([4]), 0)) == 0
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])


def test_generation_falls_back_for_models_it_cannot_run_natively():
    V = 9
    seq = [rnncore.Embedding(V, 4, seed=0), rnncore.LSTM(4, 6, bidirectional=True, seed=1), rnncore.Linear(12, V)]
    bidir = rnncore.Sequential(*seq).eval()
    ids = rnncore.generate(bidir, np.array([1]), 5, temperature=0)
    assert ids.shape == (5,) and ids.dtype == np.int64
    with pytest.raises(ValueError, match="steps"):
        rnncore.generate(bidir, np.array([1]), -1)
    with pytest.raises(ValueError, match="temperature"):
        rnncore.generate(bidir, np.array([1]), 3, temperature=-0.5)
    with pytest.raises(TypeError, match="prime"):
        rnncore.generate(bidir, np.array([1.5]), 3)


def test_generate_binding_errors():
    w = np.zeros((4, 3))
    h = np.zeros(2)
    layer = ("lstm", None, np.zeros((8, 3)), np.zeros((8, 2)), None, None, None, h, np.zeros(2))
    args = dict(embedding=w, layers=[layer], head_w=np.zeros((4, 2)), head_b=None, logits0=np.zeros(4), steps=3,
                temperature=0.0, uniforms=None, end=-1)
    assert _core.generate(**args).shape == (3,)
    with pytest.raises(ValueError, match="cell"):
        _core.generate(**{**args, "layers": [("tree",) + layer[1:]]})
    with pytest.raises(ValueError, match="w_hh"):
        _core.generate(**{**args, "layers": [layer[:3] + (np.zeros((7, 2)),) + layer[4:]]})
    with pytest.raises(ValueError, match="head_w"):
        _core.generate(**{**args, "head_w": np.zeros((4, 3))})
    with pytest.raises(TypeError, match="uniforms"):
        _core.generate(**{**args, "temperature": 1.0})
    with pytest.raises(ValueError, match="overlap"):
        _core.generate(**{**args, "layers": [layer[:7] + (h, h)]})
    with pytest.raises(ValueError, match="ids"):  # an id the embedding has no row for
        _core.generate(**{**args, "embedding": np.zeros((2, 3)), "logits0": np.array([0, 0, 0, 1.0])})


def test_native_generation_skips_dropout_layers_in_eval_mode(monkeypatch):
    from rnncore import training
    V = 11
    model = rnncore.Sequential(rnncore.Embedding(V, 4, seed=0),
                               rnncore.Dropout(0.5, seed=1), rnncore.LSTM(4, 6, seed=2), rnncore.Dropout(0.5, seed=3),
                               rnncore.Linear(6, V, seed=4), rnncore.Dropout(0.1, seed=6))
    model.eval()
    with rnncore.no_grad():
        _, state = model.forward(np.array([[1]]))
    assert training._native_layers(model, state) is not None
    native = rnncore.generate(model, np.array([1, 2]), 30, temperature=0.5, rng=np.random.default_rng(0))
    monkeypatch.setattr(training, "_native_layers", lambda model, state: None)
    python = rnncore.generate(model, np.array([1, 2]), 30, temperature=0.5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(native, python)
    model.train()
    monkeypatch.undo()
    with rnncore.no_grad():
        _, state = model.forward(np.array([[1]]))
    assert training._native_layers(model, state) is None  # dropout active: the per-token forward

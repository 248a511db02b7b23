"""ONNX export and import: ONNX Runtime's outputs equal rnncore's for every cell and
option, the graphs pass onnx.checker, float64 graphs agree with ONNX's reference
evaluator, a round trip gives the same model, graphs made elsewhere load, and whatever
cannot be exported is refused by name before a file is written."""

import inspect
import itertools
import zlib

import numpy as np
import pytest

import rnncore
from rnn_testing import WORST_VS_ONNX, rel_err

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import rnncore.onnx as rox  # noqa: E402

T, B, I, H = 6, 5, 7, 4          # odd sizes: a swapped dimension cannot pass
ORT_TOL = 1e-5                   # float32, relative (max |a - b| / max |b|)
WORST = WORST_VS_ONNX            # largest error seen against ONNX, by what (printed at the end)


@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip("onnxruntime")


def session(ort, path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def note(what, err):
    WORST[what] = max(WORST.get(what, 0.0), err)
    return err


def randomise(model, rng):
    """Weights away from the initialisation's narrow range (peepholes included), so that
    every gate block matters and a swapped block cannot pass."""
    for v in model.params.values():
        v[...] = rng.uniform(-0.8, 0.8, v.shape)


CELL_OPTIONS = [("rnn", dict(nonlinearity="tanh")), ("rnn", dict(nonlinearity="relu")),
                ("rnn", dict(nonlinearity="sigmoid")), ("rnn", dict(bias=False)),
                ("lstm", {}), ("lstm", dict(peephole=True)), ("lstm", dict(bias=False, peephole=True)),
                ("gru", dict(reset_after=True)), ("gru", dict(reset_after=False)),
                ("gru", dict(reset_after=False, bias=False))]
LAYERS = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU}


def feeds_for(layer, rng, with_lengths, with_state):
    """Inputs for ONNX Runtime and the same for rnncore's forward."""
    x = rng.standard_normal((B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size))
    x = x.astype(layer.dtype)
    feeds, lengths, state = {"x": x}, None, None
    if with_lengths:
        lengths = rng.integers(0, T + 1, B)
        lengths[:3] = [T, 0, 1]           # full, empty and a single step, always
        feeds["lengths"] = lengths.astype(np.int32)
    if with_state:
        LD = layer.num_layers * layer.num_directions
        states = [rng.standard_normal((LD, B, layer.hidden_size)).astype(layer.dtype)
                  for _ in range(2 if isinstance(layer, rnncore.LSTM) else 1)]
        feeds["h0"] = states[0]
        if len(states) == 2:
            feeds["c0"] = states[1]
        state = tuple(states) if len(states) == 2 else states[0]
    return feeds, lengths, state


def expected(layer, x, state, lengths):
    with rnncore.no_grad():
        y, fin = layer.forward(x, state, lengths)
    return [y] + (list(fin) if isinstance(fin, tuple) else [fin])


# ---- ONNX Runtime equals rnncore ----------------------------------------------------------

@pytest.mark.parametrize("kind,opts", CELL_OPTIONS, ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in o.items())}"
                                                         for k, o in CELL_OPTIONS])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (1, True), (2, False), (3, True)])
@pytest.mark.parametrize("with_lengths,with_state", [(False, False), (True, False), (False, True), (True, True)])
def test_onnx_runtime_matches_rnncore(tmp_path, ort, kind, opts, num_layers, bidirectional, with_lengths,
                                      with_state):
    rng = np.random.default_rng(zlib.crc32(f"{kind}{opts}{num_layers}{bidirectional}{with_lengths}".encode()))
    batch_first = bool(rng.integers(2))   # both layouts over the grid
    layer = LAYERS[kind](I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                         seed=1, **opts)
    randomise(layer, rng)
    path = tmp_path / "m.onnx"
    rox.export(layer, path, lengths=with_lengths, initial_state=with_state)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == (["x"] + (["lengths"] if with_lengths else [])
                                                   + ([n for n in ("h0", "c0")[:2 if kind == "lstm" else 1]]
                                                      if with_state else []))
    assert [o.name for o in model.graph.output] == ["y", "h_n", "c_n"][:3 if kind == "lstm" else 2]
    ops = [n.op_type for n in model.graph.node if n.op_type in ("RNN", "LSTM", "GRU")]
    assert ops == [kind.upper()] * num_layers       # ONNX's own operators, one node per layer
    feeds, lengths, state = feeds_for(layer, rng, with_lengths, with_state)
    got = session(ort, path).run(None, feeds)
    want = expected(layer, feeds["x"], state, lengths)
    for name, a, b in zip(("y", "h_n", "c_n"), got, want):
        assert a.shape == b.shape, name
        err = note(f"float32 {kind}", rel_err(a, b))
        assert err <= ORT_TOL, f"{name}: relative error {err:.3g} against ONNX Runtime"
    if with_lengths:   # zeros at padded steps, exactly
        y = got[0] if not batch_first else got[0].transpose(1, 0, 2)
        for b_, n in enumerate(lengths):
            assert not y[n:, b_].any()


def test_dynamic_time_and_batch_axes(tmp_path, ort):
    rng = np.random.default_rng(0)
    layer = rnncore.GRU(I, H, num_layers=2, bidirectional=True)
    path = tmp_path / "g.onnx"
    rox.export(layer, path, lengths=True, initial_state=True)
    inputs = onnx.load(str(path)).graph.input
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in inputs]
    assert dims == [["T", "B", I], ["B"], [4, "B", H]]
    sess = session(ort, path)
    for t, b in ((1, 1), (9, 2), (3, 11)):
        x = rng.standard_normal((t, b, I)).astype(np.float32)
        lengths = rng.integers(0, t + 1, b)
        h0 = rng.standard_normal((4, b, H)).astype(np.float32)
        got = sess.run(None, {"x": x, "lengths": lengths.astype(np.int32), "h0": h0})
        for a, w in zip(got, expected(layer, x, h0, lengths)):
            assert note("float32 gru", rel_err(a, w)) <= ORT_TOL


def test_embedding_lstm_linear(tmp_path, ort):
    rng = np.random.default_rng(1)
    V = 11
    model = rnncore.Sequential(rnncore.Embedding(V, 6, seed=0), rnncore.LSTM(6, H, num_layers=2, seed=1),
                               rnncore.Linear(H, V, seed=2))
    for with_lengths, with_state in itertools.product((False, True), repeat=2):
        path = tmp_path / f"lm-{with_lengths}-{with_state}.onnx"
        rox.export(model, path, lengths=with_lengths, initial_state=with_state)
        m = onnx.load(str(path))
        onnx.checker.check_model(m, full_check=True)
        assert m.graph.input[0].name == "ids" and m.graph.input[0].type.tensor_type.elem_type == TensorProto.INT64
        ids = rng.integers(0, V, (T, B))
        feeds, lengths, state = {"ids": ids}, None, None
        if with_lengths:
            lengths = rng.integers(0, T + 1, B)
            lengths[0] = 0
            feeds["lengths"] = lengths.astype(np.int32)
        if with_state:
            feeds["h0"], feeds["c0"] = (rng.standard_normal((2, B, H)).astype(np.float32) for _ in range(2))
            state = [(feeds["h0"], feeds["c0"])]
        got = session(ort, path).run(None, feeds)
        with rnncore.no_grad():
            y, (fin,) = model.forward(ids, state, lengths)
        assert [o.name for o in m.graph.output] == ["y", "h_n", "c_n"]
        for a, b in zip(got, [y, *fin]):
            assert note("float32 embedding-lstm-linear", rel_err(a, b)) <= ORT_TOL


def test_sequential_of_several_recurrent_layers_and_activations(tmp_path, ort):
    rng = np.random.default_rng(2)
    model = rnncore.Sequential(
        rnncore.Linear(I, 8, seed=0), rnncore.heads.Activation("relu"),
        rnncore.GRU(8, H, bidirectional=True, reset_after=False, seed=1), rnncore.heads.Activation("tanh"),
        rnncore.LSTM(2 * H, 3, num_layers=2, peephole=True, seed=2), rnncore.heads.Activation("sigmoid"),
        rnncore.RNN(3, 5, nonlinearity="relu", seed=3), rnncore.Linear(5, 2, bias=False, seed=4))
    randomise(model, rng)
    path = tmp_path / "s.onnx"
    rox.export(model, path, lengths=True, initial_state=True)
    m = onnx.load(str(path))
    assert [i.name for i in m.graph.input] == ["x", "lengths", "h0_2", "h0_4", "c0_4", "h0_6"]
    assert [o.name for o in m.graph.output] == ["y", "h_n_2", "h_n_4", "c_n_4", "h_n_6"]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([T, 0, 2, 5, 1])
    st = {n: rng.standard_normal((s, B, h)).astype(np.float32)
          for n, s, h in (("h0_2", 2, H), ("h0_4", 2, 3), ("c0_4", 2, 3), ("h0_6", 1, 5))}
    got = session(ort, path).run(None, {"x": x, "lengths": lengths.astype(np.int32), **st})
    with rnncore.no_grad():
        y, states = model.forward(x, [st["h0_2"], (st["h0_4"], st["c0_4"]), st["h0_6"]], lengths)
    for a, b in zip(got, [y, states[0], *states[1], states[2]]):
        assert note("float32 sequential", rel_err(a, b)) <= ORT_TOL


def test_batch_first_embedding_model(tmp_path, ort):
    rng = np.random.default_rng(3)
    model = rnncore.Sequential(rnncore.Embedding(9, 5), rnncore.GRU(5, H, batch_first=True, num_layers=2),
                               rnncore.Linear(H, 3))
    path = tmp_path / "bf.onnx"
    rox.export(model, path, lengths=True)
    dims = [d.dim_param for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["B", "T"]
    ids = rng.integers(0, 9, (B, T))
    lengths = rng.integers(0, T + 1, B)
    got = session(ort, path).run(None, {"ids": ids, "lengths": lengths.astype(np.int32)})
    with rnncore.no_grad():
        y, (h,) = model.forward(ids, None, lengths)
    assert note("float32 sequential", rel_err(got[0], y)) <= ORT_TOL
    assert note("float32 sequential", rel_err(got[1], h)) <= ORT_TOL


# ---- float64: ONNX's reference evaluator (ONNX Runtime's CPU kernels are float32 only) ----

@pytest.mark.parametrize("kind,opts", [("rnn", {}), ("lstm", {}), ("lstm", dict(peephole=True)),
                                       ("gru", dict(reset_after=True)), ("gru", dict(reset_after=False, bias=False))])
def test_float64_matches_onnx_reference_evaluator(tmp_path, kind, opts):
    from onnx.reference import ReferenceEvaluator   # it ignores sequence_lens and knows only Tanh for RNN
    rng = np.random.default_rng(4)
    layer = LAYERS[kind](I, H, num_layers=2, bidirectional=True, dtype=np.float64, **opts)
    randomise(layer, rng)
    path = tmp_path / "d.onnx"
    rox.export(layer, path, initial_state=True)
    feeds, _, state = feeds_for(layer, rng, False, True)
    got = ReferenceEvaluator(str(path)).run(None, feeds)
    for a, b in zip(got, expected(layer, feeds["x"], state, None)):
        assert note("float64 vs onnx.reference", rel_err(a, b)) <= 1e-12


# ---- the round trip ---------------------------------------------------------------------------

def describe(m):
    """A model's classes and options (Linear and Embedding have no repr of their own)."""
    if isinstance(m, rnncore.Sequential):
        return [describe(layer) for layer in m.layers]
    if isinstance(m, rnncore.Linear):
        return ("Linear", m.in_features, m.out_features, "bias" in m.params, m.dtype)
    if isinstance(m, rnncore.Embedding):
        return ("Embedding", m.num_embeddings, m.embedding_dim, m.dtype)
    return repr(m)     # the recurrent layers' repr lists every option that differs from its default


@pytest.mark.parametrize("make", [
    lambda: rnncore.RNN(I, H, num_layers=2, nonlinearity="sigmoid", bidirectional=True, batch_first=True,
                        dropout=0.25),
    lambda: rnncore.LSTM(I, H, peephole=True, bias=False, dtype=np.float64),
    lambda: rnncore.GRU(I, H, num_layers=3, reset_after=False),
    lambda: rnncore.Sequential(rnncore.Embedding(13, 6), rnncore.LSTM(6, H, num_layers=2, dropout=0.1),
                               rnncore.Linear(H, 13)),
    lambda: rnncore.Sequential(rnncore.GRU(I, H, bidirectional=True), rnncore.heads.Activation("relu"),
                               rnncore.Linear(2 * H, 3, bias=False), rnncore.RNN(3, 2, nonlinearity="relu")),
], ids=["rnn", "lstm-f64", "gru", "embedding-lstm-linear", "mixed"])
def test_round_trip_gives_the_same_model(tmp_path, make):
    rng = np.random.default_rng(5)
    model = make()
    randomise(model, rng)
    path = tmp_path / "m.onnx"
    rox.export(model, path, lengths=True, initial_state=True)
    back = rox.load(path)
    assert type(back) is type(model) and describe(back) == describe(model)
    assert list(back.params) == list(model.params)
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype
        np.testing.assert_array_equal(back.params[k], v, err_msg=k)
    parts = model.layers if isinstance(model, rnncore.Sequential) else [model]
    for a, b in zip(parts, back.layers if isinstance(back, rnncore.Sequential) else [back]):
        if isinstance(a, rnncore.heads.Activation):
            assert b.kind == a.kind
        elif hasattr(a, "dropout"):
            assert b.dropout == a.dropout and b.batch_first == a.batch_first
    model.eval(), back.eval()
    first = parts[0]
    if isinstance(first, rnncore.Embedding):
        x = rng.integers(0, first.num_embeddings, (T, B))
    else:
        x = rng.standard_normal((B, T, I) if first.batch_first else (T, B, I)).astype(model.dtype)
    with rnncore.no_grad():
        ya, yb = model.forward(x)[0], back.forward(x)[0]
    np.testing.assert_array_equal(ya, yb)
    # and the reloaded model exports to the same graph
    rox.export(back, tmp_path / "again.onnx", lengths=True, initial_state=True)
    assert (tmp_path / "again.onnx").read_bytes() == path.read_bytes()


def test_load_accepts_a_model_proto(tmp_path):
    layer = rnncore.LSTM(I, H)
    rox.export(layer, tmp_path / "m.onnx")
    back = rox.load(onnx.load(str(tmp_path / "m.onnx")))
    np.testing.assert_array_equal(back.params["weight_hh_l0"], layer.params["weight_hh_l0"])


# ---- graphs made elsewhere: one LSTM/GRU/RNN node ----------------------------------------------

def foreign_graph(op, D, rng, *, bias=True, peephole=False, layout=0, constants=False, **attrs):
    """An ONNX model with one op node, weights as initializers (or Constant nodes), as
    another exporter would write it."""
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[op]
    arrays = {"W": rng.uniform(-0.7, 0.7, (D, G * H, I)), "R": rng.uniform(-0.7, 0.7, (D, G * H, H))}
    if bias:
        arrays["B"] = rng.uniform(-0.7, 0.7, (D, 2 * G * H))
    if peephole:
        arrays["P"] = rng.uniform(-0.7, 0.7, (D, 3 * H))
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    inputs = ["X", "W", "R", "B" if bias else ""]
    if peephole:
        inputs += ["", "", "", "P"]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    nodes, inits = [], []
    for k, v in arrays.items():
        if constants:
            nodes.append(helper.make_node("Constant", [], [k], value=numpy_helper.from_array(v, k)))
        else:
            inits.append(numpy_helper.from_array(v, k))
    nodes.append(helper.make_node(op, inputs, outs, name="the_rnn", hidden_size=H,
                                  direction="bidirectional" if D == 2 else "forward", layout=layout, **attrs))
    x_shape = ["N", "S", I] if layout else ["S", "N", I]
    out_shapes = [["N", "S", D, H], ["N", D, H], ["N", D, H]] if layout else [["S", D, "N", H], [D, "N", H],
                                                                             [D, "N", H]]
    graph = helper.make_graph(nodes, "foreign", [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape)
                               for o, shape in zip(outs, out_shapes)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m, full_check=True)
    return m


@pytest.mark.parametrize("op,attrs,peephole", [
    ("LSTM", {}, False), ("LSTM", {}, True), ("GRU", dict(linear_before_reset=1), False),
    ("GRU", {}, False), ("RNN", dict(activations=["Relu", "Relu"]), False), ("RNN", {}, False)])
def test_load_a_foreign_single_node_graph(tmp_path, ort, op, attrs, peephole):
    rng = np.random.default_rng(6)
    D = 2 if op != "RNN" or "activations" in attrs else 1
    m = foreign_graph(op, D, rng, peephole=peephole, constants=op == "GRU", **attrs)
    path = tmp_path / "f.onnx"
    onnx.save(m, str(path))
    layer = rox.load(path)
    assert type(layer).__name__ == op and layer.num_layers == 1 and layer.bidirectional == (D == 2)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    Y, *finals = session(ort, path).run(None, {"X": x})
    want = expected(layer, x, None, None)
    y_onnx = Y.transpose(0, 2, 1, 3).reshape(T, B, D * H)
    assert note(f"float32 {op.lower()}", rel_err(y_onnx, want[0])) <= ORT_TOL
    for a, b in zip(finals, want[1:]):
        assert note(f"float32 {op.lower()}", rel_err(a, b)) <= ORT_TOL


def test_load_a_foreign_batchwise_graph_as_batch_first(tmp_path):
    from onnx.reference import ReferenceEvaluator   # ONNX Runtime does not run layout=1
    rng = np.random.default_rng(7)
    m = foreign_graph("LSTM", 1, rng, layout=1, peephole=True)
    layer = rox.load(m)
    assert layer.batch_first and layer.peephole
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    Y, Y_h, Y_c = ReferenceEvaluator(m).run(None, {"X": x})    # Y [B, T, D, H], Y_h [B, D, H]
    want = expected(layer, x, None, None)
    assert rel_err(Y[:, :, 0], want[0]) <= ORT_TOL
    assert rel_err(Y_h.transpose(1, 0, 2), want[1]) <= ORT_TOL
    assert rel_err(Y_c.transpose(1, 0, 2), want[2]) <= ORT_TOL


@pytest.mark.parametrize("change,match", [
    (dict(direction="reverse"), "direction='reverse'"),
    (dict(clip=3.0), "clip"),
    (dict(input_forget=1), "input_forget"),
    (dict(activations=["Sigmoid", "Tanh", "Relu"]), "activations"),
    (dict(activation_alpha=[0.5]), "activation_alpha"),
])
def test_load_refuses_what_rnncore_cannot_run(change, match):
    m = foreign_graph("LSTM", 1, np.random.default_rng(8))
    node = m.graph.node[-1]
    for k, v in change.items():
        for a in list(node.attribute):
            if a.name == k:
                node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(k, v))
    with pytest.raises(ValueError, match=match):
        rox.load(m)


def test_load_refuses_bad_files_and_graphs(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        rox.load(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not a protobuf \xff" * 10)
    with pytest.raises(ValueError, match="path"):
        rox.load(junk)
    with pytest.raises(TypeError, match="path"):
        rox.load(42)
    rng = np.random.default_rng(9)
    two = foreign_graph("GRU", 1, rng)
    second = helper.make_node("GRU", ["Y2", "W", "R", "B"], ["Y3"], name="second", hidden_size=H)
    two.graph.node.append(second)
    with pytest.raises(ValueError, match="exactly one"):
        rox.load(two)
    weights_as_inputs = foreign_graph("RNN", 1, rng)
    w = weights_as_inputs.graph.initializer[0]
    weights_as_inputs.graph.input.append(helper.make_tensor_value_info(w.name, w.data_type, list(w.dims)))
    del weights_as_inputs.graph.initializer[0]
    with pytest.raises(ValueError, match="not stored in the graph"):
        rox.load(weights_as_inputs)


# ---- what cannot be exported: a clear error, nothing written ------------------------------------

def refused(tmp_path, model, exc, match, **kw):
    path = tmp_path / "out.onnx"
    with pytest.raises(exc, match=match):
        rox.export(model, path, **kw)
    assert not path.exists() and not list(tmp_path.glob(".tmp-*"))


def test_export_refuses_other_modules(tmp_path):
    refused(tmp_path, rnncore.LSTMCell(I, H), TypeError, "^model: .*LSTMCell")
    refused(tmp_path, rnncore.Sequential(rnncore.LSTM(I, H), rnncore.GRUCell(H, H)), TypeError,
            r"^model: model\[1\] \(GRUCell\)")
    refused(tmp_path, "lstm.npz", TypeError, "^model")

    class Custom(rnncore.LSTM):
        pass

    refused(tmp_path, Custom(I, H), TypeError, "^model: .*Custom")


def test_export_refuses_an_option_it_does_not_know_by_name(tmp_path, monkeypatch):
    """A layer option the ONNX mapping does not cover (here a stand-in for options a
    later version adds) is refused, naming it, unless it has its default value."""
    original = rnncore.LSTM.__init__

    def with_future(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                    bidirectional=False, *, peephole=False, future_option=0.0, dtype=np.float32, backend=None,
                    seed=None):
        self.future_option = future_option
        original(self, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                 peephole=peephole, dtype=dtype, backend=backend, seed=seed)

    monkeypatch.setattr(rnncore.LSTM, "__init__", with_future)
    assert "future_option" in inspect.signature(rnncore.LSTM.__init__).parameters
    refused(tmp_path, rnncore.LSTM(I, H, future_option=0.1), ValueError, "^model: .*future_option=0.1")
    refused(tmp_path, rnncore.Sequential(rnncore.LSTM(I, H, future_option=0.2)), ValueError,
            r"^model: model\[0\] \(LSTM\) has future_option=0.2")
    rox.export(rnncore.LSTM(I, H), tmp_path / "ok.onnx")       # at its default it is plain LSTM


def test_export_refuses_a_parameter_it_does_not_know(tmp_path):
    layer = rnncore.LSTM(I, H)
    layer.params["weight_hr_l0"] = np.zeros((2, H), np.float32)    # e.g. a projection
    refused(tmp_path, layer, ValueError, "^model: .*weight_hr_l0")


def test_export_checks_its_arguments(tmp_path):
    lstm = rnncore.LSTM(I, H)
    refused(tmp_path, lstm, TypeError, "^lengths", lengths="yes")
    refused(tmp_path, lstm, TypeError, "^initial_state", initial_state=1)
    refused(tmp_path, lstm, ValueError, "^opset", opset=7)
    refused(tmp_path, lstm, ValueError, "^opset", opset=10 ** 4)
    refused(tmp_path, lstm, TypeError, "^opset", opset="17")
    refused(tmp_path, lstm, TypeError, "^metadata", metadata={"a": 1})
    refused(tmp_path, lstm, ValueError, "^metadata", metadata={"rnncore": "mine"})
    refused(tmp_path, rnncore.Sequential(rnncore.Linear(I, 3), rnncore.LSTM(4, H)), ValueError,
            r"^model: model\[1\] expects 4 input features, gets 3")
    refused(tmp_path, rnncore.Sequential(rnncore.LSTM(I, H), rnncore.Embedding(5, 2)), ValueError,
            "^model: .*Embedding.*first")
    refused(tmp_path, rnncore.Sequential(rnncore.Linear(I, 3)), ValueError, "^lengths", lengths=True)
    with pytest.raises(TypeError, match="^path"):
        rox.export(lstm, 3)
    with pytest.raises(ValueError, match="^path: the directory"):
        rox.export(lstm, tmp_path / "no" / "such" / "dir.onnx")
    with pytest.raises(ValueError, match="^path: .*directory"):
        rox.export(lstm, tmp_path)


def test_export_replaces_a_file_only_when_it_succeeds(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"precious")
    with pytest.raises(ValueError):
        rox.export(rnncore.Sequential(rnncore.Linear(I, 3), rnncore.LSTM(4, H)), path)
    assert path.read_bytes() == b"precious"
    rox.export(rnncore.GRU(I, H), path, opset=rox.MIN_OPSET)
    m = onnx.load(str(path))
    assert m.opset_import[0].version == rox.MIN_OPSET and not list(tmp_path.glob(".tmp-*"))


def test_metadata_is_stored(tmp_path, ort):
    path = tmp_path / "m.onnx"
    rox.export(rnncore.RNN(I, H), path, metadata={"vocabulary": '["a", "b"]'})
    assert session(ort, path).get_modelmeta().custom_metadata_map["vocabulary"] == '["a", "b"]'

"""ONNX export and import of rnncore models (needs the ``onnx`` extra:
``pip install "rnncore[onnx]"``, which also brings ONNX Runtime).

``export(model, path)`` writes an ``RNN``, ``LSTM`` or ``GRU`` layer, or a
``Sequential`` of ``Embedding``, recurrent layers, ``Linear`` and
``heads.Activation``, as an ONNX model built on ONNX's own ``RNN``, ``LSTM`` and
``GRU`` operators (one node per stacked layer), so that any ONNX runtime serves it.
``load(path)`` builds the rnncore model back from such a file, or from any ONNX
graph of one ``LSTM``, ``GRU`` or ``RNN`` node whose weights are stored in the graph.

The exported graph
------------------
Inputs, in this order:

- ``x``: float32 (float64 for a float64 model) ``[T, B, I]`` (``[B, T, I]`` when the
  first recurrent layer has ``batch_first``), or ``ids``: int64 ``[T, B]`` when the model
  starts with an ``Embedding``;
- ``lengths``: int32 ``[B]``, each in ``[0, T]``, fed to the operators'
  ``sequence_lens`` (only with ``export(..., lengths=True)``);
- ``h0`` (and ``c0`` for an LSTM): ``[L*D, B, H]``, the initial states (only with
  ``initial_state=True``; zeros otherwise).

Outputs: ``y`` (the last module's output, e.g. ``[T, B, D*H]`` for a recurrent
layer), then ``h_n`` (and ``c_n``), ``[L*D, B, H]``. A ``Sequential`` with several
recurrent layers names their states after their index in it: ``h0_1``, ``h_n_1``, ...
The time and batch axes are dynamic.

The results are rnncore's: outputs are zero at padded steps (``t >= lengths[b]``),
``h_n`` is the state after each sequence's last valid step and a length of 0 passes
``h0`` through (ONNX Runtime returns zeros there; the graph selects ``h0`` for such
rows), the reverse direction starts at each sequence's own last step.

The mapping
-----------
- Gate blocks are reordered: rnncore's (PyTorch's) LSTM ``i, f, g, o`` is ONNX's
  ``i, o, f, c``; GRU ``r, z, n`` is ONNX's ``z, r, h``; ``B`` is ``bias_ih`` followed
  by ``bias_hh`` (no bias: ``B`` is left out).
- LSTM peepholes ``weight_ch`` (``i, f, o``) are ONNX's ``P`` (``i, o, f``), with the
  same semantics (the input and forget gates see ``c_{t-1}``, the output gate ``c_t``).
- ``GRU(reset_after=True)`` is ``linear_before_reset=1``; ``reset_after=False`` is ONNX's
  default GRU.
- ``RNN(nonlinearity=...)`` is the ``activations`` attribute (``Tanh``, ``Relu`` or
  ``Sigmoid``, one per direction).
- ``bidirectional`` is ``direction="bidirectional"``; ``batch_first`` transposes the
  input and the output (ONNX Runtime does not run the operators' ``layout=1``).
- ``Linear`` is ``MatMul`` (by ``weight.T``) and ``Add``; ``Embedding`` is ``Gather``;
  ``Activation`` is ``Tanh``, ``Sigmoid`` or ``Relu``.
- Dropout is a training option: the graph is the model in inference (``eval``) mode.

Anything else (another module, an option or a parameter this mapping does not know)
raises ``TypeError`` or ``ValueError`` naming it, before anything is written.

Example::

    import numpy as np, onnxruntime as ort, rnncore, rnncore.onnx

    lstm = rnncore.LSTM(8, 16, num_layers=2, bidirectional=True)
    rnncore.onnx.export(lstm, "lstm.onnx", lengths=True, initial_state=True)
    sess = ort.InferenceSession("lstm.onnx", providers=["CPUExecutionProvider"])
    y, h_n, c_n = sess.run(None, {"x": x, "lengths": lengths.astype(np.int32),
                                  "h0": h0, "c0": c0})
    same = rnncore.onnx.load("lstm.onnx")          # an rnncore.LSTM with the same weights
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile

import numpy as np

from . import _checks, _spec
from .dropout import Dropout
from .heads import Activation, Embedding, Linear
from .layers import GRU, LSTM, RNN, _Recurrent
from .sequential import Sequential

__all__ = ["export", "load", "DEFAULT_OPSET", "MIN_OPSET"]

#: The ONNX operator set ``export`` targets when ``opset`` is not given (ONNX Runtime
#: 1.13 and later run it).
DEFAULT_OPSET = 17
#: The oldest operator set ``export`` can write (the form of ``Slice``, ``Squeeze`` and
#: ``Unsqueeze`` it uses).
MIN_OPSET = 14

_FORMAT = "rnncore.onnx/1"
_META_KEY = "rnncore"
_MAX_BYTES = 2 ** 31 - 2 ** 24   # protobuf's 2 GiB limit for one file, with room for the graph

# Gate blocks (of H rows) in ONNX's order, as indices of rnncore's blocks.
_GATE_ORDER = {"RNN": (0,), "LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2)}   # LSTM i,o,f,c <- i,f,g,o; GRU z,r,h <- r,z,n
_PEEPHOLE_ORDER = (0, 2, 1)                                          # P i,o,f <- weight_ch i,f,o
_OP_OF = {RNN: "RNN", LSTM: "LSTM", GRU: "GRU"}
_CLASS_OF = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
_ELEM_TYPES = {np.dtype(np.float32): 1, np.dtype(np.float64): 11}   # onnx.TensorProto.FLOAT, DOUBLE

# The constructor options each exportable class may have. An option of a layer that is
# not listed here (one a later version adds) is exportable only at its default value;
# anything else is refused by name.
_COMMON = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
           "weight_drop", "checkpoint_every", "recurrent_dropout", "dtype", "backend", "seed")
_ALLOWED_OPTIONS = {
    RNN: _COMMON + ("nonlinearity",),
    LSTM: _COMMON + ("peephole",),
    GRU: _COMMON + ("reset_after",),
    Linear: ("in_features", "out_features", "bias", "dtype", "seed", "backend"),
    Embedding: ("num_embeddings", "embedding_dim", "dtype", "seed", "backend"),
    Activation: ("kind",),
}
_MISSING = object()


def _require_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('rnncore.onnx needs the onnx package: pip install "rnncore[onnx]"') from exc
    return onnx


# ---- what can be exported ---------------------------------------------------------------

def _modules_of(model):
    """(modules, container): the modules in order, and "Sequential" or None."""
    if isinstance(model, Sequential) and type(model) is Sequential:
        # Dropout layers are the identity in inference, which is what the graph computes
        return [m for m in model.layers if type(m) is not Dropout], "Sequential"
    if type(model) in _OP_OF:
        return [model], None
    raise TypeError(f"model: expected an rnncore RNN, LSTM, GRU or Sequential, got {type(model).__name__}")


def _describe(module, where):
    return f"{where} ({type(module).__name__})" if where else type(module).__name__


def _check_options(module, where):
    """Refuse a module whose class or options the ONNX mapping does not cover."""
    cls = type(module)
    what = _describe(module, where)
    if cls not in _ALLOWED_OPTIONS:
        raise TypeError(f"model: {what} cannot be exported: rnncore.onnx exports RNN, LSTM, GRU, Linear, "
                        f"Embedding and heads.Activation")
    if getattr(module, "zoneout", 0.0) > 0:
        raise ValueError(f"model: {what} has zoneout={module.zoneout}, which the ONNX export cannot express: "
                         f"zoneout changes evaluation too (h_t = z h_(t-1) + (1-z) h~_t), which ONNX's RNN, LSTM "
                         f"and GRU operators have no way to compute (only zoneout=0.0 can be exported)")
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in _ALLOWED_OPTIONS[cls]:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"model: {what} takes **{name}; rnncore.onnx cannot tell which options are in use")
        value = module.__dict__.get(name, _MISSING)
        if value is _MISSING or p.default is p.empty or not _same(value, p.default):
            shown = "unknown" if value is _MISSING else repr(value)
            raise ValueError(f"model: {what} has {name}={shown}, which the ONNX export cannot express "
                             f"(only {name}={p.default!r} can be exported)")
    expected = _expected_params(module)
    unknown = [k for k in module.params if k not in expected]
    missing = [k for k in expected if k not in module.params]
    if unknown or missing:
        raise ValueError(f"model: {what} has parameters {unknown or ''}{' and lacks ' if missing else ''}"
                         f"{missing or ''} that the ONNX export does not know how to write")


def _same(a, b):
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001  an array or an odd object: not the default
        return False


def _expected_params(module):
    if isinstance(module, _Recurrent):
        names = []
        for layer in range(module.num_layers):
            for d in range(module.num_directions):
                sfx = module._suffix(layer, d)
                names += [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                if module.bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                if isinstance(module, LSTM) and module.peephole:
                    names.append(f"weight_ch{sfx}")
        return names
    if isinstance(module, Linear):
        return ["weight", "bias"] if "bias" in module.params else ["weight"]
    if isinstance(module, Embedding):
        return ["weight"]
    return []


def _out_size(module, size, where):
    """The last-axis size after module, checking its input size."""
    if isinstance(module, _Recurrent):
        if size is not None and size != module.input_size:
            raise ValueError(f"model: {where} expects {module.input_size} input features, gets {size}")
        return module.num_directions * module.hidden_size
    if isinstance(module, Linear):
        if size is not None and size != module.in_features:
            raise ValueError(f"model: {where} expects {module.in_features} input features, gets {size}")
        return module.out_features
    if isinstance(module, Embedding):
        return module.embedding_dim
    return size


# ---- building the graph -----------------------------------------------------------------

class _Builder:
    """Nodes and initializers of one graph, with unique names."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes, self.inits, self.used = [], [], set()
        self._consts = {}

    def name(self, base):
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def init(self, base, array):
        name = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, values, dtype=np.int64):
        key = (tuple(values), np.dtype(dtype).str)
        if key not in self._consts:
            self._consts[key] = self.init("const", np.array(values, dtype))
        return self._consts[key]

    def node(self, op, inputs, n_out=1, base=None, **attrs):
        base = base or op.lower()
        outs = [self.name(f"{base}_out{i}" if n_out > 1 else base) for i in range(n_out)]
        while inputs and inputs[-1] == "":
            inputs = inputs[:-1]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), outs, name=self.name(f"{base}_node"),
                                                     **attrs))
        return outs if n_out > 1 else outs[0]


def _onnx_weights(layer, index):
    """W, R, B (or None), P (or None) of stacked layer `index` in ONNX's layout."""
    op = _OP_OF[type(layer)]
    H, order = layer.hidden_size, _GATE_ORDER[op]
    W, R, B, P = [], [], [], []
    for d in range(layer.num_directions):
        w = _spec.Weights.of(layer.params, layer._suffix(index, d))
        W.append(_reorder(w.w_ih, order, H))
        R.append(_reorder(w.w_hh, order, H))
        if layer.bias:
            B.append(np.concatenate([_reorder(w.b_ih, order, H), _reorder(w.b_hh, order, H)]))
        if op == "LSTM" and layer.peephole:
            P.append(_reorder(w.extra, _PEEPHOLE_ORDER, H))
    return np.stack(W), np.stack(R), (np.stack(B) if B else None), (np.stack(P) if P else None)


def _reorder(a, order, H):
    return np.concatenate([a[k * H:(k + 1) * H] for k in order])


def _add_recurrent(g, layer, index, x, lengths_name, len0, states_in, base):
    """Nodes of one recurrent layer over the time-major tensor x [T,B,I].
    Returns (y [T,B,D*H] name, final-state names [(L*D,B,H)] per state)."""
    op = _OP_OF[type(layer)]
    L, D, H = layer.num_layers, layer.num_directions, layer.hidden_size
    n_states = 2 if op == "LSTM" else 1
    finals = [[] for _ in range(n_states)]
    attrs = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if op == "RNN":
        attrs["activations"] = [_ACTIVATIONS[layer.nonlinearity]] * D
    if op == "GRU":
        attrs["linear_before_reset"] = int(layer.reset_after)
    nodes = []
    for k in range(L):
        W, R, B, P = _onnx_weights(layer, k)
        name = f"{base}_l{k}"
        inits = [g.init(f"{name}_W", W), g.init(f"{name}_R", R), "" if B is None else g.init(f"{name}_B", B)]
        init_states = ["", ""]
        for i, s in enumerate(states_in):
            if s is None:
                continue
            init_states[i] = s if L == 1 else g.node("Slice", [s, g.ints([k * D]), g.ints([(k + 1) * D]),
                                                               g.ints([0])], base=f"{name}_init{i}")
        inputs = [x] + inits + [lengths_name or ""] + init_states[:n_states]
        if P is not None:
            inputs.append(g.init(f"{name}_P", P))
        outs = g.node(op, inputs, n_out=1 + n_states, base=name, **attrs)
        nodes.append(g.nodes[-1].name)
        y = outs[0]
        for i in range(n_states):
            fin = outs[1 + i]
            if len0 is not None and init_states[i]:
                # a length of 0 passes the initial state through (ONNX Runtime gives zeros)
                fin = g.node("Where", [len0, init_states[i], fin], base=f"{name}_final{i}")
            finals[i].append(fin)
        if D == 1:   # Y [T,1,B,H] -> [T,B,H]
            x = g.node("Squeeze", [y, g.ints([1])], base=f"{name}_y")
        else:        # Y [T,2,B,H] -> [T,B,2,H] -> [T,B,2H]
            t = g.node("Transpose", [y], base=f"{name}_yt", perm=[0, 2, 1, 3])
            x = g.node("Reshape", [t, g.ints([0, 0, D * H])], base=f"{name}_y")
    states = [f[0] if L == 1 else g.node("Concat", f, base=f"{base}_final{i}", axis=0)
              for i, f in enumerate(finals)]
    return x, states, nodes


def _build(onnx, modules, container, lengths, initial_state, opset, metadata):
    helper = onnx.helper
    dtype = next((m.dtype for m in modules if not isinstance(m, Activation)), np.dtype(np.float32))
    elem = _ELEM_TYPES[np.dtype(dtype)]
    g = _Builder(onnx, dtype)
    recurrent = [i for i, m in enumerate(modules) if isinstance(m, _Recurrent)]
    where = (lambda i: f"model[{i}]") if container else (lambda i: "")
    size = None
    for i, m in enumerate(modules):
        _check_options(m, where(i))
        if isinstance(m, Embedding) and i != 0:
            raise ValueError(f"model: {where(i)} (Embedding) must be the first module: it maps integer ids")
        size = _out_size(m, size, where(i))
    if not recurrent:
        for flag, value in (("lengths", lengths), ("initial_state", initial_state)):
            if value:
                raise ValueError(f"{flag}: the model has no recurrent layer")
    if sum(m.num_parameters() * m.dtype.itemsize for m in modules if not isinstance(m, Activation)) > _MAX_BYTES:
        raise ValueError("model: its parameters exceed the 2 GiB an ONNX file can hold")

    first_rec = modules[recurrent[0]] if recurrent else None
    seq_dims = (["B", "T"] if first_rec.batch_first else ["T", "B"]) if first_rec else None
    inputs, outputs = [], []

    def vi(name, elem_type, shape):
        return helper.make_tensor_value_info(name, elem_type, shape)

    embed_first = isinstance(modules[0], Embedding)
    if embed_first:
        x = "ids"
        inputs.append(vi("ids", onnx.TensorProto.INT64, seq_dims))
    else:
        x = "x"
        first_in = modules[0].input_size if isinstance(modules[0], _Recurrent) else \
            modules[0].in_features if isinstance(modules[0], Linear) else None
        inputs.append(vi("x", elem, None if seq_dims is None or first_in is None else seq_dims + [first_in]))
    g.used.add(x)
    lengths_name = len0 = None
    if lengths:
        lengths_name = "lengths"
        g.used.add(lengths_name)
        inputs.append(vi("lengths", onnx.TensorProto.INT32, ["B"]))
        if initial_state:
            zero = g.init("zero_length", np.array(0, np.int32))
            is0 = g.node("Equal", [lengths_name, zero], base="length_is_0")
            len0 = g.node("Unsqueeze", [is0, g.ints([0, 2])], base="length_is_0_b")   # [1,B,1]
    state_names = {}
    for i in recurrent:
        m = modules[i]
        sfx = "" if len(recurrent) == 1 else f"_{i}"
        names = ["h", "c"][:2 if isinstance(m, LSTM) else 1]
        state_names[i] = ([f"{n}0{sfx}" for n in names], [f"{n}_n{sfx}" for n in names])
        g.used.update(state_names[i][0] + state_names[i][1])
        if initial_state:
            for n in state_names[i][0]:
                inputs.append(vi(n, elem, [m.num_layers * m.num_directions, "B", m.hidden_size]))
    g.used.add("y")

    meta_modules, finals_out = [], []
    for i, m in enumerate(modules):
        base = f"m{i}" if container else _OP_OF[type(m)].lower()
        prefix = f"{i}." if container else ""
        entry = {"class": type(m).__name__}
        if isinstance(m, _Recurrent):
            if m.batch_first:
                x = g.node("Transpose", [x], base=f"{base}_in", perm=[1, 0, 2])
            states_in = state_names[i][0] if initial_state else [None] * len(state_names[i][0])
            x, finals, nodes = _add_recurrent(g, m, i, x, lengths_name, len0, states_in, base)
            if m.batch_first:
                x = g.node("Transpose", [x], base=f"{base}_out", perm=[1, 0, 2])
            finals_out += [(name, fin, m) for name, fin in zip(state_names[i][1], finals)]
            entry["options"] = {k: getattr(m, k) for k in ("input_size", "hidden_size", "num_layers", "bias",
                                                            "batch_first", "dropout", "bidirectional",
                                                            "weight_drop", "checkpoint_every",
                                                            "recurrent_dropout")}
            extra = {RNN: "nonlinearity", LSTM: "peephole", GRU: "reset_after"}[type(m)]
            entry["options"][extra] = getattr(m, extra)
            entry["nodes"] = nodes
        elif isinstance(m, Linear):
            w = g.init(f"{prefix}weight_t", m.params["weight"].T)
            x = g.node("MatMul", [x, w], base=f"{base}_matmul")
            entry["options"] = {"in_features": m.in_features, "out_features": m.out_features,
                                "bias": "bias" in m.params}
            entry["weight_t"] = w
            if "bias" in m.params:
                b = g.init(f"{prefix}bias", m.params["bias"])
                x = g.node("Add", [x, b], base=f"{base}_add")
                entry["bias"] = b
        elif isinstance(m, Embedding):
            w = g.init(f"{prefix}weight", m.params["weight"])
            x = g.node("Gather", [w, x], base=f"{base}_gather", axis=0)
            entry["options"] = {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim}
            entry["weight"] = w
        else:  # Activation
            x = g.node(_ACTIVATIONS[m.kind], [x], base=f"{base}_{m.kind}")
            entry["options"] = {"kind": m.kind}
        meta_modules.append(entry)

    # graph outputs under their public names
    out_dims = None
    if seq_dims is not None:
        last_rec = modules[recurrent[-1]]
        out_dims = (["B", "T"] if last_rec.batch_first else ["T", "B"]) + [size]
    g.nodes.append(helper.make_node("Identity", [x], ["y"], name=g.name("y_node")))
    outputs.append(vi("y", elem, out_dims))
    for name, fin, m in finals_out:
        g.nodes.append(helper.make_node("Identity", [fin], [name], name=g.name(f"{name}_node")))
        outputs.append(vi(name, elem, [m.num_layers * m.num_directions, "B", m.hidden_size]))

    graph = helper.make_graph(g.nodes, "rnncore", inputs, outputs, g.inits)
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opset_ids, producer_name="rnncore",
                              producer_version=_version(), ir_version=helper.find_min_ir_version_for(opset_ids))
    proto.doc_string = "exported by rnncore.onnx.export"
    meta = {"format": _FORMAT, "container": container, "dtype": np.dtype(dtype).name, "lengths": bool(lengths),
            "initial_state": bool(initial_state), "modules": meta_modules}
    helper.set_model_props(proto, {_META_KEY: json.dumps(meta), **metadata})
    return proto


def _version():
    from . import __version__
    return __version__


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_path(path, writing):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file name (str or os.PathLike), got {type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError("path: expected a file name, got ''")
    if writing:
        if os.path.isdir(path):
            raise ValueError(f"path: {path!r} is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ValueError(f"path: the directory {directory!r} does not exist")
    return path


def _check_opset(onnx, opset):
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, (bool, np.bool_)) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset: expected an int, got {type(opset).__name__} {opset!r}")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset: expected {MIN_OPSET} to {newest} (this onnx package's newest), got {opset}")
    return int(opset)


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not hasattr(metadata, "items"):
        raise TypeError(f"metadata: expected a dict of str -> str, got {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata: expected str keys and values, got {k!r}: {type(v).__name__}")
        if k == _META_KEY:
            raise ValueError(f"metadata: the key {_META_KEY!r} is rnncore's own")
    return dict(metadata)


def _preflight(path):
    """What ``export`` needs that a long run should know at its start: the onnx
    package and a writable place for path."""
    _require_onnx()
    _check_path(path, writing=True)


def export(model, path, *, lengths=False, initial_state=False, opset=None, metadata=None):
    """Write ``model`` to ``path`` as an ONNX model (see the module's documentation
    for the graph's inputs and outputs).

    Args:
        model: an ``RNN``, ``LSTM`` or ``GRU`` layer, or a ``Sequential`` of ``Embedding``
            (first), recurrent layers, ``Linear`` and ``heads.Activation``; float32 or
            float64. Dropout, weight drop and recurrent dropout are left out (the graph is
            the model in inference mode); they and ``checkpoint_every`` are kept in the
            metadata, so ``load`` restores them. A layer with ``zoneout`` > 0 is refused:
            zoneout changes evaluation too, which the ONNX operators cannot express.
        path: the file to write (str or os.PathLike). It is written to a temporary file
            in the same directory and renamed, so a failed export leaves an existing
            file as it was; an existing file is replaced.
        lengths: add the int32 input ``lengths`` ``[B]`` (the operators'
            ``sequence_lens``).
        initial_state: add the inputs ``h0`` (and ``c0``) ``[L*D, B, H]``; without them
            the graph starts from zeros.
        opset: the ONNX operator set, from ``MIN_OPSET`` to the installed onnx
            package's newest (default ``DEFAULT_OPSET``).
        metadata: extra ``str -> str`` pairs stored in the model's ``metadata_props``
            (ONNX Runtime: ``session.get_modelmeta().custom_metadata_map``), e.g. a
            vocabulary.

    Raises:
        ImportError: the onnx package is not installed.
        TypeError: ``model`` is not an exportable model or contains a module the
            export does not cover; a flag or ``opset`` of the wrong type.
        ValueError: an option ONNX cannot express (named in the message), a model
            whose sizes do not chain, ``lengths``/``initial_state`` for a model without
            a recurrent layer, a bad ``opset`` or ``path``.

    The graph is checked with ``onnx.checker.check_model(full_check=True)`` before
    anything is written.
    """
    onnx = _require_onnx()
    modules, container = _modules_of(model)
    path = _check_path(path, writing=True)
    lengths = _check_flag("lengths", lengths)
    initial_state = _check_flag("initial_state", initial_state)
    opset = _check_opset(onnx, opset)
    metadata = _check_metadata(metadata)
    proto = _build(onnx, modules, container, lengths, initial_state, opset, metadata)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- reading a graph back ----------------------------------------------------------------

def _tensors(onnx, graph):
    """Every constant tensor of the graph by name: initializers and Constant nodes."""
    out = {t.name: t for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = a.t
    return out


def _array(onnx, tensors, name, what, node):
    if name not in tensors:
        raise ValueError(f"path: input {what} ({name!r}) of the {node.op_type} node {node.name!r} is not stored "
                         f"in the graph (an initializer or a Constant); rnncore.onnx.load needs the weights")
    a = onnx.numpy_helper.to_array(tensors[name])
    if a.dtype not in _ELEM_TYPES:
        raise ValueError(f"path: {what} of the {node.op_type} node {node.name!r} is {a.dtype}; rnncore runs "
                         f"float32 and float64")
    return a


def _read_node(onnx, node, tensors):
    """Decode one ONNX RNN/LSTM/GRU node into rnncore's terms: (options, params per
    direction [{weight_ih, weight_hh, bias_ih, bias_hh, weight_ch}], dtype)."""
    op, label = node.op_type, f"the {node.op_type} node {node.name!r}"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    known = {"hidden_size", "direction", "activations", "activation_alpha", "activation_beta", "clip", "layout"}
    known |= {"LSTM": {"input_forget"}, "GRU": {"linear_before_reset"}, "RNN": set()}[op]
    for a in attrs:
        if a not in known:
            raise ValueError(f"path: {label} has the attribute {a!r}, which rnncore does not know")
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
    direction = text(attrs.get("direction", "forward"))
    if direction not in ("forward", "bidirectional"):
        raise ValueError(f"path: {label} has direction={direction!r}; rnncore layers run forward or "
                         f"bidirectional (a reverse-only layer has no rnncore equivalent)")
    D = 2 if direction == "bidirectional" else 1
    if "clip" in attrs:
        raise ValueError(f"path: {label} has clip={attrs['clip']}; rnncore has no cell clipping")
    if attrs.get("input_forget", 0):
        raise ValueError(f"path: {label} has input_forget=1 (coupled gates); rnncore has no such LSTM")
    if attrs.get("activation_alpha") or attrs.get("activation_beta"):
        raise ValueError(f"path: {label} has activation_alpha/activation_beta; rnncore's activations take none")
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"path: {label} has layout={layout}; expected 0 or 1")
    acts = [text(a).lower() for a in attrs.get("activations", [])]
    options = {"bidirectional": D == 2, "batch_first": layout == 1}
    if op == "RNN":
        acts = acts or ["tanh"] * D
        if len(acts) != D or len(set(acts)) != 1 or acts[0] not in _ACTIVATIONS:
            raise ValueError(f"path: {label} has activations {acts}; rnncore's RNN runs one of tanh, relu, "
                             f"sigmoid, the same in both directions")
        options["nonlinearity"] = acts[0]
    elif acts:
        want = (["sigmoid", "tanh", "tanh"] if op == "LSTM" else ["sigmoid", "tanh"]) * D
        if acts != want:
            raise ValueError(f"path: {label} has activations {acts}; rnncore's {op} runs {want[:len(want) // D]}")
    if op == "GRU":
        options["reset_after"] = bool(attrs.get("linear_before_reset", 0))
    inputs = list(node.input) + [""] * (8 - len(node.input))
    W = _array(onnx, tensors, inputs[1], "W", node)
    R = _array(onnx, tensors, inputs[2], "R", node)
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[op]
    if W.ndim != 3 or R.ndim != 3 or W.shape[0] != D or R.shape[0] != D or R.shape[1] != G * R.shape[2] \
            or W.shape[1] != R.shape[1]:
        raise ValueError(f"path: {label} has W {W.shape} and R {R.shape}; expected [{D}, {G}*H, I] and "
                         f"[{D}, {G}*H, H]")
    H, I = R.shape[2], W.shape[2]
    if int(attrs.get("hidden_size", H)) != H:
        raise ValueError(f"path: {label} has hidden_size={attrs['hidden_size']} but R of shape {R.shape}")
    B = _array(onnx, tensors, inputs[3], "B", node) if inputs[3] else None
    P = _array(onnx, tensors, inputs[7], "P", node) if op == "LSTM" and inputs[7] else None
    if B is not None and B.shape != (D, 2 * G * H):
        raise ValueError(f"path: {label} has B of shape {B.shape}; expected {(D, 2 * G * H)}")
    if P is not None and P.shape != (D, 3 * H):
        raise ValueError(f"path: {label} has P of shape {P.shape}; expected {(D, 3 * H)}")
    dtypes = {a.dtype for a in (W, R, B, P) if a is not None}
    if len(dtypes) != 1:
        raise ValueError(f"path: {label} mixes dtypes {sorted(map(str, dtypes))}")
    options.update(input_size=I, hidden_size=H, bias=B is not None)
    if op == "LSTM":
        options["peephole"] = P is not None
    back = np.argsort(_GATE_ORDER[op])
    params = []
    for d in range(D):
        p = {"weight_ih": _reorder(W[d], back, H), "weight_hh": _reorder(R[d], back, H)}
        if B is not None:
            p["bias_ih"] = _reorder(B[d, :G * H], back, H)
            p["bias_hh"] = _reorder(B[d, G * H:], back, H)
        if P is not None:
            p["weight_ch"] = _reorder(P[d], np.argsort(_PEEPHOLE_ORDER), H)
        params.append(p)
    return options, params, dtypes.pop()


def _recurrent_from_nodes(onnx, nodes, tensors, options, dropout, dtype, backend):
    """An rnncore layer from its ONNX nodes (one per stacked layer)."""
    op = nodes[0].op_type
    cls = _CLASS_OF[op]
    state, first = {}, None
    for k, node in enumerate(nodes):
        opts, params, dt = _read_node(onnx, node, tensors)
        if node.op_type != op:
            raise ValueError(f"path: the layers of one {op} are {[n.op_type for n in nodes]}")
        if first is None:
            first, dtype = opts, dtype or dt
        else:
            for key in opts:
                if key != "input_size" and opts[key] != first[key]:
                    raise ValueError(f"path: the stacked {op} nodes differ in {key}")
        for d, p in enumerate(params):
            for name, a in p.items():
                state[f"{name}_l{k}" + ("_reverse" if d else "")] = a
    kwargs = {k: v for k, v in first.items() if k != "batch_first"}
    kwargs["batch_first"] = bool(options.get("batch_first", first["batch_first"]))
    if options:
        for key, value in options.items():
            if key in kwargs and key not in ("batch_first", "input_size") and kwargs[key] != value:
                raise ValueError(f"path: the graph's {op} has {key}={kwargs[key]!r} but its rnncore metadata "
                                 f"says {value!r}")
        kwargs["input_size"] = options.get("input_size", kwargs["input_size"])
    # options of training only, which the graph does not show: from the metadata
    kwargs.update({k: options[k] for k in ("weight_drop", "checkpoint_every", "recurrent_dropout") if k in options})
    layer = cls(num_layers=len(nodes), dropout=dropout, dtype=dtype, backend=backend, **kwargs)
    layer.load_state_dict(state)
    return layer


def load(path, *, backend=None):
    """Build an rnncore model from an ONNX file.

    Args:
        path: a file written by ``export`` (str or os.PathLike), or an
            ``onnx.ModelProto``; or any ONNX model with exactly one ``LSTM``, ``GRU``
            or ``RNN`` node whose weights (``W``, ``R``, optional ``B`` and ``P``) are
            initializers or ``Constant`` nodes.
        backend: the kernel backend of the modules (default native).

    Returns:
        The rnncore model. For a file written by ``export``, the same kind of model with
        the same options and weights (a layer, or a ``Sequential``); otherwise an
        ``RNN``, ``LSTM`` or ``GRU`` with one layer, ``bidirectional`` for
        ``direction="bidirectional"``, ``batch_first`` for ``layout=1``, ``bias=False``
        without ``B``, ``peephole=True`` with ``P``, in the weights' dtype (float32 or
        float64). States keep rnncore's ``[D, B, H]`` layout whatever the node's
        ``layout``.

    Raises:
        ImportError: the onnx package is not installed.
        TypeError: ``path`` is neither a file name nor a ModelProto.
        FileNotFoundError: no such file.
        ValueError: not an ONNX model, or a graph rnncore cannot represent (the message
            names the node and attribute: reverse-only direction, ``clip``,
            ``input_forget``, other activations, weights that are graph inputs, ...).
    """
    onnx = _require_onnx()
    if isinstance(path, onnx.ModelProto):
        proto = path
    else:
        path = _check_path(path, writing=False)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no such file: {path!r}")
        try:
            proto = onnx.load(path)
        except Exception as exc:  # noqa: BLE001  protobuf's DecodeError and friends
            raise ValueError(f"path: {path!r} is not an ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = proto.graph
    if not graph.node:
        raise ValueError("path: the ONNX model has no nodes")
    tensors = _tensors(onnx, graph)
    props = {p.key: p.value for p in proto.metadata_props}
    if _META_KEY in props:
        return _load_exported(onnx, graph, tensors, props[_META_KEY], backend)
    rec = [n for n in graph.node if n.op_type in _CLASS_OF and n.domain in ("", "ai.onnx")]
    if len(rec) != 1:
        raise ValueError(f"path: expected a graph written by rnncore.onnx.export or one with exactly one LSTM, "
                         f"GRU or RNN node; this one has {len(rec)}")
    return _recurrent_from_nodes(onnx, rec, tensors, {}, 0.0, None, backend)


def _load_exported(onnx, graph, tensors, text, backend):
    try:
        meta = json.loads(text)
        ok = meta.get("format") == _FORMAT
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        raise ValueError(f"path: its {_META_KEY!r} metadata is not of this rnncore version's format ({_FORMAT})")
    dtype = _checks.float_dtype(meta["dtype"])
    by_name = {n.name: n for n in graph.node}

    def weight(name, what):
        if name not in tensors:
            raise ValueError(f"path: the graph lacks the initializer {name!r} ({what})")
        a = onnx.numpy_helper.to_array(tensors[name])
        if a.dtype != dtype:
            raise ValueError(f"path: the initializer {name!r} is {a.dtype}, expected {dtype}")
        return a

    modules = []
    for i, entry in enumerate(meta["modules"]):
        cls, opts = entry.get("class"), dict(entry.get("options", {}))
        if cls in _CLASS_OF:
            missing = [n for n in entry["nodes"] if n not in by_name]
            if missing:
                raise ValueError(f"path: the graph lacks the {cls} nodes {missing}")
            dropout = opts.pop("dropout", 0.0)
            m = _recurrent_from_nodes(onnx, [by_name[n] for n in entry["nodes"]], tensors, opts, dropout, dtype,
                                      backend)
            if m.num_layers != opts.get("num_layers", m.num_layers):
                raise ValueError(f"path: the {cls} has {m.num_layers} nodes, its metadata says {opts['num_layers']}")
        elif cls == "Linear":
            m = Linear(opts["in_features"], opts["out_features"], bias=opts["bias"], dtype=dtype, backend=backend)
            state = {"weight": weight(entry["weight_t"], "Linear weight").T}
            if opts["bias"]:
                state["bias"] = weight(entry["bias"], "Linear bias")
            m.load_state_dict(state)
        elif cls == "Embedding":
            m = Embedding(opts["num_embeddings"], opts["embedding_dim"], dtype=dtype, backend=backend)
            m.load_state_dict({"weight": weight(entry["weight"], "Embedding weight")})
        elif cls == "Activation":
            m = Activation(opts["kind"])
        else:
            raise ValueError(f"path: its metadata names an unknown module {cls!r}")
        modules.append(m)
    if meta["container"] == "Sequential":
        return Sequential(*modules)
    if len(modules) != 1:
        raise ValueError("path: its metadata lists several modules without a container")
    return modules[0]

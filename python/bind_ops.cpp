// Bindings of the ops around the recurrent layers (cpp/ops/): dense layer, embedding,
// clipping and optimizer steps. Glue only: check, allocate, release the GIL, call.
#include <cmath>
#include <string>
#include <vector>

#include "arrays.h"
#include "ops/clip.h"
#include "ops/generate.h"
#include "ops/linear.h"
#include "ops/optim.h"

namespace rnncore_py {

namespace {

// ---- linear and embedding ------------------------------------------------------------

template <typename S>
py::array linear_forward(const py::array& x, const py::array& w, const py::object& b, const py::object& out) {
  if (w.ndim() != 2) throw py::value_error("weight: expected 2-D array (O, I), got shape " + shape_of(w));
  if (x.ndim() != 2) throw py::value_error("x: expected 2-D array (N, I), got shape " + shape_of(x));
  const index_t O = w.shape(0), I = w.shape(1), N = x.shape(0);
  const S* pw = checked<S>(w, "weight", {O, I});
  const S* px = checked<S>(x, "x", {N, I});
  const S* pb = optional<S>(b, "bias", {O});
  auto y = output<S>(out, "out", {N, O});
  check_disjoint({{y, "out"}}, {{x, "x"}, {w, "weight"}, {b, "bias"}});
  S* py_ = y.mutable_data();
  {
    py::gil_scoped_release release;
    rnncore::linear_forward<S>(py_, px, pw, pb, N, I, O);
  }
  return y;
}

template <typename S>
py::object linear_backward(const py::array& dy, const py::array& x, const py::array& w, const py::array& dw,
                           const py::object& db, bool need_dx, const py::object& out) {
  if (w.ndim() != 2) throw py::value_error("weight: expected 2-D array (O, I), got shape " + shape_of(w));
  if (x.ndim() != 2) throw py::value_error("x: expected 2-D array (N, I), got shape " + shape_of(x));
  const index_t O = w.shape(0), I = w.shape(1), N = x.shape(0);
  const S* pw = checked<S>(w, "weight", {O, I});
  const S* px = checked<S>(x, "x", {N, I});
  const S* pdy = checked<S>(dy, "dy", {N, O});
  S* pdw = checked<S>(dw, "dweight", {O, I}, true);
  S* pdb = optional<S>(db, "dbias", {O}, true);
  py::object dx = py::none();
  S* pdx = nullptr;
  if (need_dx) {
    auto a = output<S>(out, "out", {N, I});
    pdx = a.mutable_data();
    dx = a;
  } else if (!out.is_none()) {
    throw py::value_error("out: given although need_dx is False");
  }
  check_disjoint({{dw, "dweight"}, {db, "dbias"}, {dx, "out"}}, {{dy, "dy"}, {x, "x"}, {w, "weight"}});
  {
    py::gil_scoped_release release;
    rnncore::linear_backward<S>(pdx, pdw, pdb, pdy, px, pw, N, I, O);
  }
  return dx;
}

const std::int32_t* checked_int32(const py::array& a, const char* name) {
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(std::int32_t) != 0)
    throw py::value_error(std::string(name) + ": expected an aligned array");
  return static_cast<const std::int32_t*>(a.data());
}

// ids: a 1-D int32 or int64 array, every id in [0, V). Calls fn(pointer).
template <typename Fn>
void with_ids(const py::array& ids, index_t V, Fn&& fn) {
  if (ids.ndim() != 1) throw py::value_error("ids: expected 1-D array (N,), got shape " + shape_of(ids));
  const index_t N = ids.shape(0);
  auto check = [&](const auto* p) {
    for (index_t n = 0; n < N; ++n)
      if (p[n] < 0 || p[n] >= V)
        throw py::value_error("ids: every id must be in [0, " + std::to_string(V) + "), got " +
                              std::to_string(static_cast<long long>(p[n])));
    fn(p);
  };
  if (type_num(ids) == py::detail::npy_api::NPY_INT_)
    check(checked_int32(ids, "ids"));
  else if (has_type<std::int64_t>(ids))
    check(checked<std::int64_t>(ids, "ids", {N}));
  else
    throw py::type_error("ids: expected an int32 or int64 array, got " + std::string(py::str(ids.dtype())));
}

template <typename S>
py::array embedding_forward(const py::array& ids, const py::array& w, const py::object& out) {
  if (w.ndim() != 2) throw py::value_error("weight: expected 2-D array (V, E), got shape " + shape_of(w));
  const index_t V = w.shape(0), E = w.shape(1);
  const S* pw = checked<S>(w, "weight", {V, E});
  py::array_t<S> y;
  with_ids(ids, V, [&](const auto* pid) {
    const index_t N = ids.shape(0);
    y = output<S>(out, "out", {N, E});
    check_disjoint({{y, "out"}}, {{w, "weight"}, {ids, "ids"}});
    S* py_ = y.mutable_data();
    py::gil_scoped_release release;
    rnncore::embedding_forward(py_, pw, pid, N, E);
  });
  return y;
}

template <typename S>
void embedding_backward(const py::array& dy, const py::array& ids, const py::array& dw) {
  if (dw.ndim() != 2) throw py::value_error("dweight: expected 2-D array (V, E), got shape " + shape_of(dw));
  const index_t V = dw.shape(0), E = dw.shape(1);
  S* pdw = checked<S>(dw, "dweight", {V, E}, true);
  with_ids(ids, V, [&](const auto* pid) {
    const index_t N = ids.shape(0);
    const S* pdy = checked<S>(dy, "dy", {N, E});
    check_disjoint({{dw, "dweight"}}, {{dy, "dy"}, {ids, "ids"}});
    py::gil_scoped_release release;
    rnncore::embedding_backward(pdw, pdy, pid, N, E);
  });
}

// ---- groups of arrays: clipping and optimizers -------------------------------------

// A model's parameter (or gradient) arrays, checked once: one float dtype, C-contiguous,
// writeable, no two overlapping. Holds references, so the pointers stay valid.
class TensorGroup {
 public:
  TensorGroup(const py::iterable& arrays, const char* name) {
    for (const py::handle& a : arrays) {
      const std::string item = std::string(name) + "[" + std::to_string(arrays_.size()) + "]";
      if (!py::isinstance<py::array>(a)) throw py::type_error(item + ": expected a numpy.ndarray");
      arrays_.push_back(py::reinterpret_borrow<py::array>(a));
      const py::array& arr = arrays_.back();
      require_float(arr, item.c_str());
      if (arrays_.size() == 1) float32_ = is_float32(arr);
      if (is_float32(arr) != float32_)
        throw py::type_error(item + ": expected " + (float32_ ? "float32" : "float64") + " like " + name +
                             "[0], got " + std::string(py::str(arr.dtype())));
      const int flags = py::detail::array_proxy(arr.ptr())->flags;
      if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
        throw py::value_error(item + ": expected a C-contiguous array");
      if (!(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_)) throw py::value_error(item + ": read-only");
      offsets_.push_back(offsets_.back() + static_cast<index_t>(arr.size()));
      ptrs_.push_back(const_cast<void*>(arr.data()));
    }
    std::vector<Named> named;
    for (std::size_t i = 0; i < arrays_.size(); ++i) named.emplace_back(arrays_[i], name);
    for (std::size_t i = 0; i < named.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (overlap(named[i], named[j]))
          throw py::value_error(std::string(name) + "[" + std::to_string(i) + "]: overlaps " + name + "[" +
                                std::to_string(j) + "]");
  }

  bool float32() const { return float32_; }
  index_t count() const { return static_cast<index_t>(arrays_.size()); }
  index_t total() const { return offsets_.back(); }
  const std::vector<index_t>& offsets() const { return offsets_; }
  const std::vector<py::array>& arrays() const { return arrays_; }

  template <typename S>
  rnncore::TensorList<S> list() const {
    return {count(), reinterpret_cast<S* const*>(ptrs_.data()), offsets_.data()};
  }
  // The list of one dtype, or an empty list when the group holds the other.
  template <typename S>
  rnncore::TensorList<S> list_if() const {
    static const index_t zero = 0;
    if (float32_ != std::is_same_v<S, float> || arrays_.empty()) return {0, nullptr, &zero};
    return list<S>();
  }

 private:
  std::vector<py::array> arrays_;
  std::vector<void*> ptrs_;
  std::vector<index_t> offsets_{0};
  bool float32_ = true;
};

// grads as a TensorGroup, or a list/dict of arrays split by dtype into two groups.
struct GradLists {
  std::vector<TensorGroup> groups;
  explicit GradLists(const py::object& grads) {
    if (py::isinstance<TensorGroup>(grads)) {
      groups.push_back(grads.cast<TensorGroup>());
      return;
    }
    if (!py::isinstance<py::iterable>(grads)) throw py::type_error("grads: expected a list of numpy arrays");
    py::list f32, f64;
    std::size_t i = 0;
    for (const py::handle& g : grads.cast<py::iterable>()) {
      const std::string item = "grads[" + std::to_string(i++) + "]";
      if (!py::isinstance<py::array>(g)) throw py::type_error(item + ": expected a numpy.ndarray");
      const auto a = py::reinterpret_borrow<py::array>(g);
      require_float(a, item.c_str());
      (is_float32(a) ? f32 : f64).append(a);
    }
    groups.emplace_back(f32, "grads (float32)");
    groups.emplace_back(f64, "grads (float64)");
  }
  template <typename S>
  rnncore::TensorList<S> list() const {
    for (const auto& g : groups)
      if (g.count() && g.float32() == std::is_same_v<S, float>) return g.list<S>();
    return groups.front().list_if<S>();
  }
};

// A flat optimizer-state buffer matching `params`.
template <typename S>
S* state_buffer(const py::object& o, const char* name, const TensorGroup& params, bool optional_ = false) {
  if (optional_ && o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
  const auto a = o.cast<py::array>();
  S* p = checked<S>(a, name, {params.total()}, true);
  const Named n(a, name);
  for (const auto& arr : params.arrays())
    if (overlap(n, Named(arr, "params"))) throw py::value_error(std::string(name) + ": overlaps a parameter");
  return p;
}

void check_pair(const TensorGroup& params, const TensorGroup& grads) {
  if (params.count() != grads.count())
    throw py::value_error("grads: " + std::to_string(grads.count()) + " arrays for " +
                          std::to_string(params.count()) + " parameters");
  if (params.float32() != grads.float32()) throw py::type_error("grads: dtype differs from the parameters'");
  for (index_t k = 0; k < params.count(); ++k)
    if (params.offsets()[k + 1] - params.offsets()[k] != grads.offsets()[k + 1] - grads.offsets()[k])
      throw py::value_error("grads[" + std::to_string(k) + "]: size differs from its parameter's");
  for (const auto& g : grads.arrays())
    for (const auto& p : params.arrays())
      if (overlap(Named(g, "grads"), Named(p, "params"))) throw py::value_error("grads: overlaps a parameter");
}

template <typename S>
rnncore::TensorList<const S> as_const(const rnncore::TensorList<S>& l) {
  return {l.count, reinterpret_cast<const S* const*>(l.data), l.offset};
}

// ---- sampling and generation ------------------------------------------------------------

template <typename S>
index_t sample(const py::array& logits, double temperature, double u) {
  if (logits.ndim() != 1) throw py::value_error("logits: expected 1-D array (V,), got shape " + shape_of(logits));
  const index_t V = logits.shape(0);
  if (V == 0) throw py::value_error("logits: empty");
  const S* z = checked<S>(logits, "logits", {V});
  const index_t i = rnncore::sample_logits(z, V, temperature, u);
  if (i < 0) throw py::value_error("logits: not a distribution (NaN, +inf, or every logit -inf)");
  return i;
}

void check_temperature(double temperature, double u) {
  if (!(temperature >= 0) || std::isinf(temperature))
    throw py::value_error("temperature: expected a finite number >= 0, got " + std::to_string(temperature));
  if (!(u >= 0 && u < 1)) throw py::value_error("u: expected a uniform draw in [0, 1), got " + std::to_string(u));
}

// layers: a list of (cell, option, w_ih, w_hh, b_ih, b_hh, w_ch, h, c) with cell one of
// "elman", "lstm", "gru"; option the elman's nonlinearity or the gru's reset_after.
template <typename S>
py::array_t<std::int64_t> generate(const py::array& embedding, const py::list& layers, const py::array& head_w,
                                   const py::object& head_b, const py::array& logits0, index_t steps,
                                   double temperature, const py::object& uniforms, std::int64_t end) {
  if (embedding.ndim() != 2) throw py::value_error("embedding: expected 2-D array (V, E), got " + shape_of(embedding));
  const index_t Vin = embedding.shape(0), E = embedding.shape(1);
  const S* emb = checked<S>(embedding, "embedding", {Vin, E});
  if (steps < 0) throw py::value_error("steps: expected >= 0");
  if (!(temperature >= 0) || std::isinf(temperature))
    throw py::value_error("temperature: expected a finite number >= 0, got " + std::to_string(temperature));
  if (layers.empty()) throw py::value_error("layers: expected at least one recurrent layer");
  std::vector<rnncore::GenLayer<S>> spec;
  std::vector<Named> states, inputs{{embedding, "embedding"}, {head_w, "head_w"}, {head_b, "head_b"},
                                    {logits0, "logits0"}};
  index_t I = E;
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const std::string name = "layers[" + std::to_string(k) + "]";
    if (!py::isinstance<py::tuple>(layers[k]) || py::len(layers[k]) != 9)
      throw py::type_error(name + ": expected a tuple (cell, option, w_ih, w_hh, b_ih, b_hh, w_ch, h, c)");
    const py::tuple t = layers[k].cast<py::tuple>();
    rnncore::GenLayer<S> l{};
    if (!py::isinstance<py::str>(t[0])) throw py::type_error(name + ": the cell must be a str");
    for (int i = 2; i <= 3; ++i)
      if (!py::isinstance<py::array>(t[i])) throw py::type_error(name + ": weights must be numpy arrays");
    if (!py::isinstance<py::array>(t[7]) || (!t[8].is_none() && !py::isinstance<py::array>(t[8])))
      throw py::type_error(name + ": states must be numpy arrays");
    const std::string cell = t[0].cast<std::string>();
    index_t G = 1;
    if (cell == "elman" || cell == "indrnn") {
      if (!py::isinstance<py::str>(t[1])) throw py::type_error(name + ": the nonlinearity must be a str");
      const std::string act = t[1].cast<std::string>();
      l.cell = cell == "elman" ? rnncore::GenCell::elman : rnncore::GenCell::indrnn;
      l.option = static_cast<int>(act == "tanh"      ? rnncore::Activation::tanh
                                  : act == "relu"    ? rnncore::Activation::relu
                                  : act == "sigmoid" ? rnncore::Activation::sigmoid
                                  : throw py::value_error(name + ": nonlinearity must be tanh, relu or sigmoid"));
    } else if (cell == "lstm") {
      l.cell = rnncore::GenCell::lstm;
      G = 4;
    } else if (cell == "gru") {
      if (!py::isinstance<py::bool_>(t[1])) throw py::type_error(name + ": reset_after must be a bool");
      l.cell = rnncore::GenCell::gru;
      l.option = t[1].cast<bool>() ? 1 : 0;
      G = 3;
    } else {
      throw py::value_error(name + ": cell must be elman, indrnn, lstm or gru, got " + cell);
    }
    const py::array w_ih = t[2].cast<py::array>(), w_hh = t[3].cast<py::array>();
    const bool vector = l.cell == rnncore::GenCell::indrnn;  // its w_hh is [H]
    if (w_hh.ndim() != (vector ? 1 : 2))
      throw py::value_error(name + ": w_hh must be " + (vector ? "1-D (H,)" : "2-D (G*H, H)"));
    const index_t H = vector ? w_hh.shape(0) : w_hh.shape(1);
    if (H <= 0) throw py::value_error(name + ": the hidden size must be positive");
    l.I = I;
    l.H = H;
    l.w_ih = checked<S>(w_ih, (name + " w_ih").c_str(), {G * H, I});
    l.w_hh = vector ? checked<S>(w_hh, (name + " w_hh").c_str(), {H}) : checked<S>(w_hh, (name + " w_hh").c_str(), {G * H, H});
    const auto [b_ih, b_hh] = checked_pair<S>(t[4], (name + " b_ih").c_str(), t[5], (name + " b_hh").c_str(), {G * H},
                                              "biases", false);
    l.b_ih = b_ih;
    l.b_hh = b_hh;
    l.extra = cell == "lstm" ? optional<S>(t[6], (name + " w_ch").c_str(), {3 * H}) : nullptr;
    l.h = checked<S>(t[7].cast<py::array>(), (name + " h").c_str(), {H}, true);
    l.c = cell == "lstm" ? checked<S>(t[8].cast<py::array>(), (name + " c").c_str(), {H}, true) : nullptr;
    states.emplace_back(t[7], "h");
    if (cell == "lstm") states.emplace_back(t[8], "c");
    for (int i = 2; i <= 6; ++i) inputs.emplace_back(t[i], "weights");
    spec.push_back(l);
    I = H;
  }
  if (head_w.ndim() != 2) throw py::value_error("head_w: expected 2-D array (V, H), got " + shape_of(head_w));
  const index_t V = head_w.shape(0);
  const S* hw = checked<S>(head_w, "head_w", {V, I});
  const S* hb = optional<S>(head_b, "head_b", {V});
  const S* z0 = checked<S>(logits0, "logits0", {V});
  const double* u = nullptr;
  if (temperature > 0) {
    if (!py::isinstance<py::array>(uniforms)) throw py::type_error("uniforms: expected a float64 array");
    u = checked<double>(uniforms.cast<py::array>(), "uniforms", {steps});
    for (index_t n = 0; n < steps; ++n)
      if (!(u[n] >= 0 && u[n] < 1)) throw py::value_error("uniforms: expected draws in [0, 1)");
  }
  for (std::size_t i = 0; i < states.size(); ++i) {
    for (const auto& in : inputs)
      if (overlap(states[i], in)) throw py::value_error("layers: a state overlaps a weight");
    for (std::size_t j = 0; j < i; ++j)
      if (overlap(states[i], states[j])) throw py::value_error("layers: two states overlap");
  }
  auto out = empty<std::int64_t>({steps});
  std::int64_t* po = out.mutable_data();
  index_t n;
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::generate_workspace_size(spec.data(), static_cast<index_t>(spec.size()), V));
    n = rnncore::generate<S>(po, steps, emb, Vin, E, spec.data(), static_cast<index_t>(spec.size()), hw, hb, V, z0,
                             temperature, u, end, ws);
  }
  if (n < 0) {
    const index_t at = -1 - n;
    if (at > 0 && po[at - 1] >= Vin)
      throw py::value_error("ids: every id must be in [0, " + std::to_string(Vin) + "), got " +
                            std::to_string(po[at - 1]));
    throw py::value_error("logits: not a distribution at step " + std::to_string(at) +
                          " (NaN, +inf, or every logit -inf)");
  }
  return out[py::slice(0, n, 1)].cast<py::array_t<std::int64_t>>();
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def(
      "sample_logits",
      [](const py::array& logits, double temperature, double u) {
        check_temperature(temperature, u);
        return dispatch_float(logits, "logits", [&](auto s) { return sample<decltype(s)>(logits, temperature, u); });
      },
      py::arg("logits"), py::arg("temperature"), py::arg("u"),
      "An index drawn from softmax(logits / temperature) (V,) with the uniform u in [0, 1): the first i whose "
      "cumulative probability exceeds u. Temperature 0: the argmax.");
  m.def(
      "generate",
      [](const py::array& embedding, const py::list& layers, const py::array& head_w, const py::object& head_b,
         const py::array& logits0, index_t steps, double temperature, const py::object& uniforms, std::int64_t end) {
        return dispatch_float(embedding, "embedding", [&](auto s) {
          return generate<decltype(s)>(embedding, layers, head_w, head_b, logits0, steps, temperature, uniforms, end);
        });
      },
      py::arg("embedding"), py::arg("layers"), py::arg("head_w"), py::arg("head_b"), py::arg("logits0"),
      py::arg("steps"), py::arg("temperature"), py::arg("uniforms"), py::arg("end"),
      "Sample up to `steps` ids from Embedding -> recurrent layers -> Linear, one sequence, starting from the "
      "logits logits0 (V,). layers: [(cell, option, w_ih, w_hh, b_ih, b_hh, w_ch, h, c)], h and c (H,) updated "
      "in place. uniforms: (steps,) float64 draws (unused at temperature 0). end: id that ends, or -1.");
  m.def(
      "linear_forward",
      [](const py::array& x, const py::array& weight, const py::object& bias, const py::object& out) {
        return dispatch_float(weight, "weight", [&](auto s) {
          return linear_forward<decltype(s)>(x, weight, bias, out);
        });
      },
      py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(), py::kw_only(), py::arg("out") = py::none(),
      "Dense layer y = x @ weight.T + bias. x (N,I), weight (O,I), bias (O,) or None -> y (N,O).");
  m.def(
      "linear_backward",
      [](const py::array& dy, const py::array& x, const py::array& weight, const py::array& dweight,
         const py::object& dbias, bool need_dx, const py::object& out) {
        return dispatch_float(weight, "weight", [&](auto s) {
          return linear_backward<decltype(s)>(dy, x, weight, dweight, dbias, need_dx, out);
        });
      },
      py::arg("dy"), py::arg("x"), py::arg("weight"), py::arg("dweight"), py::arg("dbias") = py::none(),
      py::arg("need_dx") = true, py::kw_only(), py::arg("out") = py::none(),
      "Backward of linear_forward: dweight += dy.T @ x, dbias += dy.sum(0); returns dx = dy @ weight (N,I), "
      "or None when need_dx is False.");
  m.def(
      "embedding_forward",
      [](const py::array& ids, const py::array& weight, const py::object& out) {
        return dispatch_float(weight, "weight", [&](auto s) {
          return embedding_forward<decltype(s)>(ids, weight, out);
        });
      },
      py::arg("ids"), py::arg("weight"), py::kw_only(), py::arg("out") = py::none(),
      "Rows of weight (V,E) at ids (N,) int32/int64, each in [0,V) -> (N,E).");
  m.def(
      "embedding_backward",
      [](const py::array& dy, const py::array& ids, const py::array& dweight) {
        dispatch_float(dweight, "dweight", [&](auto s) { embedding_backward<decltype(s)>(dy, ids, dweight); });
      },
      py::arg("dy"), py::arg("ids"), py::arg("dweight"),
      "dweight[ids[n]] += dy[n] for every n (repeated ids add up).");

  py::class_<TensorGroup>(m, "TensorGroup",
                          "Arrays of one float dtype (a model's parameters or gradients), checked once and held "
                          "for the optimizer steps.")
      .def(py::init([](const py::iterable& arrays) { return TensorGroup(arrays, "arrays"); }), py::arg("arrays"))
      .def("__len__", &TensorGroup::count)
      .def_property_readonly("size", &TensorGroup::total, "Elements in all arrays together.")
      .def_property_readonly("dtype", [](const TensorGroup& g) {
        return py::dtype(g.float32() ? "float32" : "float64");
      });

  m.def(
      "clip_grad_norm",
      [](const py::object& grads, double max_norm) {
        if (!(max_norm > 0)) throw py::value_error("max_norm: expected a positive number");
        const GradLists g(grads);
        py::gil_scoped_release release;
        return rnncore::clip_grad_norm(g.list<float>(), g.list<double>(), max_norm);
      },
      py::arg("grads"), py::arg("max_norm"),
      "Scale every array in grads by max_norm / norm when their global L2 norm exceeds max_norm.\n"
      "Returns the norm before clipping; a non-finite norm leaves the arrays unchanged.");
  m.def(
      "clip_grad_value",
      [](const py::object& grads, double clip) {
        if (!(clip > 0)) throw py::value_error("clip: expected a positive number");
        const GradLists g(grads);
        py::gil_scoped_release release;
        rnncore::clip_all(g.list<float>(), static_cast<float>(clip));
        rnncore::clip_all(g.list<double>(), clip);
      },
      py::arg("grads"), py::arg("clip"), "Clip every element of every array in grads to [-clip, clip].");

  m.def(
      "sgd_step",
      [](const TensorGroup& params, const TensorGroup& grads, const py::object& velocity, double lr, double momentum,
         double weight_decay, bool nesterov) {
        check_pair(params, grads);
        const rnncore::SgdConfig cfg{lr, momentum, weight_decay, nesterov};
        auto run = [&](auto s) {
          using S = decltype(s);
          S* v = state_buffer<S>(velocity, "velocity", params, true);
          py::gil_scoped_release release;
          rnncore::sgd_step<S>(params.list<S>(), as_const(grads.list<S>()), v, cfg);
        };
        params.float32() ? run(float{}) : run(double{});
      },
      py::arg("params"), py::arg("grads"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"),
      py::arg("weight_decay"), py::arg("nesterov"),
      "One SGD step over TensorGroups params and grads; velocity: flat (params.size,) or None (no momentum).");
  m.def(
      "adagrad_step",
      [](const TensorGroup& params, const TensorGroup& grads, const py::object& sums, double lr, double eps) {
        check_pair(params, grads);
        const rnncore::AdagradConfig cfg{lr, eps};
        auto run = [&](auto s) {
          using S = decltype(s);
          S* st = state_buffer<S>(sums, "sums", params);
          py::gil_scoped_release release;
          rnncore::adagrad_step<S>(params.list<S>(), as_const(grads.list<S>()), st, cfg);
        };
        params.float32() ? run(float{}) : run(double{});
      },
      py::arg("params"), py::arg("grads"), py::arg("sums"), py::arg("lr"), py::arg("eps"),
      "One Adagrad step; sums: flat (params.size,) running squared gradients.");
  m.def(
      "adam_step",
      [](const TensorGroup& params, const TensorGroup& grads, const py::object& m1, const py::object& m2, double lr,
         double beta1, double beta2, double eps, double weight_decay, std::int64_t step) {
        check_pair(params, grads);
        if (step < 1) throw py::value_error("step: expected a positive step count, got " + std::to_string(step));
        const rnncore::AdamConfig cfg{lr, beta1, beta2, eps, weight_decay, step};
        auto run = [&](auto s) {
          using S = decltype(s);
          S* pm = state_buffer<S>(m1, "m", params);
          S* pv = state_buffer<S>(m2, "v", params);
          if (overlap(Named(m1, "m"), Named(m2, "v"))) throw py::value_error("v: overlaps m");
          py::gil_scoped_release release;
          rnncore::adam_step<S>(params.list<S>(), as_const(grads.list<S>()), pm, pv, cfg);
        };
        params.float32() ? run(float{}) : run(double{});
      },
      py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("beta1"),
      py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("step"),
      "One Adam step (step counts this one, from 1); m, v: flat (params.size,) moments.");
}

}  // namespace rnncore_py

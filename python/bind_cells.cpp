// The recurrent cells' functions in rnncore._core, all from one template (bind_cell.h).
#include "bind_cell.h"
#include "cells/elman.h"
#include "cells/gru.h"
#include "cells/indrnn.h"
#include "cells/layer_norm.h"
#include "cells/lstm.h"

namespace rnncore_py {

using rnncore::Activation;

const char* activation_name(int a) {
  switch (static_cast<Activation>(a)) {
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    default: return "tanh";
  }
}

int parse_activation(const py::handle& o) {
  if (!py::isinstance<py::str>(o))
    throw py::type_error("nonlinearity: expected 'tanh', 'relu' or 'sigmoid', got " + std::string(py::repr(o)));
  const std::string name = o.cast<std::string>();
  if (name == "tanh") return static_cast<int>(Activation::tanh);
  if (name == "relu") return static_cast<int>(Activation::relu);
  if (name == "sigmoid") return static_cast<int>(Activation::sigmoid);
  throw py::value_error("nonlinearity: expected 'tanh', 'relu' or 'sigmoid', got '" + name + "'");
}

bool parse_flag(const py::handle& o, const char* name) {
  try {
    return o.cast<bool>();  // pybind11's rules: bool, numpy.bool_, None, numbers
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(name) + ": expected a bool, got " + std::string(py::repr(o)));
  }
}

double parse_probability(const py::handle& o, const char* name) {
  if (py::isinstance<py::bool_>(o) || !(py::isinstance<py::float_>(o) || py::isinstance<py::int_>(o)))
    throw py::type_error(std::string(name) + ": expected a float in [0, 1], got " + std::string(py::repr(o)));
  const double v = o.cast<double>();
  if (!(v >= 0 && v <= 1))
    throw py::value_error(std::string(name) + ": expected a float in [0, 1], got " + std::to_string(v));
  return v;
}

std::uint64_t parse_seed(const py::handle& o) {
  if (py::isinstance<py::bool_>(o) || !py::isinstance<py::int_>(o))
    throw py::type_error("seed: expected an int in [0, 2**64), got " + std::string(py::repr(o)));
  try {
    return o.cast<std::uint64_t>();
  } catch (const py::cast_error&) {
    throw py::value_error("seed: expected an int in [0, 2**64), got " + std::string(py::repr(o)));
  }
}

index_t parse_t0(const py::handle& o) {
  if (py::isinstance<py::bool_>(o) || !py::isinstance<py::int_>(o))
    throw py::type_error("t0: expected an int >= 0, got " + std::string(py::repr(o)));
  const index_t t0 = o.cast<index_t>();
  if (t0 < 0) throw py::value_error("t0: expected an int >= 0, got " + std::to_string(t0));
  return t0;
}

// "(y [T,B,H], h [T+1,B,H], gates [T,B,4H])" and the like, for the docstrings.
std::string shapes_doc(const CellSpec& spec, Fn f) {
  const bool seq = f == Fn::forward || f == Fn::backward;
  std::vector<std::string> parts;
  auto width = [](index_t w) { return w == 1 ? std::string("H") : std::to_string(w) + "H"; };
  const std::string P = spec.proj ? "P" : "H";  // the width of h and y
  if (f == Fn::forward) parts.push_back("y [T,B," + P + "]");
  if (f == Fn::backward) parts.push_back("dx [T,B,I]");
  if (f == Fn::step_backward) parts.push_back("dx [B,I]");
  for (int k = 0; k < spec.states; ++k) {
    const std::string s = spec.state_names[k], w = k == 0 ? P : "H";
    if (f == Fn::forward) parts.push_back(s + " [T+1,B," + w + "]");
    if (f == Fn::step_forward) parts.push_back(s + " [B," + w + "]");
    if (f == Fn::backward) parts.push_back("d" + s + "0 [B," + w + "]");
    if (f == Fn::step_backward) parts.push_back("d" + s + "_prev [B," + w + "]");
  }
  if (f == Fn::forward || f == Fn::step_forward)
    for (int k = 0; k < spec.saved; ++k)
      parts.push_back(std::string(spec.saved_buffers[k].name) + (seq ? " [T,B," : " [B,") +
                      width(spec.saved_buffers[k].width) + "]");
  if (parts.size() == 1) return parts[0];
  std::string r = "(";
  for (std::size_t i = 0; i < parts.size(); ++i) r += (i ? ", " : "") + parts[i];
  return r + ")";
}

void bind_cells(py::module_& m) {
  py::options options;  // the docstrings carry their own text signatures (bind_cell.h)
  options.disable_function_signatures();
  bind_cell<rnncore::ElmanCell>(m, "Elman RNN");
  bind_cell<rnncore::LstmCell>(m, "LSTM");
  bind_cell<rnncore::LstmProjCell>(m, "LSTM with a projection of h (torch.nn.LSTM's proj_size)");
  bind_cell<rnncore::GruCell>(m, "GRU");
  bind_cell<rnncore::IndrnnCell>(m, "IndRNN");
  bind_cell<rnncore::LstmNormCell>(m, "LSTM with layer normalisation (haste's LayerNormLSTM; Ba et al. 2016)");
  bind_cell<rnncore::GruNormCell>(m, "GRU with layer normalisation (haste's LayerNormGRU; Ba et al. 2016)");
}

}  // namespace rnncore_py

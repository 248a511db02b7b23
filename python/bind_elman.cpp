#include "arrays.h"
#include "elman.h"

namespace rnncore_py {

namespace {

rnncore::Activation activation(const std::string& name) {
  if (name == "tanh") return rnncore::Activation::tanh;
  if (name == "relu") return rnncore::Activation::relu;
  if (name == "sigmoid") return rnncore::Activation::sigmoid;
  throw py::value_error("nonlinearity: expected 'tanh', 'relu' or 'sigmoid', got '" + name + "'");
}

template <typename S>
py::tuple forward(const py::array& x, const py::object& h0, const py::array& w_ih, const py::array& w_hh,
                  const py::object& b_ih, const py::object& b_hh, const std::string& nonlinearity,
                  const py::object& lengths, bool reverse, const py::object& out) {
  const rnncore::Activation act = activation(nonlinearity);
  const Dims d = recurrent_dims<S>(x, w_hh, 1, true);
  const index_t T = d.T, B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {T, B, I});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {H, H});
  const auto [pb_ih, pb_hh] = checked_biases<S>(b_ih, b_hh, H);
  const S* ph0 = optional<S>(h0, "h0", {B, H});
  const index_t* pl = checked_lengths(lengths, T, B);
  const auto o = out_tuple(out, 2, "y, h");
  auto y = output<S>(o[0], "out[0] (y)", {T, B, H});
  auto h = output<S>(o[1], "out[1] (h)", {T + 1, B, H});
  check_disjoint({{y, "y"}, {h, "h"}}, {{x, "x"}, {h0, "h0"}, {w_ih, "w_ih"}, {w_hh, "w_hh"}, {b_ih, "b_ih"},
                                        {b_hh, "b_hh"}, {lengths, "lengths"}});
  S *py_ = y.mutable_data(), *ph = h.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::elman_forward_workspace_size<S>(B, H));
    rnncore::elman_forward<S>(py_, ph, px, ph0, pw_ih, pw_hh, pb_ih, pb_hh, act, pl, reverse, T, B, I, H, ws);
  }
  return py::make_tuple(y, h);
}

template <typename S>
py::tuple backward(const py::object& dy, const py::object& dh_n, const py::array& x, const py::array& h,
                   const py::array& w_ih, const py::array& w_hh, const std::string& nonlinearity,
                   const py::object& lengths, bool reverse, const py::array& dw_ih, const py::array& dw_hh,
                   const py::object& db_ih, const py::object& db_hh, const py::object& out) {
  const rnncore::Activation act = activation(nonlinearity);
  const Dims d = recurrent_dims<S>(x, w_hh, 1, true);
  const index_t T = d.T, B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {T, B, I});
  const S* ph = checked<S>(h, "h", {T + 1, B, H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {H, H});
  const S* pdy = optional<S>(dy, "dy", {T, B, H});
  const S* pdh_n = optional<S>(dh_n, "dh_n", {B, H});
  const index_t* pl = checked_lengths(lengths, T, B);
  S* pdw_ih = checked<S>(dw_ih, "dw_ih", {H, I}, true);
  S* pdw_hh = checked<S>(dw_hh, "dw_hh", {H, H}, true);
  if (db_ih.is_none() != db_hh.is_none()) throw py::value_error("db_ih, db_hh: give both bias gradients or neither");
  S* pdb_ih = optional<S>(db_ih, "db_ih", {H}, true);
  S* pdb_hh = optional<S>(db_hh, "db_hh", {H}, true);
  const auto o = out_tuple(out, 2, "dx, dh0");
  auto dx = output<S>(o[0], "out[0] (dx)", {T, B, I});
  auto dh0 = output<S>(o[1], "out[1] (dh0)", {B, H});
  check_disjoint({{dw_ih, "dw_ih"}, {dw_hh, "dw_hh"}, {db_ih, "db_ih"}, {db_hh, "db_hh"}, {dx, "dx"}, {dh0, "dh0"}},
                 {{dy, "dy"}, {dh_n, "dh_n"}, {x, "x"}, {h, "h"}, {w_ih, "w_ih"}, {w_hh, "w_hh"},
                  {lengths, "lengths"}});
  S *pdx = dx.mutable_data(), *pdh0 = dh0.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::elman_backward_workspace_size<S>(T, B, H));
    rnncore::elman_backward<S>(pdx, pdh0, pdw_ih, pdw_hh, pdb_ih, pdb_hh, pdy, pdh_n, px, ph, pw_ih, pw_hh, act, pl,
                               reverse, T, B, I, H, ws);
  }
  return py::make_tuple(dx, dh0);
}

template <typename S>
py::array step_forward(const py::array& x, const py::array& h_prev, const py::array& w_ih, const py::array& w_hh,
                       const py::object& b_ih, const py::object& b_hh, const std::string& nonlinearity) {
  const rnncore::Activation act = activation(nonlinearity);
  const Dims d = recurrent_dims<S>(x, w_hh, 1, false);
  const index_t B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {B, I});
  const S* php = checked<S>(h_prev, "h_prev", {B, H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {H, H});
  const auto [pb_ih, pb_hh] = checked_biases<S>(b_ih, b_hh, H);
  auto h = empty<S>({B, H});
  S* ph = h.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::elman_step_forward_workspace_size<S>(B, H));
    rnncore::elman_step_forward<S>(ph, px, php, pw_ih, pw_hh, pb_ih, pb_hh, act, B, I, H, ws);
  }
  return h;
}

template <typename S>
py::tuple step_backward(const py::array& dh, const py::array& x, const py::array& h_prev, const py::array& h,
                        const py::array& w_ih, const py::array& w_hh, const std::string& nonlinearity,
                        const py::array& dw_ih, const py::array& dw_hh, const py::object& db_ih,
                        const py::object& db_hh) {
  const rnncore::Activation act = activation(nonlinearity);
  const Dims d = recurrent_dims<S>(x, w_hh, 1, false);
  const index_t B = d.B, I = d.I, H = d.H;
  const S* pdh = checked<S>(dh, "dh", {B, H});
  const S* px = checked<S>(x, "x", {B, I});
  const S* php = checked<S>(h_prev, "h_prev", {B, H});
  const S* ph = checked<S>(h, "h", {B, H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {H, H});
  S* pdw_ih = checked<S>(dw_ih, "dw_ih", {H, I}, true);
  S* pdw_hh = checked<S>(dw_hh, "dw_hh", {H, H}, true);
  if (db_ih.is_none() != db_hh.is_none()) throw py::value_error("db_ih, db_hh: give both bias gradients or neither");
  S* pdb_ih = optional<S>(db_ih, "db_ih", {H}, true);
  S* pdb_hh = optional<S>(db_hh, "db_hh", {H}, true);
  check_disjoint({{dw_ih, "dw_ih"}, {dw_hh, "dw_hh"}, {db_ih, "db_ih"}, {db_hh, "db_hh"}},
                 {{dh, "dh"}, {x, "x"}, {h_prev, "h_prev"}, {h, "h"}, {w_ih, "w_ih"}, {w_hh, "w_hh"}});
  auto dx = empty<S>({B, I});
  auto dhp = empty<S>({B, H});
  S *pdx = dx.mutable_data(), *pdhp = dhp.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::elman_step_backward_workspace_size<S>(B, H));
    rnncore::elman_step_backward<S>(pdx, pdhp, pdw_ih, pdw_hh, pdb_ih, pdb_hh, pdh, px, php, ph, pw_ih, pw_hh, act, B,
                                    I, H, ws);
  }
  return py::make_tuple(dx, dhp);
}

}  // namespace

void bind_elman(py::module_& m) {
  m.def(
      "elman_forward",
      [](const py::array& x, const py::object& h0, const py::array& w_ih, const py::array& w_hh,
         const py::object& b_ih, const py::object& b_hh, const std::string& nonlinearity, const py::object& lengths,
         bool reverse, const py::object& out) {
        require_float(x, "x");
        return is_float32(x) ? forward<float>(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, lengths, reverse, out)
                             : forward<double>(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, lengths, reverse, out);
      },
      py::arg("x"), py::arg("h0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("nonlinearity") = "tanh", py::arg("lengths") = py::none(), py::arg("reverse") = false, py::kw_only(),
      py::arg("out") = py::none(), "Elman RNN over a sequence, one direction -> (y [T,B,H], h [T+1,B,H]).");
  m.def(
      "elman_backward",
      [](const py::object& dy, const py::object& dh_n, const py::array& x, const py::array& h, const py::array& w_ih,
         const py::array& w_hh, const std::string& nonlinearity, const py::object& lengths, bool reverse,
         const py::array& dw_ih, const py::array& dw_hh, const py::object& db_ih, const py::object& db_hh,
         const py::object& out) {
        require_float(x, "x");
        return is_float32(x) ? backward<float>(dy, dh_n, x, h, w_ih, w_hh, nonlinearity, lengths, reverse, dw_ih,
                                               dw_hh, db_ih, db_hh, out)
                             : backward<double>(dy, dh_n, x, h, w_ih, w_hh, nonlinearity, lengths, reverse, dw_ih,
                                                dw_hh, db_ih, db_hh, out);
      },
      py::arg("dy"), py::arg("dh_n"), py::arg("x"), py::arg("h"), py::arg("w_ih"), py::arg("w_hh"),
      py::arg("nonlinearity"), py::arg("lengths"), py::arg("reverse"), py::arg("dw_ih"), py::arg("dw_hh"),
      py::arg("db_ih"), py::arg("db_hh"), py::kw_only(), py::arg("out") = py::none(),
      "BPTT for elman_forward: adds into dw_ih, dw_hh, db_ih, db_hh -> (dx, dh0).");
  m.def(
      "elman_step_forward",
      [](const py::array& x, const py::array& h_prev, const py::array& w_ih, const py::array& w_hh,
         const py::object& b_ih, const py::object& b_hh, const std::string& nonlinearity) -> py::array {
        require_float(x, "x");
        if (is_float32(x)) return step_forward<float>(x, h_prev, w_ih, w_hh, b_ih, b_hh, nonlinearity);
        return step_forward<double>(x, h_prev, w_ih, w_hh, b_ih, b_hh, nonlinearity);
      },
      py::arg("x"), py::arg("h_prev"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("nonlinearity") = "tanh", "One Elman step -> h.");
  m.def(
      "elman_step_backward",
      [](const py::array& dh, const py::array& x, const py::array& h_prev, const py::array& h, const py::array& w_ih,
         const py::array& w_hh, const std::string& nonlinearity, const py::array& dw_ih, const py::array& dw_hh,
         const py::object& db_ih, const py::object& db_hh) {
        require_float(x, "x");
        return is_float32(x) ? step_backward<float>(dh, x, h_prev, h, w_ih, w_hh, nonlinearity, dw_ih, dw_hh, db_ih,
                                                    db_hh)
                             : step_backward<double>(dh, x, h_prev, h, w_ih, w_hh, nonlinearity, dw_ih, dw_hh, db_ih,
                                                     db_hh);
      },
      py::arg("dh"), py::arg("x"), py::arg("h_prev"), py::arg("h"), py::arg("w_ih"), py::arg("w_hh"),
      py::arg("nonlinearity"), py::arg("dw_ih"), py::arg("dw_hh"), py::arg("db_ih"), py::arg("db_hh"),
      "Backward of one Elman step -> (dx, dh_prev).");
}

}  // namespace rnncore_py

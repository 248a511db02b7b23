#include "arrays.h"
#include "gru.h"

namespace rnncore_py {

namespace {

template <typename S>
py::tuple forward(const py::array& x, const py::object& h0, const py::array& w_ih, const py::array& w_hh,
                  const py::object& b_ih, const py::object& b_hh, bool reset_after, const py::object& lengths,
                  bool reverse, const py::object& out) {
  const Dims d = recurrent_dims<S>(x, w_hh, 3, true);
  const index_t T = d.T, B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {T, B, I});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {3 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {3 * H, H});
  const auto [pb_ih, pb_hh] = checked_biases<S>(b_ih, b_hh, 3 * H);
  const S* ph0 = optional<S>(h0, "h0", {B, H});
  const index_t* pl = checked_lengths(lengths, T, B);
  const auto o = out_tuple(out, 4, "y, h, gates, hn");
  auto y = output<S>(o[0], "out[0] (y)", {T, B, H});
  auto h = output<S>(o[1], "out[1] (h)", {T + 1, B, H});
  auto gates = output<S>(o[2], "out[2] (gates)", {T, B, 3 * H});
  auto hn = output<S>(o[3], "out[3] (hn)", {T, B, H});
  check_disjoint({{y, "y"}, {h, "h"}, {gates, "gates"}, {hn, "hn"}},
                 {{x, "x"}, {h0, "h0"}, {w_ih, "w_ih"}, {w_hh, "w_hh"}, {b_ih, "b_ih"}, {b_hh, "b_hh"},
                  {lengths, "lengths"}});
  S *py_ = y.mutable_data(), *ph = h.mutable_data(), *pg = gates.mutable_data(), *phn = hn.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::gru_forward_workspace_size<S>(B, H, reset_after));
    rnncore::gru_forward<S>(py_, ph, pg, phn, px, ph0, pw_ih, pw_hh, pb_ih, pb_hh, reset_after, pl, reverse, T, B, I,
                            H, ws);
  }
  return py::make_tuple(y, h, gates, hn);
}

template <typename S>
py::tuple backward(const py::object& dy, const py::object& dh_n, const py::array& x, const py::array& h,
                   const py::array& gates, const py::array& hn, const py::array& w_ih, const py::array& w_hh,
                   bool reset_after, const py::object& lengths, bool reverse, const py::array& dw_ih,
                   const py::array& dw_hh, const py::object& db_ih, const py::object& db_hh, const py::object& out) {
  const Dims d = recurrent_dims<S>(x, w_hh, 3, true);
  const index_t T = d.T, B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {T, B, I});
  const S* ph = checked<S>(h, "h", {T + 1, B, H});
  const S* pg = checked<S>(gates, "gates", {T, B, 3 * H});
  const S* phn = checked<S>(hn, "hn", {T, B, H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {3 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {3 * H, H});
  const S* pdy = optional<S>(dy, "dy", {T, B, H});
  const S* pdh_n = optional<S>(dh_n, "dh_n", {B, H});
  const index_t* pl = checked_lengths(lengths, T, B);
  S* pdw_ih = checked<S>(dw_ih, "dw_ih", {3 * H, I}, true);
  S* pdw_hh = checked<S>(dw_hh, "dw_hh", {3 * H, H}, true);
  if (db_ih.is_none() != db_hh.is_none()) throw py::value_error("db_ih, db_hh: give both bias gradients or neither");
  S* pdb_ih = optional<S>(db_ih, "db_ih", {3 * H}, true);
  S* pdb_hh = optional<S>(db_hh, "db_hh", {3 * H}, true);
  const auto o = out_tuple(out, 2, "dx, dh0");
  auto dx = output<S>(o[0], "out[0] (dx)", {T, B, I});
  auto dh0 = output<S>(o[1], "out[1] (dh0)", {B, H});
  check_disjoint({{dw_ih, "dw_ih"}, {dw_hh, "dw_hh"}, {db_ih, "db_ih"}, {db_hh, "db_hh"}, {dx, "dx"}, {dh0, "dh0"}},
                 {{dy, "dy"}, {dh_n, "dh_n"}, {x, "x"}, {h, "h"}, {gates, "gates"}, {hn, "hn"}, {w_ih, "w_ih"},
                  {w_hh, "w_hh"}, {lengths, "lengths"}});
  S *pdx = dx.mutable_data(), *pdh0 = dh0.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::gru_backward_workspace_size<S>(T, B, H, reset_after));
    rnncore::gru_backward<S>(pdx, pdh0, pdw_ih, pdw_hh, pdb_ih, pdb_hh, pdy, pdh_n, px, ph, pg, phn, pw_ih, pw_hh,
                             reset_after, pl, reverse, T, B, I, H, ws);
  }
  return py::make_tuple(dx, dh0);
}

template <typename S>
py::tuple step_forward(const py::array& x, const py::array& h_prev, const py::array& w_ih, const py::array& w_hh,
                       const py::object& b_ih, const py::object& b_hh, bool reset_after) {
  const Dims d = recurrent_dims<S>(x, w_hh, 3, false);
  const index_t B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {B, I});
  const S* php = checked<S>(h_prev, "h_prev", {B, H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {3 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {3 * H, H});
  const auto [pb_ih, pb_hh] = checked_biases<S>(b_ih, b_hh, 3 * H);
  auto h = empty<S>({B, H});
  auto gates = empty<S>({B, 3 * H});
  auto hn = empty<S>({B, H});
  S *ph = h.mutable_data(), *pg = gates.mutable_data(), *phn = hn.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::gru_step_forward_workspace_size<S>(B, H, reset_after));
    rnncore::gru_step_forward<S>(ph, pg, phn, px, php, pw_ih, pw_hh, pb_ih, pb_hh, reset_after, B, I, H, ws);
  }
  return py::make_tuple(h, gates, hn);
}

template <typename S>
py::tuple step_backward(const py::array& dh, const py::array& x, const py::array& h_prev, const py::array& gates,
                        const py::array& hn, const py::array& w_ih, const py::array& w_hh, bool reset_after,
                        const py::array& dw_ih, const py::array& dw_hh, const py::object& db_ih,
                        const py::object& db_hh) {
  const Dims d = recurrent_dims<S>(x, w_hh, 3, false);
  const index_t B = d.B, I = d.I, H = d.H;
  const S* pdh = checked<S>(dh, "dh", {B, H});
  const S* px = checked<S>(x, "x", {B, I});
  const S* php = checked<S>(h_prev, "h_prev", {B, H});
  const S* pg = checked<S>(gates, "gates", {B, 3 * H});
  const S* phn = checked<S>(hn, "hn", {B, H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {3 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {3 * H, H});
  S* pdw_ih = checked<S>(dw_ih, "dw_ih", {3 * H, I}, true);
  S* pdw_hh = checked<S>(dw_hh, "dw_hh", {3 * H, H}, true);
  if (db_ih.is_none() != db_hh.is_none()) throw py::value_error("db_ih, db_hh: give both bias gradients or neither");
  S* pdb_ih = optional<S>(db_ih, "db_ih", {3 * H}, true);
  S* pdb_hh = optional<S>(db_hh, "db_hh", {3 * H}, true);
  check_disjoint({{dw_ih, "dw_ih"}, {dw_hh, "dw_hh"}, {db_ih, "db_ih"}, {db_hh, "db_hh"}},
                 {{dh, "dh"}, {x, "x"}, {h_prev, "h_prev"}, {gates, "gates"}, {hn, "hn"}, {w_ih, "w_ih"},
                  {w_hh, "w_hh"}});
  auto dx = empty<S>({B, I});
  auto dhp = empty<S>({B, H});
  S *pdx = dx.mutable_data(), *pdhp = dhp.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::gru_step_backward_workspace_size<S>(B, H, reset_after));
    rnncore::gru_step_backward<S>(pdx, pdhp, pdw_ih, pdw_hh, pdb_ih, pdb_hh, pdh, px, php, pg, phn, pw_ih, pw_hh,
                                  reset_after, B, I, H, ws);
  }
  return py::make_tuple(dx, dhp);
}

}  // namespace

void bind_gru(py::module_& m) {
  m.def(
      "gru_forward",
      [](const py::array& x, const py::object& h0, const py::array& w_ih, const py::array& w_hh,
         const py::object& b_ih, const py::object& b_hh, bool reset_after, const py::object& lengths, bool reverse,
         const py::object& out) {
        require_float(x, "x");
        return is_float32(x) ? forward<float>(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, lengths, reverse, out)
                             : forward<double>(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, lengths, reverse, out);
      },
      py::arg("x"), py::arg("h0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("reset_after") = true, py::arg("lengths") = py::none(), py::arg("reverse") = false, py::kw_only(),
      py::arg("out") = py::none(),
      "GRU over a sequence, one direction -> (y [T,B,H], h [T+1,B,H], gates [T,B,3H], hn [T,B,H]).");
  m.def(
      "gru_backward",
      [](const py::object& dy, const py::object& dh_n, const py::array& x, const py::array& h, const py::array& gates,
         const py::array& hn, const py::array& w_ih, const py::array& w_hh, bool reset_after,
         const py::object& lengths, bool reverse, const py::array& dw_ih, const py::array& dw_hh,
         const py::object& db_ih, const py::object& db_hh, const py::object& out) {
        require_float(x, "x");
        return is_float32(x) ? backward<float>(dy, dh_n, x, h, gates, hn, w_ih, w_hh, reset_after, lengths, reverse,
                                               dw_ih, dw_hh, db_ih, db_hh, out)
                             : backward<double>(dy, dh_n, x, h, gates, hn, w_ih, w_hh, reset_after, lengths, reverse,
                                                dw_ih, dw_hh, db_ih, db_hh, out);
      },
      py::arg("dy"), py::arg("dh_n"), py::arg("x"), py::arg("h"), py::arg("gates"), py::arg("hn"), py::arg("w_ih"),
      py::arg("w_hh"), py::arg("reset_after"), py::arg("lengths"), py::arg("reverse"), py::arg("dw_ih"),
      py::arg("dw_hh"), py::arg("db_ih"), py::arg("db_hh"), py::kw_only(), py::arg("out") = py::none(),
      "BPTT for gru_forward: adds into dw_ih, dw_hh, db_ih, db_hh -> (dx, dh0).");
  m.def(
      "gru_step_forward",
      [](const py::array& x, const py::array& h_prev, const py::array& w_ih, const py::array& w_hh,
         const py::object& b_ih, const py::object& b_hh, bool reset_after) {
        require_float(x, "x");
        return is_float32(x) ? step_forward<float>(x, h_prev, w_ih, w_hh, b_ih, b_hh, reset_after)
                             : step_forward<double>(x, h_prev, w_ih, w_hh, b_ih, b_hh, reset_after);
      },
      py::arg("x"), py::arg("h_prev"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("reset_after") = true, "One GRU step -> (h, gates, hn).");
  m.def(
      "gru_step_backward",
      [](const py::array& dh, const py::array& x, const py::array& h_prev, const py::array& gates,
         const py::array& hn, const py::array& w_ih, const py::array& w_hh, bool reset_after, const py::array& dw_ih,
         const py::array& dw_hh, const py::object& db_ih, const py::object& db_hh) {
        require_float(x, "x");
        return is_float32(x) ? step_backward<float>(dh, x, h_prev, gates, hn, w_ih, w_hh, reset_after, dw_ih, dw_hh,
                                                    db_ih, db_hh)
                             : step_backward<double>(dh, x, h_prev, gates, hn, w_ih, w_hh, reset_after, dw_ih, dw_hh,
                                                     db_ih, db_hh);
      },
      py::arg("dh"), py::arg("x"), py::arg("h_prev"), py::arg("gates"), py::arg("hn"), py::arg("w_ih"),
      py::arg("w_hh"), py::arg("reset_after"), py::arg("dw_ih"), py::arg("dw_hh"), py::arg("db_ih"),
      py::arg("db_hh"), "Backward of one GRU step -> (dx, dh_prev).");
}

}  // namespace rnncore_py

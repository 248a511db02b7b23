#include "arrays.h"
#include "lstm.h"

namespace rnncore_py {

namespace {

template <typename S>
py::tuple forward(const py::array& x, const py::object& h0, const py::object& c0, const py::array& w_ih,
                  const py::array& w_hh, const py::object& b_ih, const py::object& b_hh, const py::object& w_ch,
                  const py::object& lengths, bool reverse, const py::object& out) {
  const Dims d = recurrent_dims<S>(x, w_hh, 4, true);
  const index_t T = d.T, B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {T, B, I});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {4 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {4 * H, H});
  const auto [pb_ih, pb_hh] = checked_biases<S>(b_ih, b_hh, 4 * H);
  const S* pw_ch = optional<S>(w_ch, "w_ch", {3 * H});
  const S* ph0 = optional<S>(h0, "h0", {B, H});
  const S* pc0 = optional<S>(c0, "c0", {B, H});
  const index_t* pl = checked_lengths(lengths, T, B);
  const auto o = out_tuple(out, 4, "y, h, c, gates");
  auto y = output<S>(o[0], "out[0] (y)", {T, B, H});
  auto h = output<S>(o[1], "out[1] (h)", {T + 1, B, H});
  auto c = output<S>(o[2], "out[2] (c)", {T + 1, B, H});
  auto gates = output<S>(o[3], "out[3] (gates)", {T, B, 4 * H});
  check_disjoint({{y, "y"}, {h, "h"}, {c, "c"}, {gates, "gates"}},
                 {{x, "x"}, {h0, "h0"}, {c0, "c0"}, {w_ih, "w_ih"}, {w_hh, "w_hh"}, {b_ih, "b_ih"},
                  {b_hh, "b_hh"}, {w_ch, "w_ch"}, {lengths, "lengths"}});
  S *py_ = y.mutable_data(), *ph = h.mutable_data(), *pc = c.mutable_data(), *pg = gates.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::lstm_forward_workspace_size<S>(B, H));
    rnncore::lstm_forward<S>(py_, ph, pc, pg, px, ph0, pc0, pw_ih, pw_hh, pb_ih, pb_hh, pw_ch, pl, reverse, T, B, I,
                             H, ws);
  }
  return py::make_tuple(y, h, c, gates);
}

template <typename S>
py::tuple backward(const py::object& dy, const py::object& dh_n, const py::object& dc_n, const py::array& x,
                   const py::array& h, const py::array& c, const py::array& gates, const py::array& w_ih,
                   const py::array& w_hh, const py::object& w_ch, const py::object& lengths, bool reverse,
                   const py::array& dw_ih, const py::array& dw_hh, const py::object& db_ih, const py::object& db_hh,
                   const py::object& dw_ch, const py::object& out) {
  const Dims d = recurrent_dims<S>(x, w_hh, 4, true);
  const index_t T = d.T, B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {T, B, I});
  const S* ph = checked<S>(h, "h", {T + 1, B, H});
  const S* pc = checked<S>(c, "c", {T + 1, B, H});
  const S* pg = checked<S>(gates, "gates", {T, B, 4 * H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {4 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {4 * H, H});
  const S* pw_ch = optional<S>(w_ch, "w_ch", {3 * H});
  const S* pdy = optional<S>(dy, "dy", {T, B, H});
  const S* pdh_n = optional<S>(dh_n, "dh_n", {B, H});
  const S* pdc_n = optional<S>(dc_n, "dc_n", {B, H});
  const index_t* pl = checked_lengths(lengths, T, B);
  S* pdw_ih = checked<S>(dw_ih, "dw_ih", {4 * H, I}, true);
  S* pdw_hh = checked<S>(dw_hh, "dw_hh", {4 * H, H}, true);
  if (db_ih.is_none() != db_hh.is_none()) throw py::value_error("db_ih, db_hh: give both bias gradients or neither");
  S* pdb_ih = optional<S>(db_ih, "db_ih", {4 * H}, true);
  S* pdb_hh = optional<S>(db_hh, "db_hh", {4 * H}, true);
  if (w_ch.is_none() != dw_ch.is_none()) throw py::value_error("dw_ch: expected exactly when w_ch is given");
  S* pdw_ch = optional<S>(dw_ch, "dw_ch", {3 * H}, true);
  const auto o = out_tuple(out, 3, "dx, dh0, dc0");
  auto dx = output<S>(o[0], "out[0] (dx)", {T, B, I});
  auto dh0 = output<S>(o[1], "out[1] (dh0)", {B, H});
  auto dc0 = output<S>(o[2], "out[2] (dc0)", {B, H});
  check_disjoint({{dw_ih, "dw_ih"}, {dw_hh, "dw_hh"}, {db_ih, "db_ih"}, {db_hh, "db_hh"}, {dw_ch, "dw_ch"},
                  {dx, "dx"}, {dh0, "dh0"}, {dc0, "dc0"}},
                 {{dy, "dy"}, {dh_n, "dh_n"}, {dc_n, "dc_n"}, {x, "x"}, {h, "h"}, {c, "c"}, {gates, "gates"},
                  {w_ih, "w_ih"}, {w_hh, "w_hh"}, {w_ch, "w_ch"}, {lengths, "lengths"}});
  S *pdx = dx.mutable_data(), *pdh0 = dh0.mutable_data(), *pdc0 = dc0.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::lstm_backward_workspace_size<S>(T, B, H, pw_ch != nullptr));
    rnncore::lstm_backward<S>(pdx, pdh0, pdc0, pdw_ih, pdw_hh, pdb_ih, pdb_hh, pdw_ch, pdy, pdh_n, pdc_n, px, ph, pc,
                              pg, pw_ih, pw_hh, pw_ch, pl, reverse, T, B, I, H, ws);
  }
  return py::make_tuple(dx, dh0, dc0);
}

template <typename S>
py::tuple step_forward(const py::array& x, const py::array& h_prev, const py::array& c_prev, const py::array& w_ih,
                       const py::array& w_hh, const py::object& b_ih, const py::object& b_hh, const py::object& w_ch) {
  const Dims d = recurrent_dims<S>(x, w_hh, 4, false);
  const index_t B = d.B, I = d.I, H = d.H;
  const S* px = checked<S>(x, "x", {B, I});
  const S* php = checked<S>(h_prev, "h_prev", {B, H});
  const S* pcp = checked<S>(c_prev, "c_prev", {B, H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {4 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {4 * H, H});
  const auto [pb_ih, pb_hh] = checked_biases<S>(b_ih, b_hh, 4 * H);
  const S* pw_ch = optional<S>(w_ch, "w_ch", {3 * H});
  auto h = empty<S>({B, H});
  auto c = empty<S>({B, H});
  auto gates = empty<S>({B, 4 * H});
  S *ph = h.mutable_data(), *pc = c.mutable_data(), *pg = gates.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::lstm_step_forward_workspace_size<S>(B, H));
    rnncore::lstm_step_forward<S>(ph, pc, pg, px, php, pcp, pw_ih, pw_hh, pb_ih, pb_hh, pw_ch, B, I, H, ws);
  }
  return py::make_tuple(h, c, gates);
}

template <typename S>
py::tuple step_backward(const py::array& dh, const py::object& dc, const py::array& x, const py::array& h_prev,
                        const py::array& c_prev, const py::array& c, const py::array& gates, const py::array& w_ih,
                        const py::array& w_hh, const py::object& w_ch, const py::array& dw_ih, const py::array& dw_hh,
                        const py::object& db_ih, const py::object& db_hh, const py::object& dw_ch) {
  const Dims d = recurrent_dims<S>(x, w_hh, 4, false);
  const index_t B = d.B, I = d.I, H = d.H;
  const S* pdh = checked<S>(dh, "dh", {B, H});
  const S* pdc = optional<S>(dc, "dc", {B, H});
  const S* px = checked<S>(x, "x", {B, I});
  const S* php = checked<S>(h_prev, "h_prev", {B, H});
  const S* pcp = checked<S>(c_prev, "c_prev", {B, H});
  const S* pc = checked<S>(c, "c", {B, H});
  const S* pg = checked<S>(gates, "gates", {B, 4 * H});
  const S* pw_ih = checked<S>(w_ih, "w_ih", {4 * H, I});
  const S* pw_hh = checked<S>(w_hh, "w_hh", {4 * H, H});
  const S* pw_ch = optional<S>(w_ch, "w_ch", {3 * H});
  S* pdw_ih = checked<S>(dw_ih, "dw_ih", {4 * H, I}, true);
  S* pdw_hh = checked<S>(dw_hh, "dw_hh", {4 * H, H}, true);
  if (db_ih.is_none() != db_hh.is_none()) throw py::value_error("db_ih, db_hh: give both bias gradients or neither");
  S* pdb_ih = optional<S>(db_ih, "db_ih", {4 * H}, true);
  S* pdb_hh = optional<S>(db_hh, "db_hh", {4 * H}, true);
  if (w_ch.is_none() != dw_ch.is_none()) throw py::value_error("dw_ch: expected exactly when w_ch is given");
  S* pdw_ch = optional<S>(dw_ch, "dw_ch", {3 * H}, true);
  check_disjoint({{dw_ih, "dw_ih"}, {dw_hh, "dw_hh"}, {db_ih, "db_ih"}, {db_hh, "db_hh"}, {dw_ch, "dw_ch"}},
                 {{dh, "dh"}, {dc, "dc"}, {x, "x"}, {h_prev, "h_prev"}, {c_prev, "c_prev"}, {c, "c"},
                  {gates, "gates"}, {w_ih, "w_ih"}, {w_hh, "w_hh"}, {w_ch, "w_ch"}});
  auto dx = empty<S>({B, I});
  auto dhp = empty<S>({B, H});
  auto dcp = empty<S>({B, H});
  S *pdx = dx.mutable_data(), *pdhp = dhp.mutable_data(), *pdcp = dcp.mutable_data();
  {
    py::gil_scoped_release release;
    S* ws = workspace<S>(rnncore::lstm_step_backward_workspace_size<S>(B, H, pw_ch != nullptr));
    rnncore::lstm_step_backward<S>(pdx, pdhp, pdcp, pdw_ih, pdw_hh, pdb_ih, pdb_hh, pdw_ch, pdh, pdc, px, php, pcp,
                                   pc, pg, pw_ih, pw_hh, pw_ch, B, I, H, ws);
  }
  return py::make_tuple(dx, dhp, dcp);
}

}  // namespace

void bind_lstm(py::module_& m) {
  m.def(
      "lstm_forward",
      [](const py::array& x, const py::object& h0, const py::object& c0, const py::array& w_ih, const py::array& w_hh,
         const py::object& b_ih, const py::object& b_hh, const py::object& w_ch, const py::object& lengths,
         bool reverse, const py::object& out) {
        require_float(x, "x");
        return is_float32(x) ? forward<float>(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, lengths, reverse, out)
                             : forward<double>(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, lengths, reverse, out);
      },
      py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("w_ch") = py::none(), py::arg("lengths") = py::none(), py::arg("reverse") = false, py::kw_only(),
      py::arg("out") = py::none(),
      "LSTM over a sequence, one direction -> (y [T,B,H], h [T+1,B,H], c [T+1,B,H], gates [T,B,4H]).\n"
      "out: optional tuple of buffers for those four (None entries are allocated).");
  m.def(
      "lstm_backward",
      [](const py::object& dy, const py::object& dh_n, const py::object& dc_n, const py::array& x, const py::array& h,
         const py::array& c, const py::array& gates, const py::array& w_ih, const py::array& w_hh,
         const py::object& w_ch, const py::object& lengths, bool reverse, const py::array& dw_ih,
         const py::array& dw_hh, const py::object& db_ih, const py::object& db_hh, const py::object& dw_ch,
         const py::object& out) {
        require_float(x, "x");
        return is_float32(x) ? backward<float>(dy, dh_n, dc_n, x, h, c, gates, w_ih, w_hh, w_ch, lengths, reverse,
                                               dw_ih, dw_hh, db_ih, db_hh, dw_ch, out)
                             : backward<double>(dy, dh_n, dc_n, x, h, c, gates, w_ih, w_hh, w_ch, lengths, reverse,
                                                dw_ih, dw_hh, db_ih, db_hh, dw_ch, out);
      },
      py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("x"), py::arg("h"), py::arg("c"), py::arg("gates"),
      py::arg("w_ih"), py::arg("w_hh"), py::arg("w_ch"), py::arg("lengths"), py::arg("reverse"), py::arg("dw_ih"),
      py::arg("dw_hh"), py::arg("db_ih"), py::arg("db_hh"), py::arg("dw_ch"), py::kw_only(),
      py::arg("out") = py::none(),
      "BPTT for lstm_forward: adds into dw_ih, dw_hh, db_ih, db_hh, dw_ch -> (dx, dh0, dc0).");
  m.def(
      "lstm_step_forward",
      [](const py::array& x, const py::array& h_prev, const py::array& c_prev, const py::array& w_ih,
         const py::array& w_hh, const py::object& b_ih, const py::object& b_hh, const py::object& w_ch) {
        require_float(x, "x");
        return is_float32(x) ? step_forward<float>(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh, w_ch)
                             : step_forward<double>(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh, w_ch);
      },
      py::arg("x"), py::arg("h_prev"), py::arg("c_prev"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
      py::arg("b_hh"), py::arg("w_ch") = py::none(), "One LSTM step -> (h, c, gates).");
  m.def(
      "lstm_step_backward",
      [](const py::array& dh, const py::object& dc, const py::array& x, const py::array& h_prev,
         const py::array& c_prev, const py::array& c, const py::array& gates, const py::array& w_ih,
         const py::array& w_hh, const py::object& w_ch, const py::array& dw_ih, const py::array& dw_hh,
         const py::object& db_ih, const py::object& db_hh, const py::object& dw_ch) {
        require_float(x, "x");
        return is_float32(x) ? step_backward<float>(dh, dc, x, h_prev, c_prev, c, gates, w_ih, w_hh, w_ch, dw_ih,
                                                    dw_hh, db_ih, db_hh, dw_ch)
                             : step_backward<double>(dh, dc, x, h_prev, c_prev, c, gates, w_ih, w_hh, w_ch, dw_ih,
                                                     dw_hh, db_ih, db_hh, dw_ch);
      },
      py::arg("dh"), py::arg("dc"), py::arg("x"), py::arg("h_prev"), py::arg("c_prev"), py::arg("c"),
      py::arg("gates"), py::arg("w_ih"), py::arg("w_hh"), py::arg("w_ch"), py::arg("dw_ih"), py::arg("dw_hh"),
      py::arg("db_ih"), py::arg("db_hh"), py::arg("dw_ch"), "Backward of one LSTM step -> (dx, dh_prev, dc_prev).");
}

}  // namespace rnncore_py

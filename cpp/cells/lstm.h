// LSTM cell: its maths and traits for the recurrence driver (driver/recurrence.h).
//
// Gates in PyTorch's order i, f, g, o, blocks of H in a row of G*H = 4H:
//   a_t = x_t @ w_ih.T + b_ih + h_{t-1} @ w_hh.T + b_hh
//   i = sigmoid(a_i + p_i * c_{t-1})   f = sigmoid(a_f + p_f * c_{t-1})   g = tanh(a_g)
//   c_t = f * c_{t-1} + i * g          o = sigmoid(a_o + p_o * c_t)       h_t = o * tanh(c_t)
// The peephole terms p = w_ch [3H] (i, f, o; Gers et al.) exist only when Params::extra
// is given. States: h, c. Saved per step: gates [T,B,4H], post-activation i, f, g, o
// (at padded steps, the unused pre-activations).
//
// Backward, with dh, dc the gradients reaching h_t, c_t (from the output and step t+1):
//   do = dh * tanh(c_t)                    da_o = do * o(1-o)
//   dc += dh * o * (1 - tanh(c_t)^2) + da_o * p_o
//   da_i = dc * g * i(1-i)   da_f = dc * c_{t-1} * f(1-f)   da_g = dc * i * (1-g^2)
//   dc_{t-1} = dc * f + da_i * p_i + da_f * p_f          dh_{t-1} = da_t @ w_hh
//   dw_ih += da.T @ x   dw_hh += da.T @ h_{t-1}   db_ih, db_hh += sum da   dx = da @ w_ih
//   dp_i += sum da_i c_{t-1}   dp_f += sum da_f c_{t-1}   dp_o += sum da_o c_t
// (The notes' W_x / W_ax / U is w_ih, W_s / W_aa / W is w_hh, s / a is h.)
//
// A step is one part forward (the product into the gates, then the gate maths) and two
// backward (the gate maths, then dh_{t-1} += da_t @ w_hh).
#pragma once

#include "driver/cell.h"

namespace rnncore {

template <typename scalar_t_>
struct LstmCell : MatrixCell<scalar_t_, 4> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"lstm", 4, 2, {"h", "c"}, 1, {{"gates", 4}}, 0, {"w_ch", 3},
                                    OptionKind::none, nullptr, 0, false, {false, true}};
  bool peephole;  // Params::extra (w_ch) is given

  static LstmCell make(int /*option*/, bool extra) { return {{}, extra}; }
  index_t accum(index_t H) const { return peephole ? 3 * H : 0; }  // dp_i, dp_f, dp_o per task
  // a_t += hin_{t-1} @ w_hh.T, gate by gate, into the gates that hold the projection
  void forward_product(const FwdStep<scalar_t>& s, int) const {
    for (index_t k = 0; k < 4; ++k) s.product(0, k, s.hin, s.H, s.saved[0] + k * s.H, 4 * s.H, true);
  }
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
};

}  // namespace rnncore

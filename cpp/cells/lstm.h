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
//
// LSTMP (LstmProjCell, torch.nn.LSTM's proj_size; Sak et al. 2014): the same gates, with
// h projected to P units by w_hr [P,H], and w_hh [4H,P] reading it:
//   m_t = o * tanh(c_t)    h_t = y_t = m_t @ w_hr.T    (c stays H wide; peepholes read it)
// Saved per step: gates and m [T,B,H]. Backward, with dh the whole gradient reaching h_t
// (from step t+1 and the output):
//   dm = dh @ w_hr, then the LSTM's gate maths above with dm in place of dh
//   dh_{t-1} = da_t @ w_hh    dw_hr += dh.T @ m    dw_hh += da.T @ h_{t-1} (P wide)
// Forward parts: the product into the gates and the gate maths (units of H); h_t = m_t @
// w_hr.T and y_t (units of P). Backward: dh = dh + dy kept per step for dw_hr (P); dm and
// the gate maths (H); dh_{t-1} = da_t @ w_hh (P).
// With the driver's regularisers (driver/regularise.h): recurrent dropout's hin is the P
// wide h_{t-1} * M entering w_hh (dw_hh against it, da_t @ w_hh is dhin); zoneout mixes c
// (H units) after the gate maths and h (P units) after the projection, and the kept dh
// (for dw_hr) is the cell's share of the gradient reaching h_t.
#pragma once

#include "driver/cell.h"

namespace rnncore {

template <typename scalar_t_>
struct LstmCell : MatrixCell<scalar_t_, 4> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"lstm", 4, 2, {"h", "c"}, 1, {{"gates", 4}}, 0, {"w_ch", 3}, nullptr,
                                    OptionKind::none, nullptr, 0, false, {false, true}};
  bool peephole;  // Params::extra (w_ch) is given

  static LstmCell make(int /*option*/, bool extra, index_t) { return {{}, extra}; }
  index_t accum(index_t H) const { return peephole ? 3 * H : 0; }  // dp_i, dp_f, dp_o per task
  // a_t += hin_{t-1} @ w_hh.T, gate by gate, into the gates that hold the projection
  void forward_product(const FwdStep<scalar_t>& s, int) const {
    for (index_t k = 0; k < 4; ++k) s.product(0, k, s.hin, s.H, s.saved[0] + k * s.H, 4 * s.H, true);
  }
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
};

template <typename scalar_t_>
struct LstmProjCell : MatrixCell<scalar_t_, 4> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"lstmp", 4, 2, {"h", "c"}, 2, {{"gates", 4}, {"m", 1}}, 0, {"w_ch", 3}, "w_hr",
                                    OptionKind::none, nullptr, 0, false, {false, true}};
  bool peephole;
  index_t P;  // rows of w_hr

  static LstmProjCell make(int /*option*/, bool extra, index_t P) { return {{}, extra, P}; }
  index_t accum(index_t H) const { return peephole ? 3 * H : 0; }
  index_t out_width(index_t) const { return P; }
  int forward_parts() const { return 2; }
  int backward_parts() const { return 3; }
  int state_part(int k) const { return k == 0 ? 1 : 0; }
  // the gate maths' part (forward 0, backward 1) splits the H units, the others P
  index_t units(bool backward, int part, index_t H) const { return part == (backward ? 1 : 0) ? H : P; }
  int gate_part() const { return 1; }
  index_t backward_scratch_ld(index_t H) const { return H; }  // dm
  index_t backward_history_ld(index_t) const { return P; }    // dh_t + dy_t
  index_t step_work(index_t B, index_t, index_t H) const { return B * 5 * H * P; }
  int views(bool backward, RecurrentView* v, index_t H) const {
    if (backward) {
      v[0] = {0, false, 4 * H, 1, P, P, false};  // dhin = da @ w_hh
      v[1] = {0, false, P, 1, H, H, true};       // dm = dh @ w_hr
    } else {
      v[0] = {0, true, P, 4, H, P, false};       // hin_{t-1} @ w_hh.T
      v[1] = {0, true, H, 1, P, H, true};        // m_t @ w_hr.T
    }
    return 2;
  }
  void forward_product(const FwdStep<scalar_t>& s, int part) const {
    const index_t H = s.H;
    if (part == 0)
      for (index_t k = 0; k < 4; ++k) s.product(0, k, s.hin, s.P, s.saved[0] + k * H, 4 * H, true);
    else
      s.product(1, 0, s.saved[1], H, s.next[0], s.P, false);
  }
  void backward_product(const BwdStep<scalar_t>& s, int part) const {
    const index_t H = s.H;
    if (part == 1) s.product(1, 0, s.history, s.P, s.scratch, H, false);
    if (part == 2) s.product(0, 0, s.dgate[0], 4 * H, s.dh_in, s.P, true);
  }
  void weight_grad(const Tail<scalar_t>& t) const {
    const index_t H = t.H;
    weight_grad_gemm(t, t.dw_hh, 4 * H, t.dgate[0], 4 * H, t.h_in, P);
    weight_grad_gemm(t, t.dw_hr, P, t.history, P, t.saved[1], H);
  }
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
};

}  // namespace rnncore

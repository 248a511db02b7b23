// Layer-normalised LSTM and GRU cells (Ba et al. 2016, "Layer Normalization"), as haste's
// LayerNormLSTM and LayerNormGRU define them (lmnt-com/haste, frameworks/pytorch/
// layer_norm_lstm.py and layer_norm_gru.py, lib/layer_norm_*_gpu.cu.cc): their maths and
// traits for the recurrence driver (driver/recurrence.h).
//
// LN over the whole row of n values (the G*H pre-activations of all gates together, or
// the H units of c), biased variance, eps = 1e-5 as in haste:
//   LN(v) = (v - mean(v)) * rstd(v),   rstd(v) = 1 / sqrt(mean((v - mean(v))^2) + eps)
//
// LSTM (LstmNormCell, "lstm_ln"), gates i, f, g, o as LstmCell's:
//   a_t = LN(x_t @ w_ih.T) * g_ih + LN(h_{t-1} @ w_hh.T) * g_hh + b_ih + b_hh     [B,4H]
//   i, f, o = sigmoid(a_i, a_f, a_o)    g = tanh(a_g)    c_t = f * c_{t-1} + i * g
//   h_t = o * tanh(LN(c_t) * g_c + b_c)
// haste's single bias b is b_ih + b_hh here (both added after the norms); its gamma[0],
// gamma[1], gamma_h, beta_h are g_ih [4H], g_hh [4H], g_c [H], b_c [H]: Params::extra is
// [g_ih | g_hh | g_c | b_c] [10H] (required). c_t is the state before its norm. The G*H
// vectors follow PyTorch's gate order (haste's is i, g, f, o; z, r, n for the GRU); a norm
// over the whole row does not depend on it.
//
// GRU (GruNormCell, "gru_ln"), gates r, z, n, the reset applied after the product
// (torch.nn.GRU's form, and haste's):
//   ax = LN(x_t @ w_ih.T) * g_ih + b_ih      ah = LN(h_{t-1} @ w_hh.T) * g_hh + b_hh   [B,3H]
//   r = sigmoid(ax_r + ah_r)   z = sigmoid(ax_z + ah_z)   n = tanh(ax_n + r * ah_n)
//   h_t = (1 - z) * n + z * h_{t-1}
// Params::extra is [g_ih | g_hh] [6H] (required).
//
// Saved per step: wx [T,B,G*H], x_t @ w_ih.T as the input projection left it (no bias:
// input_bias gives none; kept, not overwritten), and acts:
//   LSTM [T,B,10H]: post-activation i, f, g, o | h_{t-1} @ w_hh.T (4H) | c_t | tanh(LN(c_t) g_c + b_c)
//   GRU  [T,B,7H]:  post-activation r, z, n | h_{t-1} @ w_hh.T (3H) | ah_n
// Backward recomputes each row's mean and rstd from the saved un-normalised values (2G*H + H
// reads a row, against G*H*H multiply-adds of the product).
//
// Backward of y = LN(v) * g (+ b), with dy the gradient reaching y and vh = LN(v):
//   dvh = dy * g     dg += sum_rows dy * vh     db += sum_rows dy
//   dv = rstd * (dvh - mean(dvh) - vh * mean(dvh * vh))      (means over the row)
// LSTM, with dh, dc reaching h_t, c_t; t = tanh(LN(c_t) g_c + b_c):
//   da_o = dh * t * o(1-o)    dn = dh * o * (1 - t^2)     (dn: of LN(c_t) g_c + b_c)
//   dc = dc + LN's backward of dn (g_c, b_c)
//   da_i = dc * g * i(1-i)    da_f = dc * c_{t-1} * f(1-f)    da_g = dc * i * (1-g^2)
//   dc_{t-1} = dc * f         db_ih, db_hh += sum da
//   dgate[0] = d(x @ w_ih.T), dgate[1] = d(h @ w_hh.T): LN's backward of da (g_ih; g_hh)
// GRU, with dh reaching h_t:
//   dn = dh (1-z)   dz = dh (h_{t-1} - n)   da_n = dn (1-n^2)   da_z = dz z(1-z)
//   dah_n = da_n r  dr = da_n ah_n          da_r = dr r(1-r)    dh_{t-1} = dh z + dhin
//   dax = [da_r, da_z, da_n], dah = [da_r, da_z, dah_n]: db_ih += sum dax, db_hh += sum dah
//   dgate[0], dgate[1]: LN's backward of dax (g_ih), of dah (g_hh)
// and for both: dw_ih += dgate[0].T @ x, dx = dgate[0] @ w_ih, dw_hh += dgate[1].T @ hin,
// dhin = dgate[1] @ w_hh. The gains' and biases' gradients are per-task sums (accum), added
// in task order after the loop: [dg_ih | dg_hh (| dg_c | db_c)] then db (LSTM: one [4H], for
// b_ih and b_hh; GRU: db_ih [3H], db_hh [3H]).
//
// The norms couple all units of a row, so a part that normalises follows a barrier after the
// part that wrote the whole row; each task computes the row's statistics itself (redundant
// across tasks, cheap) and the maths of its own units.
//   LSTM forward:  0 the product into acts | 1 the statistics, a_t, the gates, c_t | 2 LN(c_t), h_t
//   LSTM backward: 0 dn, da_o (and LN(c_t)'s gain and bias gradients) | 1 dc, da_i, da_f,
//                  da_g, dc_{t-1}, the gains' and biases' sums | 2 dgate[0], dgate[1] | 3 the product
//   GRU forward:   0 the product | 1 the statistics, the gates, h_t
//   GRU backward:  0 the gate maths, the sums | 1 dgate[0], dgate[1] | 2 the product
// With the driver's regularisers (driver/regularise.h): recurrent dropout's hin enters the
// product (dw_hh against it, dhin its gradient); zoneout mixes c after part 1 (the norm of
// c reads acts' copy of the unmixed c_t) and h after the last part.
#pragma once

#include <stdexcept>

#include "driver/cell.h"

namespace rnncore {

// What both layer-normalised cells share, G gates and acts W*H wide: no biases in the
// projection (they act after the norms), the two sides' gradients apart, forward part 0
// the product into acts' recurrent block, the last backward part dhin += dgate[1] @ w_hh,
// and dw_hh from dgate[1].
template <typename scalar_t_, index_t G, index_t W, int LastBackwardPart>
struct NormMatrixCell : MatrixCell<scalar_t_, G> {
  using scalar_t = scalar_t_;
  int grad_buffers() const { return 2; }
  void input_bias(const Params<scalar_t>&, index_t, scalar_t*, const scalar_t** b1, const scalar_t** b2) const {
    *b1 = *b2 = nullptr;
  }
  void forward_product(const FwdStep<scalar_t>& s, int part) const {
    if (part == 0)
      for (index_t k = 0; k < G; ++k) s.product(0, k, s.hin, s.H, s.saved[1] + (G + k) * s.H, W * s.H, false);
  }
  void backward_product(const BwdStep<scalar_t>& s, int part) const {
    if (part == LastBackwardPart) s.product(0, 0, s.dgate[1], G * s.H, s.dh_in, s.H, true);
  }
  void weight_grad(const Tail<scalar_t>& t) const {
    weight_grad_gemm(t, t.dw_hh, G * t.H, t.dgate[1], G * t.H, t.h_in, t.H);
  }
};

template <typename scalar_t_>
struct LstmNormCell : NormMatrixCell<scalar_t_, 4, 10, 3> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"lstm_ln", 4, 2, {"h", "c"}, 2, {{"wx", 4}, {"acts", 10}}, 0, {"ln", 10},
                                    nullptr, OptionKind::none, nullptr, 0, false, {false, false}};

  static LstmNormCell make(int /*option*/, bool extra, index_t) {
    if (!extra) throw std::invalid_argument("ln: required (g_ih, g_hh, g_c, b_c [10H])");
    return {};
  }
  int forward_parts() const { return 3; }
  int backward_parts() const { return 4; }
  int state_part(int k) const { return k == 0 ? 2 : 1; }
  int gate_part() const { return 1; }
  index_t backward_scratch_ld(index_t H) const { return 5 * H; }  // d(LN(c_t)) [H], da [4H]
  index_t accum(index_t H) const { return 14 * H; }               // dg_ih, dg_hh, dg_c, db_c, db
  index_t bias_accum(index_t H, int) const { return 10 * H; }
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
};

template <typename scalar_t_>
struct GruNormCell : NormMatrixCell<scalar_t_, 3, 7, 2> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"gru_ln", 3, 1, {"h"}, 2, {{"wx", 3}, {"acts", 7}}, 0, {"ln", 6},
                                    nullptr, OptionKind::none, nullptr, 0, false, {false}};

  static GruNormCell make(int /*option*/, bool extra, index_t) {
    if (!extra) throw std::invalid_argument("ln: required (g_ih, g_hh [6H])");
    return {};
  }
  int forward_parts() const { return 2; }
  int backward_parts() const { return 3; }
  int state_part(int) const { return 1; }
  index_t backward_scratch_ld(index_t H) const { return 6 * H; }  // dax, dah
  index_t accum(index_t H) const { return 12 * H; }               // dg_ih, dg_hh, db_ih, db_hh
  index_t bias_accum(index_t H, int k) const { return (k == 0 ? 6 : 9) * H; }
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
};

}  // namespace rnncore

// Elman RNN cell: its maths and traits for the recurrence driver (driver/recurrence.h).
//
//   a_t = x_t @ w_ih.T + b_ih + h_{t-1} @ w_hh.T + b_hh        h_t = phi(a_t)
// with phi = tanh, relu or sigmoid (Activation in runtime/activations.h). The seed notes'
// s_t = phi(x_t W_x + s_{t-1} W_s): W_x / W_ax / U is w_ih, W_s / W_aa / W is w_hh.
// State: h. Saved per step: nothing beyond y and h (y holds a_t until the step turns it
// into h_t).
//
// Backward, with dh the gradient reaching h_t (from y_t and from step t+1):
//   da_t = dh * phi'(h_t)     phi' from the saved output: tanh 1-h^2, sigmoid h(1-h), relu [h>0]
//   dh_{t-1} = da_t @ w_hh    dx_t = da_t @ w_ih
//   dw_ih += da.T @ x         dw_hh += da.T @ h_{t-1}       db_ih, db_hh += sum da
#pragma once

#include "driver/cell.h"
#include "runtime/activations.h"

namespace rnncore {

template <typename scalar_t_>
struct ElmanCell : MatrixCell<scalar_t_, 1> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"elman", 1, 1, {"h"}, 0, {}, -1, {nullptr, 0}, nullptr,
                                    OptionKind::activation, "nonlinearity", static_cast<int>(Activation::tanh),
                                    false, {true}};
  Activation act;

  static ElmanCell make(int option, bool, index_t) { return {{}, static_cast<Activation>(option)}; }
  // a_t += hin_{t-1} @ w_hh.T, into y_t, which holds the projection
  void forward_product(const FwdStep<scalar_t>& s, int) const { s.product(0, 0, s.hin, s.H, s.y, s.H, true); }
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
};

}  // namespace rnncore

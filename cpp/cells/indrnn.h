// Independently recurrent cell (IndRNN, Li et al. 2018): its maths and traits for the
// recurrence driver (driver/recurrence.h).
//
//   a_t = x_t @ w_ih.T + b_ih + w_hh * h_{t-1} + b_hh        h_t = phi(a_t)
// with w_hh [H] a vector (each unit sees only its own past: the recurrence is element-wise)
// and phi = relu (the paper's), tanh or sigmoid. State: h. Saved: nothing beyond y and h.
//
// Backward, with dh the gradient reaching h_t (from y_t and from step t+1):
//   da_t = dh * phi'(h_t)            dh_{t-1} = da_t * w_hh
//   dw_ih += da.T @ x   dw_hh += sum over t, b of da_t * h_{t-1}   db_ih, db_hh += sum da
// (With recurrent dropout h_{t-1} is hin_{t-1} in w_hh * h_{t-1} and dw_hh; dh_{t-1} = da_t *
// w_hh is then dhin, which the driver masks.)
//   dx = da @ w_ih
//
// No recurrent product: a step is one part each way, and since no unit reads another,
// threads may own slices of the units for the whole loop (elementwise).
#pragma once

#include "driver/cell.h"
#include "runtime/activations.h"

namespace rnncore {

template <typename scalar_t_>
struct IndrnnCell : MatrixCell<scalar_t_, 1> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"indrnn", 1, 1, {"h"}, 0, {}, -1, {nullptr, 0}, nullptr,
                                    OptionKind::activation, "nonlinearity", static_cast<int>(Activation::relu),
                                    true, {true}};
  static constexpr bool elementwise = true;
  Activation act;

  static IndrnnCell make(int option, bool, index_t) { return {{}, static_cast<Activation>(option)}; }
  int backward_parts() const { return 1; }
  int views(bool, RecurrentView*, index_t) const { return 0; }
  // The input projection is the work to share (the loop is B*H per step).
  static index_t step_work(index_t B, index_t I, index_t H) { return B * H * I; }
  static index_t unit_align() { return 16; }  // a cache line of floats
  void forward_product(const FwdStep<scalar_t>&, int) const {}
  void backward_product(const BwdStep<scalar_t>&, int) const {}
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void weight_grad(const Tail<scalar_t>& t) const;  // dw_hh += column sums of da * h_{t-1}
};

}  // namespace rnncore

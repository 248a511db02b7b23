#include "cells/elman.h"

#include "driver/loop.h"

namespace rnncore {

namespace {

// h_t = phi(a_t) in place in y_t (which holds a_t), rows [0,B), units [u0,u1).
template <typename scalar_t, Activation A>
RNNCORE_CLONES void forward_rows(scalar_t* y_t, scalar_t* h_t, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict y = y_t + b * H;
    scalar_t* __restrict hn = h_t + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t v = activate(A, y[j]);
      y[j] = v;
      hn[j] = v;
    }
  }
}

// da_t = (dh + dy_t) * phi'(h_t); dh_prev primed for the recurrent product. DY: dy_t is
// given (compile-time: see lstm.cpp's backward_rows).
template <typename scalar_t, Activation A, bool DY>
RNNCORE_CLONES void backward_rows(scalar_t* da_t, scalar_t* dh_prev, const scalar_t* dh_cur, const scalar_t* dy_t,
                                  const scalar_t* h_t, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict da = da_t + b * H;
    scalar_t* __restrict dhn = dh_prev + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    const scalar_t* __restrict dyb = DY ? dy_t + b * H : nullptr;
    const scalar_t* __restrict hv = h_t + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t g = DY ? dh[j] + dyb[j] : dh[j];
      da[j] = g * activate_grad(A, hv[j]);
      dhn[j] = 0;
    }
  }
}

}  // namespace

template <typename scalar_t>
void ElmanCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int, index_t r0, index_t r1) const {
  const index_t o = r0 * s.H;
  switch (act) {
    case Activation::relu:
      return forward_rows<scalar_t, Activation::relu>(s.y + o, s.next[0] + o, r1 - r0, s.H, s.u0, s.u1);
    case Activation::sigmoid:
      return forward_rows<scalar_t, Activation::sigmoid>(s.y + o, s.next[0] + o, r1 - r0, s.H, s.u0, s.u1);
    default:
      return forward_rows<scalar_t, Activation::tanh>(s.y + o, s.next[0] + o, r1 - r0, s.H, s.u0, s.u1);
  }
}

template <typename scalar_t>
void ElmanCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  if (part != 0) return;
  const index_t o = r0 * s.H;
  scalar_t* da = s.dgate[0] + o;
  const scalar_t* dy = s.dy ? s.dy + o : nullptr;
  auto run = [&](auto kernel) { kernel(da, s.dh_prev + o, s.dh + o, dy, s.next[0] + o, r1 - r0, s.H, s.u0, s.u1); };
  switch (act) {
    case Activation::relu:
      return dy ? run(backward_rows<scalar_t, Activation::relu, true>)
                : run(backward_rows<scalar_t, Activation::relu, false>);
    case Activation::sigmoid:
      return dy ? run(backward_rows<scalar_t, Activation::sigmoid, true>)
                : run(backward_rows<scalar_t, Activation::sigmoid, false>);
    default:
      return dy ? run(backward_rows<scalar_t, Activation::tanh, true>)
                : run(backward_rows<scalar_t, Activation::tanh, false>);
  }
}

template struct ElmanCell<float>;
template struct ElmanCell<double>;
RNNCORE_DRIVER_INSTANTIATE(ElmanCell<float>)
RNNCORE_DRIVER_INSTANTIATE(ElmanCell<double>)

}  // namespace rnncore

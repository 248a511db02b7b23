#include "cells/indrnn.h"

#include <type_traits>

#include "driver/loop.h"

namespace rnncore {

namespace {

// h_t = phi(a_t + w * hin_{t-1}) in place in y_t (which holds the projection a_t).
template <typename scalar_t, Activation A>
RNNCORE_CLONES void forward_rows(scalar_t* y_t, scalar_t* h_t, const scalar_t* h_prev, const scalar_t* w, index_t B,
                                 index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict y = y_t + b * H;
    scalar_t* __restrict hn = h_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t v = activate(A, y[j] + w[j] * hp[j]);
      y[j] = v;
      hn[j] = v;
    }
  }
}

// da_t = (dh + dy_t) * phi'(h_t); dhin = da_t * w. SPLIT (recurrent dropout): dh_in is its
// own buffer and dh_{t-1}'s direct part is zero; otherwise dh_in is dh_prev. DY: dy_t is
// given (compile-time: see lstm.cpp's backward_rows).
template <typename scalar_t, Activation A, bool SPLIT, bool DY>
RNNCORE_CLONES void backward_rows(scalar_t* da_t, scalar_t* dh_prev, scalar_t* dh_in, const scalar_t* dh_cur,
                                  const scalar_t* dy_t, const scalar_t* h_t, const scalar_t* w, index_t B, index_t H,
                                  index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict da = da_t + b * H;
    scalar_t* __restrict dhp = (SPLIT ? dh_in : dh_prev) + b * H;
    scalar_t* __restrict direct = SPLIT ? dh_prev + b * H : nullptr;
    const scalar_t* __restrict dh = dh_cur + b * H;
    const scalar_t* __restrict dyb = DY ? dy_t + b * H : nullptr;
    const scalar_t* __restrict hv = h_t + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t g = DY ? dh[j] + dyb[j] : dh[j];
      const scalar_t d = g * activate_grad(A, hv[j]);
      da[j] = d;
      dhp[j] = d * w[j];
      if (SPLIT) direct[j] = 0;
    }
  }
}

}  // namespace

template <typename scalar_t>
void IndrnnCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int, index_t r0, index_t r1) const {
  const index_t o = r0 * s.H;
  auto run = [&](auto kernel) { kernel(s.y + o, s.next[0] + o, s.hin + o, s.p->w_hh, r1 - r0, s.H, s.u0, s.u1); };
  switch (act) {
    case Activation::tanh: return run(forward_rows<scalar_t, Activation::tanh>);
    case Activation::sigmoid: return run(forward_rows<scalar_t, Activation::sigmoid>);
    default: return run(forward_rows<scalar_t, Activation::relu>);
  }
}

template <typename scalar_t>
void IndrnnCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int, index_t r0, index_t r1) const {
  const index_t o = r0 * s.H;
  const scalar_t* dy = s.dy ? s.dy + o : nullptr;
  auto run = [&](auto kernel) {
    kernel(s.dgate[0] + o, s.dh_prev + o, s.dh_in + o, s.dh + o, dy, s.next[0] + o, s.p->w_hh, r1 - r0, s.H, s.u0,
           s.u1);
  };
  const bool split = s.dh_in != s.dh_prev;
  auto with = [&](auto act_) {  // the kernel for this activation and the call's buffers
    constexpr Activation A = decltype(act_)::value;
    if (split) return dy ? run(backward_rows<scalar_t, A, true, true>) : run(backward_rows<scalar_t, A, true, false>);
    return dy ? run(backward_rows<scalar_t, A, false, true>) : run(backward_rows<scalar_t, A, false, false>);
  };
  switch (act) {
    case Activation::tanh: return with(std::integral_constant<Activation, Activation::tanh>{});
    case Activation::sigmoid: return with(std::integral_constant<Activation, Activation::sigmoid>{});
    default: return with(std::integral_constant<Activation, Activation::relu>{});
  }
}

template <typename scalar_t>
void IndrnnCell<scalar_t>::weight_grad(const Tail<scalar_t>& t) const {
  const Range r = split(t.H, t.p, t.nt, 16);
  add_column_dots(t.dw_hh, t.dgate[0], t.h_in, t.rows, t.H, r.begin, r.end);
}

template struct IndrnnCell<float>;
template struct IndrnnCell<double>;
RNNCORE_DRIVER_INSTANTIATE(IndrnnCell<float>)
RNNCORE_DRIVER_INSTANTIATE(IndrnnCell<double>)

}  // namespace rnncore

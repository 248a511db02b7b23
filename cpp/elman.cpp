#include "elman.h"

#include <cstring>
#include <utility>

#include "sequence.h"

namespace rnncore {

namespace {

// h_t = phi(a_t) in place in y_t (which holds a_t), rows [0,B), units [u0,u1).
template <typename scalar_t, Activation A>
RNNCORE_CLONES void forward_pointwise(scalar_t* y_t, scalar_t* h_t, const scalar_t* h_prev, const index_t* lengths,
                                      index_t t, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict y = y_t + b * H;
    scalar_t* __restrict hn = h_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    if (!seq::valid(lengths, t, b)) {
      for (index_t j = u0; j < u1; ++j) {
        hn[j] = hp[j];
        y[j] = 0;
      }
      continue;
    }
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t v = activate(A, y[j]);
      y[j] = v;
      hn[j] = v;
    }
  }
}

// da_t = (dh + dy_t) * phi'(h_t); dh_next primed for the recurrent product.
template <typename scalar_t, Activation A>
RNNCORE_CLONES void backward_pointwise(scalar_t* da_t, scalar_t* dh_next, const scalar_t* dh_cur,
                                       const scalar_t* dy_t, const scalar_t* h_t, const index_t* lengths, index_t t,
                                       index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict da = da_t + b * H;
    scalar_t* __restrict dhn = dh_next + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    if (!seq::valid(lengths, t, b)) {
      for (index_t j = u0; j < u1; ++j) {
        da[j] = 0;
        dhn[j] = dh[j];
      }
      continue;
    }
    const scalar_t* __restrict dyb = dy_t ? dy_t + b * H : nullptr;
    const scalar_t* __restrict hv = h_t + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t g = dyb ? dh[j] + dyb[j] : dh[j];
      da[j] = g * activate_grad(A, hv[j]);
      dhn[j] = 0;
    }
  }
}

template <typename scalar_t>
void forward_pointwise(Activation act, scalar_t* y_t, scalar_t* h_t, const scalar_t* h_prev, const index_t* lengths,
                       index_t t, index_t B, index_t H, index_t u0, index_t u1) {
  switch (act) {
    case Activation::relu:
      return forward_pointwise<scalar_t, Activation::relu>(y_t, h_t, h_prev, lengths, t, B, H, u0, u1);
    case Activation::sigmoid:
      return forward_pointwise<scalar_t, Activation::sigmoid>(y_t, h_t, h_prev, lengths, t, B, H, u0, u1);
    default:
      return forward_pointwise<scalar_t, Activation::tanh>(y_t, h_t, h_prev, lengths, t, B, H, u0, u1);
  }
}

template <typename scalar_t>
void backward_pointwise(Activation act, scalar_t* da_t, scalar_t* dh_next, const scalar_t* dh_cur,
                        const scalar_t* dy_t, const scalar_t* h_t, const index_t* lengths, index_t t, index_t B,
                        index_t H, index_t u0, index_t u1) {
  switch (act) {
    case Activation::relu:
      return backward_pointwise<scalar_t, Activation::relu>(da_t, dh_next, dh_cur, dy_t, h_t, lengths, t, B, H, u0,
                                                            u1);
    case Activation::sigmoid:
      return backward_pointwise<scalar_t, Activation::sigmoid>(da_t, dh_next, dh_cur, dy_t, h_t, lengths, t, B, H,
                                                               u0, u1);
    default:
      return backward_pointwise<scalar_t, Activation::tanh>(da_t, dh_next, dh_cur, dy_t, h_t, lengths, t, B, H, u0,
                                                            u1);
  }
}

}  // namespace

template <typename scalar_t>
index_t elman_forward_workspace_size(index_t B, index_t H) {
  (void)B;
  return packed_size<scalar_t>(H, H, 1);
}

template <typename scalar_t>
void elman_forward(scalar_t* y, scalar_t* h, const scalar_t* x, const scalar_t* h0, const scalar_t* w_ih,
                   const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh, Activation act,
                   const index_t* lengths, bool reverse, index_t T, index_t B, index_t I, index_t H,
                   scalar_t* workspace) {
  const index_t BH = B * H;
  const auto rw = seq::step_weights<scalar_t>(T, workspace, w_hh, H, true, H, H);
  const seq::LoopPlan plan = seq::plan_loop<scalar_t>(T, B, H, 1);
  const int nt = plan.nt;
  auto step = [&](index_t s, index_t b0, index_t b1, index_t u0, index_t u1) {
    if (b1 <= b0 || u1 <= u0) return;
    const index_t t = seq::time_of(s, T, reverse);
    const index_t pv = seq::prev_slot(t, reverse) * BH + b0 * H, nx = seq::next_slot(t, reverse) * BH + b0 * H;
    scalar_t* y_t = y + t * BH + b0 * H;
    rw.product(0, b1 - b0, u1 - u0, h + pv, H, u0, y_t + u0, H, true);
    forward_pointwise(act, y_t, h + nx, h + pv, lengths ? lengths + b0 : nullptr, t, b1 - b0, H, u0, u1);
  };
  seq::single_threaded_blas();
  // phase 0: pack, project (into y, which holds a_t until the step turns it into h_t),
  // place h0; then the time loop (one phase, or one per step; see seq::plan_loop)
  run_phased(nt, 1 + (plan.by_rows ? 1 : T), nt, [&](index_t phase, int p) {
    if (phase == 0) {
      const Range u = seq::units<scalar_t>(H, p, nt);
      rw.pack(p, nt, 1);
      seq::input_projection(p, nt, y, x, w_ih, b_ih, b_hh, T * B, I, H);
      seq::copy_units(h + (reverse ? T : 0) * BH, h0, B, H, u.begin, u.end);
    } else if (plan.by_rows) {
      const Range r = split(B, p, nt, 1);
      for (index_t s = 0; s < T; ++s) step(s, r.begin, r.end, 0, H);
    } else {
      const Range u = seq::units<scalar_t>(H, p, nt);
      step(phase - 1, 0, B, u.begin, u.end);
    }
  });
}

template <typename scalar_t>
index_t elman_backward_workspace_size(index_t T, index_t B, index_t H) {
  return T * B * H + packed_size<scalar_t>(H, H, 1) + 2 * B * H + H;
}

template <typename scalar_t>
void elman_backward(scalar_t* dx, scalar_t* dh0, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih, scalar_t* db_hh,
                    const scalar_t* dy, const scalar_t* dh_n, const scalar_t* x, const scalar_t* h,
                    const scalar_t* w_ih, const scalar_t* w_hh, Activation act, const index_t* lengths, bool reverse,
                    index_t T, index_t B, index_t I, index_t H, scalar_t* workspace) {
  const index_t BH = B * H;
  scalar_t* da = workspace;  // [T,B,H]
  scalar_t* packed = da + T * BH;
  scalar_t* dh_buf[2] = {packed + packed_size<scalar_t>(H, H, 1), packed + packed_size<scalar_t>(H, H, 1) + BH};
  scalar_t* dbias = dh_buf[1] + BH;
  const auto rw = seq::step_weights<scalar_t>(T, packed, w_hh, H, false, H, H);
  const seq::LoopPlan plan = seq::plan_loop<scalar_t>(T, B, H, 1);
  const int nt = plan.nt;
  auto step = [&](index_t s, int part, index_t b0, index_t b1, index_t u0, index_t u1) {
    if (b1 <= b0 || u1 <= u0) return;
    const index_t t = reverse ? s : T - 1 - s;
    scalar_t* da_t = da + t * BH + b0 * H;
    scalar_t* dh_next = dh_buf[(s + 1) % 2] + b0 * H;
    if (part == 0)
      backward_pointwise(act, da_t, dh_next, dh_buf[s % 2] + b0 * H, dy ? dy + t * BH + b0 * H : nullptr,
                         h + seq::next_slot(t, reverse) * BH + b0 * H, lengths ? lengths + b0 : nullptr, t, b1 - b0, H,
                         u0, u1);
    else
      rw.product(0, b1 - b0, u1 - u0, da_t, H, u0, dh_next + u0, H, true);
  };
  seq::single_threaded_blas();
  const index_t last = 1 + (plan.by_rows ? 1 : 2 * T);  // phases as in lstm_backward
  run_phased(nt, last + 1, nt, [&](index_t phase, int p) {
    const Range u = seq::units<scalar_t>(H, p, nt);
    if (phase == 0) {
      rw.pack(p, nt, 1);
      seq::copy_units(dh_buf[0], dh_n, B, H, u.begin, u.end);
      return;
    }
    if (phase < last) {
      if (plan.by_rows) {
        const Range r = split(B, p, nt, 1);
        for (index_t s = 0; s < T; ++s) {
          step(s, 0, r.begin, r.end, 0, H);
          step(s, 1, r.begin, r.end, 0, H);
        }
      } else {
        step((phase - 1) / 2, static_cast<int>((phase - 1) % 2), 0, B, u.begin, u.end);
      }
      return;
    }
    seq::copy_units(dh0, dh_buf[T % 2], B, H, u.begin, u.end);
    const scalar_t* h_in = reverse ? h + BH : h;
    seq::gemm_rows<scalar_t>(p, nt, true, false, H, I, T * B, 1, da, H, x, I, 1, dw_ih, I);
    seq::gemm_rows<scalar_t>(p, nt, true, false, H, H, T * B, 1, da, H, h_in, H, 1, dw_hh, H);
    if (db_ih || db_hh) {
      const Range r = split(H, p, nt, 8);
      for (index_t j = r.begin; j < r.end; ++j) dbias[j] = 0;
      seq::add_column_sums(dbias, da, T * B, H, r.begin, r.end);
      for (index_t j = r.begin; j < r.end; ++j) {
        if (db_ih) db_ih[j] += dbias[j];
        if (db_hh) db_hh[j] += dbias[j];
      }
    }
    seq::gemm_rows<scalar_t>(p, nt, false, false, T * B, I, H, 1, da, H, w_ih, I, 0, dx, I);
  });
}

template <typename scalar_t>
index_t elman_step_forward_workspace_size(index_t B, index_t H) {
  return 2 * B * H + elman_forward_workspace_size<scalar_t>(B, H);
}

template <typename scalar_t>
void elman_step_forward(scalar_t* h, const scalar_t* x, const scalar_t* h_prev, const scalar_t* w_ih,
                        const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh, Activation act, index_t B,
                        index_t I, index_t H, scalar_t* workspace) {
  elman_forward(h, workspace, x, h_prev, w_ih, w_hh, b_ih, b_hh, act, nullptr, false, 1, B, I, H,
                workspace + 2 * B * H);
}

template <typename scalar_t>
index_t elman_step_backward_workspace_size(index_t B, index_t H) {
  return 2 * B * H + elman_backward_workspace_size<scalar_t>(1, B, H);
}

template <typename scalar_t>
void elman_step_backward(scalar_t* dx, scalar_t* dh_prev, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih,
                         scalar_t* db_hh, const scalar_t* dh, const scalar_t* x, const scalar_t* h_prev,
                         const scalar_t* h, const scalar_t* w_ih, const scalar_t* w_hh, Activation act, index_t B,
                         index_t I, index_t H, scalar_t* workspace) {
  scalar_t* hist = workspace;  // [2,B,H]: h_prev, h
  std::memcpy(hist, h_prev, sizeof(scalar_t) * B * H);
  std::memcpy(hist + B * H, h, sizeof(scalar_t) * B * H);
  elman_backward(dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh, static_cast<const scalar_t*>(nullptr), dh, x, hist, w_ih,
                 w_hh, act, nullptr, false, 1, B, I, H, hist + 2 * B * H);
}

#define RNNCORE_INSTANTIATE(S)                                                                                     \
  template index_t elman_forward_workspace_size<S>(index_t, index_t);                                             \
  template void elman_forward<S>(S*, S*, const S*, const S*, const S*, const S*, const S*, const S*, Activation,  \
                                 const index_t*, bool, index_t, index_t, index_t, index_t, S*);                    \
  template index_t elman_backward_workspace_size<S>(index_t, index_t, index_t);                                   \
  template void elman_backward<S>(S*, S*, S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*,       \
                                  const S*, Activation, const index_t*, bool, index_t, index_t, index_t, index_t,  \
                                  S*);                                                                             \
  template index_t elman_step_forward_workspace_size<S>(index_t, index_t);                                        \
  template void elman_step_forward<S>(S*, const S*, const S*, const S*, const S*, const S*, const S*, Activation, \
                                      index_t, index_t, index_t, S*);                                              \
  template index_t elman_step_backward_workspace_size<S>(index_t, index_t);                                       \
  template void elman_step_backward<S>(S*, S*, S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*,  \
                                       const S*, Activation, index_t, index_t, index_t, S*);
RNNCORE_INSTANTIATE(float)
RNNCORE_INSTANTIATE(double)
#undef RNNCORE_INSTANTIATE

}  // namespace rnncore

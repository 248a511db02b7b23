#include "cells/gru.h"

#include "driver/loop.h"
#include "runtime/activations.h"

namespace rnncore {

namespace {

constexpr index_t G = 3;

// reset_after: gates holds ax (+ b_hr, b_hz), hg the recurrent product without bias; BIAS:
// b_hn is given (compile-time: a select on a null pointer becomes a masked load from
// address 0, which AMD CPUs serve by a slow microcode assist).
template <typename scalar_t, bool BIAS>
RNNCORE_CLONES void forward_rows_after(scalar_t* gates, scalar_t* sn_t, scalar_t* y_t, scalar_t* h_t,
                                       const scalar_t* hg, const scalar_t* h_prev, const scalar_t* b_hn, index_t B,
                                       index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict y = y_t + b * H;
    scalar_t* __restrict hnew = h_t + b * H;
    scalar_t* __restrict hs = sn_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    scalar_t* __restrict gr = gates + b * G * H;
    scalar_t* __restrict gz = gr + H;
    scalar_t* __restrict gn = gr + 2 * H;
    const scalar_t* __restrict hr = hg + b * G * H;
    const scalar_t* __restrict hz = hr + H;
    const scalar_t* __restrict hh = hr + 2 * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t r = sigmoid(gr[j] + hr[j]);
      const scalar_t z = sigmoid(gz[j] + hz[j]);
      const scalar_t a = BIAS ? hh[j] + b_hn[j] : hh[j];
      const scalar_t n = tanh(gn[j] + r * a);
      const scalar_t v = (scalar_t(1) - z) * n + z * hp[j];
      gr[j] = r;
      gz[j] = z;
      gn[j] = n;
      hs[j] = a;
      hnew[j] = v;
      y[j] = v;
    }
  }
}

// Cho form, first part: r and z from complete pre-activations; rh = r * hin_{t-1}.
template <typename scalar_t>
RNNCORE_CLONES void forward_rows_rz(scalar_t* gates, scalar_t* rh_t, const scalar_t* h_prev, index_t B, index_t H,
                                    index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict rh = rh_t + b * H;
    scalar_t* __restrict gr = gates + b * G * H;
    scalar_t* __restrict gz = gr + H;
    const scalar_t* __restrict hp = h_prev + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t r = sigmoid(gr[j]);
      gr[j] = r;
      gz[j] = sigmoid(gz[j]);
      rh[j] = r * hp[j];
    }
  }
}

// Cho form, second part: n from its complete pre-activation, then the new state.
template <typename scalar_t>
RNNCORE_CLONES void forward_rows_n(scalar_t* gates, scalar_t* y_t, scalar_t* h_t, const scalar_t* h_prev, index_t B,
                                   index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict y = y_t + b * H;
    scalar_t* __restrict hnew = h_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    const scalar_t* __restrict gz = gates + b * G * H + H;
    scalar_t* __restrict gn = gates + b * G * H + 2 * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t n = tanh(gn[j]);
      const scalar_t v = (scalar_t(1) - gz[j]) * n + gz[j] * hp[j];
      gn[j] = n;
      hnew[j] = v;
      y[j] = v;
    }
  }
}

// reset_after backward: dax, dah rows for these units; dh_prev = dh * z. DY: dy_t is given
// (compile-time: see lstm.cpp's backward_rows).
template <typename scalar_t, bool DY>
RNNCORE_CLONES void backward_rows_after(scalar_t* dax_t, scalar_t* dah_t, scalar_t* dh_prev, const scalar_t* dh_cur,
                                        const scalar_t* dy_t, const scalar_t* gates, const scalar_t* sn_t,
                                        const scalar_t* h_prev, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict xr = dax_t + b * G * H;
    scalar_t* __restrict xz = xr + H;
    scalar_t* __restrict xn = xr + 2 * H;
    scalar_t* __restrict hr = dah_t + b * G * H;
    scalar_t* __restrict hz = hr + H;
    scalar_t* __restrict hnn = hr + 2 * H;
    scalar_t* __restrict dhn = dh_prev + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    const scalar_t* __restrict dyb = DY ? dy_t + b * H : nullptr;
    const scalar_t* __restrict gr = gates + b * G * H;
    const scalar_t* __restrict gz = gr + H;
    const scalar_t* __restrict gn = gr + 2 * H;
    const scalar_t* __restrict a = sn_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t g = DY ? dh[j] + dyb[j] : dh[j];
      const scalar_t r = gr[j], z = gz[j];
      scalar_t dar, daz, dan;
      gru_after_grads(g, r, z, gn[j], a[j], hp[j], dar, daz, dan);
      xr[j] = dar;
      xz[j] = daz;
      xn[j] = dan;
      hr[j] = dar;
      hz[j] = daz;
      hnn[j] = dan * r;
      dhn[j] = g * z;
    }
  }
}

// Cho form backward, first part: da_n and da_z into dax; dh_prev = dh * z.
template <typename scalar_t, bool DY>
RNNCORE_CLONES void backward_rows_nz(scalar_t* dax_t, scalar_t* dh_prev, const scalar_t* dh_cur, const scalar_t* dy_t,
                                     const scalar_t* gates, const scalar_t* h_prev, index_t B, index_t H, index_t u0,
                                     index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict xz = dax_t + b * G * H + H;
    scalar_t* __restrict xn = dax_t + b * G * H + 2 * H;
    scalar_t* __restrict dhn = dh_prev + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    const scalar_t* __restrict dyb = DY ? dy_t + b * H : nullptr;
    const scalar_t* __restrict gz = gates + b * G * H + H;
    const scalar_t* __restrict gn = gates + b * G * H + 2 * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t g = DY ? dh[j] + dyb[j] : dh[j];
      const scalar_t z = gz[j], n = gn[j];
      xn[j] = g * (scalar_t(1) - z) * (scalar_t(1) - n * n);
      xz[j] = g * (hp[j] - n) * z * (scalar_t(1) - z);
      dhn[j] = g * z;
    }
  }
}

// Cho form backward, second part: from drh = da_n @ w_hn, da_r and the gradient of hin
// through r * hin.
template <typename scalar_t>
RNNCORE_CLONES void backward_rows_r(scalar_t* dax_t, scalar_t* dh_in, const scalar_t* drh, const scalar_t* gates,
                                    const scalar_t* hin, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict xr = dax_t + b * G * H;
    scalar_t* __restrict dhn = dh_in + b * H;
    const scalar_t* __restrict d = drh + b * H;
    const scalar_t* __restrict gr = gates + b * G * H;
    const scalar_t* __restrict hp = hin + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t r = gr[j];
      xr[j] = d[j] * hp[j] * r * (scalar_t(1) - r);
      dhn[j] += d[j] * r;
    }
  }
}

}  // namespace

template <typename scalar_t>
void GruCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, o = r0 * H, rows = r1 - r0;
  scalar_t* gates = s.saved[0] + r0 * G * H;
  if (reset_after) {
    const scalar_t* b_hn = s.p->b_hh ? s.p->b_hh + 2 * H : nullptr;
    auto run = [&](auto kernel) {
      kernel(gates, s.saved[1] + o, s.y + o, s.next[0] + o, s.scratch + r0 * G * H, s.prev[0] + o, b_hn, rows, H, s.u0,
             s.u1);
    };
    b_hn ? run(forward_rows_after<scalar_t, true>) : run(forward_rows_after<scalar_t, false>);
  } else if (part == 0) {
    forward_rows_rz(gates, s.saved[1] + o, s.hin + o, rows, H, s.u0, s.u1);
  } else {
    forward_rows_n(gates, s.y + o, s.next[0] + o, s.prev[0] + o, rows, H, s.u0, s.u1);
  }
}

template <typename scalar_t>
void GruCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, o = r0 * H, rows = r1 - r0;
  scalar_t* dax = s.dgate[0] + r0 * G * H;
  const scalar_t* gates = s.saved[0] + r0 * G * H;
  const scalar_t* dy = s.dy ? s.dy + o : nullptr;
  if (part == 0 && reset_after) {
    auto run = [&](auto kernel) {
      kernel(dax, s.dgate[1] + r0 * G * H, s.dh_prev + o, s.dh + o, dy, gates, s.saved[1] + o, s.prev[0] + o, rows,
             H, s.u0, s.u1);
    };
    dy ? run(backward_rows_after<scalar_t, true>) : run(backward_rows_after<scalar_t, false>);
  } else if (part == 0) {
    auto run = [&](auto kernel) { kernel(dax, s.dh_prev + o, s.dh + o, dy, gates, s.prev[0] + o, rows, H, s.u0, s.u1); };
    dy ? run(backward_rows_nz<scalar_t, true>) : run(backward_rows_nz<scalar_t, false>);
  }
  else if (part == 1 && !reset_after)
    backward_rows_r(dax, s.dh_in + o, s.scratch + o, gates, s.hin + o, rows, H, s.u0, s.u1);
}

template struct GruCell<float>;
template struct GruCell<double>;
RNNCORE_DRIVER_INSTANTIATE(GruCell<float>)
RNNCORE_DRIVER_INSTANTIATE(GruCell<double>)

}  // namespace rnncore

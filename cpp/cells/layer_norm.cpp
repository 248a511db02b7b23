#include "cells/layer_norm.h"

#include <cmath>

#include "cells/gru.h"
#include "driver/loop.h"
#include "runtime/activations.h"

namespace rnncore {

namespace {

constexpr double kEps = 1e-5;  // haste's

// sum_j f(j), j in [0,n), in 8 fixed lanes then a fixed tree: vectorisable (a plain running
// sum waits on each add), and the same order on every thread and call.
template <typename scalar_t, class F>
RNNCORE_INLINE scalar_t lane_sum(index_t n, F&& f) {
  scalar_t a[8] = {};
  index_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) a[l] += f(j + l);
  scalar_t tail = 0;
  for (; j < n; ++j) tail += f(j);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + tail;
}

// The mean and 1/sqrt(var + eps) of a row v [n], two passes.
template <typename scalar_t>
struct Stats {
  scalar_t mean, rstd;
  RNNCORE_INLINE Stats(const scalar_t* __restrict v, index_t n) {
    mean = lane_sum<scalar_t>(n, [&](index_t j) { return v[j]; }) / scalar_t(n);
    const scalar_t m = mean;
    const scalar_t q = lane_sum<scalar_t>(n, [&](index_t j) { return (v[j] - m) * (v[j] - m); });
    rstd = scalar_t(1) / std::sqrt(q / scalar_t(n) + scalar_t(kEps));
  }
};

// LN's backward over a row: with dv [n] reaching LN(v) g, the row means m1 = mean(dv g),
// m2 = mean(dv g LN(v)); then dv_j's gradient is rstd (dv_j g_j - m1 - LN(v)_j m2).
template <typename scalar_t>
struct NormGrad {
  scalar_t m1, m2;
  RNNCORE_INLINE NormGrad(const scalar_t* __restrict dv, const scalar_t* __restrict g, const scalar_t* __restrict v,
                          const Stats<scalar_t>& st, index_t n) {
    const scalar_t mu = st.mean, rs = st.rstd;
    m1 = lane_sum<scalar_t>(n, [&](index_t j) { return dv[j] * g[j]; }) / scalar_t(n);
    m2 = lane_sum<scalar_t>(n, [&](index_t j) { return dv[j] * g[j] * ((v[j] - mu) * rs); }) / scalar_t(n);
  }
};

// dgate = LN's backward of da [rows,G*H] for units [u0,u1) of each of the G blocks, the
// input side (wx, g_ih) into dx, the recurrent side (rh, g_hh) into dr.
template <typename scalar_t, index_t G>
RNNCORE_CLONES void norm_backward_rows(scalar_t* dx_t, scalar_t* dr_t, const scalar_t* dax_t, const scalar_t* dah_t,
                                       index_t lda, const scalar_t* wx_t, const scalar_t* rh_t, index_t ldr,
                                       const scalar_t* g_ih, const scalar_t* g_hh, index_t B, index_t H, index_t u0,
                                       index_t u1) {
  const index_t N = G * H;
  for (index_t b = 0; b < B; ++b) {
    const scalar_t* __restrict wx = wx_t + b * N;
    const scalar_t* __restrict rh = rh_t + b * ldr;
    const scalar_t* __restrict dax = dax_t + b * lda;
    const scalar_t* __restrict dah = dah_t + b * lda;
    scalar_t* __restrict dx = dx_t + b * N;
    scalar_t* __restrict dr = dr_t + b * N;
    const Stats<scalar_t> sx(wx, N), sh(rh, N);
    const NormGrad<scalar_t> nx(dax, g_ih, wx, sx, N), nh(dah, g_hh, rh, sh, N);
    for (index_t k = 0; k < G; ++k) {
      const index_t o = k * H;
      RNNCORE_IVDEP
      for (index_t j = o + u0; j < o + u1; ++j) {
        dx[j] = sx.rstd * (dax[j] * g_ih[j] - nx.m1 - (wx[j] - sx.mean) * sx.rstd * nx.m2);
        dr[j] = sh.rstd * (dah[j] * g_hh[j] - nh.m1 - (rh[j] - sh.mean) * sh.rstd * nh.m2);
      }
    }
  }
}

// The gains' and biases' per-task sums of one row: dg_ih += dax LN(wx), dg_hh += dah LN(rh),
// db_ih += dax, db_hh += dah (db_hh may be db_ih: the LSTM's one sum), units [u0,u1) of
// each block.
template <typename scalar_t, index_t G>
RNNCORE_INLINE void norm_sums(scalar_t* __restrict dg_ih, scalar_t* __restrict dg_hh, scalar_t* db_ih, scalar_t* db_hh,
                              const scalar_t* __restrict dax, const scalar_t* __restrict dah,
                              const scalar_t* __restrict wx, const scalar_t* __restrict rh, const Stats<scalar_t>& sx,
                              const Stats<scalar_t>& sh, index_t H, index_t u0, index_t u1) {
  for (index_t k = 0; k < G; ++k) {
    const index_t o = k * H;
    RNNCORE_IVDEP
    for (index_t j = o + u0; j < o + u1; ++j) {
      dg_ih[j] += dax[j] * ((wx[j] - sx.mean) * sx.rstd);
      dg_hh[j] += dah[j] * ((rh[j] - sh.mean) * sh.rstd);
    }
    if (db_ih == db_hh) {
      for (index_t j = o + u0; j < o + u1; ++j) db_ih[j] += dax[j];
    } else {
      for (index_t j = o + u0; j < o + u1; ++j) {
        db_ih[j] += dax[j];
        db_hh[j] += dah[j];
      }
    }
  }
}

// ---- LSTM rows: acts [rows,10H] = gates | rh | c | tanh(LN(c) g_c + b_c) ----

template <typename scalar_t, bool BIAS>
RNNCORE_CLONES void lstm_gates_rows(scalar_t* acts, scalar_t* c_t, const scalar_t* wx_t, const scalar_t* c_prev,
                                    const scalar_t* g_ih, const scalar_t* g_hh, const scalar_t* b_ih,
                                    const scalar_t* b_hh, index_t B, index_t H, index_t u0, index_t u1) {
  const index_t N = 4 * H;
  for (index_t b = 0; b < B; ++b) {
    const scalar_t* __restrict wx = wx_t + b * N;
    scalar_t* __restrict a = acts + b * 10 * H;
    const scalar_t* __restrict rh = a + N;
    scalar_t* __restrict cc = a + 2 * N;
    scalar_t* __restrict cn = c_t + b * H;
    const scalar_t* __restrict cp = c_prev + b * H;
    const Stats<scalar_t> sx(wx, N), sh(rh, N);
    auto pre = [&](index_t q) {
      scalar_t v = (wx[q] - sx.mean) * sx.rstd * g_ih[q] + (rh[q] - sh.mean) * sh.rstd * g_hh[q];
      if (BIAS) v += b_ih[q] + b_hh[q];
      return v;
    };
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t i = sigmoid(pre(j)), f = sigmoid(pre(H + j)), g = tanh(pre(2 * H + j));
      const scalar_t o = sigmoid(pre(3 * H + j));
      const scalar_t c = f * cp[j] + i * g;
      a[j] = i;
      a[H + j] = f;
      a[2 * H + j] = g;
      a[3 * H + j] = o;
      cc[j] = c;
      cn[j] = c;
    }
  }
}

template <typename scalar_t>
RNNCORE_CLONES void lstm_out_rows(scalar_t* acts, scalar_t* h_t, scalar_t* y_t, const scalar_t* g_c,
                                  const scalar_t* b_c, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict a = acts + b * 10 * H;
    const scalar_t* __restrict cc = a + 8 * H;
    scalar_t* __restrict tn = a + 9 * H;
    scalar_t* __restrict hn = h_t + b * H;
    scalar_t* __restrict y = y_t + b * H;
    const Stats<scalar_t> sc(cc, H);
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t t = tanh((cc[j] - sc.mean) * sc.rstd * g_c[j] + b_c[j]);
      const scalar_t h = a[3 * H + j] * t;
      tn[j] = t;
      hn[j] = h;
      y[j] = h;
    }
  }
}

// Backward part 0: dn (of LN(c) g_c + b_c) and da_o; dnc = dn g_c into scratch [rows,5H]
// (| da [4H]); g_c's and b_c's sums; dh_{t-1} primed with 0. DY: dy_t is given (compile-time:
// see lstm.cpp's backward_rows).
template <typename scalar_t, bool DY>
RNNCORE_CLONES void lstm_back_out_rows(scalar_t* scratch, scalar_t* dh_prev, scalar_t* dg_c, scalar_t* db_c,
                                       const scalar_t* dh_t, const scalar_t* dy_t, const scalar_t* acts,
                                       const scalar_t* g_c, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict dnc = scratch + b * 5 * H;
    scalar_t* __restrict dao = dnc + 4 * H;
    scalar_t* __restrict dhp = dh_prev + b * H;
    const scalar_t* __restrict dh = dh_t + b * H;
    const scalar_t* __restrict dy = DY ? dy_t + b * H : nullptr;
    const scalar_t* __restrict a = acts + b * 10 * H;
    const scalar_t* __restrict cc = a + 8 * H;
    const scalar_t* __restrict tn = a + 9 * H;
    const Stats<scalar_t> sc(cc, H);
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t dht = DY ? dh[j] + dy[j] : dh[j];
      const scalar_t o = a[3 * H + j], t = tn[j];
      const scalar_t dn = dht * o * (scalar_t(1) - t * t);
      dao[j] = dht * t * o * (scalar_t(1) - o);
      dnc[j] = dn * g_c[j];
      dg_c[j] += dn * ((cc[j] - sc.mean) * sc.rstd);
      db_c[j] += dn;
      dhp[j] = 0;
    }
  }
}

// Backward part 1: dc through LN(c_t), da_i, da_f, da_g, dc_{t-1} carried in place; the
// gains' and b's sums (accum: dg_ih | dg_hh | .. | db at 10H).
template <typename scalar_t>
RNNCORE_CLONES void lstm_back_gates_rows(scalar_t* scratch, scalar_t* dc_t, scalar_t* acc, const scalar_t* acts,
                                         const scalar_t* wx_t, const scalar_t* c_prev, index_t B, index_t H,
                                         index_t u0, index_t u1) {
  const index_t N = 4 * H;
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict dnc = scratch + b * 5 * H;
    scalar_t* __restrict da = dnc + H;
    scalar_t* __restrict dc = dc_t + b * H;
    const scalar_t* __restrict a = acts + b * 10 * H;
    const scalar_t* __restrict rh = a + N;
    const scalar_t* __restrict cc = a + 2 * N;
    const scalar_t* __restrict cp = c_prev + b * H;
    const scalar_t* __restrict wx = wx_t + b * N;
    const Stats<scalar_t> sc(cc, H);
    const scalar_t mu = sc.mean, rs = sc.rstd;
    const scalar_t m1 = lane_sum<scalar_t>(H, [&](index_t j) { return dnc[j]; }) / scalar_t(H);
    const scalar_t m2 = lane_sum<scalar_t>(H, [&](index_t j) { return dnc[j] * ((cc[j] - mu) * rs); }) / scalar_t(H);
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t i = a[j], f = a[H + j], g = a[2 * H + j];
      const scalar_t dct = dc[j] + rs * (dnc[j] - m1 - (cc[j] - mu) * rs * m2);
      da[j] = dct * g * i * (scalar_t(1) - i);
      da[H + j] = dct * cp[j] * f * (scalar_t(1) - f);
      da[2 * H + j] = dct * i * (scalar_t(1) - g * g);
      dc[j] = dct * f;
    }
    const Stats<scalar_t> sx(wx, N), sh(rh, N);
    norm_sums<scalar_t, 4>(acc, acc + N, acc + 10 * H, acc + 10 * H, da, da, wx, rh, sx, sh, H, u0, u1);
  }
}

// ---- GRU rows: acts [rows,7H] = gates | rh | ah_n ----

template <typename scalar_t, bool BIAS>
RNNCORE_CLONES void gru_rows(scalar_t* acts, scalar_t* h_t, scalar_t* y_t, const scalar_t* wx_t,
                             const scalar_t* h_prev, const scalar_t* g_ih, const scalar_t* g_hh, const scalar_t* b_ih,
                             const scalar_t* b_hh, index_t B, index_t H, index_t u0, index_t u1) {
  const index_t N = 3 * H;
  for (index_t b = 0; b < B; ++b) {
    const scalar_t* __restrict wx = wx_t + b * N;
    scalar_t* __restrict a = acts + b * 7 * H;
    const scalar_t* __restrict rh = a + N;
    scalar_t* __restrict ahn = a + 2 * N;
    const scalar_t* __restrict hp = h_prev + b * H;
    scalar_t* __restrict hn = h_t + b * H;
    scalar_t* __restrict y = y_t + b * H;
    const Stats<scalar_t> sx(wx, N), sh(rh, N);
    auto ax = [&](index_t q) { return (wx[q] - sx.mean) * sx.rstd * g_ih[q] + (BIAS ? b_ih[q] : scalar_t(0)); };
    auto ah = [&](index_t q) { return (rh[q] - sh.mean) * sh.rstd * g_hh[q] + (BIAS ? b_hh[q] : scalar_t(0)); };
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t r = sigmoid(ax(j) + ah(j)), z = sigmoid(ax(H + j) + ah(H + j));
      const scalar_t an = ah(2 * H + j);
      const scalar_t n = tanh(ax(2 * H + j) + r * an);
      const scalar_t h = (scalar_t(1) - z) * n + z * hp[j];
      a[j] = r;
      a[H + j] = z;
      a[2 * H + j] = n;
      ahn[j] = an;
      hn[j] = h;
      y[j] = h;
    }
  }
}

// Backward part 0: dax, dah into scratch [rows,6H], dh_{t-1} primed with dh z, the gains'
// and biases' sums (accum: dg_ih | dg_hh | db_ih | db_hh). DY as in lstm_back_out_rows.
template <typename scalar_t, bool DY>
RNNCORE_CLONES void gru_back_rows(scalar_t* scratch, scalar_t* dh_prev, scalar_t* acc, const scalar_t* dh_t,
                                  const scalar_t* dy_t, const scalar_t* acts, const scalar_t* wx_t,
                                  const scalar_t* h_prev, index_t B, index_t H, index_t u0, index_t u1) {
  const index_t N = 3 * H;
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict dax = scratch + b * 6 * H;
    scalar_t* __restrict dah = dax + N;
    scalar_t* __restrict dhp = dh_prev + b * H;
    const scalar_t* __restrict dh = dh_t + b * H;
    const scalar_t* __restrict dy = DY ? dy_t + b * H : nullptr;
    const scalar_t* __restrict a = acts + b * 7 * H;
    const scalar_t* __restrict rh = a + N;
    const scalar_t* __restrict ahn = a + 2 * N;
    const scalar_t* __restrict hp = h_prev + b * H;
    const scalar_t* __restrict wx = wx_t + b * N;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t dht = DY ? dh[j] + dy[j] : dh[j];
      const scalar_t r = a[j], z = a[H + j];
      scalar_t dar, daz, dan;
      gru_after_grads(dht, r, z, a[2 * H + j], ahn[j], hp[j], dar, daz, dan);
      dax[j] = dar;
      dax[H + j] = daz;
      dax[2 * H + j] = dan;
      dah[j] = dar;
      dah[H + j] = daz;
      dah[2 * H + j] = dan * r;
      dhp[j] = dht * z;
    }
    const Stats<scalar_t> sx(wx, N), sh(rh, N);
    norm_sums<scalar_t, 3>(acc, acc + N, acc + 2 * N, acc + 3 * N, dax, dah, wx, rh, sx, sh, H, u0, u1);
  }
}

}  // namespace

// ---- LSTM ------------------------------------------------------------------------------

template <typename scalar_t>
void LstmNormCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, N = 4 * H, o = r0 * H;
  const scalar_t* g_ih = s.p->extra;
  scalar_t* acts = s.saved[1] + r0 * 10 * H;
  if (part == 1) {
    auto run = [&](auto kernel) {
      kernel(acts, s.next[1] + o, s.saved[0] + r0 * N, s.prev[1] + o, g_ih, g_ih + N, s.p->b_ih, s.p->b_hh, r1 - r0,
             H, s.u0, s.u1);
    };
    s.p->b_ih ? run(lstm_gates_rows<scalar_t, true>) : run(lstm_gates_rows<scalar_t, false>);
  } else if (part == 2)
    lstm_out_rows<scalar_t>(acts, s.next[0] + o, s.y + o, g_ih + 2 * N, g_ih + 2 * N + H, r1 - r0, H, s.u0, s.u1);
}

template <typename scalar_t>
void LstmNormCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, N = 4 * H, o = r0 * H;
  const scalar_t* g_ih = s.p->extra;
  const scalar_t* acts = s.saved[1] + r0 * 10 * H;
  scalar_t* scratch = s.scratch + r0 * 5 * H;
  if (part == 0) {
    const scalar_t* dy = s.dy ? s.dy + o : nullptr;
    auto run = [&](auto kernel) {
      kernel(scratch, s.dh_prev + o, s.accum + 2 * N, s.accum + 2 * N + H, s.dh + o, dy, acts, g_ih + 2 * N, r1 - r0,
             H, s.u0, s.u1);
    };
    dy ? run(lstm_back_out_rows<scalar_t, true>) : run(lstm_back_out_rows<scalar_t, false>);
  } else if (part == 1)
    lstm_back_gates_rows<scalar_t>(scratch, s.carry[1] + o, s.accum, acts, s.saved[0] + r0 * N, s.prev[1] + o,
                                   r1 - r0, H, s.u0, s.u1);
  else if (part == 2)
    norm_backward_rows<scalar_t, 4>(s.dgate[0] + r0 * N, s.dgate[1] + r0 * N, scratch + H, scratch + H, 5 * H,
                                    s.saved[0] + r0 * N, acts + N, 10 * H, g_ih, g_ih + N, r1 - r0, H, s.u0, s.u1);
}

// ---- GRU -------------------------------------------------------------------------------

template <typename scalar_t>
void GruNormCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  if (part != 1) return;
  const index_t H = s.H, N = 3 * H, o = r0 * H;
  const scalar_t* g_ih = s.p->extra;
  scalar_t* acts = s.saved[1] + r0 * 7 * H;
  auto run = [&](auto kernel) {
    kernel(acts, s.next[0] + o, s.y + o, s.saved[0] + r0 * N, s.prev[0] + o, g_ih, g_ih + N, s.p->b_ih, s.p->b_hh,
           r1 - r0, H, s.u0, s.u1);
  };
  s.p->b_ih ? run(gru_rows<scalar_t, true>) : run(gru_rows<scalar_t, false>);
}

template <typename scalar_t>
void GruNormCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, N = 3 * H, o = r0 * H;
  const scalar_t* g_ih = s.p->extra;
  const scalar_t* acts = s.saved[1] + r0 * 7 * H;
  scalar_t* scratch = s.scratch + r0 * 6 * H;
  if (part == 0) {
    const scalar_t* dy = s.dy ? s.dy + o : nullptr;
    auto run = [&](auto kernel) {
      kernel(scratch, s.dh_prev + o, s.accum, s.dh + o, dy, acts, s.saved[0] + r0 * N, s.prev[0] + o, r1 - r0, H, s.u0,
             s.u1);
    };
    dy ? run(gru_back_rows<scalar_t, true>) : run(gru_back_rows<scalar_t, false>);
  } else if (part == 1)
    norm_backward_rows<scalar_t, 3>(s.dgate[0] + r0 * N, s.dgate[1] + r0 * N, scratch, scratch + N, 6 * H,
                                    s.saved[0] + r0 * N, acts + N, 7 * H, g_ih, g_ih + N, r1 - r0, H, s.u0, s.u1);
}

template struct LstmNormCell<float>;
template struct LstmNormCell<double>;
RNNCORE_DRIVER_INSTANTIATE(LstmNormCell<float>)
RNNCORE_DRIVER_INSTANTIATE(LstmNormCell<double>)
template struct GruNormCell<float>;
template struct GruNormCell<double>;
RNNCORE_DRIVER_INSTANTIATE(GruNormCell<float>)
RNNCORE_DRIVER_INSTANTIATE(GruNormCell<double>)

}  // namespace rnncore

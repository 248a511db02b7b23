#include "cells/layer_norm.h"

#include <cmath>

#include "driver/loop.h"
#include "runtime/activations.h"

namespace rnncore {

namespace {

constexpr double kEps = 1e-5;  // haste's

// The mean and 1/sqrt(var + eps) of v [n], two passes (the reference's order of sums need
// not match: float64 agrees to rounding).
template <typename scalar_t>
struct Stats {
  scalar_t mean, rstd;
  Stats(const scalar_t* v, index_t n) {
    scalar_t s = 0;
    for (index_t j = 0; j < n; ++j) s += v[j];
    mean = s / scalar_t(n);
    scalar_t q = 0;
    for (index_t j = 0; j < n; ++j) {
      const scalar_t d = v[j] - mean;
      q += d * d;
    }
    rstd = scalar_t(1) / std::sqrt(q / scalar_t(n) + scalar_t(kEps));
  }
  scalar_t operator()(scalar_t v) const { return (v - mean) * rstd; }
};

// LN's backward over a row: dv [n] (the gradient reaching LN(v) g) and its row sums.
template <typename scalar_t>
struct NormGrad {
  scalar_t m1, m2;  // mean(dv g), mean(dv g LN(v))
  NormGrad(const scalar_t* dv, const scalar_t* g, const scalar_t* v, const Stats<scalar_t>& st, index_t n) {
    scalar_t s1 = 0, s2 = 0;
    for (index_t j = 0; j < n; ++j) {
      const scalar_t d = dv[j] * g[j];
      s1 += d;
      s2 += d * st(v[j]);
    }
    m1 = s1 / scalar_t(n);
    m2 = s2 / scalar_t(n);
  }
  scalar_t operator()(scalar_t dvj, scalar_t gj, scalar_t vj, const Stats<scalar_t>& st) const {
    return st.rstd * (dvj * gj - m1 - st(vj) * m2);
  }
};

}  // namespace

// ---- LSTM ------------------------------------------------------------------------------

template <typename scalar_t>
void LstmNormCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, N = 4 * H;
  const scalar_t* g_ih = s.p->extra;
  const scalar_t *g_hh = g_ih + N, *g_c = g_ih + 2 * N, *b_c = g_c + H;
  const scalar_t *b_ih = s.p->b_ih, *b_hh = s.p->b_hh;
  for (index_t b = r0; b < r1; ++b) {
    const scalar_t* __restrict wx = s.saved[0] + b * N;
    scalar_t* __restrict a = s.saved[1] + b * 10 * H;  // gates | rh | c | tanh(LN(c) g_c + b_c)
    const scalar_t* __restrict rh = a + N;
    scalar_t* __restrict cc = a + 2 * N;
    scalar_t* __restrict tn = cc + H;
    if (part == 1) {
      const Stats<scalar_t> sx(wx, N), sh(rh, N);
      const scalar_t* __restrict cp = s.prev[1] + b * H;
      scalar_t* __restrict cn = s.next[1] + b * H;
      for (index_t j = s.u0; j < s.u1; ++j) {
        scalar_t v[4];
        for (index_t k = 0; k < 4; ++k) {
          const index_t q = k * H + j;
          v[k] = sx(wx[q]) * g_ih[q] + sh(rh[q]) * g_hh[q];
          if (b_ih) v[k] += b_ih[q] + b_hh[q];
        }
        const scalar_t i = sigmoid(v[0]), f = sigmoid(v[1]), g = tanh(v[2]), o = sigmoid(v[3]);
        const scalar_t c = f * cp[j] + i * g;
        a[j] = i;
        a[H + j] = f;
        a[2 * H + j] = g;
        a[3 * H + j] = o;
        cc[j] = c;
        cn[j] = c;
      }
    } else if (part == 2) {
      const Stats<scalar_t> sc(cc, H);
      scalar_t* __restrict hn = s.next[0] + b * H;
      scalar_t* __restrict y = s.y + b * H;
      for (index_t j = s.u0; j < s.u1; ++j) {
        const scalar_t t = tanh(sc(cc[j]) * g_c[j] + b_c[j]);
        const scalar_t h = a[3 * H + j] * t;
        tn[j] = t;
        hn[j] = h;
        y[j] = h;
      }
    }
  }
}

template <typename scalar_t>
void LstmNormCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, N = 4 * H;
  const scalar_t* g_ih = s.p->extra;
  const scalar_t *g_hh = g_ih + N, *g_c = g_ih + 2 * N;
  scalar_t* acc = s.accum;  // dg_ih | dg_hh | dg_c | db_c | db
  for (index_t b = r0; b < r1; ++b) {
    const scalar_t* __restrict wx = s.saved[0] + b * N;
    const scalar_t* __restrict a = s.saved[1] + b * 10 * H;
    const scalar_t* __restrict rh = a + N;
    const scalar_t* __restrict cc = a + 2 * N;
    const scalar_t* __restrict tn = cc + H;
    scalar_t* __restrict dnc = s.scratch + b * 5 * H;  // d(LN(c_t)) = dn g_c
    scalar_t* __restrict da = dnc + H;
    if (part == 0) {
      const Stats<scalar_t> sc(cc, H);
      const scalar_t* __restrict dh = s.dh + b * H;
      const scalar_t* __restrict dy = s.dy ? s.dy + b * H : nullptr;
      scalar_t* __restrict dhp = s.dh_prev + b * H;
      for (index_t j = s.u0; j < s.u1; ++j) {
        const scalar_t dht = dy ? dh[j] + dy[j] : dh[j];
        const scalar_t o = a[3 * H + j], t = tn[j];
        const scalar_t dn = dht * o * (scalar_t(1) - t * t);
        da[3 * H + j] = dht * t * o * (scalar_t(1) - o);
        dnc[j] = dn * g_c[j];
        acc[2 * N + j] += dn * sc(cc[j]);
        acc[2 * N + H + j] += dn;
        dhp[j] = 0;
      }
    } else if (part == 1) {
      const Stats<scalar_t> sc(cc, H);
      scalar_t m1 = 0, m2 = 0;  // LN's row means, g_c already in dnc
      for (index_t j = 0; j < H; ++j) {
        m1 += dnc[j];
        m2 += dnc[j] * sc(cc[j]);
      }
      m1 /= scalar_t(H);
      m2 /= scalar_t(H);
      const scalar_t* __restrict cp = s.prev[1] + b * H;
      scalar_t* __restrict dc = s.carry[1] + b * H;
      for (index_t j = s.u0; j < s.u1; ++j) {
        const scalar_t i = a[j], f = a[H + j], g = a[2 * H + j];
        const scalar_t dct = dc[j] + sc.rstd * (dnc[j] - m1 - sc(cc[j]) * m2);
        da[j] = dct * g * i * (scalar_t(1) - i);
        da[H + j] = dct * cp[j] * f * (scalar_t(1) - f);
        da[2 * H + j] = dct * i * (scalar_t(1) - g * g);
        dc[j] = dct * f;
      }
      const Stats<scalar_t> sx(wx, N), sh(rh, N);
      for (index_t k = 0; k < 4; ++k)
        for (index_t j = s.u0; j < s.u1; ++j) {
          const index_t q = k * H + j;
          acc[q] += da[q] * sx(wx[q]);
          acc[N + q] += da[q] * sh(rh[q]);
          acc[10 * H + q] += da[q];
        }
    } else if (part == 2) {
      const Stats<scalar_t> sx(wx, N), sh(rh, N);
      const NormGrad<scalar_t> nx(da, g_ih, wx, sx, N), nh(da, g_hh, rh, sh, N);
      scalar_t* __restrict dx = s.dgate[0] + b * N;
      scalar_t* __restrict dr = s.dgate[1] + b * N;
      for (index_t k = 0; k < 4; ++k)
        for (index_t j = s.u0; j < s.u1; ++j) {
          const index_t q = k * H + j;
          dx[q] = nx(da[q], g_ih[q], wx[q], sx);
          dr[q] = nh(da[q], g_hh[q], rh[q], sh);
        }
    }
  }
}

// ---- GRU -------------------------------------------------------------------------------

template <typename scalar_t>
void GruNormCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  if (part != 1) return;
  const index_t H = s.H, N = 3 * H;
  const scalar_t *g_ih = s.p->extra, *g_hh = g_ih + N;
  const scalar_t *b_ih = s.p->b_ih, *b_hh = s.p->b_hh;
  for (index_t b = r0; b < r1; ++b) {
    const scalar_t* __restrict wx = s.saved[0] + b * N;
    scalar_t* __restrict a = s.saved[1] + b * 7 * H;  // gates | rh | ah_n
    const scalar_t* __restrict rh = a + N;
    scalar_t* __restrict ahn = a + 2 * N;
    const scalar_t* __restrict hp = s.prev[0] + b * H;
    scalar_t* __restrict hn = s.next[0] + b * H;
    scalar_t* __restrict y = s.y + b * H;
    const Stats<scalar_t> sx(wx, N), sh(rh, N);
    for (index_t j = s.u0; j < s.u1; ++j) {
      scalar_t ax[3], ah[3];
      for (index_t k = 0; k < 3; ++k) {
        const index_t q = k * H + j;
        ax[k] = sx(wx[q]) * g_ih[q];
        ah[k] = sh(rh[q]) * g_hh[q];
        if (b_ih) {
          ax[k] += b_ih[q];
          ah[k] += b_hh[q];
        }
      }
      const scalar_t r = sigmoid(ax[0] + ah[0]), z = sigmoid(ax[1] + ah[1]);
      const scalar_t n = tanh(ax[2] + r * ah[2]);
      const scalar_t h = (scalar_t(1) - z) * n + z * hp[j];
      a[j] = r;
      a[H + j] = z;
      a[2 * H + j] = n;
      ahn[j] = ah[2];
      hn[j] = h;
      y[j] = h;
    }
  }
}

template <typename scalar_t>
void GruNormCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  if (part > 1) return;
  const index_t H = s.H, N = 3 * H;
  const scalar_t *g_ih = s.p->extra, *g_hh = g_ih + N;
  scalar_t* acc = s.accum;  // dg_ih | dg_hh | db_ih | db_hh
  for (index_t b = r0; b < r1; ++b) {
    const scalar_t* __restrict wx = s.saved[0] + b * N;
    const scalar_t* __restrict a = s.saved[1] + b * 7 * H;
    const scalar_t* __restrict rh = a + N;
    const scalar_t* __restrict ahn = a + 2 * N;
    scalar_t* __restrict dax = s.scratch + b * 6 * H;
    scalar_t* __restrict dah = dax + N;
    const Stats<scalar_t> sx(wx, N), sh(rh, N);
    if (part == 0) {
      const scalar_t* __restrict dh = s.dh + b * H;
      const scalar_t* __restrict dy = s.dy ? s.dy + b * H : nullptr;
      const scalar_t* __restrict hp = s.prev[0] + b * H;
      scalar_t* __restrict dhp = s.dh_prev + b * H;
      for (index_t j = s.u0; j < s.u1; ++j) {
        const scalar_t dht = dy ? dh[j] + dy[j] : dh[j];
        const scalar_t r = a[j], z = a[H + j], n = a[2 * H + j];
        const scalar_t dan = dht * (scalar_t(1) - z) * (scalar_t(1) - n * n);
        const scalar_t daz = dht * (hp[j] - n) * z * (scalar_t(1) - z);
        const scalar_t dar = dan * ahn[j] * r * (scalar_t(1) - r);
        dax[j] = dar;
        dax[H + j] = daz;
        dax[2 * H + j] = dan;
        dah[j] = dar;
        dah[H + j] = daz;
        dah[2 * H + j] = dan * r;
        dhp[j] = dht * z;
      }
      for (index_t k = 0; k < 3; ++k)
        for (index_t j = s.u0; j < s.u1; ++j) {
          const index_t q = k * H + j;
          acc[q] += dax[q] * sx(wx[q]);
          acc[N + q] += dah[q] * sh(rh[q]);
          acc[2 * N + q] += dax[q];
          acc[3 * N + q] += dah[q];
        }
    } else {
      const NormGrad<scalar_t> nx(dax, g_ih, wx, sx, N), nh(dah, g_hh, rh, sh, N);
      scalar_t* __restrict dx = s.dgate[0] + b * N;
      scalar_t* __restrict dr = s.dgate[1] + b * N;
      for (index_t k = 0; k < 3; ++k)
        for (index_t j = s.u0; j < s.u1; ++j) {
          const index_t q = k * H + j;
          dx[q] = nx(dax[q], g_ih[q], wx[q], sx);
          dr[q] = nh(dah[q], g_hh[q], rh[q], sh);
        }
    }
  }
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

#include "cells/lstm.h"

#include "driver/loop.h"
#include "runtime/activations.h"

namespace rnncore {

namespace {

constexpr index_t G = 4;

// The gate maths of rows [0,B), units [u0,u1): the gates in place, the new states, y
// (PROJ: m in place of h, no y).
template <typename scalar_t, bool PEEP, bool PROJ>
RNNCORE_CLONES void forward_rows(scalar_t* gates, scalar_t* y_t, scalar_t* h_t, scalar_t* c_t, const scalar_t* c_prev,
                                 const scalar_t* w_ch, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict hn = h_t + b * H;
    scalar_t* __restrict cn = c_t + b * H;
    scalar_t* __restrict y = PROJ ? nullptr : y_t + b * H;
    const scalar_t* __restrict cp = c_prev + b * H;
    scalar_t* __restrict gi = gates + b * G * H;
    scalar_t* __restrict gf = gi + H;
    scalar_t* __restrict gg = gi + 2 * H;
    scalar_t* __restrict go = gi + 3 * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      scalar_t ai = gi[j], af = gf[j], ao = go[j];
      if (PEEP) {
        ai += w_ch[j] * cp[j];
        af += w_ch[H + j] * cp[j];
      }
      const scalar_t i = sigmoid(ai), f = sigmoid(af), g = tanh(gg[j]);
      const scalar_t c = f * cp[j] + i * g;
      if (PEEP) ao += w_ch[2 * H + j] * c;
      const scalar_t o = sigmoid(ao);
      const scalar_t hh = o * tanh(c);
      gi[j] = i;
      gf[j] = f;
      gg[j] = g;
      go[j] = o;
      cn[j] = c;
      hn[j] = hh;
      if (!PROJ) y[j] = hh;
    }
  }
}

// Backward gate maths: dG for these units, dc carried back in place, dh_prev primed for
// the recurrent product (zero; PROJ: none, dh_cur is dm), peephole gradients summed into
// dpeep [3H]. DY: dy_t is given (a compile-time branch: a select on a null dy_t becomes a
// masked load from address 0, which AMD CPUs serve by a slow microcode assist).
template <typename scalar_t, bool PEEP, bool PROJ, bool DY>
RNNCORE_CLONES void backward_rows(scalar_t* dgates, scalar_t* dh_prev, scalar_t* dc, scalar_t* dpeep,
                                  const scalar_t* dh_cur, const scalar_t* dy_t, const scalar_t* gates,
                                  const scalar_t* c_prev, const scalar_t* c_t, const scalar_t* w_ch, index_t B,
                                  index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict di = dgates + b * G * H;
    scalar_t* __restrict df = di + H;
    scalar_t* __restrict dg = di + 2 * H;
    scalar_t* __restrict dout = di + 3 * H;
    scalar_t* __restrict dhn = PROJ ? nullptr : dh_prev + b * H;
    scalar_t* __restrict dcb = dc + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    const scalar_t* __restrict dyb = DY ? dy_t + b * H : nullptr;
    const scalar_t* __restrict gi = gates + b * G * H;
    const scalar_t* __restrict gf = gi + H;
    const scalar_t* __restrict gg = gi + 2 * H;
    const scalar_t* __restrict go = gi + 3 * H;
    const scalar_t* __restrict cp = c_prev + b * H;
    const scalar_t* __restrict cc = c_t + b * H;
    scalar_t* __restrict dpi = dpeep;
    scalar_t* __restrict dpf = dpeep + H;
    scalar_t* __restrict dpo = dpeep + 2 * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t dht = DY ? dh[j] + dyb[j] : dh[j];
      const scalar_t i = gi[j], f = gf[j], g = gg[j], o = go[j];
      const scalar_t tc = tanh(cc[j]);
      const scalar_t dao = dht * tc * o * (scalar_t(1) - o);
      scalar_t dct = dcb[j] + dht * o * (scalar_t(1) - tc * tc);
      if (PEEP) dct += dao * w_ch[2 * H + j];
      const scalar_t dai = dct * g * i * (scalar_t(1) - i);
      const scalar_t daf = dct * cp[j] * f * (scalar_t(1) - f);
      const scalar_t dag = dct * i * (scalar_t(1) - g * g);
      scalar_t dcp = dct * f;
      if (PEEP) {
        dcp += dai * w_ch[j] + daf * w_ch[H + j];
        dpi[j] += dai * cp[j];
        dpf[j] += daf * cp[j];
        dpo[j] += dao * cc[j];
      }
      di[j] = dai;
      df[j] = daf;
      dg[j] = dag;
      dout[j] = dao;
      dcb[j] = dcp;
      if (!PROJ) dhn[j] = 0;
    }
  }
}

}  // namespace

template <typename scalar_t>
void LstmCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int, index_t r0, index_t r1) const {
  const index_t H = s.H, o = r0 * H;
  if (peephole)
    forward_rows<scalar_t, true, false>(s.saved[0] + r0 * G * H, s.y + o, s.next[0] + o, s.next[1] + o,
                                        s.prev[1] + o, s.p->extra, r1 - r0, H, s.u0, s.u1);
  else
    forward_rows<scalar_t, false, false>(s.saved[0] + r0 * G * H, s.y + o, s.next[0] + o, s.next[1] + o,
                                         s.prev[1] + o, nullptr, r1 - r0, H, s.u0, s.u1);
}

template <typename scalar_t>
void LstmCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  if (part != 0) return;
  const index_t H = s.H, o = r0 * H;
  const scalar_t* dy = s.dy ? s.dy + o : nullptr;
  const scalar_t* peep = peephole ? s.p->extra : nullptr;
  scalar_t* dpeep = peephole ? s.accum : nullptr;
  auto run = [&](auto kernel) {
    kernel(s.dgate[0] + r0 * G * H, s.dh_prev + o, s.carry[1] + o, dpeep, s.dh + o, dy, s.saved[0] + r0 * G * H,
           s.prev[1] + o, s.next[1] + o, peep, r1 - r0, H, s.u0, s.u1);
  };
  if (peephole)
    dy ? run(backward_rows<scalar_t, true, false, true>) : run(backward_rows<scalar_t, true, false, false>);
  else
    dy ? run(backward_rows<scalar_t, false, false, true>) : run(backward_rows<scalar_t, false, false, false>);
}

// LSTMP forward: part 0 the gate maths into c_t and m_t; part 1 (h_t = m_t @ w_hr.T
// already in place) y_t = h_t.
template <typename scalar_t>
void LstmProjCell<scalar_t>::forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, o = r0 * H;
  if (part == 1) {
    for (index_t b = r0; b < r1; ++b)
      std::memcpy(s.y + b * P + s.u0, s.next[0] + b * P + s.u0, sizeof(scalar_t) * (s.u1 - s.u0));
  } else if (peephole) {
    forward_rows<scalar_t, true, true>(s.saved[0] + r0 * G * H, nullptr, s.saved[1] + o, s.next[1] + o,
                                       s.prev[1] + o, s.p->extra, r1 - r0, H, s.u0, s.u1);
  } else {
    forward_rows<scalar_t, false, true>(s.saved[0] + r0 * G * H, nullptr, s.saved[1] + o, s.next[1] + o,
                                        s.prev[1] + o, nullptr, r1 - r0, H, s.u0, s.u1);
  }
}

// LSTMP backward: part 0 the whole dh into history, dh_{t-1} primed (zero); part 1 (dm =
// dh @ w_hr in scratch) the gate maths; part 2 only the product.
template <typename scalar_t>
void LstmProjCell<scalar_t>::backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const {
  const index_t H = s.H, o = r0 * H;
  if (part == 0) {
    for (index_t b = r0; b < r1; ++b) {
      scalar_t* __restrict d = s.history + b * P;
      scalar_t* __restrict dhn = s.dh_prev + b * P;
      const scalar_t* __restrict dh = s.dh + b * P;
      if (s.dy) {
        const scalar_t* __restrict dy = s.dy + b * P;
        for (index_t j = s.u0; j < s.u1; ++j) d[j] = dh[j] + dy[j];
      } else {
        std::memcpy(d + s.u0, dh + s.u0, sizeof(scalar_t) * (s.u1 - s.u0));
      }
      std::memset(dhn + s.u0, 0, sizeof(scalar_t) * (s.u1 - s.u0));
    }
  } else if (part == 1 && peephole) {
    backward_rows<scalar_t, true, true, false>(s.dgate[0] + r0 * G * H, nullptr, s.carry[1] + o, s.accum, s.scratch + o,
                                        nullptr, s.saved[0] + r0 * G * H, s.prev[1] + o, s.next[1] + o, s.p->extra,
                                        r1 - r0, H, s.u0, s.u1);
  } else if (part == 1) {
    backward_rows<scalar_t, false, true, false>(s.dgate[0] + r0 * G * H, nullptr, s.carry[1] + o, nullptr, s.scratch + o,
                                         nullptr, s.saved[0] + r0 * G * H, s.prev[1] + o, s.next[1] + o, nullptr,
                                         r1 - r0, H, s.u0, s.u1);
  }
}

template struct LstmCell<float>;
template struct LstmCell<double>;
RNNCORE_DRIVER_INSTANTIATE(LstmCell<float>)
RNNCORE_DRIVER_INSTANTIATE(LstmCell<double>)
template struct LstmProjCell<float>;
template struct LstmProjCell<double>;
RNNCORE_DRIVER_INSTANTIATE(LstmProjCell<float>)
RNNCORE_DRIVER_INSTANTIATE(LstmProjCell<double>)

}  // namespace rnncore

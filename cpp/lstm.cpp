#include "lstm.h"

#include <cstring>
#include <utility>

#include "activations.h"
#include "sequence.h"

namespace rnncore {

namespace {

constexpr index_t G = 4;

// The gate maths of step t, rows [0,B) and units [u0,u1) of this thread.
template <typename scalar_t, bool PEEP>
RNNCORE_CLONES void forward_pointwise(scalar_t* gates_t, scalar_t* y_t, scalar_t* h_t, scalar_t* c_t,
                                      const scalar_t* h_prev, const scalar_t* c_prev, const scalar_t* w_ch,
                                      const index_t* lengths, index_t t, index_t B, index_t H, index_t u0,
                                      index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict hn = h_t + b * H;
    scalar_t* __restrict cn = c_t + b * H;
    scalar_t* __restrict y = y_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    const scalar_t* __restrict cp = c_prev + b * H;
    if (!seq::valid(lengths, t, b)) {  // padding: keep the state, output zero
      for (index_t j = u0; j < u1; ++j) {
        hn[j] = hp[j];
        cn[j] = cp[j];
        y[j] = 0;
      }
      continue;
    }
    scalar_t* __restrict gi = gates_t + b * G * H;
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
      y[j] = hh;
    }
  }
}

// Backward gate maths of step t: dG_t for this thread's units, dc carried back in
// place, dh_next primed for the recurrent product (zero, or the carried gradient at
// padded rows), peephole gradients accumulated in dpeep [3H].
template <typename scalar_t, bool PEEP>
RNNCORE_CLONES void backward_pointwise(scalar_t* dg_t, scalar_t* dh_next, scalar_t* dc, scalar_t* dpeep,
                                       const scalar_t* dh_cur, const scalar_t* dy_t, const scalar_t* gates_t,
                                       const scalar_t* c_prev, const scalar_t* c_t, const scalar_t* w_ch,
                                       const index_t* lengths, index_t t, index_t B, index_t H, index_t u0,
                                       index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict di = dg_t + b * G * H;
    scalar_t* __restrict df = di + H;
    scalar_t* __restrict dg = di + 2 * H;
    scalar_t* __restrict dout = di + 3 * H;
    scalar_t* __restrict dhn = dh_next + b * H;
    scalar_t* __restrict dcb = dc + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    if (!seq::valid(lengths, t, b)) {  // padding: pass the state gradient through
      for (index_t j = u0; j < u1; ++j) {
        di[j] = df[j] = dg[j] = dout[j] = 0;
        dhn[j] = dh[j];
      }
      continue;
    }
    const scalar_t* __restrict dyb = dy_t ? dy_t + b * H : nullptr;
    const scalar_t* __restrict gi = gates_t + b * G * H;
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
      const scalar_t dht = dyb ? dh[j] + dyb[j] : dh[j];
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
      dhn[j] = 0;
    }
  }
}

template <typename scalar_t>
index_t packed_block(index_t K, index_t H) {
  return packed_size<scalar_t>(K, H, 1);
}

}  // namespace

template <typename scalar_t>
index_t lstm_forward_workspace_size(index_t B, index_t H) {
  (void)B;
  return packed_size<scalar_t>(H, H, G);
}

template <typename scalar_t>
void lstm_forward(scalar_t* y, scalar_t* h, scalar_t* c, scalar_t* gates, const scalar_t* x, const scalar_t* h0,
                  const scalar_t* c0, const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih,
                  const scalar_t* b_hh, const scalar_t* w_ch, const index_t* lengths, bool reverse, index_t T,
                  index_t B, index_t I, index_t H, scalar_t* workspace) {
  const index_t N = G * H, BH = B * H;
  const auto rw = seq::step_weights<scalar_t>(T, workspace, w_hh, H, true, H, H);
  const seq::LoopPlan plan = seq::plan_loop<scalar_t>(T, B, H, G);
  const int nt = plan.nt;
  // step s for rows [b0,b1) and units [u0,u1): the recurrent product, then the gate maths
  auto step = [&](index_t s, index_t b0, index_t b1, index_t u0, index_t u1) {
    if (b1 <= b0 || u1 <= u0) return;
    const index_t t = seq::time_of(s, T, reverse);
    const index_t pv = seq::prev_slot(t, reverse) * BH + b0 * H, nx = seq::next_slot(t, reverse) * BH + b0 * H;
    scalar_t* g_t = gates + (t * B + b0) * N;
    for (index_t k = 0; k < G; ++k)
      rw.product(k, b1 - b0, u1 - u0, h + pv, H, u0, g_t + k * H + u0, N, true);
    const index_t* len = lengths ? lengths + b0 : nullptr;
    scalar_t* y_t = y + t * BH + b0 * H;
    if (w_ch)
      forward_pointwise<scalar_t, true>(g_t, y_t, h + nx, c + nx, h + pv, c + pv, w_ch, len, t, b1 - b0, H, u0, u1);
    else
      forward_pointwise<scalar_t, false>(g_t, y_t, h + nx, c + nx, h + pv, c + pv, nullptr, len, t, b1 - b0, H, u0,
                                         u1);
  };
  seq::single_threaded_blas();
  // phase 0: pack w_hh, project the inputs, place the initial state; then the time loop:
  // one phase in all (each task a slice of the batch) or one phase per step
  run_phased(nt, 1 + (plan.by_rows ? 1 : T), nt, [&](index_t phase, int p) {
    if (phase == 0) {
      const Range u = seq::units<scalar_t>(H, p, nt);
      rw.pack(p, nt, G);
      seq::input_projection(p, nt, gates, x, w_ih, b_ih, b_hh, T * B, I, N);
      const index_t init = reverse ? T : 0;
      seq::copy_units(h + init * BH, h0, B, H, u.begin, u.end);
      seq::copy_units(c + init * BH, c0, B, H, u.begin, u.end);
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
index_t lstm_backward_workspace_size(index_t T, index_t B, index_t H, bool peephole) {
  return T * B * G * H + packed_block<scalar_t>(G * H, H) + 3 * B * H + G * H + (peephole ? 3 * H * kMaxThreads : 0);
}

template <typename scalar_t>
void lstm_backward(scalar_t* dx, scalar_t* dh0, scalar_t* dc0, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih,
                   scalar_t* db_hh, scalar_t* dw_ch, const scalar_t* dy, const scalar_t* dh_n, const scalar_t* dc_n,
                   const scalar_t* x, const scalar_t* h, const scalar_t* c, const scalar_t* gates,
                   const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* w_ch, const index_t* lengths,
                   bool reverse, index_t T, index_t B, index_t I, index_t H, scalar_t* workspace) {
  const index_t N = G * H, BH = B * H;
  scalar_t* dG = workspace;                      // [T,B,4H] gate gradients, all steps
  scalar_t* packed = dG + T * B * N;             // w_hh [4H,H] packed for dh_{t-1} = da_t @ w_hh
  scalar_t* dh_buf[2] = {packed + packed_block<scalar_t>(N, H), packed + packed_block<scalar_t>(N, H) + BH};
  scalar_t* dc = dh_buf[1] + BH;
  scalar_t* dbias = dc + BH;                     // [4H]
  scalar_t* dpeep = dbias + N;                   // [nt][3H]: each task's peephole sums
  const auto rw = seq::step_weights<scalar_t>(T, packed, w_hh, H, false, N, H);
  const seq::LoopPlan plan = seq::plan_loop<scalar_t>(T, B, H, G);
  const int nt = plan.nt;
  // part 0 of step s: the gate maths (dG_t, dc carried back, dh_next primed); part 1: the
  // product dh_{t-1} += dG_t @ w_hh. Rows [b0,b1), units [u0,u1); task p's peephole sums.
  auto step = [&](index_t s, int part, index_t b0, index_t b1, index_t u0, index_t u1, int p) {
    if (b1 <= b0 || u1 <= u0) return;
    const index_t t = reverse ? s : T - 1 - s;  // the reverse of the forward's order
    scalar_t* dh_cur = dh_buf[s % 2] + b0 * H;
    scalar_t* dh_next = dh_buf[(s + 1) % 2] + b0 * H;
    scalar_t* dg_t = dG + (t * B + b0) * N;
    if (part == 0) {
      const index_t pv = seq::prev_slot(t, reverse) * BH + b0 * H, nx = seq::next_slot(t, reverse) * BH + b0 * H;
      const scalar_t* dy_t = dy ? dy + t * BH + b0 * H : nullptr;
      const scalar_t* g_t = gates + (t * B + b0) * N;
      const index_t* len = lengths ? lengths + b0 : nullptr;
      if (w_ch)
        backward_pointwise<scalar_t, true>(dg_t, dh_next, dc + b0 * H, dpeep + p * 3 * H, dh_cur, dy_t, g_t, c + pv,
                                           c + nx, w_ch, len, t, b1 - b0, H, u0, u1);
      else
        backward_pointwise<scalar_t, false>(dg_t, dh_next, dc + b0 * H, nullptr, dh_cur, dy_t, g_t, c + pv, c + nx,
                                            nullptr, len, t, b1 - b0, H, u0, u1);
    } else {
      rw.product(0, b1 - b0, u1 - u0, dg_t, N, u0, dh_next + u0, H, true);
    }
  };
  seq::single_threaded_blas();
  // phase 0: pack, take in dh_n, dc_n; then the loop (one phase, or two per step); last
  // phase: outputs and the weight-gradient GEMMs (row slices)
  const index_t last = 1 + (plan.by_rows ? 1 : 2 * T);
  run_phased(nt, last + 1, nt, [&](index_t phase, int p) {
    const Range u = seq::units<scalar_t>(H, p, nt);
    if (phase == 0) {
      rw.pack(p, nt, 1);
      seq::copy_units(dh_buf[0], dh_n, B, H, u.begin, u.end);
      seq::copy_units(dc, dc_n, B, H, u.begin, u.end);
      if (w_ch) std::memset(dpeep + p * 3 * H, 0, sizeof(scalar_t) * 3 * H);
      return;
    }
    if (phase < last) {
      if (plan.by_rows) {
        const Range r = split(B, p, nt, 1);
        for (index_t s = 0; s < T; ++s) {
          step(s, 0, r.begin, r.end, 0, H, p);
          step(s, 1, r.begin, r.end, 0, H, p);
        }
      } else {
        step((phase - 1) / 2, static_cast<int>((phase - 1) % 2), 0, B, u.begin, u.end, p);
      }
      return;
    }
    seq::copy_units(dh0, dh_buf[T % 2], B, H, u.begin, u.end);
    seq::copy_units(dc0, dc, B, H, u.begin, u.end);
    if (dw_ch) {  // every task's sums, in task order (deterministic)
      const Range r = split(3 * H, p, nt, 1);
      for (int q = 0; q < nt; ++q)
        for (index_t j = r.begin; j < r.end; ++j) dw_ch[j] += dpeep[q * 3 * H + j];
    }
    const scalar_t* h_in = reverse ? h + BH : h;
    seq::gemm_rows<scalar_t>(p, nt, true, false, N, I, T * B, 1, dG, N, x, I, 1, dw_ih, I);
    seq::gemm_rows<scalar_t>(p, nt, true, false, N, H, T * B, 1, dG, N, h_in, H, 1, dw_hh, H);
    if (db_ih || db_hh) {
      const Range r = split(N, p, nt, 8);
      for (index_t j = r.begin; j < r.end; ++j) dbias[j] = 0;
      seq::add_column_sums(dbias, dG, T * B, N, r.begin, r.end);
      for (index_t j = r.begin; j < r.end; ++j) {
        if (db_ih) db_ih[j] += dbias[j];
        if (db_hh) db_hh[j] += dbias[j];
      }
    }
    seq::gemm_rows<scalar_t>(p, nt, false, false, T * B, I, N, 1, dG, N, w_ih, I, 0, dx, I);
  });
}

template <typename scalar_t>
index_t lstm_step_forward_workspace_size(index_t B, index_t H) {
  return 4 * B * H + lstm_forward_workspace_size<scalar_t>(B, H);
}

template <typename scalar_t>
void lstm_step_forward(scalar_t* h, scalar_t* c, scalar_t* gates, const scalar_t* x, const scalar_t* h_prev,
                       const scalar_t* c_prev, const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih,
                       const scalar_t* b_hh, const scalar_t* w_ch, index_t B, index_t I, index_t H,
                       scalar_t* workspace) {
  scalar_t* h_hist = workspace;  // [2,B,H]
  scalar_t* c_hist = h_hist + 2 * B * H;
  lstm_forward(h, h_hist, c_hist, gates, x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh, w_ch, nullptr, false, 1, B, I, H,
               c_hist + 2 * B * H);
  std::memcpy(c, c_hist + B * H, sizeof(scalar_t) * B * H);
}

template <typename scalar_t>
index_t lstm_step_backward_workspace_size(index_t B, index_t H, bool peephole) {
  return 2 * B * H + lstm_backward_workspace_size<scalar_t>(1, B, H, peephole);
}

template <typename scalar_t>
void lstm_step_backward(scalar_t* dx, scalar_t* dh_prev, scalar_t* dc_prev, scalar_t* dw_ih, scalar_t* dw_hh,
                        scalar_t* db_ih, scalar_t* db_hh, scalar_t* dw_ch, const scalar_t* dh, const scalar_t* dc,
                        const scalar_t* x, const scalar_t* h_prev, const scalar_t* c_prev, const scalar_t* c,
                        const scalar_t* gates, const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* w_ch,
                        index_t B, index_t I, index_t H, scalar_t* workspace) {
  scalar_t* c_hist = workspace;  // [2,B,H]: c_prev, c
  std::memcpy(c_hist, c_prev, sizeof(scalar_t) * B * H);
  std::memcpy(c_hist + B * H, c, sizeof(scalar_t) * B * H);
  // a forward step reads only h[0] of its history in backward: h_prev itself
  lstm_backward(dx, dh_prev, dc_prev, dw_ih, dw_hh, db_ih, db_hh, dw_ch, static_cast<const scalar_t*>(nullptr), dh,
                dc, x, h_prev, c_hist, gates, w_ih, w_hh, w_ch, nullptr, false, 1, B, I, H, c_hist + 2 * B * H);
}

#define RNNCORE_INSTANTIATE(S)                                                                                     \
  template index_t lstm_forward_workspace_size<S>(index_t, index_t);                                              \
  template void lstm_forward<S>(S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*, const S*,       \
                                const S*, const S*, const index_t*, bool, index_t, index_t, index_t, index_t, S*); \
  template index_t lstm_backward_workspace_size<S>(index_t, index_t, index_t, bool);                                    \
  template void lstm_backward<S>(S*, S*, S*, S*, S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*, \
                                 const S*, const S*, const S*, const S*, const S*, const index_t*, bool, index_t,  \
                                 index_t, index_t, index_t, S*);                                                   \
  template index_t lstm_step_forward_workspace_size<S>(index_t, index_t);                                         \
  template void lstm_step_forward<S>(S*, S*, S*, const S*, const S*, const S*, const S*, const S*, const S*,      \
                                     const S*, const S*, index_t, index_t, index_t, S*);                           \
  template index_t lstm_step_backward_workspace_size<S>(index_t, index_t, bool);                                        \
  template void lstm_step_backward<S>(S*, S*, S*, S*, S*, S*, S*, S*, const S*, const S*, const S*, const S*,     \
                                      const S*, const S*, const S*, const S*, const S*, const S*, index_t, index_t, \
                                      index_t, S*);
RNNCORE_INSTANTIATE(float)
RNNCORE_INSTANTIATE(double)
#undef RNNCORE_INSTANTIATE

}  // namespace rnncore

#include "gru.h"

#include <cstring>
#include <utility>

#include "activations.h"
#include "sequence.h"

namespace rnncore {

namespace {

constexpr index_t G = 3;

// reset_after: gates_t holds ax (+ b_hr, b_hz), hg_t the recurrent product without bias.
template <typename scalar_t>
RNNCORE_CLONES void forward_pointwise_after(scalar_t* gates_t, scalar_t* hn_t, scalar_t* y_t, scalar_t* h_t,
                                            const scalar_t* hg_t, const scalar_t* h_prev, const scalar_t* b_hn,
                                            const index_t* lengths, index_t t, index_t B, index_t H, index_t u0,
                                            index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict y = y_t + b * H;
    scalar_t* __restrict hn = h_t + b * H;
    scalar_t* __restrict hs = hn_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    if (!seq::valid(lengths, t, b)) {
      for (index_t j = u0; j < u1; ++j) {
        hn[j] = hp[j];
        y[j] = 0;
        hs[j] = 0;
      }
      continue;
    }
    scalar_t* __restrict gr = gates_t + b * G * H;
    scalar_t* __restrict gz = gr + H;
    scalar_t* __restrict gn = gr + 2 * H;
    const scalar_t* __restrict hr = hg_t + b * G * H;
    const scalar_t* __restrict hz = hr + H;
    const scalar_t* __restrict hh = hr + 2 * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t r = sigmoid(gr[j] + hr[j]);
      const scalar_t z = sigmoid(gz[j] + hz[j]);
      const scalar_t a = b_hn ? hh[j] + b_hn[j] : hh[j];
      const scalar_t n = tanh(gn[j] + r * a);
      const scalar_t v = (scalar_t(1) - z) * n + z * hp[j];
      gr[j] = r;
      gz[j] = z;
      gn[j] = n;
      hs[j] = a;
      hn[j] = v;
      y[j] = v;
    }
  }
}

// Cho form, first half: r and z from complete pre-activations; rh = r * h_{t-1}.
template <typename scalar_t>
RNNCORE_CLONES void forward_pointwise_rz(scalar_t* gates_t, scalar_t* rh_t, const scalar_t* h_prev,
                                         const index_t* lengths, index_t t, index_t B, index_t H, index_t u0,
                                         index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict rh = rh_t + b * H;
    if (!seq::valid(lengths, t, b)) {
      for (index_t j = u0; j < u1; ++j) rh[j] = 0;
      continue;
    }
    scalar_t* __restrict gr = gates_t + b * G * H;
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

// Cho form, second half: n from its complete pre-activation, then the new state.
template <typename scalar_t>
RNNCORE_CLONES void forward_pointwise_n(scalar_t* gates_t, scalar_t* y_t, scalar_t* h_t, const scalar_t* h_prev,
                                        const index_t* lengths, index_t t, index_t B, index_t H, index_t u0,
                                        index_t u1) {
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
    const scalar_t* __restrict gz = gates_t + b * G * H + H;
    scalar_t* __restrict gn = gates_t + b * G * H + 2 * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t n = tanh(gn[j]);
      const scalar_t v = (scalar_t(1) - gz[j]) * n + gz[j] * hp[j];
      gn[j] = n;
      hn[j] = v;
      y[j] = v;
    }
  }
}

// reset_after backward: dax, dah rows for this thread's units; dh_next = dh * z.
template <typename scalar_t>
RNNCORE_CLONES void backward_pointwise_after(scalar_t* dax_t, scalar_t* dah_t, scalar_t* dh_next,
                                             const scalar_t* dh_cur, const scalar_t* dy_t, const scalar_t* gates_t,
                                             const scalar_t* hn_t, const scalar_t* h_prev, const index_t* lengths,
                                             index_t t, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict xr = dax_t + b * G * H;
    scalar_t* __restrict xz = xr + H;
    scalar_t* __restrict xn = xr + 2 * H;
    scalar_t* __restrict hr = dah_t + b * G * H;
    scalar_t* __restrict hz = hr + H;
    scalar_t* __restrict hnn = hr + 2 * H;
    scalar_t* __restrict dhn = dh_next + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    if (!seq::valid(lengths, t, b)) {
      for (index_t j = u0; j < u1; ++j) {
        xr[j] = xz[j] = xn[j] = hr[j] = hz[j] = hnn[j] = 0;
        dhn[j] = dh[j];
      }
      continue;
    }
    const scalar_t* __restrict dyb = dy_t ? dy_t + b * H : nullptr;
    const scalar_t* __restrict gr = gates_t + b * G * H;
    const scalar_t* __restrict gz = gr + H;
    const scalar_t* __restrict gn = gr + 2 * H;
    const scalar_t* __restrict a = hn_t + b * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t g = dyb ? dh[j] + dyb[j] : dh[j];
      const scalar_t r = gr[j], z = gz[j], n = gn[j];
      const scalar_t dan = g * (scalar_t(1) - z) * (scalar_t(1) - n * n);
      const scalar_t daz = g * (hp[j] - n) * z * (scalar_t(1) - z);
      const scalar_t dar = dan * a[j] * r * (scalar_t(1) - r);
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

// Cho form backward, first half: da_n and da_z into dax; dh_next = dh * z.
template <typename scalar_t>
RNNCORE_CLONES void backward_pointwise_nz(scalar_t* dax_t, scalar_t* dh_next, const scalar_t* dh_cur,
                                          const scalar_t* dy_t, const scalar_t* gates_t, const scalar_t* h_prev,
                                          const index_t* lengths, index_t t, index_t B, index_t H, index_t u0,
                                          index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    scalar_t* __restrict xr = dax_t + b * G * H;
    scalar_t* __restrict xz = xr + H;
    scalar_t* __restrict xn = xr + 2 * H;
    scalar_t* __restrict dhn = dh_next + b * H;
    const scalar_t* __restrict dh = dh_cur + b * H;
    if (!seq::valid(lengths, t, b)) {
      for (index_t j = u0; j < u1; ++j) {
        xr[j] = xz[j] = xn[j] = 0;
        dhn[j] = dh[j];
      }
      continue;
    }
    const scalar_t* __restrict dyb = dy_t ? dy_t + b * H : nullptr;
    const scalar_t* __restrict gz = gates_t + b * G * H + H;
    const scalar_t* __restrict gn = gates_t + b * G * H + 2 * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t g = dyb ? dh[j] + dyb[j] : dh[j];
      const scalar_t z = gz[j], n = gn[j];
      xn[j] = g * (scalar_t(1) - z) * (scalar_t(1) - n * n);
      xz[j] = g * (hp[j] - n) * z * (scalar_t(1) - z);
      dhn[j] = g * z;
    }
  }
}

// Cho form backward, second half: from drh = da_n @ w_hn, da_r and the direct r path.
template <typename scalar_t>
RNNCORE_CLONES void backward_pointwise_r(scalar_t* dax_t, scalar_t* dh_next, const scalar_t* drh,
                                         const scalar_t* gates_t, const scalar_t* h_prev, const index_t* lengths,
                                         index_t t, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    if (!seq::valid(lengths, t, b)) continue;
    scalar_t* __restrict xr = dax_t + b * G * H;
    scalar_t* __restrict dhn = dh_next + b * H;
    const scalar_t* __restrict d = drh + b * H;
    const scalar_t* __restrict gr = gates_t + b * G * H;
    const scalar_t* __restrict hp = h_prev + b * H;
    RNNCORE_IVDEP
    for (index_t j = u0; j < u1; ++j) {
      const scalar_t r = gr[j];
      xr[j] = d[j] * hp[j] * r * (scalar_t(1) - r);
      dhn[j] += d[j] * r;
    }
  }
}

template <typename scalar_t>
index_t block_size(index_t K, index_t H) {
  return packed_size<scalar_t>(K, H, 1);
}

}  // namespace

template <typename scalar_t>
index_t gru_forward_workspace_size(index_t B, index_t H, bool reset_after) {
  return packed_size<scalar_t>(H, H, G) + (reset_after ? B * G * H : 0) + G * H;
}

template <typename scalar_t>
void gru_forward(scalar_t* y, scalar_t* h, scalar_t* gates, scalar_t* hn, const scalar_t* x, const scalar_t* h0,
                 const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh,
                 bool reset_after, const index_t* lengths, bool reverse, index_t T, index_t B, index_t I, index_t H,
                 scalar_t* workspace) {
  const index_t N = G * H, BH = B * H;
  const auto rw = seq::step_weights<scalar_t>(T, workspace, w_hh, H, true, H, H);  // w_hh.T, a block per gate
  scalar_t* hg = workspace + packed_size<scalar_t>(H, H, G);  // [B,3H] recurrent product (reset_after)
  scalar_t* bias_x = hg + (reset_after ? B * N : 0);       // [3H] bias folded into the projection
  const bool bias = b_ih != nullptr;
  if (bias)  // b_hn stays inside r * (w_hn h + b_hn) when the reset comes after the product
    for (index_t j = 0; j < N; ++j) bias_x[j] = b_ih[j] + (reset_after && j >= 2 * H ? scalar_t(0) : b_hh[j]);
  const scalar_t* b_hn = bias && reset_after ? b_hh + 2 * H : nullptr;
  const seq::LoopPlan plan = seq::plan_loop<scalar_t>(T, B, H, G);
  const int nt = plan.nt;
  // step s, rows [b0,b1), units [u0,u1). The Cho form has two parts (the n product needs
  // r * h_{t-1} for every unit); reset_after has one.
  auto step = [&](index_t s, int part, index_t b0, index_t b1, index_t u0, index_t u1) {
    if (b1 <= b0 || u1 <= u0) return;
    const index_t t = seq::time_of(s, T, reverse), rows = b1 - b0, nu = u1 - u0;
    const scalar_t* hp = h + seq::prev_slot(t, reverse) * BH + b0 * H;
    scalar_t* hnext = h + seq::next_slot(t, reverse) * BH + b0 * H;
    scalar_t* g_t = gates + (t * B + b0) * N;
    scalar_t* hn_t = hn + t * BH + b0 * H;
    scalar_t* y_t = y + t * BH + b0 * H;
    const index_t* len = lengths ? lengths + b0 : nullptr;
    if (reset_after) {
      scalar_t* hg_t = hg + b0 * N;
      for (index_t k = 0; k < G; ++k) rw.product(k, rows, nu, hp, H, u0, hg_t + k * H + u0, N, false);
      forward_pointwise_after(g_t, hn_t, y_t, hnext, hg_t, hp, b_hn, len, t, rows, H, u0, u1);
    } else if (part == 0) {
      for (index_t k = 0; k < 2; ++k) rw.product(k, rows, nu, hp, H, u0, g_t + k * H + u0, N, true);
      forward_pointwise_rz(g_t, hn_t, hp, len, t, rows, H, u0, u1);
    } else {
      rw.product(2, rows, nu, hn_t, H, u0, g_t + 2 * H + u0, N, true);
      forward_pointwise_n(g_t, y_t, hnext, hp, len, t, rows, H, u0, u1);
    }
  };
  const index_t parts = reset_after ? 1 : 2;
  seq::single_threaded_blas();
  run_phased(nt, 1 + (plan.by_rows ? 1 : parts * T), nt, [&](index_t phase, int p) {
    if (phase == 0) {
      const Range u = seq::units<scalar_t>(H, p, nt);
      rw.pack(p, nt, G);
      seq::input_projection(p, nt, gates, x, w_ih, bias ? bias_x : nullptr, static_cast<const scalar_t*>(nullptr),
                            T * B, I, N);
      seq::copy_units(h + (reverse ? T : 0) * BH, h0, B, H, u.begin, u.end);
    } else if (plan.by_rows) {
      const Range r = split(B, p, nt, 1);
      for (index_t s = 0; s < T; ++s)
        for (int part = 0; part < parts; ++part) step(s, part, r.begin, r.end, 0, H);
    } else {
      const Range u = seq::units<scalar_t>(H, p, nt);
      step((phase - 1) / parts, static_cast<int>((phase - 1) % parts), 0, B, u.begin, u.end);
    }
  });
}

template <typename scalar_t>
index_t gru_backward_workspace_size(index_t T, index_t B, index_t H, bool reset_after) {
  const index_t N = G * H;
  const index_t grads = reset_after ? 2 * T * B * N : T * B * N;
  const index_t packs = reset_after ? block_size<scalar_t>(N, H) : block_size<scalar_t>(H, H) +
                                                                     block_size<scalar_t>(2 * H, H);
  return grads + packs + 3 * B * H + N;
}

template <typename scalar_t>
void gru_backward(scalar_t* dx, scalar_t* dh0, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih, scalar_t* db_hh,
                  const scalar_t* dy, const scalar_t* dh_n, const scalar_t* x, const scalar_t* h,
                  const scalar_t* gates, const scalar_t* hn, const scalar_t* w_ih, const scalar_t* w_hh,
                  bool reset_after, const index_t* lengths, bool reverse, index_t T, index_t B, index_t I, index_t H,
                  scalar_t* workspace) {
  const index_t N = G * H, BH = B * H;
  scalar_t* dax = workspace;                            // [T,B,3H] input-side gate gradients
  scalar_t* dah = reset_after ? dax + T * B * N : dax;  // [T,B,3H] recurrent side (Cho form: the same)
  scalar_t* packed = workspace + (reset_after ? 2 : 1) * T * B * N;
  // reset_after: w_hh [3H,H] as one block; Cho form: w_hn [H,H], then w_h{r,z} [2H,H]
  scalar_t* packed_rz = packed + block_size<scalar_t>(H, H);
  scalar_t* dh_a = packed + (reset_after ? block_size<scalar_t>(N, H)
                                         : block_size<scalar_t>(H, H) + block_size<scalar_t>(2 * H, H));
  scalar_t* dh_buf[2] = {dh_a, dh_a + BH};
  scalar_t* drh = dh_a + 2 * BH;
  scalar_t* dbias = drh + BH;  // [3H]
  const auto rw = reset_after ? seq::step_weights<scalar_t>(T, packed, w_hh, H, false, N, H)
                              : seq::step_weights<scalar_t>(T, packed, w_hh + 2 * H * H, H, false, H, H);
  const auto rw_rz = seq::step_weights<scalar_t>(T, packed_rz, w_hh, H, false, 2 * H, H);
  const seq::LoopPlan plan = seq::plan_loop<scalar_t>(T, B, H, G);
  const int nt = plan.nt;
  // per step: reset_after: gate maths, then dh_{t-1} += dah_t @ w_hh. Cho form: the n and z
  // maths, then drh = da_n @ w_hn and the r maths, then dh_{t-1} += [da_r, da_z] @ w_h{r,z}
  const index_t parts = reset_after ? 2 : 3;
  auto step = [&](index_t s, int part, index_t b0, index_t b1, index_t u0, index_t u1) {
    if (b1 <= b0 || u1 <= u0) return;
    const index_t t = reverse ? s : T - 1 - s, rows = b1 - b0, nu = u1 - u0;
    const scalar_t* hp = h + seq::prev_slot(t, reverse) * BH + b0 * H;
    const scalar_t* g_t = gates + (t * B + b0) * N;
    const scalar_t* dy_t = dy ? dy + t * BH + b0 * H : nullptr;
    const index_t* len = lengths ? lengths + b0 : nullptr;
    scalar_t* dh_cur = dh_buf[s % 2] + b0 * H;
    scalar_t* dh_next = dh_buf[(s + 1) % 2] + b0 * H;
    scalar_t* dax_t = dax + (t * B + b0) * N;
    if (reset_after) {
      scalar_t* dah_t = dah + (t * B + b0) * N;
      if (part == 0)
        backward_pointwise_after(dax_t, dah_t, dh_next, dh_cur, dy_t, g_t, hn + t * BH + b0 * H, hp, len, t, rows, H,
                                 u0, u1);
      else
        rw.product(0, rows, nu, dah_t, N, u0, dh_next + u0, H, true);
    } else if (part == 0) {
      backward_pointwise_nz(dax_t, dh_next, dh_cur, dy_t, g_t, hp, len, t, rows, H, u0, u1);
    } else if (part == 1) {
      rw.product(0, rows, nu, dax_t + 2 * H, N, u0, drh + b0 * H + u0, H, false);
      backward_pointwise_r(dax_t, dh_next, drh + b0 * H, g_t, hp, len, t, rows, H, u0, u1);
    } else {
      rw_rz.product(0, rows, nu, dax_t, N, u0, dh_next + u0, H, true);
    }
  };
  const index_t last = 1 + (plan.by_rows ? 1 : parts * T);
  seq::single_threaded_blas();
  run_phased(nt, last + 1, nt, [&](index_t phase, int p) {
    const Range u = seq::units<scalar_t>(H, p, nt);
    if (phase == 0) {
      rw.pack(p, nt, 1);
      if (!reset_after) rw_rz.pack(p, nt, 1);
      seq::copy_units(dh_buf[0], dh_n, B, H, u.begin, u.end);
      return;
    }
    if (phase < last) {
      if (plan.by_rows) {
        const Range r = split(B, p, nt, 1);
        for (index_t s = 0; s < T; ++s)
          for (int part = 0; part < parts; ++part) step(s, part, r.begin, r.end, 0, H);
      } else {
        step((phase - 1) / parts, static_cast<int>((phase - 1) % parts), 0, B, u.begin, u.end);
      }
      return;
    }
    seq::copy_units(dh0, dh_buf[T % 2], B, H, u.begin, u.end);
    const scalar_t* h_in = reverse ? h + BH : h;
    seq::gemm_rows<scalar_t>(p, nt, true, false, N, I, T * B, 1, dax, N, x, I, 1, dw_ih, I);
    if (reset_after) {
      seq::gemm_rows<scalar_t>(p, nt, true, false, N, H, T * B, 1, dah, N, h_in, H, 1, dw_hh, H);
    } else {
      seq::gemm_rows<scalar_t>(p, nt, true, false, 2 * H, H, T * B, 1, dax, N, h_in, H, 1, dw_hh, H);
      seq::gemm_rows<scalar_t>(p, nt, true, false, H, H, T * B, 1, dax + 2 * H, N, hn, H, 1, dw_hh + 2 * H * H, H);
    }
    const Range r = split(N, p, nt, 8);
    if (db_ih) {
      for (index_t j = r.begin; j < r.end; ++j) dbias[j] = 0;
      seq::add_column_sums(dbias, dax, T * B, N, r.begin, r.end);
      for (index_t j = r.begin; j < r.end; ++j) db_ih[j] += dbias[j];
      if (reset_after) {
        for (index_t j = r.begin; j < r.end; ++j) dbias[j] = 0;
        seq::add_column_sums(dbias, dah, T * B, N, r.begin, r.end);
      }
      for (index_t j = r.begin; j < r.end; ++j) db_hh[j] += dbias[j];
    }
    seq::gemm_rows<scalar_t>(p, nt, false, false, T * B, I, N, 1, dax, N, w_ih, I, 0, dx, I);
  });
}

template <typename scalar_t>
index_t gru_step_forward_workspace_size(index_t B, index_t H, bool reset_after) {
  return 2 * B * H + gru_forward_workspace_size<scalar_t>(B, H, reset_after);
}

template <typename scalar_t>
void gru_step_forward(scalar_t* h, scalar_t* gates, scalar_t* hn, const scalar_t* x, const scalar_t* h_prev,
                      const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh,
                      bool reset_after, index_t B, index_t I, index_t H, scalar_t* workspace) {
  gru_forward(h, workspace, gates, hn, x, h_prev, w_ih, w_hh, b_ih, b_hh, reset_after, nullptr, false, 1, B, I, H,
              workspace + 2 * B * H);
}

template <typename scalar_t>
index_t gru_step_backward_workspace_size(index_t B, index_t H, bool reset_after) {
  return gru_backward_workspace_size<scalar_t>(1, B, H, reset_after);
}

template <typename scalar_t>
void gru_step_backward(scalar_t* dx, scalar_t* dh_prev, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih,
                       scalar_t* db_hh, const scalar_t* dh, const scalar_t* x, const scalar_t* h_prev,
                       const scalar_t* gates, const scalar_t* hn, const scalar_t* w_ih, const scalar_t* w_hh,
                       bool reset_after, index_t B, index_t I, index_t H, scalar_t* workspace) {
  // one forward step reads only h[0] of its history in backward: h_prev itself
  gru_backward(dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh, static_cast<const scalar_t*>(nullptr), dh, x, h_prev, gates,
               hn, w_ih, w_hh, reset_after, nullptr, false, 1, B, I, H, workspace);
}

#define RNNCORE_INSTANTIATE(S)                                                                                     \
  template index_t gru_forward_workspace_size<S>(index_t, index_t, bool);                                         \
  template void gru_forward<S>(S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*, const S*, bool,  \
                               const index_t*, bool, index_t, index_t, index_t, index_t, S*);                      \
  template index_t gru_backward_workspace_size<S>(index_t, index_t, index_t, bool);                               \
  template void gru_backward<S>(S*, S*, S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*,         \
                                const S*, const S*, const S*, bool, const index_t*, bool, index_t, index_t,       \
                                index_t, index_t, S*);                                                             \
  template index_t gru_step_forward_workspace_size<S>(index_t, index_t, bool);                                    \
  template void gru_step_forward<S>(S*, S*, S*, const S*, const S*, const S*, const S*, const S*, const S*, bool, \
                                    index_t, index_t, index_t, S*);                                                \
  template index_t gru_step_backward_workspace_size<S>(index_t, index_t, bool);                                   \
  template void gru_step_backward<S>(S*, S*, S*, S*, S*, S*, const S*, const S*, const S*, const S*, const S*,    \
                                     const S*, const S*, bool, index_t, index_t, index_t, S*);
RNNCORE_INSTANTIATE(float)
RNNCORE_INSTANTIATE(double)
#undef RNNCORE_INSTANTIATE

}  // namespace rnncore

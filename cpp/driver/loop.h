// The driver's time loop (see recurrence.h for what it does and cell.h for the cells'
// side). Included by each cell's .cpp, which instantiates it for that cell.
#pragma once

#include <algorithm>
#include <cstring>

#include "driver/cell.h"
#include "runtime/parallel.h"
#include "runtime/parallel_gemm.h"

namespace rnncore {
namespace loop {

// Time index of processing step s: forward in the direction's order, backward reversed.
inline index_t forward_time(index_t s, index_t T, bool reverse) { return reverse ? T - 1 - s : s; }
inline index_t backward_time(index_t s, index_t T, bool reverse) { return reverse ? s : T - 1 - s; }

// How the time loop is spread over threads (recurrence.h).
struct Plan {
  enum Mode { rows, units, per_step };
  int nt;
  Mode mode;
};

template <class Cell>
Plan plan(const Cell& cell, index_t T, index_t B, index_t I, index_t H) {
  int nt = num_threads();
  if (nt <= 1 || cell.step_work(B, I, H) < parallel_threshold()) return {1, Plan::per_step};
  // A single step reads w_hh in place: split by rows, every task would pack all of it
  // inside BLAS; split by units, each packs its own columns.
  const index_t min_rows = T > 1 ? 4 * static_cast<index_t>(nt) : Cell::G * H;
  if (B >= min_rows) return {nt, Plan::rows};
  const index_t slices = (H + Cell::unit_align() - 1) / Cell::unit_align();
  if (nt > slices) nt = static_cast<int>(slices);
  return {nt < 1 ? 1 : nt, Cell::elementwise ? Plan::units : Plan::per_step};
}

// Rows [0,B) x units [u0,u1) of a [B,H] state: copy (src may be nullptr: zeros).
template <typename scalar_t>
void copy_units(scalar_t* dst, const scalar_t* src, index_t B, index_t H, Range u) {
  if (u.end <= u.begin) return;
  for (index_t b = 0; b < B; ++b) {
    if (src)
      std::memcpy(dst + b * H + u.begin, src + b * H + u.begin, sizeof(scalar_t) * (u.end - u.begin));
    else
      std::memset(dst + b * H + u.begin, 0, sizeof(scalar_t) * (u.end - u.begin));
  }
}

// Carves a workspace into consecutive pieces; with a null base it only counts.
template <typename scalar_t>
struct Carve {
  scalar_t* next;
  index_t used = 0;
  scalar_t* take(index_t n) {
    scalar_t* r = next ? next + used : nullptr;
    used += n;
    return r;
  }
};

// Where step t finds a buffer: base + t * stride (a history slot, a row of a per-step
// buffer; for a single step, T = 1, the caller's array itself).
template <typename P>
struct Track {
  P* base;
  index_t stride;
  P* at(index_t t, index_t row0, index_t ld) const { return base ? base + t * stride + row0 * ld : nullptr; }
};

// Calls pointwise(r0, r1) on each run of rows in [0, rows) valid at time t (all of them
// without lengths) and pad(b) on each padded row.
template <class F, class P>
void for_valid_rows(const index_t* lengths, index_t t, index_t rows, F&& pointwise, P&& pad) {
  if (!lengths) {
    pointwise(index_t(0), rows);
    return;
  }
  index_t r0 = 0;
  for (index_t b = 0; b < rows; ++b) {
    if (t < lengths[b]) continue;
    if (b > r0) pointwise(r0, b);
    pad(b);
    r0 = b + 1;
  }
  if (rows > r0) pointwise(r0, rows);
}

template <typename scalar_t>
void zero_units(scalar_t* row, index_t blocks, index_t H, index_t u0, index_t u1) {
  for (index_t k = 0; k < blocks; ++k) std::memset(row + k * H + u0, 0, sizeof(scalar_t) * (u1 - u0));
}

// A recurrent view's weights: packed into the workspace c, or (c null: a single step)
// read in place. p may be null (sizing the workspace).
template <typename S>
StepWeights<S> view(const Params<S>* p, const RecurrentView& v, Carve<S>* c) {
  const S* W = p ? (v.proj ? p->w_hr : p->w_hh) + v.row0 * v.ld : nullptr;
  return {W, v.ld, v.trans, v.K, v.nb, v.blocks, c ? c->take(packed_size<S>(v.K, v.nb, v.blocks)) : nullptr};
}

// Everything one forward call needs: a sequence or a single step.
template <class Cell>
struct Forward {
  using S = typename Cell::scalar_t;
  static constexpr const CellSpec& spec = Cell::spec;
  const Cell& cell;
  index_t T, B, I, H;
  const index_t* lengths;
  bool reverse;
  const S* x;
  const Params<S>* p;
  Track<const S> prev[kMaxStates] = {};
  Track<S> next[kMaxStates] = {};
  Track<S> y = {};
  Track<S> saved[kMaxSaved] = {};
  S* init[kMaxStates] = {};  // history slots of the initial states (sequences), else nullptr
  const S* state0[kMaxStates] = {};
  Regularise reg = {};
  Track<S> unmixed[kMaxStates] = {};  // with zoneout, for the states the cell's backward reads

  index_t width(int k) const { return k == 0 ? cell.out_width(H) : H; }  // of state k
  // The part after which state k is final, where zoneout mixes it: h (and y) after the
  // last part, another state after the part that writes it (whose units are that state's).
  int mix_part(int k) const { return k == 0 ? cell.forward_parts() - 1 : cell.state_part(k); }

  // Workspace layout (a null base counts its size).
  struct Space {
    StepWeights<S> w[2];
    int views;
    S* scratch;
    S* bias;
    S* mask;    // [B,P] recurrent dropout's M
    S* hin[2];  // [B,P] hin of steps s (even, odd)
    index_t size;
  };

  void step(const Space& sp, index_t s, int part, index_t b0, index_t b1, Range u) const {
    if (b1 <= b0 || u.end <= u.begin) return;
    const index_t t = forward_time(s, T, reverse), P = cell.out_width(H);
    FwdStep<S> st{};
    st.rows = b1 - b0;
    st.H = H;
    st.P = P;
    st.u0 = u.begin;
    st.u1 = u.end;
    S* unmix[kMaxStates] = {};
    for (int k = 0; k < spec.states; ++k) {
      st.prev[k] = prev[k].at(t, b0, width(k));
      st.next[k] = next[k].at(t, b0, width(k));
      unmix[k] = unmixed[k].at(t, b0, width(k));
    }
    st.y = y.at(t, b0, P);
    for (int k = 0; k < spec.saved; ++k) st.saved[k] = saved[k].at(t, b0, spec.saved_buffers[k].width * H);
    st.hin = reg.dropout_on() ? sp.hin[s % 2] + b0 * P : st.prev[0];
    st.scratch = sp.scratch ? sp.scratch + b0 * cell.forward_scratch_ld(H) : nullptr;
    st.p = p;
    st.w = sp.w;
    cell.forward_product(st, part);
    auto pad = [&](index_t b) {  // keep the states this part writes, output zero
      for (int k = 0; k < spec.states; ++k) {
        if (cell.state_part(k) == part)
          std::memcpy(st.next[k] + b * width(k) + u.begin, st.prev[k] + b * width(k) + u.begin,
                      sizeof(S) * (u.end - u.begin));
        if (unmix[k] && mix_part(k) == part) zero_units(unmix[k] + b * width(k), 1, width(k), u.begin, u.end);
      }
      if (cell.state_part(0) == part) zero_units(st.y + b * P, 1, P, u.begin, u.end);
      if (part == 0)
        for (int k = 0; k < spec.saved; ++k)
          if (k != spec.preact)
            zero_units(st.saved[k] + b * spec.saved_buffers[k].width * H, spec.saved_buffers[k].width, H, u.begin,
                       u.end);
    };
    auto compute = [&](index_t r0, index_t r1) {
      cell.forward_pointwise(st, part, r0, r1);
      if (!reg.zoneout_on()) return;
      // the cell wrote s~_t into the states final after this part (and y): mix them, and
      // y is the mixed h_t
      for (int k = 0; k < spec.states; ++k) {
        if (mix_part(k) != part) continue;
        const index_t W = width(k);
        regularise::zoneout_forward(st.next[k] + r0 * W, unmix[k] ? unmix[k] + r0 * W : nullptr, st.prev[k] + r0 * W,
                                    reg, k, t, b0 + r0, r1 - r0, W, u.begin, u.end);
      }
      if (mix_part(0) == part)
        for (index_t b = r0; b < r1; ++b)
          std::memcpy(st.y + b * P + u.begin, st.next[0] + b * P + u.begin, sizeof(S) * (u.end - u.begin));
    };
    for_valid_rows(lengths ? lengths + b0 : nullptr, t, st.rows, compute, pad);
    // the next step's hin, padded rows included
    if (part == cell.forward_parts() - 1 && reg.dropout_on())
      regularise::mask_rows(sp.hin[(s + 1) % 2] + b0 * P, st.next[0], sp.mask + b0 * P, st.rows, P, u.begin, u.end);
  }

  Space carve(S* base) const {
    Carve<S> c{base};
    Space sp{};
    RecurrentView v[2];
    sp.views = cell.views(false, v, H);
    for (int i = 0; i < sp.views; ++i) sp.w[i] = view(p, v[i], T > 1 ? &c : nullptr);
    sp.scratch = c.take(B * cell.forward_scratch_ld(H));
    sp.bias = c.take(Cell::G * H);
    if (reg.dropout_on()) {
      sp.mask = c.take(B * width(0));
      sp.hin[0] = c.take(B * width(0));
      sp.hin[1] = c.take(B * width(0));
    }
    sp.size = c.used;
    return sp;
  }

  void run(S* workspace) const {
    const index_t N = Cell::G * H, P = width(0);
    const Space sp = carve(workspace);
    const S *b1 = nullptr, *b2 = nullptr;
    cell.input_bias(*p, H, sp.bias, &b1, &b2);
    const Plan plan = loop::plan(cell, T, B, I, H);
    const int nt = plan.nt, parts = cell.forward_parts();
    S* preact = spec.preact < 0 ? y.base : saved[spec.preact].base;
    single_threaded_blas();
    // phase 0: pack w_hh, project the inputs, place the initial states, the dropout mask
    // and the first step's hin; then the time loop
    run_phased(nt, 1 + (plan.mode == Plan::per_step ? parts * T : 1), nt, [&](index_t phase, int task) {
      auto units = [&](int part) { return split(cell.units(false, part, H), task, nt, Cell::unit_align()); };
      if (phase == 0) {
        for (int i = 0; i < sp.views; ++i) sp.w[i].pack(task, nt);
        input_projection(task, nt, preact, x, p->w_ih, b1, b2, T * B, I, N);
        for (int k = 0; k < spec.states; ++k)
          if (init[k]) copy_units(init[k], state0[k], B, width(k), split(width(k), task, nt, Cell::unit_align()));
        if (reg.dropout_on() && T > 0) {  // the same units of h as the copy above
          const Range u = split(P, task, nt, Cell::unit_align());
          regularise::dropout_mask(sp.mask, reg, B, P, u.begin, u.end);
          regularise::mask_rows(sp.hin[0], prev[0].at(forward_time(0, T, reverse), 0, P), sp.mask, B, P, u.begin,
                                u.end);
        }
      } else if (plan.mode == Plan::rows) {
        const Range r = split(B, task, nt, 1);
        for (index_t s = 0; s < T; ++s)
          for (int part = 0; part < parts; ++part)
            step(sp, s, part, r.begin, r.end, {0, cell.units(false, part, H)});
      } else if (plan.mode == Plan::units) {
        for (index_t s = 0; s < T; ++s)
          for (int part = 0; part < parts; ++part) step(sp, s, part, 0, B, units(part));
      } else {
        const int part = static_cast<int>((phase - 1) % parts);
        step(sp, (phase - 1) / parts, part, 0, B, units(part));
      }
    });
  }
};

// Everything one backward call needs.
template <class Cell>
struct Backward {
  using S = typename Cell::scalar_t;
  static constexpr const CellSpec& spec = Cell::spec;
  const Cell& cell;
  index_t T, B, I, H;
  const index_t* lengths;
  bool reverse;
  const S* x;
  const Params<S>* p;
  const ParamGrads<S>* g;
  S* dx = nullptr;
  const S* dy = nullptr;                 // [T,B,P] or nullptr
  const S* dh_first = nullptr;           // gradient reaching the last step's h, or nullptr (zero)
  S* dh_last = nullptr;                  // out: the gradient of the state the first step read
  S* carry[kMaxStates] = {};             // out, carried in place: gradients of the other states
  const S* carry_in[kMaxStates] = {};    // their gradients reaching the last step, or nullptr
  Track<const S> prev[kMaxStates] = {};
  Track<const S> next[kMaxStates] = {};  // with zoneout, the unmixed ones where the cell reads them
  Track<const S> saved[kMaxSaved] = {};
  Regularise reg = {};

  index_t width(int k) const { return k == 0 ? cell.out_width(H) : H; }
  // The part that takes in the gradient reaching state k, where zoneout splits it: h's in
  // part 0 (which primes dh_{t-1}), the others' in the gate part (which carries them back).
  int split_part(int k) const { return k == 0 ? 0 : cell.gate_part(); }

  struct Space {
    S* dgate[2];
    StepWeights<S> w[2];
    int views;
    S* dh_buf[2];
    S* scratch;
    S* history;
    S* dbias;
    S* accum;
    S* mask;                // [B,P] recurrent dropout's M
    S* hin;                 // [T,B,P] the hin of every step, for the cell and dw_hh
    S* dh_in;               // [B,P]
    S* zdh;                 // [B,P] zoneout: the cell's share of the gradient reaching h_t
    S* keep[kMaxStates];    // [B,width] zoneout: the shares going straight to the previous states
    index_t size;
  };
  Space carve(S* base) const {
    const index_t N = Cell::G * H, P = width(0);
    Carve<S> c{base};
    Space sp{};
    sp.dgate[0] = c.take(T * B * N);
    sp.dgate[1] = cell.grad_buffers() == 2 ? c.take(T * B * N) : sp.dgate[0];
    RecurrentView v[2];
    sp.views = cell.views(true, v, H);
    for (int i = 0; i < sp.views; ++i) sp.w[i] = view(p, v[i], T > 1 ? &c : nullptr);
    sp.dh_buf[0] = c.take(B * P);
    sp.dh_buf[1] = c.take(B * P);
    sp.scratch = c.take(B * cell.backward_scratch_ld(H));
    sp.history = c.take(T * B * cell.backward_history_ld(H));
    sp.dbias = c.take(N);
    sp.accum = c.take(kMaxThreads * cell.accum(H));
    if (reg.dropout_on()) {
      sp.mask = c.take(B * P);
      sp.hin = c.take(T * B * P);
      sp.dh_in = c.take(B * P);
    }
    if (reg.zoneout_on()) {
      sp.zdh = c.take(B * P);
      for (int k = 0; k < spec.states; ++k) sp.keep[k] = c.take(B * width(k));
    }
    sp.size = c.used;
    return sp;
  }

  void step(const Space& sp, index_t s, int part, index_t b0, index_t b1, Range u, int task) const {
    if (b1 <= b0 || u.end <= u.begin) return;
    const index_t t = backward_time(s, T, reverse), N = Cell::G * H, P = width(0), BP = B * P;
    const bool zoneout = reg.zoneout_on(), dropout = reg.dropout_on();
    const int last = cell.backward_parts() - 1;
    BwdStep<S> st{};
    st.rows = b1 - b0;
    st.H = H;
    st.P = P;
    st.u0 = u.begin;
    st.u1 = u.end;
    const S* dh = (s == 0 ? (dh_first ? dh_first : sp.dh_buf[0]) : sp.dh_buf[s % 2]) + b0 * P;
    const S* dy_t = dy ? dy + t * BP + b0 * P : nullptr;
    st.dh = zoneout ? sp.zdh + b0 * P : dh;  // zoneout: the cell's share, dy included
    st.dy = zoneout ? nullptr : dy_t;
    st.dh_prev = (s == T - 1 ? dh_last : sp.dh_buf[(s + 1) % 2]) + b0 * P;
    st.dh_in = dropout ? sp.dh_in + b0 * P : st.dh_prev;
    st.hin = dropout ? sp.hin + t * BP + b0 * P : prev[0].at(t, b0, P);
    if (dropout && part == 0) {  // every row: dw_hh reads them all
      regularise::mask_rows(sp.hin + t * BP + b0 * P, prev[0].at(t, b0, P), sp.mask + b0 * P, st.rows, P, u.begin,
                            u.end);
      copy_units<S>(st.dh_in, nullptr, st.rows, P, u);
    }
    for (int k = 0; k < spec.states; ++k) {
      st.carry[k] = carry[k] ? carry[k] + b0 * width(k) : nullptr;
      st.prev[k] = prev[k].at(t, b0, width(k));
      st.next[k] = next[k].at(t, b0, width(k));
    }
    for (int k = 0; k < spec.saved; ++k) st.saved[k] = saved[k].at(t, b0, spec.saved_buffers[k].width * H);
    st.dgate[0] = sp.dgate[0] + (t * B + b0) * N;
    st.dgate[1] = sp.dgate[1] + (t * B + b0) * N;
    st.scratch = sp.scratch + b0 * cell.backward_scratch_ld(H);
    st.history = sp.history + (t * B + b0) * cell.backward_history_ld(H);
    st.accum = sp.accum + task * cell.accum(H);
    st.p = p;
    st.w = sp.w;
    cell.backward_product(st, part);
    auto pad = [&](index_t b) {  // pass the state gradient through, no gate gradient
      if (part == cell.gate_part())
        for (int d = 0; d < cell.grad_buffers(); ++d) zero_units(st.dgate[d] + b * N, Cell::G, H, u.begin, u.end);
      if (part == 0) std::memcpy(st.dh_prev + b * P + u.begin, dh + b * P + u.begin, sizeof(S) * (u.end - u.begin));
    };
    auto compute = [&](index_t r0, index_t r1) {
      const index_t n = r1 - r0;
      // zoneout: the cell sees (1-m) of the gradient reaching each new state; the m share
      // joins the previous state's gradient once the cell has primed (carried) it
      S* keep[kMaxStates] = {};
      if (zoneout)
        for (int k = 0; k < spec.states; ++k) {
          if (split_part(k) != part) continue;
          const index_t W = width(k);
          keep[k] = sp.keep[k] + (b0 + r0) * W;
          if (k == 0)
            regularise::zoneout_split(sp.zdh + (b0 + r0) * P, keep[0], dh + r0 * P, dy_t ? dy_t + r0 * P : nullptr,
                                      reg, 0, t, b0 + r0, n, P, u.begin, u.end);
          else
            regularise::zoneout_split(st.carry[k] + r0 * W, keep[k], st.carry[k] + r0 * W,
                                      static_cast<const S*>(nullptr), reg, k, t, b0 + r0, n, W, u.begin, u.end);
        }
      cell.backward_pointwise(st, part, r0, r1);
      for (int k = 0; k < spec.states; ++k)
        if (keep[k])
          regularise::add_rows(k == 0 ? st.dh_prev + r0 * P : st.carry[k] + r0 * width(k), keep[k],
                               static_cast<const S*>(nullptr), n, width(k), u.begin, u.end);
      // recurrent dropout: the products' gradient reaches h_{t-1} through the mask
      if (dropout && part == last)
        regularise::add_rows(st.dh_prev + r0 * P, st.dh_in + r0 * P, sp.mask + (b0 + r0) * P, n, P, u.begin, u.end);
    };
    for_valid_rows(lengths ? lengths + b0 : nullptr, t, st.rows, compute, pad);
  }

  void run(S* workspace) const {
    const index_t N = Cell::G * H, rows = T * B;
    const Space sp = carve(workspace);
    const Plan plan = loop::plan(cell, T, B, I, H);
    const int nt = plan.nt, parts = cell.backward_parts();
    const index_t acc = cell.accum(H), hist = cell.backward_history_ld(H);
    const index_t last = 1 + (plan.mode == Plan::per_step ? parts * T : 1);
    single_threaded_blas();
    // phase 0: pack, the dropout mask, take in the final states' gradients; then the loop;
    // last phase: the weight-gradient GEMMs and sums, dx
    run_phased(nt, last + 1, nt, [&](index_t phase, int task) {
      auto units = [&](int part) { return split(cell.units(true, part, H), task, nt, Cell::unit_align()); };
      if (phase == 0) {
        const Range u = split(width(0), task, nt, Cell::unit_align());
        for (int i = 0; i < sp.views; ++i) sp.w[i].pack(task, nt);
        if (reg.dropout_on()) regularise::dropout_mask(sp.mask, reg, B, width(0), u.begin, u.end);
        if (!dh_first) copy_units<S>(sp.dh_buf[0], nullptr, B, width(0), u);
        if (T == 0) copy_units(dh_last, dh_first, B, width(0), u);
        for (int k = 1; k < spec.states; ++k)
          copy_units(carry[k], carry_in[k], B, width(k), split(width(k), task, nt, Cell::unit_align()));
        if (acc) std::memset(sp.accum + task * acc, 0, sizeof(S) * acc);
        if (hist) {  // padded rows are never written: they stay zero
          const Range r = split(rows, task, nt, 1);
          std::memset(sp.history + r.begin * hist, 0, sizeof(S) * (r.end - r.begin) * hist);
        }
        return;
      }
      if (phase < last) {
        if (plan.mode == Plan::rows) {
          const Range r = split(B, task, nt, 1);
          for (index_t s = 0; s < T; ++s)
            for (int part = 0; part < parts; ++part)
              step(sp, s, part, r.begin, r.end, {0, cell.units(true, part, H)}, task);
        } else if (plan.mode == Plan::units) {
          for (index_t s = 0; s < T; ++s)
            for (int part = 0; part < parts; ++part) step(sp, s, part, 0, B, units(part), task);
        } else {
          const int part = static_cast<int>((phase - 1) % parts);
          step(sp, (phase - 1) / parts, part, 0, B, units(part), task);
        }
        return;
      }
      const index_t ext = spec.extra.name ? std::min(acc, spec.extra.width * H) : 0;
      if (ext && g->extra) {  // every task's sums, in task order (deterministic)
        const Range r = split(ext, task, nt, 1);
        for (int q = 0; q < nt; ++q)
          for (index_t j = r.begin; j < r.end; ++j) g->extra[j] += sp.accum[q * acc + j];
      }
      gemm_rows<S>(task, nt, true, false, N, I, rows, 1, sp.dgate[0], N, x, I, 1, g->w_ih, I);
      Tail<S> tail{task, nt, rows, H, width(0), {sp.dgate[0], sp.dgate[1]},
                   reg.dropout_on() ? sp.hin : prev[0].base, {}, sp.history, g->w_hh, g->w_hr};
      for (int k = 0; k < spec.saved; ++k) tail.saved[k] = saved[k].base;
      cell.weight_grad(tail);
      if ((g->b_ih || g->b_hh) && cell.bias_accum(H, 0) >= 0) {  // the cell's per-task sums, in task order
        const Range r = split(N, task, nt, 8);
        for (int k = 0; k < 2; ++k) {
          S* db = k == 0 ? g->b_ih : g->b_hh;
          const index_t o = cell.bias_accum(H, k);
          if (db)
            for (int q = 0; q < nt; ++q)
              for (index_t j = r.begin; j < r.end; ++j) db[j] += sp.accum[q * acc + o + j];
        }
      } else if (g->b_ih || g->b_hh) {
        const Range r = split(N, task, nt, 8);
        for (index_t j = r.begin; j < r.end; ++j) sp.dbias[j] = 0;
        add_column_sums(sp.dbias, sp.dgate[0], rows, N, r.begin, r.end);
        if (g->b_ih)
          for (index_t j = r.begin; j < r.end; ++j) g->b_ih[j] += sp.dbias[j];
        if (cell.grad_buffers() == 2) {
          for (index_t j = r.begin; j < r.end; ++j) sp.dbias[j] = 0;
          add_column_sums(sp.dbias, sp.dgate[1], rows, N, r.begin, r.end);
        }
        if (g->b_hh)
          for (index_t j = r.begin; j < r.end; ++j) g->b_hh[j] += sp.dbias[j];
      }
      gemm_rows<S>(task, nt, false, false, rows, I, N, 1, sp.dgate[0], N, p->w_ih, I, 0, dx, I);
    });
  }
};

}  // namespace loop

template <typename scalar_t>
void StepWeights<scalar_t>::pack(int p, int nt) const {
  if (!packed) return;
  const Range r = split(blocks * panels_per_block<scalar_t>(nb), p, nt, 1);
  pack_weights(packed, W, ldw, trans, K, nb, blocks, r.begin, r.end);
}

template <typename scalar_t>
void StepWeights<scalar_t>::product(index_t g, index_t M, index_t nc, const scalar_t* A, index_t lda, index_t n0,
                                    scalar_t* C, index_t ldc, bool accumulate) const {
  if (packed) {
    gemm_packed(M, nc, K, A, lda, packed + g * packed_size<scalar_t>(K, nb, 1), n0, C, ldc, accumulate);
    return;
  }
  const index_t col = g * nb + n0;
  gemm<scalar_t>(false, trans, M, nc, K, scalar_t(1), A, lda, trans ? W + col * ldw : W + col, ldw,
                 accumulate ? scalar_t(1) : scalar_t(0), C, ldc);
}

template <typename scalar_t>
void weight_grad_gemm(const Tail<scalar_t>& t, scalar_t* dw, index_t N, const scalar_t* dA, index_t lda,
                      const scalar_t* B, index_t K) {
  gemm_rows<scalar_t>(t.p, t.nt, true, false, N, K, t.rows, 1, dA, lda, B, K, 1, dw, K);
}

// ---- the entry points ----------------------------------------------------------------
// ---- the entry points ----------------------------------------------------------------
// (The *_run builders also serve the workspace functions, with a null a and the reg the
// call will have.)

template <class Cell>
loop::Forward<Cell> sequence_forward_run(const Cell& cell, const SequenceForward<typename Cell::scalar_t>* a, index_t T,
                                         index_t B, index_t I, index_t H, const Regularise& reg) {
  using S = typename Cell::scalar_t;
  loop::Forward<Cell> f{cell, T, B, I, H, a ? a->lengths : nullptr, a && a->reverse, a ? a->x : nullptr,
                        a ? &a->p : nullptr};
  f.reg = reg;
  if (!a) return f;
  // forward: step t reads slot t, writes t+1; reverse: reads t+1, writes t (common.h)
  for (int k = 0; k < Cell::spec.states; ++k) {
    S* h = a->state[k];
    const index_t BW = B * f.width(k);
    f.prev[k] = {h + (a->reverse ? BW : 0), BW};
    f.next[k] = {h + (a->reverse ? 0 : BW), BW};
    f.init[k] = h + (a->reverse ? T : 0) * BW;
    f.state0[k] = a->state0[k];
    if (reg.zoneout_on() && Cell::spec.step_reads_next[k]) f.unmixed[k] = {a->unmixed[k], BW};
  }
  f.y = {a->y, B * f.width(0)};
  for (int k = 0; k < Cell::spec.saved; ++k) f.saved[k] = {a->saved[k], B * Cell::spec.saved_buffers[k].width * H};
  return f;
}

template <class Cell>
index_t sequence_forward_workspace(const Cell& cell, index_t T, index_t B, index_t I, index_t H,
                                   const Regularise& reg) {
  return sequence_forward_run(cell, static_cast<const SequenceForward<typename Cell::scalar_t>*>(nullptr), T, B, I, H,
                              reg)
      .carve(nullptr)
      .size;
}

template <class Cell>
void sequence_forward(const Cell& cell, const SequenceForward<typename Cell::scalar_t>& a, index_t T, index_t B,
                      index_t I, index_t H, typename Cell::scalar_t* workspace) {
  sequence_forward_run(cell, &a, T, B, I, H, a.reg).run(workspace);
}

template <class Cell>
loop::Forward<Cell> step_forward_run(const Cell& cell, const StepForward<typename Cell::scalar_t>* a, index_t B,
                                     index_t I, index_t H, const Regularise& reg) {
  loop::Forward<Cell> f{cell, 1, B, I, H, nullptr, false, a ? a->x : nullptr, a ? &a->p : nullptr};
  f.reg = reg;
  if (!a) return f;
  for (int k = 0; k < Cell::spec.states; ++k) {
    f.prev[k] = {a->state_prev[k], 0};
    f.next[k] = {a->state[k], 0};
    if (reg.zoneout_on() && Cell::spec.step_reads_next[k]) f.unmixed[k] = {a->unmixed[k], 0};
  }
  for (int k = 0; k < Cell::spec.saved; ++k) f.saved[k] = {a->saved[k], 0};
  return f;
}

// A single step's y (the outputs of a sequence) is scratch after the forward workspace.
template <class Cell>
index_t step_forward_workspace(const Cell& cell, index_t B, index_t I, index_t H, const Regularise& reg) {
  return step_forward_run(cell, static_cast<const StepForward<typename Cell::scalar_t>*>(nullptr), B, I, H, reg)
             .carve(nullptr)
             .size +
         B * cell.out_width(H);
}

template <class Cell>
void step_forward(const Cell& cell, const StepForward<typename Cell::scalar_t>& a, index_t B, index_t I, index_t H,
                  typename Cell::scalar_t* workspace) {
  auto f = step_forward_run(cell, &a, B, I, H, a.reg);
  const index_t used = f.carve(nullptr).size;
  f.y = {workspace + used, 0};
  f.run(workspace);
}

template <class Cell>
loop::Backward<Cell> sequence_backward_run(const Cell& cell, const SequenceBackward<typename Cell::scalar_t>* a,
                                           index_t T, index_t B, index_t I, index_t H, const Regularise& reg) {
  using S = typename Cell::scalar_t;
  loop::Backward<Cell> b{cell, T, B, I, H, a ? a->lengths : nullptr, a && a->reverse, a ? a->x : nullptr,
                         a ? &a->p : nullptr, a ? &a->g : nullptr};
  b.reg = reg;
  if (!a) return b;
  b.dx = a->dx;
  b.dy = a->dy;
  b.dh_first = a->dstate_n[0];
  b.dh_last = a->dstate0[0];
  for (int k = 0; k < Cell::spec.states; ++k) {
    const S* h = a->state[k];
    const index_t BW = B * b.width(k);
    b.prev[k] = {h + (a->reverse ? BW : 0), BW};
    b.next[k] = reg.zoneout_on() && Cell::spec.step_reads_next[k] ? loop::Track<const S>{a->unmixed[k], BW}
                                                                  : loop::Track<const S>{h + (a->reverse ? 0 : BW), BW};
    if (k > 0) {
      b.carry[k] = a->dstate0[k];
      b.carry_in[k] = a->dstate_n[k];
    }
  }
  for (int k = 0; k < Cell::spec.saved; ++k) b.saved[k] = {a->saved[k], B * Cell::spec.saved_buffers[k].width * H};
  return b;
}

template <class Cell>
index_t sequence_backward_workspace(const Cell& cell, index_t T, index_t B, index_t I, index_t H,
                                    const Regularise& reg) {
  return sequence_backward_run(cell, static_cast<const SequenceBackward<typename Cell::scalar_t>*>(nullptr), T, B, I,
                               H, reg)
      .carve(nullptr)
      .size;
}

template <class Cell>
void sequence_backward(const Cell& cell, const SequenceBackward<typename Cell::scalar_t>& a, index_t T, index_t B,
                       index_t I, index_t H, typename Cell::scalar_t* workspace) {
  sequence_backward_run(cell, &a, T, B, I, H, a.reg).run(workspace);
}

template <class Cell>
loop::Backward<Cell> step_backward_run(const Cell& cell, const StepBackward<typename Cell::scalar_t>* a, index_t B,
                                       index_t I, index_t H, const Regularise& reg) {
  loop::Backward<Cell> b{cell, 1, B, I, H, nullptr, false, a ? a->x : nullptr, a ? &a->p : nullptr,
                         a ? &a->g : nullptr};
  b.reg = reg;
  if (!a) return b;
  b.dx = a->dx;
  b.dh_first = a->dstate[0];
  b.dh_last = a->dstate_prev[0];
  for (int k = 0; k < Cell::spec.states; ++k) {
    b.prev[k] = {a->state_prev[k], 0};
    b.next[k] = {a->state[k], 0};
    if (k > 0) {
      b.carry[k] = a->dstate_prev[k];
      b.carry_in[k] = a->dstate[k];
    }
  }
  for (int k = 0; k < Cell::spec.saved; ++k) b.saved[k] = {a->saved[k], 0};
  return b;
}

template <class Cell>
index_t step_backward_workspace(const Cell& cell, index_t B, index_t I, index_t H, const Regularise& reg) {
  return step_backward_run(cell, static_cast<const StepBackward<typename Cell::scalar_t>*>(nullptr), B, I, H, reg)
      .carve(nullptr)
      .size;
}

template <class Cell>
void step_backward(const Cell& cell, const StepBackward<typename Cell::scalar_t>& a, index_t B, index_t I, index_t H,
                   typename Cell::scalar_t* workspace) {
  step_backward_run(cell, &a, B, I, H, a.reg).run(workspace);
}

}  // namespace rnncore

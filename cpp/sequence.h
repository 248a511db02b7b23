// Internal helpers shared by the sequence kernels (not part of the public interface).
#pragma once

#include <cstring>

#include "common.h"
#include "packed_gemm.h"
#include "parallel.h"

namespace rnncore {
namespace seq {

// Index in the state history [T+1,B,H] of the state read and written by step t.
inline index_t prev_slot(index_t t, bool reverse) { return reverse ? t + 1 : t; }
inline index_t next_slot(index_t t, bool reverse) { return reverse ? t : t + 1; }
// Time index of processing step s.
inline index_t time_of(index_t s, index_t T, bool reverse) { return reverse ? T - 1 - s : s; }

inline bool valid(const index_t* lengths, index_t t, index_t b) { return lengths == nullptr || t < lengths[b]; }

// How a sequence kernel spreads its time loop over threads.
//  by_rows: each task runs the whole time loop for a slice of the batch (the rows of a
//           recurrence are independent, the packed weights are shared read-only), so
//           the loop needs no synchronisation at all. Used when every task gets at
//           least 4 rows.
//  otherwise (small batches): every step is a phase and each task owns a slice of the
//           hidden units (whole packed panels) of every gate; one sync per step.
// Threads only pay when a step's product (B*G*H*H multiply-adds) is large enough to
// cover the synchronisation (parallel_threshold).
struct LoopPlan {
  int nt;
  bool by_rows;
};

template <typename scalar_t>
LoopPlan plan_loop(index_t T, index_t B, index_t H, index_t G) {
  int nt = num_threads();
  if (nt <= 1 || B * G * H * H < parallel_threshold()) return {1, false};
  // A single step (the cells) reads w_hh in place (StepWeights): split by rows, every
  // task would pack all of it; split by units, each packs its own columns.
  const index_t min_rows = T > 1 ? 4 * static_cast<index_t>(nt) : G * H;
  if (B >= min_rows) return {nt, true};
  const index_t panels = panels_per_block<scalar_t>(H);
  if (nt > panels) nt = static_cast<int>(panels);
  return {nt < 1 ? 1 : nt, false};
}

// Hidden units [begin, end) owned by task p of nt: whole packed panels.
template <typename scalar_t>
Range units(index_t H, int p, int nt) {
  return split(H, p, nt, packed_nr<scalar_t>());
}

// Whether a product C[M,N] is split across nt threads by rows, else by columns: the
// longer side, so that each task packs (inside BLAS) only its share of the larger
// operand. A single step has few rows and a wide weight matrix: split by rows, every
// task would pack the whole of it.
inline bool split_rows(index_t M, index_t N, int nt) { return M >= 8 * static_cast<index_t>(nt) && M >= N; }

// C[M,N] = alpha op(A) op(B) + beta C with the rows or the columns of C split across
// threads (split_rows).
template <typename scalar_t>
void gemm_rows(int tid, int nt, bool ta, bool tb, index_t M, index_t N, index_t K, scalar_t alpha, const scalar_t* A,
               index_t lda, const scalar_t* B, index_t ldb, scalar_t beta, scalar_t* C, index_t ldc) {
  if (split_rows(M, N, nt)) {
    const Range r = split(M, tid, nt, 8);
    if (r.end <= r.begin) return;
    const scalar_t* a = ta ? A + r.begin : A + r.begin * lda;
    gemm<scalar_t>(ta, tb, r.end - r.begin, N, K, alpha, a, lda, B, ldb, beta, C + r.begin * ldc, ldc);
  } else {
    const Range c = split(N, tid, nt, 16);
    if (c.end <= c.begin) return;
    const scalar_t* b = tb ? B + c.begin * ldb : B + c.begin;
    gemm<scalar_t>(ta, tb, M, c.end - c.begin, K, alpha, A, lda, b, ldb, beta, C + c.begin, ldc);
  }
}

// Task p of nt packs its share of the panels of pack_weights(dst, W, ...).
template <typename scalar_t>
void pack_share(int p, int nt, scalar_t* dst, const scalar_t* W, index_t ldw, bool trans, index_t K, index_t nb,
                index_t blocks) {
  const Range r = split(blocks * panels_per_block<scalar_t>(nb), p, nt, 1);
  pack_weights(dst, W, ldw, trans, K, nb, blocks, r.begin, r.end);
}

// The weights of the step product, Bmat[K, blocks*nb] as pack_weights reads them from W:
// packed once per sequence, or, for a single step (T = 1, the cells), read in place by
// BLAS: packing reads and writes every weight to save one read per later step, a loss
// when there is no later step.
template <typename scalar_t>
struct StepWeights {
  const scalar_t* W;
  index_t ldw;
  bool trans;
  index_t K, nb;
  scalar_t* packed;  // the packed copy, or nullptr: W in place

  // Task p's share of the packing (none in place).
  void pack(int p, int nt, index_t blocks) const {
    if (packed) pack_share(p, nt, packed, W, ldw, trans, K, nb, blocks);
  }
  // C[0:M, 0:nc] (+)= A[0:M, 0:K] @ Bmat[0:K, g*nb + n0 + (0:nc)], n0 a multiple of the
  // panel width; accumulate adds, otherwise overwrites.
  void product(index_t g, index_t M, index_t nc, const scalar_t* A, index_t lda, index_t n0, scalar_t* C, index_t ldc,
               bool accumulate) const {
    if (packed) {
      gemm_packed(M, nc, K, A, lda, packed + g * packed_size<scalar_t>(K, nb, 1), n0, C, ldc, accumulate);
      return;
    }
    const index_t col = g * nb + n0;
    gemm<scalar_t>(false, trans, M, nc, K, scalar_t(1), A, lda, trans ? W + col * ldw : W + col, ldw,
                   accumulate ? scalar_t(1) : scalar_t(0), C, ldc);
  }
};

// StepWeights for a sequence of T steps, packing into `packed` when T > 1.
template <typename scalar_t>
StepWeights<scalar_t> step_weights(index_t T, scalar_t* packed, const scalar_t* W, index_t ldw, bool trans, index_t K,
                                   index_t nb) {
  return {W, ldw, trans, K, nb, T > 1 ? packed : nullptr};
}

// out[j] += sum over rows r of M[r*ld + j], for j in [j0, j1); summed in double.
template <typename scalar_t>
void add_column_sums(scalar_t* out, const scalar_t* M, index_t rows, index_t ld, index_t j0, index_t j1);

// Rows [0,B) x units [u0,u1) of a [B,H] state: copy (src may be nullptr: zeros).
template <typename scalar_t>
void copy_units(scalar_t* dst, const scalar_t* src, index_t B, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < B; ++b) {
    if (src)
      std::memcpy(dst + b * H + u0, src + b * H + u0, sizeof(scalar_t) * (u1 - u0));
    else
      std::memset(dst + b * H + u0, 0, sizeof(scalar_t) * (u1 - u0));
  }
}

// Fills rows [r0, r1) x columns [j0, j1) of gates [rows, N] with bias1 + bias2 (either
// may be nullptr), the starting value of the input projection.
template <typename scalar_t>
void fill_bias(scalar_t* gates, index_t r0, index_t r1, index_t j0, index_t j1, index_t N, const scalar_t* b1,
               const scalar_t* b2) {
  for (index_t r = r0; r < r1; ++r) {
    scalar_t* g = gates + r * N;
    for (index_t j = j0; j < j1; ++j) g[j] = (b1 ? b1[j] : scalar_t(0)) + (b2 ? b2[j] : scalar_t(0));
  }
}

// gates[T*B, N] = x[T*B, I] @ w_ih.T + b1 + b2, rows or columns split across threads
// (split_rows).
template <typename scalar_t>
void input_projection(int tid, int nt, scalar_t* gates, const scalar_t* x, const scalar_t* w_ih, const scalar_t* b1,
                      const scalar_t* b2, index_t rows, index_t I, index_t N) {
  const bool by_rows = split_rows(rows, N, nt);
  const Range r = by_rows ? split(rows, tid, nt, 8) : Range{0, rows};
  const Range c = by_rows ? Range{0, N} : split(N, tid, nt, 16);
  if (r.end <= r.begin || c.end <= c.begin) return;
  const bool bias = b1 || b2;
  if (bias) fill_bias(gates, r.begin, r.end, c.begin, c.end, N, b1, b2);
  gemm<scalar_t>(false, true, r.end - r.begin, c.end - c.begin, I, scalar_t(1), x + r.begin * I, I, w_ih + c.begin * I,
                 I, bias ? scalar_t(1) : scalar_t(0), gates + r.begin * N + c.begin, N);
}

// Keeps OpenBLAS single-threaded (rnncore splits the work itself). Call before
// parallel_run, from the calling thread.
void single_threaded_blas();

}  // namespace seq
}  // namespace rnncore

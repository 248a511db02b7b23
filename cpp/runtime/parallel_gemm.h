// Products and column sums spread over the thread pool: what the recurrence driver's
// input projection and weight-gradient tail and the ops (linear, embedding, losses) share.
// Every BLAS call inside rnncore is single-threaded; rnncore splits the work itself.
#pragma once

#include <cstring>

#include "runtime/common.h"
#include "runtime/parallel.h"

namespace rnncore {

// Whether a product C[M,N] is split across nt threads by rows, else by columns: the
// longer side, so that each task packs (inside BLAS) only its share of the larger
// operand. A single step has few rows and a wide weight matrix.
inline bool split_rows(index_t M, index_t N, int nt) { return M >= 8 * static_cast<index_t>(nt) && M >= N; }

// Task tid of nt: its share of C[M,N] = alpha op(A) op(B) + beta C, the rows or the
// columns of C split across the tasks (split_rows).
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

// Task tid of nt: its share of y[rows, N] = x[rows, I] @ w.T + b1 + b2 (either bias may
// be nullptr), rows or columns split across the tasks (split_rows). The recurrent
// layers' input projection and the dense layer's forward.
template <typename scalar_t>
void input_projection(int tid, int nt, scalar_t* y, const scalar_t* x, const scalar_t* w, const scalar_t* b1,
                      const scalar_t* b2, index_t rows, index_t I, index_t N) {
  const bool by_rows = split_rows(rows, N, nt);
  const Range r = by_rows ? split(rows, tid, nt, 8) : Range{0, rows};
  const Range c = by_rows ? Range{0, N} : split(N, tid, nt, 16);
  if (r.end <= r.begin || c.end <= c.begin) return;
  const bool bias = b1 || b2;
  if (bias)
    for (index_t i = r.begin; i < r.end; ++i) {
      scalar_t* g = y + i * N;
      if (b1 && b2)
        for (index_t j = c.begin; j < c.end; ++j) g[j] = b1[j] + b2[j];
      else  // one of them (not a select on a null pointer: a masked load from address 0)
        std::memcpy(g + c.begin, (b1 ? b1 : b2) + c.begin, sizeof(scalar_t) * (c.end - c.begin));
    }
  gemm<scalar_t>(false, true, r.end - r.begin, c.end - c.begin, I, scalar_t(1), x + r.begin * I, I, w + c.begin * I,
                 I, bias ? scalar_t(1) : scalar_t(0), y + r.begin * N + c.begin, N);
}

// Keeps OpenBLAS single-threaded (rnncore splits the work itself). Call before
// run_phased, from the calling thread.
void single_threaded_blas();

// out[j] += sum over rows r of M[r*ld + j], for j in [j0, j1); summed in double.
template <typename scalar_t>
void add_column_sums(scalar_t* out, const scalar_t* M, index_t rows, index_t ld, index_t j0, index_t j1);
// out[j] += sum over rows r of A[r*ld + j] * B[r*ld + j], for j in [j0, j1); in double.
template <typename scalar_t>
void add_column_dots(scalar_t* out, const scalar_t* A, const scalar_t* B, index_t rows, index_t ld, index_t j0,
                     index_t j1);

}  // namespace rnncore

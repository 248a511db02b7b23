// The recurrent product of one time step, C[M,N] (+)= A[M,K] @ Bmat[K,N], with Bmat
// packed once per sequence.
//
// M is the batch (often 1-64), so a BLAS call per step spends most of its time
// re-packing the same weight panel. Here the weights are packed once, before the time
// loop (when there is more than one step: for T = 1, driver/cell.h's StepWeights hands the
// product to BLAS, which reads the weights in place), into column panels of NR: panel p
// holds Bmat[0:K, p*NR : p*NR+NR] row by row (K rows of NR contiguous values,
// zero-padded past N), and a register-tiled micro-kernel (up to 6 rows x NR columns of
// accumulators, FMA) streams them.
//
// The micro-kernel comes in three builds (x86-64-v4, x86-64-v3, baseline) picked at run
// time, not by -march, so one wheel serves every x86-64 CPU.
//
// Columns are packed in blocks (one per gate): block g covers Bmat[:, g*nb : (g+1)*nb]
// and starts on a fresh panel, so that a thread owning hidden units [u0, u1) (u0 a
// multiple of NR) finds its columns of every gate as whole panels.
#pragma once

#include "runtime/common.h"

namespace rnncore {

// Panel width: two vector registers of the widest ISA this CPU has (chosen once, at
// load): 32 floats / 16 doubles with AVX-512, 16 / 8 with AVX2, 8 / 4 with SSE2.
template <typename scalar_t>
index_t packed_nr();

// The instruction set the packed kernels run with: "avx512", "avx2" or "sse2".
const char* packed_isa();

// Panels per block of nb columns, and the packed size of `blocks` blocks of K rows.
template <typename scalar_t>
index_t panels_per_block(index_t nb) {
  return (nb + packed_nr<scalar_t>() - 1) / packed_nr<scalar_t>();
}
template <typename scalar_t>
index_t packed_size(index_t K, index_t nb, index_t blocks) {
  return blocks * panels_per_block<scalar_t>(nb) * packed_nr<scalar_t>() * K;
}

// dst: [packed_size(K, nb, blocks)] out.
// W:   the source. trans: Bmat[k][n] = W[n*ldw + k] (W stored [N,K], e.g. weight_hh
//      [G*H,H] for h @ weight_hh.T); otherwise Bmat[k][n] = W[k*ldw + n].
// Columns n = 0 .. blocks*nb-1; block g is columns [g*nb, (g+1)*nb).
// Packs the panels [first, last) of the blocks*panels_per_block(nb) panels (so that
// threads can share the work); last = -1 means all.
template <typename scalar_t>
void pack_weights(scalar_t* dst, const scalar_t* W, index_t ldw, bool trans, index_t K, index_t nb, index_t blocks,
                  index_t first = 0, index_t last = -1);

// C[0:M, c0 + (0:nc)] (+)= A[0:M, 0:K] @ Bmat[0:K, n0 + (0:nc)] for the columns of one
// block, n0 a multiple of NR within the block: Bp points at the block's first panel
// (packed + g * panels_per_block * NR * K) and the kernel starts at panel n0 / NR.
// A: row stride lda. C: row stride ldc; accumulate adds, otherwise overwrites.
template <typename scalar_t>
void gemm_packed(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda, const scalar_t* Bp, index_t n0,
                 scalar_t* C, index_t ldc, bool accumulate);

}  // namespace rnncore

// rnncore kernel library: shared definitions. Plain C++17, no Python.
//
// Dimension letters, used word for word in src/rnncore/reference:
//
//   T  time steps          B  batch           I  input size
//   H  hidden size         G  gates per cell (Elman 1, IndRNN 1, GRU 3, LSTM 4)
//   L  layers              D  directions (1, or 2 when bidirectional)
//   P  the width of h and y: H, or the projection size (LSTMP, torch's proj_size)
//
// Layouts are time-major and C-contiguous (rightmost dimension fastest):
// x [T,B,I], gates [T,B,G*H] with PyTorch's gate order as blocks of H, and a state
// history h [T+1,B,H]. Weights keep PyTorch's layout: weight_ih [G*H,I],
// weight_hh [G*H,H] (IndRNN: [H]); a batch of rows is multiplied by their transpose.
//
// State history of one direction, in time order (so that the weight gradients are
// single GEMMs after the backward loop):
//   forward:  h[0] initial, h[t+1] after step t; step t reads h[t]; final h[T].
//   reverse:  h[T] initial, h[t] after step t (t = T-1 ... 0); step t reads h[t+1];
//             final h[0].
// Variable lengths (lengths[b] in [0,T], or nullptr for all T): a step t >= lengths[b]
// is padding for row b; it keeps the state, writes a zero output, and in backward
// passes the state gradient through and adds nothing to any weight gradient.
//
// Conventions: outputs first, then inputs, then dimensions. Every input pointer is
// const. Backward kernels ADD into weight and bias gradients (callers zero them), so
// successive calls accumulate. Kernels never allocate: scratch space is an argument
// sized by a *_workspace_size function next to the kernel.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnncore {

using index_t = std::int64_t;

// Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C, op(A) [M,K], op(B) [K,N].
// trans_a: A is stored [K,M]; trans_b: B is stored [N,K]. Calls OpenBLAS; throws
// std::length_error if a dimension does not fit BLAS's 32-bit integers.
template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, scalar_t alpha,
          const scalar_t* A, index_t lda, const scalar_t* B, index_t ldb, scalar_t beta,
          scalar_t* C, index_t ldc);

// OpenBLAS's build description, e.g. "OpenBLAS 0.3.30 DYNAMIC_ARCH ... Haswell MAX_THREADS=64".
const char* blas_config();

}  // namespace rnncore

// Dense layer and embedding lookup: the layers around a recurrent layer, on rnncore's
// thread pool (so that a training step never wakes another library's BLAS threads).
//
// Linear over the rows of a matrix (N rows: T*B positions of a sequence, or a batch):
//   y  = x @ w.T + b
//   dx = dy @ w          dw += dy.T @ x          db += sum over rows of dy
// Embedding (a lookup table, PyTorch's nn.Embedding):
//   y[n] = w[ids[n]]     dw[ids[n]] += dy[n]     (repeated ids add up)
//
// Threads: a product is split across the pool by its longer side (rows of x, or the
// columns of y), the embedding's scatter-add by columns of w (each thread adds every
// row's slice of its own columns, in row order, so the sums are the same bits at any
// thread count). Calls below parallel_threshold() multiply-adds run on the caller.
#pragma once

#include <cstdint>

#include "runtime/common.h"

namespace rnncore {

// y: [N,O] out, written.   x: [N,I] in.   w: [O,I] in.   b: [O] in, or nullptr (no bias).
template <typename scalar_t>
void linear_forward(scalar_t* y, const scalar_t* x, const scalar_t* w, const scalar_t* b, index_t N, index_t I,
                    index_t O);

// dx: [N,I] out, written; nullptr skips it (nothing upstream needs it).
// dw: [O,I] in/out, ADDED to.   db: [O] in/out, ADDED to, or nullptr (no bias).
// dy: [N,O] in.   x: [N,I] in, as forward read it.   w: [O,I] in.
// No output may alias an input.
template <typename scalar_t>
void linear_backward(scalar_t* dx, scalar_t* dw, scalar_t* db, const scalar_t* dy, const scalar_t* x,
                     const scalar_t* w, index_t N, index_t I, index_t O);

// y: [N,E] out.   w: [V,E] in.   ids: [N] in, each in [0,V) (checked by the caller).
// id_t is std::int32_t or std::int64_t.
template <typename scalar_t, typename id_t>
void embedding_forward(scalar_t* y, const scalar_t* w, const id_t* ids, index_t N, index_t E);

// dw: [V,E] in/out, ADDED to (rows of repeated ids sum).   dy: [N,E] in.   ids: [N] in.
template <typename scalar_t, typename id_t>
void embedding_backward(scalar_t* dw, const scalar_t* dy, const id_t* ids, index_t N, index_t E);

}  // namespace rnncore

// Gradient clipping and optimizer steps over every parameter of a model in one call.
//
// A model's parameters are many arrays (weights and biases of each layer). The ops
// below take them as a TensorList and run one pass over all of their elements, cut
// into fixed chunks that the thread pool shares (tasks.h); optimizer state (momentum,
// Adam's moments) lives in flat buffers with the arrays' elements back to back.
//
// Clipping by global norm (Pascanu et al. 2013, algorithm 1): g <- g * max_norm / ||g||
// when the norm of all gradients together exceeds max_norm; a non-finite norm leaves
// the gradients unchanged. By value: each element clipped to [-clip, clip]. NaN stays
// NaN in both. The norm is summed in double per chunk and the chunks in order, so it is
// the same bits at any thread count.
#pragma once

#include "runtime/common.h"

namespace rnncore {

// count arrays; array k has offset[k+1] - offset[k] elements at data[k] (offset[0] = 0,
// offset[count] the total). The arrays must not overlap each other.
template <typename scalar_t>
struct TensorList {
  index_t count;
  scalar_t* const* data;
  const index_t* offset;
  index_t total() const { return offset[count]; }
};

// The global L2 norm of the arrays, computed in double.
template <typename scalar_t>
double global_norm(const TensorList<scalar_t>& grads);

// grads in/out: every element multiplied by factor.
template <typename scalar_t>
void scale_all(const TensorList<scalar_t>& grads, scalar_t factor);

// grads in/out: every element clipped to [-clip, clip].
template <typename scalar_t>
void clip_all(const TensorList<scalar_t>& grads, scalar_t clip);

// Clipping by global norm over float32 and float64 arrays together (either list may be
// empty): returns the norm before clipping; scales every array by max_norm / norm when
// that norm is finite and above max_norm.
double clip_grad_norm(const TensorList<float>& f32, const TensorList<double>& f64, double max_norm);

}  // namespace rnncore

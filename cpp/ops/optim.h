// Optimizer steps over every parameter of a model in one pass (rnncore.optim holds the
// hyper-parameters and the step count; these kernels do the arithmetic).
//
// params and grads are TensorLists over the same offsets (clip.h): parameter array k and
// its gradient have the same number of elements. Optimizer state (velocity, squared
// sums, moments) is flat: [total] elements, array k's part at offset[k]. The elements are
// cut into fixed chunks that the thread pool shares; every element is updated
// independently, so the results are the same bits at any thread count.
//
// With g the gradient plus weight_decay * p (L2 regularisation, as PyTorch adds it):
//   SGD (PyTorch's form):  v = momentum v + g;  p -= lr (nesterov ? g + momentum v : v)
//                          (momentum 0: p -= lr g, and no v)
//   Adagrad (min-char-rnn's, eps inside the root):  s += g^2;  p -= lr g / sqrt(s + eps)
//   Adam (Kingma and Ba, with bias correction, PyTorch's order of operations):
//                          m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//                          p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// NaN in a gradient reaches the parameter it belongs to (and its state), nothing else.
#pragma once

#include "ops/clip.h"

namespace rnncore {

struct SgdConfig {
  double lr, momentum, weight_decay;
  bool nesterov;
};

struct AdagradConfig {
  double lr, eps;
};

struct AdamConfig {
  double lr, beta1, beta2, eps, weight_decay;
  std::int64_t step;  // t, counting this step (1 for the first)
};

// params: in/out.   grads: in.   velocity: [total] in/out, or nullptr when momentum is 0.
template <typename scalar_t>
void sgd_step(const TensorList<scalar_t>& params, const TensorList<const scalar_t>& grads, scalar_t* velocity,
              const SgdConfig& cfg);

// sums: [total] in/out, the running sums of squared gradients.
template <typename scalar_t>
void adagrad_step(const TensorList<scalar_t>& params, const TensorList<const scalar_t>& grads, scalar_t* sums,
                  const AdagradConfig& cfg);

// m, v: [total] in/out, the first and second moments.
template <typename scalar_t>
void adam_step(const TensorList<scalar_t>& params, const TensorList<const scalar_t>& grads, scalar_t* m, scalar_t* v,
               const AdamConfig& cfg);

}  // namespace rnncore

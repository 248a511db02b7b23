#include "ops/softmax.h"

#include <cmath>

#include "runtime/activations.h"
#include "ops/tasks.h"

namespace rnncore {

namespace {
RNNCORE_INLINE float exp_(float x) { return detail::exp_approx(x); }
RNNCORE_INLINE double exp_(double x) { return std::exp(x); }

// Rows [n0, n1) of each pass.
template <typename scalar_t>
RNNCORE_CLONES void xent_forward_rows(scalar_t* loss, scalar_t* probs, const scalar_t* logits,
                                      const std::int64_t* targets, std::int64_t ignore_index, index_t n0, index_t n1,
                                      index_t V) {
  for (index_t n = n0; n < n1; ++n) {
    const scalar_t* z = logits + n * V;
    scalar_t* p = probs + n * V;
    scalar_t zmax = z[0];
    for (index_t v = 1; v < V; ++v) zmax = z[v] > zmax ? z[v] : zmax;
    const std::int64_t target = targets[n];
    // read the target logit before p (which may alias z) is overwritten
    const scalar_t z_target = target == ignore_index ? scalar_t(0) : z[target];
    scalar_t sum = 0;
    for (index_t v = 0; v < V; ++v) {
      p[v] = exp_(z[v] - zmax);
      sum += p[v];
    }
    const scalar_t inv = scalar_t(1) / sum;
    for (index_t v = 0; v < V; ++v) p[v] *= inv;
    loss[n] = target == ignore_index ? scalar_t(0) : std::log(sum) - (z_target - zmax);
  }
}

template <typename scalar_t>
RNNCORE_CLONES void xent_backward_rows(scalar_t* dlogits, const scalar_t* probs, const std::int64_t* targets,
                                       std::int64_t ignore_index, scalar_t scale, index_t n0, index_t n1, index_t V) {
  for (index_t n = n0; n < n1; ++n) {
    scalar_t* d = dlogits + n * V;
    const scalar_t* p = probs + n * V;
    const std::int64_t target = targets[n];
    if (target == ignore_index) {
      for (index_t v = 0; v < V; ++v) d[v] = 0;
      continue;
    }
    for (index_t v = 0; v < V; ++v) d[v] = scale * p[v];
    d[target] -= scale;
  }
}

}  // namespace

template <typename scalar_t>
void softmax_xent_forward(scalar_t* loss, scalar_t* probs, const scalar_t* logits, const std::int64_t* targets,
                          std::int64_t ignore_index, index_t N, index_t V) {
  const int nt = ops::threads_for(N * V * 8);  // an exp is worth several multiply-adds
  ops::run_tasks(nt, nt, [&](index_t p) {
    const Range r = split(N, static_cast<int>(p), nt, 1);
    xent_forward_rows(loss, probs, logits, targets, ignore_index, r.begin, r.end, V);
  });
}

template <typename scalar_t>
void softmax_xent_backward(scalar_t* dlogits, const scalar_t* probs, const std::int64_t* targets,
                           std::int64_t ignore_index, scalar_t scale, index_t N, index_t V) {
  const int nt = ops::threads_for(N * V);
  ops::run_tasks(nt, nt, [&](index_t p) {
    const Range r = split(N, static_cast<int>(p), nt, 1);
    xent_backward_rows(dlogits, probs, targets, ignore_index, scale, r.begin, r.end, V);
  });
}

template void softmax_xent_forward<float>(float*, float*, const float*, const std::int64_t*, std::int64_t, index_t,
                                          index_t);
template void softmax_xent_forward<double>(double*, double*, const double*, const std::int64_t*, std::int64_t,
                                           index_t, index_t);
template void softmax_xent_backward<float>(float*, const float*, const std::int64_t*, std::int64_t, float, index_t,
                                           index_t);
template void softmax_xent_backward<double>(double*, const double*, const std::int64_t*, std::int64_t, double,
                                            index_t, index_t);

}  // namespace rnncore

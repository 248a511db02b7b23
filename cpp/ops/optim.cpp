#include "ops/optim.h"

#include <cmath>

#include "runtime/activations.h"
#include "ops/tasks.h"

namespace rnncore {

namespace {

// The spans of one chunk: parameter, gradient and state pointers of the same elements.
template <typename scalar_t, typename Fn>
void for_each_chunk(const TensorList<scalar_t>& params, const TensorList<const scalar_t>& grads, Fn&& fn) {
  ops::run_tasks(ops::threads_for(params.total()), ops::chunks_of(params.total()), [&](index_t k) {
    ops::for_each_span(params, k, [&](index_t a, index_t b, index_t e) {
      fn(params.data[a] + b, grads.data[a] + b, params.offset[a] + b, e - b);
    });
  });
}

// WD: weight decay is on. (Off, the term is left out, not multiplied by zero: an infinite
// parameter must not turn into NaN.)
template <typename scalar_t, bool WD>
RNNCORE_CLONES void sgd_span(scalar_t* __restrict p, const scalar_t* __restrict g, scalar_t* __restrict v, index_t n,
                             scalar_t lr, scalar_t momentum, scalar_t wd, bool nesterov) {
  if (!v) {
    for (index_t i = 0; i < n; ++i) p[i] -= lr * (WD ? g[i] + wd * p[i] : g[i]);
    return;
  }
  for (index_t i = 0; i < n; ++i) {
    const scalar_t gi = WD ? g[i] + wd * p[i] : g[i];
    const scalar_t vi = momentum * v[i] + gi;
    v[i] = vi;
    p[i] -= lr * (nesterov ? gi + momentum * vi : vi);
  }
}

template <typename scalar_t>
RNNCORE_CLONES void adagrad_span(scalar_t* __restrict p, const scalar_t* __restrict g, scalar_t* __restrict s,
                                 index_t n, scalar_t lr, scalar_t eps) {
  for (index_t i = 0; i < n; ++i) {
    const scalar_t si = s[i] + g[i] * g[i];
    s[i] = si;
    p[i] -= lr * g[i] / std::sqrt(si + eps);
  }
}

template <typename scalar_t, bool WD>
RNNCORE_CLONES void adam_span(scalar_t* __restrict p, const scalar_t* __restrict g, scalar_t* __restrict m,
                              scalar_t* __restrict v, index_t n, scalar_t b1, scalar_t b2, scalar_t a1, scalar_t a2,
                              scalar_t eps, scalar_t wd, scalar_t step_size, scalar_t root_c2) {
  for (index_t i = 0; i < n; ++i) {
    const scalar_t gi = WD ? g[i] + wd * p[i] : g[i];
    const scalar_t mi = b1 * m[i] + a1 * gi;
    const scalar_t vi = b2 * v[i] + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (std::sqrt(vi) / root_c2 + eps);
  }
}

}  // namespace

template <typename scalar_t>
void sgd_step(const TensorList<scalar_t>& params, const TensorList<const scalar_t>& grads, scalar_t* velocity,
              const SgdConfig& cfg) {
  const auto lr = static_cast<scalar_t>(cfg.lr), mom = static_cast<scalar_t>(cfg.momentum),
             wd = static_cast<scalar_t>(cfg.weight_decay);
  for_each_chunk(params, grads, [&](scalar_t* p, const scalar_t* g, index_t at, index_t n) {
    scalar_t* vel = velocity ? velocity + at : nullptr;
    if (cfg.weight_decay != 0)
      sgd_span<scalar_t, true>(p, g, vel, n, lr, mom, wd, cfg.nesterov);
    else
      sgd_span<scalar_t, false>(p, g, vel, n, lr, mom, wd, cfg.nesterov);
  });
}

template <typename scalar_t>
void adagrad_step(const TensorList<scalar_t>& params, const TensorList<const scalar_t>& grads, scalar_t* sums,
                  const AdagradConfig& cfg) {
  const auto lr = static_cast<scalar_t>(cfg.lr), eps = static_cast<scalar_t>(cfg.eps);
  for_each_chunk(params, grads, [&](scalar_t* p, const scalar_t* g, index_t at, index_t n) {
    adagrad_span(p, g, sums + at, n, lr, eps);
  });
}

template <typename scalar_t>
void adam_step(const TensorList<scalar_t>& params, const TensorList<const scalar_t>& grads, scalar_t* m, scalar_t* v,
               const AdamConfig& cfg) {
  const double t = static_cast<double>(cfg.step);
  const double c1 = 1 - std::pow(cfg.beta1, t), c2 = 1 - std::pow(cfg.beta2, t);
  // 1 - beta in double, then rounded: in float32, 1 - 0.999f is 1.3e-5 away from 0.001
  const auto b1 = static_cast<scalar_t>(cfg.beta1), b2 = static_cast<scalar_t>(cfg.beta2),
             a1 = static_cast<scalar_t>(1 - cfg.beta1), a2 = static_cast<scalar_t>(1 - cfg.beta2),
             eps = static_cast<scalar_t>(cfg.eps), wd = static_cast<scalar_t>(cfg.weight_decay),
             step_size = static_cast<scalar_t>(cfg.lr / c1), root_c2 = static_cast<scalar_t>(std::sqrt(c2));
  for_each_chunk(params, grads, [&](scalar_t* p, const scalar_t* g, index_t at, index_t n) {
    if (cfg.weight_decay != 0)
      adam_span<scalar_t, true>(p, g, m + at, v + at, n, b1, b2, a1, a2, eps, wd, step_size, root_c2);
    else
      adam_span<scalar_t, false>(p, g, m + at, v + at, n, b1, b2, a1, a2, eps, wd, step_size, root_c2);
  });
}

template void sgd_step<float>(const TensorList<float>&, const TensorList<const float>&, float*, const SgdConfig&);
template void sgd_step<double>(const TensorList<double>&, const TensorList<const double>&, double*,
                               const SgdConfig&);
template void adagrad_step<float>(const TensorList<float>&, const TensorList<const float>&, float*,
                                  const AdagradConfig&);
template void adagrad_step<double>(const TensorList<double>&, const TensorList<const double>&, double*,
                                   const AdagradConfig&);
template void adam_step<float>(const TensorList<float>&, const TensorList<const float>&, float*, float*,
                               const AdamConfig&);
template void adam_step<double>(const TensorList<double>&, const TensorList<const double>&, double*, double*,
                                const AdamConfig&);

}  // namespace rnncore

#include "ops/clip.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/activations.h"
#include "ops/tasks.h"

namespace rnncore {

namespace {

template <typename scalar_t>
RNNCORE_CLONES double sum_of_squares(const scalar_t* x, index_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // independent chains for the vector units
  index_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += static_cast<double>(x[i]) * x[i];
    s1 += static_cast<double>(x[i + 1]) * x[i + 1];
    s2 += static_cast<double>(x[i + 2]) * x[i + 2];
    s3 += static_cast<double>(x[i + 3]) * x[i + 3];
  }
  for (; i < n; ++i) s0 += static_cast<double>(x[i]) * x[i];
  return (s0 + s1) + (s2 + s3);
}

template <typename scalar_t>
RNNCORE_CLONES void scale_span(scalar_t* x, index_t n, scalar_t factor) {
  for (index_t i = 0; i < n; ++i) x[i] *= factor;
}

template <typename scalar_t>
RNNCORE_CLONES void clip_span(scalar_t* x, index_t n, scalar_t clip) {
  for (index_t i = 0; i < n; ++i) {
    scalar_t v = x[i];
    v = v > clip ? clip : v;
    v = v < -clip ? -clip : v;
    x[i] = v;
  }
}

// The sum of squares of every element, in double (chunk sums added in chunk order).
template <typename scalar_t>
double squared_sum(const TensorList<scalar_t>& grads) {
  const index_t chunks = ops::chunks_of(grads.total());
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  ops::run_tasks(ops::threads_for(grads.total()), chunks, [&](index_t k) {
    double s = 0;
    ops::for_each_span(grads, k, [&](index_t a, index_t b, index_t e) { s += sum_of_squares(grads.data[a] + b, e - b); });
    partial[static_cast<std::size_t>(k)] = s;
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace

template <typename scalar_t>
double global_norm(const TensorList<scalar_t>& grads) {
  return std::sqrt(squared_sum(grads));
}

template <typename scalar_t>
void scale_all(const TensorList<scalar_t>& grads, scalar_t factor) {
  ops::run_tasks(ops::threads_for(grads.total()), ops::chunks_of(grads.total()), [&](index_t k) {
    ops::for_each_span(grads, k, [&](index_t a, index_t b, index_t e) { scale_span(grads.data[a] + b, e - b, factor); });
  });
}

template <typename scalar_t>
void clip_all(const TensorList<scalar_t>& grads, scalar_t clip) {
  ops::run_tasks(ops::threads_for(grads.total()), ops::chunks_of(grads.total()), [&](index_t k) {
    ops::for_each_span(grads, k, [&](index_t a, index_t b, index_t e) { clip_span(grads.data[a] + b, e - b, clip); });
  });
}

double clip_grad_norm(const TensorList<float>& f32, const TensorList<double>& f64, double max_norm) {
  const double norm = std::sqrt(squared_sum(f32) + squared_sum(f64));
  if (std::isfinite(norm) && norm > max_norm) {
    const double factor = max_norm / norm;
    scale_all(f32, static_cast<float>(factor));
    scale_all(f64, factor);
  }
  return norm;
}

template double global_norm<float>(const TensorList<float>&);
template double global_norm<double>(const TensorList<double>&);
template void scale_all<float>(const TensorList<float>&, float);
template void scale_all<double>(const TensorList<double>&, double);
template void clip_all<float>(const TensorList<float>&, float);
template void clip_all<double>(const TensorList<double>&, double);

}  // namespace rnncore

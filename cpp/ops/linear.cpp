#include "ops/linear.h"

#include <cstring>

#include "ops/tasks.h"

namespace rnncore {

template <typename scalar_t>
void linear_forward(scalar_t* y, const scalar_t* x, const scalar_t* w, const scalar_t* b, index_t N, index_t I,
                    index_t O) {
  const int nt = ops::threads_for(N * I * O);
  ops::run_tasks(nt, nt, [&](index_t p) { input_projection(static_cast<int>(p), nt, y, x, w, b,
                                                                static_cast<const scalar_t*>(nullptr), N, I, O); });
}

template <typename scalar_t>
void linear_backward(scalar_t* dx, scalar_t* dw, scalar_t* db, const scalar_t* dy, const scalar_t* x,
                     const scalar_t* w, index_t N, index_t I, index_t O) {
  const int nt = ops::threads_for(N * I * O);
  // every task takes its share of each of the three products (they are independent)
  ops::run_tasks(nt, nt, [&](index_t task) {
    const int p = static_cast<int>(task);
    if (dx) gemm_rows<scalar_t>(p, nt, false, false, N, I, O, 1, dy, O, w, I, 0, dx, I);
    gemm_rows<scalar_t>(p, nt, true, false, O, I, N, 1, dy, O, x, I, 1, dw, I);
    if (db) {
      const Range c = split(O, p, nt, 16);
      if (c.end > c.begin) add_column_sums(db, dy, N, O, c.begin, c.end);
    }
  });
}

template <typename scalar_t, typename id_t>
void embedding_forward(scalar_t* y, const scalar_t* w, const id_t* ids, index_t N, index_t E) {
  const int nt = ops::threads_for(N * E);
  ops::run_tasks(nt, nt, [&](index_t p) {
    const Range r = split(N, static_cast<int>(p), nt, 8);
    for (index_t n = r.begin; n < r.end; ++n)
      std::memcpy(y + n * E, w + static_cast<index_t>(ids[n]) * E, sizeof(scalar_t) * E);
  });
}

template <typename scalar_t, typename id_t>
void embedding_backward(scalar_t* dw, const scalar_t* dy, const id_t* ids, index_t N, index_t E) {
  // Threads own column slices (whole cache lines), never rows: two rows with the same id
  // would otherwise race, and the order of additions would depend on the thread count.
  const index_t align = 64 / sizeof(scalar_t);
  const int nt = E >= 2 * align ? ops::threads_for(N * E) : 1;
  ops::run_tasks(nt, nt, [&](index_t p) {
    const Range c = split(E, static_cast<int>(p), nt, align);
    for (index_t n = 0; n < N; ++n) {
      scalar_t* __restrict d = dw + static_cast<index_t>(ids[n]) * E;
      const scalar_t* __restrict g = dy + n * E;
      for (index_t e = c.begin; e < c.end; ++e) d[e] += g[e];
    }
  });
}

template void linear_forward<float>(float*, const float*, const float*, const float*, index_t, index_t, index_t);
template void linear_forward<double>(double*, const double*, const double*, const double*, index_t, index_t,
                                     index_t);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*, index_t,
                                     index_t, index_t);
template void linear_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                      index_t, index_t, index_t);
template void embedding_forward<float, std::int32_t>(float*, const float*, const std::int32_t*, index_t, index_t);
template void embedding_forward<float, std::int64_t>(float*, const float*, const std::int64_t*, index_t, index_t);
template void embedding_forward<double, std::int32_t>(double*, const double*, const std::int32_t*, index_t, index_t);
template void embedding_forward<double, std::int64_t>(double*, const double*, const std::int64_t*, index_t, index_t);
template void embedding_backward<float, std::int32_t>(float*, const float*, const std::int32_t*, index_t, index_t);
template void embedding_backward<float, std::int64_t>(float*, const float*, const std::int64_t*, index_t, index_t);
template void embedding_backward<double, std::int32_t>(double*, const double*, const std::int32_t*, index_t,
                                                       index_t);
template void embedding_backward<double, std::int64_t>(double*, const double*, const std::int64_t*, index_t,
                                                       index_t);

}  // namespace rnncore

#include "driver/loop.h"

#include <cblas.h>

#include "runtime/activations.h"

namespace rnncore {

template <typename scalar_t>
RNNCORE_CLONES void add_column_sums(scalar_t* out, const scalar_t* M, index_t rows, index_t ld, index_t j0,
                                    index_t j1) {
  constexpr index_t CHUNK = 256;
  double acc[CHUNK];
  for (index_t c0 = j0; c0 < j1; c0 += CHUNK) {
    const index_t n = j1 - c0 < CHUNK ? j1 - c0 : CHUNK;
    for (index_t j = 0; j < n; ++j) acc[j] = 0;
    for (index_t r = 0; r < rows; ++r) {
      const scalar_t* m = M + r * ld + c0;
      for (index_t j = 0; j < n; ++j) acc[j] += static_cast<double>(m[j]);
    }
    for (index_t j = 0; j < n; ++j) out[c0 + j] += static_cast<scalar_t>(acc[j]);
  }
}

template <typename scalar_t>
RNNCORE_CLONES void add_column_dots(scalar_t* out, const scalar_t* A, const scalar_t* B, index_t rows, index_t ld,
                                    index_t j0, index_t j1) {
  constexpr index_t CHUNK = 256;
  double acc[CHUNK];
  for (index_t c0 = j0; c0 < j1; c0 += CHUNK) {
    const index_t n = j1 - c0 < CHUNK ? j1 - c0 : CHUNK;
    for (index_t j = 0; j < n; ++j) acc[j] = 0;
    for (index_t r = 0; r < rows; ++r) {
      const scalar_t* a = A + r * ld + c0;
      const scalar_t* b = B + r * ld + c0;
      for (index_t j = 0; j < n; ++j) acc[j] += static_cast<double>(a[j]) * static_cast<double>(b[j]);
    }
    for (index_t j = 0; j < n; ++j) out[c0 + j] += static_cast<scalar_t>(acc[j]);
  }
}

template void add_column_sums<float>(float*, const float*, index_t, index_t, index_t, index_t);
template void add_column_sums<double>(double*, const double*, index_t, index_t, index_t, index_t);
template void add_column_dots<float>(float*, const float*, const float*, index_t, index_t, index_t, index_t);
template void add_column_dots<double>(double*, const double*, const double*, index_t, index_t, index_t, index_t);

namespace loop {

void single_threaded_blas() {
  // Only rnncore links this copy of OpenBLAS (NumPy and SciPy bundle their own), so
  // keeping it at one thread changes nothing for anyone else.
  if (scipy_openblas_get_num_threads() != 1) scipy_openblas_set_num_threads(1);
}

}  // namespace loop
}  // namespace rnncore

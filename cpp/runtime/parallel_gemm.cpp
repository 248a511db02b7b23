#include "runtime/parallel_gemm.h"

#include <cblas.h>

#include "runtime/activations.h"

namespace rnncore {

namespace {

// out[j] += sum over rows r of A[r*ld + j] (times B[r*ld + j] with DOT), summed in double.
template <typename scalar_t, bool DOT>
RNNCORE_CLONES void column_sums(scalar_t* out, const scalar_t* A, const scalar_t* B, index_t rows, index_t ld,
                                index_t j0, index_t j1) {
  constexpr index_t CHUNK = 256;
  double acc[CHUNK];
  for (index_t c0 = j0; c0 < j1; c0 += CHUNK) {
    const index_t n = j1 - c0 < CHUNK ? j1 - c0 : CHUNK;
    for (index_t j = 0; j < n; ++j) acc[j] = 0;
    for (index_t r = 0; r < rows; ++r) {
      const scalar_t* a = A + r * ld + c0;
      const scalar_t* b = DOT ? B + r * ld + c0 : nullptr;
      for (index_t j = 0; j < n; ++j)
        acc[j] += DOT ? static_cast<double>(a[j]) * static_cast<double>(b[j]) : static_cast<double>(a[j]);
    }
    for (index_t j = 0; j < n; ++j) out[c0 + j] += static_cast<scalar_t>(acc[j]);
  }
}

}  // namespace

template <typename scalar_t>
void add_column_sums(scalar_t* out, const scalar_t* M, index_t rows, index_t ld, index_t j0, index_t j1) {
  column_sums<scalar_t, false>(out, M, nullptr, rows, ld, j0, j1);
}

template <typename scalar_t>
void add_column_dots(scalar_t* out, const scalar_t* A, const scalar_t* B, index_t rows, index_t ld, index_t j0,
                     index_t j1) {
  column_sums<scalar_t, true>(out, A, B, rows, ld, j0, j1);
}

template void add_column_sums<float>(float*, const float*, index_t, index_t, index_t, index_t);
template void add_column_sums<double>(double*, const double*, index_t, index_t, index_t, index_t);
template void add_column_dots<float>(float*, const float*, const float*, index_t, index_t, index_t, index_t);
template void add_column_dots<double>(double*, const double*, const double*, index_t, index_t, index_t, index_t);

void single_threaded_blas() {
  // Only rnncore links this copy of OpenBLAS (NumPy and SciPy bundle their own), so
  // keeping it at one thread changes nothing for anyone else.
  if (scipy_openblas_get_num_threads() != 1) scipy_openblas_set_num_threads(1);
}

}  // namespace rnncore

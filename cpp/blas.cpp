#include <cblas.h>

#include <climits>
#include <stdexcept>

#include "common.h"

namespace rnncore {

namespace {

blasint blas_int(index_t v) {
  if (v < 0 || v > INT_MAX) throw std::length_error("rnncore: a matrix dimension exceeds BLAS's 32-bit range");
  return static_cast<blasint>(v);
}

template <typename scalar_t>
struct Blas;

template <>
struct Blas<float> {
  static void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint M, blasint N, blasint K, float alpha,
                   const float* A, blasint lda, const float* B, blasint ldb, float beta, float* C, blasint ldc) {
    scipy_cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
};

template <>
struct Blas<double> {
  static void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint M, blasint N, blasint K, double alpha,
                   const double* A, blasint lda, const double* B, blasint ldb, double beta, double* C, blasint ldc) {
    scipy_cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
};

}  // namespace

template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, scalar_t alpha,
          const scalar_t* A, index_t lda, const scalar_t* B, index_t ldb, scalar_t beta,
          scalar_t* C, index_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS may skip the beta scaling when K == 0; do it here
    for (index_t m = 0; m < M; ++m)
      for (index_t n = 0; n < N; ++n) C[m * ldc + n] = beta == scalar_t(0) ? scalar_t(0) : beta * C[m * ldc + n];
    return;
  }
  Blas<scalar_t>::call(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, blas_int(M),
                       blas_int(N), blas_int(K), alpha, A, blas_int(lda), B, blas_int(ldb), beta, C, blas_int(ldc));
}

template void gemm<float>(bool, bool, index_t, index_t, index_t, float, const float*, index_t, const float*,
                          index_t, float, float*, index_t);
template void gemm<double>(bool, bool, index_t, index_t, index_t, double, const double*, index_t, const double*,
                           index_t, double, double*, index_t);

const char* blas_config() { return scipy_openblas_get_config(); }

}  // namespace rnncore

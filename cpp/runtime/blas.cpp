#include <cblas.h>

#include <climits>
#include <stdexcept>

#include "runtime/common.h"

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
  static void gemv(CBLAS_TRANSPOSE t, blasint M, blasint N, float alpha, const float* A, blasint lda, const float* x,
                   blasint incx, float beta, float* y) {
    scipy_cblas_sgemv(CblasRowMajor, t, M, N, alpha, A, lda, x, incx, beta, y, 1);
  }
  static void ger(blasint M, blasint N, float alpha, const float* x, blasint incx, const float* y, blasint incy,
                  float* A, blasint lda) {
    scipy_cblas_sger(CblasRowMajor, M, N, alpha, x, incx, y, incy, A, lda);
  }
};

template <>
struct Blas<double> {
  static void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint M, blasint N, blasint K, double alpha,
                   const double* A, blasint lda, const double* B, blasint ldb, double beta, double* C, blasint ldc) {
    scipy_cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  static void gemv(CBLAS_TRANSPOSE t, blasint M, blasint N, double alpha, const double* A, blasint lda,
                   const double* x, blasint incx, double beta, double* y) {
    scipy_cblas_dgemv(CblasRowMajor, t, M, N, alpha, A, lda, x, incx, beta, y, 1);
  }
  static void ger(blasint M, blasint N, double alpha, const double* x, blasint incx, const double* y, blasint incy,
                  double* A, blasint lda) {
    scipy_cblas_dger(CblasRowMajor, M, N, alpha, x, incx, y, incy, A, lda);
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
  // One row of C (a batch of one) is a matrix-vector product, and an inner dimension of
  // one a rank-1 update: OpenBLAS's gemm packs the whole weight matrix for them anyway
  // (measured: (1 x 512) @ (512 x 2048) took 2-4x longer through sgemm than sgemv).
  if (M == 1) {
    // C[0, :] = alpha op(B).T @ op(A)[0, :] + beta C[0, :]; y is zeroed first for beta = 0
    // so that whatever C held (NaN included) cannot leak through a BLAS that scales by 0.
    if (beta == scalar_t(0))
      for (index_t n = 0; n < N; ++n) C[n] = scalar_t(0);
    const blasint incx = blas_int(trans_a ? lda : 1);
    if (trans_b)  // B stored [N, K]
      Blas<scalar_t>::gemv(CblasNoTrans, blas_int(N), blas_int(K), alpha, B, blas_int(ldb), A, incx, beta, C);
    else  // B stored [K, N]
      Blas<scalar_t>::gemv(CblasTrans, blas_int(K), blas_int(N), alpha, B, blas_int(ldb), A, incx, beta, C);
    return;
  }
  if (K == 1 && beta == scalar_t(1)) {  // C += alpha op(A)[:, 0] op(B)[0, :]
    Blas<scalar_t>::ger(blas_int(M), blas_int(N), alpha, A, blas_int(trans_a ? 1 : lda), B,
                        blas_int(trans_b ? ldb : 1), C, blas_int(ldc));
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

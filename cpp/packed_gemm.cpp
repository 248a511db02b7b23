#include "packed_gemm.h"

#include <cstdlib>
#include <cstring>

#include "activations.h"

namespace rnncore {

namespace {

enum class Isa { sse2, avx2, avx512 };

// The widest ISA the CPU has, lowered by RNNCORE_ISA=avx2|sse2 (to test the narrower
// kernels on a wide machine).
Isa detect_isa() {
  Isa best = Isa::sse2;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64)) && !defined(RNNCORE_NO_CLONES)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (best == Isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
    best = Isa::avx512;
#endif
  if (const char* want = std::getenv("RNNCORE_ISA")) {
    if (std::strcmp(want, "sse2") == 0) best = Isa::sse2;
    if (std::strcmp(want, "avx2") == 0 && best == Isa::avx512) best = Isa::avx2;
  }
  return best;
}

const Isa isa = detect_isa();

// Vector of VB bytes (GCC vector extension), lowered to the ISA of the function it is
// inlined into.
template <typename scalar_t, int VB>
struct Vec {
  typedef scalar_t type __attribute__((vector_size(VB)));
  static constexpr int lanes = VB / static_cast<int>(sizeof(scalar_t));
};

// MR rows x (2 vectors = NR columns) of C from one packed panel.
template <typename scalar_t, int VB, int MR>
RNNCORE_INLINE void micro_kernel(index_t K, const scalar_t* A, index_t lda, const scalar_t* panel, scalar_t* C,
                                 index_t ldc, index_t nc, bool accumulate) {
  using V = typename Vec<scalar_t, VB>::type;
  constexpr int L = Vec<scalar_t, VB>::lanes;
  V acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = V{};
  for (index_t k = 0; k < K; ++k) {
    V b0, b1;
    std::memcpy(&b0, panel + k * 2 * L, sizeof(V));
    std::memcpy(&b1, panel + k * 2 * L + L, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const scalar_t a = A[i * lda + k];
      acc0[i] += a * b0;
      acc1[i] += a * b1;
    }
  }
  if (nc == 2 * L) {
    for (int i = 0; i < MR; ++i) {
      scalar_t* c = C + i * ldc;
      if (accumulate) {
        V c0, c1;
        std::memcpy(&c0, c, sizeof(V));
        std::memcpy(&c1, c + L, sizeof(V));
        acc0[i] += c0;
        acc1[i] += c1;
      }
      std::memcpy(c, &acc0[i], sizeof(V));
      std::memcpy(c + L, &acc1[i], sizeof(V));
    }
  } else {  // the last, partial panel of a block
    for (int i = 0; i < MR; ++i) {
      scalar_t tmp[2 * L];
      std::memcpy(tmp, &acc0[i], sizeof(V));
      std::memcpy(tmp + L, &acc1[i], sizeof(V));
      scalar_t* c = C + i * ldc;
      for (index_t j = 0; j < nc; ++j) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
    }
  }
}

template <typename scalar_t, int VB>
RNNCORE_INLINE void gemm_impl(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda, const scalar_t* Bp,
                              index_t n0, scalar_t* C, index_t ldc, bool accumulate) {
  constexpr index_t NR = 2 * Vec<scalar_t, VB>::lanes;
  for (index_t j = 0; j < nc; j += NR) {
    const scalar_t* panel = Bp + ((n0 + j) / NR) * NR * K;
    const index_t w = nc - j < NR ? nc - j : NR;
    scalar_t* Cj = C + j;
    index_t i = 0;
    for (; i + 6 <= M; i += 6)
      micro_kernel<scalar_t, VB, 6>(K, A + i * lda, lda, panel, Cj + i * ldc, ldc, w, accumulate);
    const scalar_t* Ai = A + i * lda;
    scalar_t* Ci = Cj + i * ldc;
    switch (M - i) {
      case 5: micro_kernel<scalar_t, VB, 5>(K, Ai, lda, panel, Ci, ldc, w, accumulate); break;
      case 4: micro_kernel<scalar_t, VB, 4>(K, Ai, lda, panel, Ci, ldc, w, accumulate); break;
      case 3: micro_kernel<scalar_t, VB, 3>(K, Ai, lda, panel, Ci, ldc, w, accumulate); break;
      case 2: micro_kernel<scalar_t, VB, 2>(K, Ai, lda, panel, Ci, ldc, w, accumulate); break;
      case 1: micro_kernel<scalar_t, VB, 1>(K, Ai, lda, panel, Ci, ldc, w, accumulate); break;
      default: break;
    }
  }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64)) && !defined(RNNCORE_NO_CLONES)
#define RNNCORE_TARGET(t) __attribute__((target(t)))
#define RNNCORE_HAVE_WIDE 1
#else
#define RNNCORE_TARGET(t)
#define RNNCORE_HAVE_WIDE 0
#endif

template <typename scalar_t>
RNNCORE_TARGET("arch=x86-64-v4") void gemm_avx512(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda,
                                                  const scalar_t* Bp, index_t n0, scalar_t* C, index_t ldc,
                                                  bool accumulate) {
  gemm_impl<scalar_t, 64>(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
}

template <typename scalar_t>
RNNCORE_TARGET("arch=x86-64-v3") void gemm_avx2(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda,
                                                const scalar_t* Bp, index_t n0, scalar_t* C, index_t ldc,
                                                bool accumulate) {
  gemm_impl<scalar_t, 32>(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
}

template <typename scalar_t>
void gemm_sse2(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda, const scalar_t* Bp, index_t n0,
               scalar_t* C, index_t ldc, bool accumulate) {
  gemm_impl<scalar_t, 16>(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
}

}  // namespace

const char* packed_isa() { return isa == Isa::avx512 ? "avx512" : isa == Isa::avx2 ? "avx2" : "sse2"; }

template <typename scalar_t>
index_t packed_nr() {
  const index_t bytes = isa == Isa::avx512 ? 128 : isa == Isa::avx2 ? 64 : 32;
  return bytes / static_cast<index_t>(sizeof(scalar_t));
}

template <typename scalar_t>
void pack_weights(scalar_t* dst, const scalar_t* W, index_t ldw, bool trans, index_t K, index_t nb, index_t blocks,
                  index_t first, index_t last) {
  const index_t NR = packed_nr<scalar_t>();
  const index_t P = panels_per_block<scalar_t>(nb);
  if (last < 0 || last > blocks * P) last = blocks * P;
  for (index_t q = first; q < last; ++q) {
    const index_t g = q / P, p = q % P;
    scalar_t* panel = dst + q * NR * K;
    const index_t w = nb - p * NR < NR ? nb - p * NR : NR;
    const index_t n = g * nb + p * NR;
    for (index_t k = 0; k < K; ++k) {
      scalar_t* row = panel + k * NR;
      if (trans)
        for (index_t j = 0; j < w; ++j) row[j] = W[(n + j) * ldw + k];
      else
        std::memcpy(row, W + k * ldw + n, sizeof(scalar_t) * w);
      for (index_t j = w; j < NR; ++j) row[j] = 0;
    }
  }
}

template <typename scalar_t>
void gemm_packed(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda, const scalar_t* Bp, index_t n0,
                 scalar_t* C, index_t ldc, bool accumulate) {
  if (K == 0) {
    if (!accumulate)
      for (index_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, sizeof(scalar_t) * nc);
    return;
  }
#if RNNCORE_HAVE_WIDE
  if (isa == Isa::avx512) return gemm_avx512(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
  if (isa == Isa::avx2) return gemm_avx2(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
#endif
  gemm_sse2(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
}

template index_t packed_nr<float>();
template index_t packed_nr<double>();
template void pack_weights<float>(float*, const float*, index_t, bool, index_t, index_t, index_t, index_t, index_t);
template void pack_weights<double>(double*, const double*, index_t, bool, index_t, index_t, index_t, index_t,
                                   index_t);
template void gemm_packed<float>(index_t, index_t, index_t, const float*, index_t, const float*, index_t, float*,
                                 index_t, bool);
template void gemm_packed<double>(index_t, index_t, index_t, const double*, index_t, const double*, index_t, double*,
                                  index_t, bool);

}  // namespace rnncore

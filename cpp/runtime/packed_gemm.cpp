#include "runtime/packed_gemm.h"

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "runtime/activations.h"

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

// MR rows x (2 vectors = NR columns) of C from one packed panel. With few rows the
// accumulators would form one FMA latency chain per k (4 cycles each); KU independent
// sets over consecutive k, summed at the end, keep the FMA units busy.
template <typename scalar_t, int VB, int MR>
RNNCORE_INLINE void micro_kernel(index_t K, const scalar_t* A, index_t lda, const scalar_t* panel, scalar_t* C,
                                 index_t ldc, index_t nc, bool accumulate) {
  using V = typename Vec<scalar_t, VB>::type;
  constexpr int L = Vec<scalar_t, VB>::lanes;
  constexpr int KU = MR == 1 ? 4 : MR == 2 ? 2 : 1;
  // C is read at the end: in a time loop it is the step's slice of the input projection,
  // written long before and out of cache by now (perf: 15% of the kernel's time went to
  // those loads). Asked for now, it arrives while the K loop runs.
  if (accumulate)
    for (int i = 0; i < MR; ++i) {
      __builtin_prefetch(C + i * ldc);
      __builtin_prefetch(C + i * ldc + nc - 1);
    }
  V acc0[KU][MR], acc1[KU][MR];
  for (int u = 0; u < KU; ++u)
    for (int i = 0; i < MR; ++i) acc0[u][i] = acc1[u][i] = V{};
  index_t k = 0;
  for (; k + KU <= K; k += KU)
    for (int u = 0; u < KU; ++u) {
      V b0, b1;
      std::memcpy(&b0, panel + (k + u) * 2 * L, sizeof(V));
      std::memcpy(&b1, panel + (k + u) * 2 * L + L, sizeof(V));
      for (int i = 0; i < MR; ++i) {
        const scalar_t a = A[i * lda + k + u];
        acc0[u][i] += a * b0;
        acc1[u][i] += a * b1;
      }
    }
  for (; k < K; ++k) {
    V b0, b1;
    std::memcpy(&b0, panel + k * 2 * L, sizeof(V));
    std::memcpy(&b1, panel + k * 2 * L + L, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const scalar_t a = A[i * lda + k];
      acc0[0][i] += a * b0;
      acc1[0][i] += a * b1;
    }
  }
  for (int u = 1; u < KU; ++u)
    for (int i = 0; i < MR; ++i) {
      acc0[0][i] += acc0[u][i];
      acc1[0][i] += acc1[u][i];
    }
  if (nc == 2 * L) {
    for (int i = 0; i < MR; ++i) {
      scalar_t* c = C + i * ldc;
      if (accumulate) {
        V c0, c1;
        std::memcpy(&c0, c, sizeof(V));
        std::memcpy(&c1, c + L, sizeof(V));
        acc0[0][i] += c0;
        acc1[0][i] += c1;
      }
      std::memcpy(c, &acc0[0][i], sizeof(V));
      std::memcpy(c + L, &acc1[0][i], sizeof(V));
    }
  } else {  // the last, partial panel of a block
    for (int i = 0; i < MR; ++i) {
      scalar_t tmp[2 * L];
      std::memcpy(tmp, &acc0[0][i], sizeof(V));
      std::memcpy(tmp + L, &acc1[0][i], sizeof(V));
      scalar_t* c = C + i * ldc;
      for (index_t j = 0; j < nc; ++j) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
    }
  }
}

template <typename scalar_t, int VB, int MR>
RNNCORE_INLINE void rows_block(int m, index_t K, const scalar_t* A, index_t lda, const scalar_t* panel, scalar_t* C,
                               index_t ldc, index_t w, bool accumulate) {
  if constexpr (MR > 1) {
    if (m < MR) return rows_block<scalar_t, VB, MR - 1>(m, K, A, lda, panel, C, ldc, w, accumulate);
  }
  micro_kernel<scalar_t, VB, MR>(K, A, lda, panel, C, ldc, w, accumulate);
}

// Rows go in balanced blocks of at most MAXR (the accumulators must stay in registers:
// 2*MAXR of them plus 3: 12 rows with AVX-512's 32 registers, 6 with 16), so that for
// instance 32 rows are 11+11+10 rather than 12+12+8.
template <typename scalar_t, int VB, int MAXR>
RNNCORE_INLINE void gemm_impl(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda, const scalar_t* Bp,
                              index_t n0, scalar_t* C, index_t ldc, bool accumulate) {
  constexpr index_t NR = 2 * Vec<scalar_t, VB>::lanes;
  const index_t blocks = (M + MAXR - 1) / MAXR;
  for (index_t j = 0; j < nc; j += NR) {
    const scalar_t* panel = Bp + ((n0 + j) / NR) * NR * K;
    const index_t w = nc - j < NR ? nc - j : NR;
    for (index_t q = 0, i = 0; q < blocks; ++q) {
      const int m = static_cast<int>((M - i) / (blocks - q));
      rows_block<scalar_t, VB, MAXR>(m, K, A + i * lda, lda, panel, C + i * ldc + j, ldc, w, accumulate);
      i += m;
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
  gemm_impl<scalar_t, 64, 12>(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
}

template <typename scalar_t>
RNNCORE_TARGET("arch=x86-64-v3") void gemm_avx2(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda,
                                                const scalar_t* Bp, index_t n0, scalar_t* C, index_t ldc,
                                                bool accumulate) {
  gemm_impl<scalar_t, 32, 6>(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
}

template <typename scalar_t>
void gemm_sse2(index_t M, index_t nc, index_t K, const scalar_t* A, index_t lda, const scalar_t* Bp, index_t n0,
               scalar_t* C, index_t ldc, bool accumulate) {
  gemm_impl<scalar_t, 16, 6>(M, nc, K, A, lda, Bp, n0, C, ldc, accumulate);
}

}  // namespace

const char* packed_isa() { return isa == Isa::avx512 ? "avx512" : isa == Isa::avx2 ? "avx2" : "sse2"; }

template <typename scalar_t>
index_t packed_nr() {
  const index_t bytes = isa == Isa::avx512 ? 128 : isa == Isa::avx2 ? 64 : 32;
  return bytes / static_cast<index_t>(sizeof(scalar_t));
}

namespace {

// dst[k*ldd + j] = src[j*lds + k] for an 8x8 block of floats: three rounds of
// two-source shuffles on 256-bit vectors (the classic 8x8 transpose), instead of 64
// scattered stores.
RNNCORE_INLINE void transpose8x8(float* dst, index_t ldd, const float* src, index_t lds) {
  typedef float v8 __attribute__((vector_size(32)));
  typedef int i8 __attribute__((vector_size(32)));
  v8 r[8], u[8], v[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&r[i], src + i * lds, sizeof(v8));
  for (int i = 0; i < 8; i += 2) {
    u[i] = __builtin_shuffle(r[i], r[i + 1], i8{0, 8, 1, 9, 4, 12, 5, 13});
    u[i + 1] = __builtin_shuffle(r[i], r[i + 1], i8{2, 10, 3, 11, 6, 14, 7, 15});
  }
  for (int i = 0; i < 8; i += 4)
    for (int q = 0; q < 2; ++q) {
      v[i + q] = __builtin_shuffle(u[i + q], u[i + 2 + q], i8{0, 1, 8, 9, 4, 5, 12, 13});
      v[i + 2 + q] = __builtin_shuffle(u[i + q], u[i + 2 + q], i8{2, 3, 10, 11, 6, 7, 14, 15});
    }
  // v[0..3] hold columns {0,4},{2,6},{1,5},{3,7} of rows 0-3 (low/high 128-bit halves);
  // v[4..7] the same for rows 4-7
  const int order[4] = {0, 2, 1, 3};
  for (int q = 0; q < 4; ++q) {
    const v8 lo = __builtin_shuffle(v[q], v[4 + q], i8{0, 1, 2, 3, 8, 9, 10, 11});
    const v8 hi = __builtin_shuffle(v[q], v[4 + q], i8{4, 5, 6, 7, 12, 13, 14, 15});
    std::memcpy(dst + order[q] * ldd, &lo, sizeof(v8));
    std::memcpy(dst + (order[q] + 4) * ldd, &hi, sizeof(v8));
  }
}

template <typename scalar_t>
RNNCORE_CLONES void pack_transposed(scalar_t* panel, const scalar_t* W, index_t ldw, index_t n, index_t w, index_t K,
                                    index_t NR) {
  index_t j0 = 0;
  if constexpr (std::is_same_v<scalar_t, float>) {
    for (; j0 + 8 <= w; j0 += 8) {
      index_t k = 0;
      for (; k + 8 <= K; k += 8) transpose8x8(panel + k * NR + j0, NR, W + (n + j0) * ldw + k, ldw);
      for (; k < K; ++k)
        for (index_t j = j0; j < j0 + 8; ++j) panel[k * NR + j] = W[(n + j) * ldw + k];
    }
  }
  for (index_t j = j0; j < w; ++j) {  // rows of W read contiguously, written strided
    const scalar_t* src = W + (n + j) * ldw;
    for (index_t k = 0; k < K; ++k) panel[k * NR + j] = src[k];
  }
}

}  // namespace

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
    if (trans) {
      pack_transposed(panel, W, ldw, n, w, K, NR);
    } else {
      for (index_t k = 0; k < K; ++k) std::memcpy(panel + k * NR, W + k * ldw + n, sizeof(scalar_t) * w);
    }
    for (index_t k = 0; k < K; ++k)
      for (index_t j = w; j < NR; ++j) panel[k * NR + j] = 0;
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

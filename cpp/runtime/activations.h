// Elementwise maths for the fused gate passes.
//
// float: branch-free approximations that GCC vectorises (AVX-512 in the x86-64-v4 clone
// of each pass, AVX2/FMA in the x86-64-v3 one, SSE2 otherwise; see RNNCORE_CLONES). Measured against double
// precision over [-20, 20]: sigmoid within 1.4e-7 relative, tanh within 2.7e-7
// relative (1-2 ulp). NaN propagates; +-inf saturate to the exact limits.
// double: the C library's exp and tanh (exact to rounding; the float64 path is for
// checking, not for speed).
//
// Derivatives are written in terms of the saved outputs y, as backward uses them:
// tanh' = 1 - y^2, sigmoid' = y (1 - y), relu' = [y > 0].
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(_M_X64)) && !defined(RNNCORE_NO_CLONES)
// Compile a pass three times and pick the variant once at load time (ifunc). Callees it
// inlines (everything below is always_inline) are compiled for each. Defining
// RNNCORE_NO_CLONES turns this off (ThreadSanitizer builds: the resolvers run before
// its runtime is up).
#define RNNCORE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNNCORE_CLONES
#endif
#if defined(__GNUC__)
#define RNNCORE_INLINE inline __attribute__((always_inline))
// Before a gate loop over units j: its arrays never overlap, so GCC need not version
// the loop with run-time alias checks (it gives up on vectorising past ~10 of them).
#define RNNCORE_IVDEP _Pragma("GCC ivdep")
#else
#define RNNCORE_INLINE inline
#define RNNCORE_IVDEP
#endif

namespace rnncore {

enum class Activation : int { tanh = 0, relu = 1, sigmoid = 2 };

namespace detail {

RNNCORE_INLINE float bits_to_float(std::int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// exp(x): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, two-part ln2), e^r by a degree-7
// polynomial (Cephes expf), scaled by 2^n built in the exponent bits. The clamps keep
// 2^n a normal float; selects are ordered so that a NaN input passes through. n is
// rounded by adding 1.5 * 2^23, which leaves it in the low mantissa bits of `shifted`;
// the exponent is built from those bits in unsigned arithmetic, so no input (NaN
// included) converts a float to an integer or shifts a negative number.
RNNCORE_INLINE float exp_approx(float x) {
  x = x > 88.3762626647949f ? 88.3762626647949f : x;
  x = x < -87.3365447504f ? -87.3365447504f : x;
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;  // x / ln2 rounded to nearest
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  std::uint32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  const std::uint32_t scale = (bits - 0x4B400000u + 127u) << 23;  // (n + 127) << 23
  return p * bits_to_float(static_cast<std::int32_t>(scale));
}

}  // namespace detail

RNNCORE_INLINE float sigmoid(float x) { return 1.0f / (1.0f + detail::exp_approx(-x)); }
RNNCORE_INLINE double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// tanh: odd rational approximation of degrees 13/6 (Eigen's ptanh), clamped where
// float tanh is +-1 to rounding.
RNNCORE_INLINE float tanh(float x) {
  const float c = 7.90531110763549805f;
  x = x > c ? c : x;
  x = x < -c ? -c : x;
  const float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}
RNNCORE_INLINE double tanh(double x) { return std::tanh(x); }

template <typename scalar_t>
RNNCORE_INLINE scalar_t relu(scalar_t x) {
  return x < scalar_t(0) ? scalar_t(0) : x;  // NaN passes through
}

template <typename scalar_t>
RNNCORE_INLINE scalar_t activate(Activation a, scalar_t x) {
  switch (a) {
    case Activation::relu: return relu(x);
    case Activation::sigmoid: return sigmoid(x);
    default: return tanh(x);
  }
}

template <typename scalar_t>
RNNCORE_INLINE scalar_t activate_grad(Activation a, scalar_t y) {
  switch (a) {
    case Activation::relu: return y > scalar_t(0) ? scalar_t(1) : scalar_t(0);
    case Activation::sigmoid: return y * (scalar_t(1) - y);
    default: return scalar_t(1) - y * y;
  }
}

}  // namespace rnncore

// Zoneout's masks and mixing (regularise.h), compiled once per instruction set: the hash
// of each unit is two 64-bit multiplies, which vectorise (AVX-512's vpmullq, AVX2's
// 32-bit partial products) where the scalar loop was most of zoneout's cost.
#include "driver/regularise.h"

#include <cmath>

#include "runtime/activations.h"

namespace rnncore {
namespace regularise {

namespace {

// Units per stack chunk of a row's mask.
constexpr index_t kMaskChunk = 512;

// uniform(key, j) < z, tested in integers, (bits >> 11) < ceil(z 2^53): the same
// comparison (bits >> 11 is an integer below 2^53 and z 2^53 is exact), which lets the
// hash vectorise.
inline std::uint64_t zoneout_threshold(double z) {
  return z >= 1 ? (std::uint64_t(1) << 53) : static_cast<std::uint64_t>(std::ceil(z * 0x1.0p53));
}

// Zoneout's mask of one row: keep[j - u0] = 1 where unit j in [u0,u1) keeps its previous value.
// next(key, j) = mix(key + (j + 1) kGolden), the argument stepped by addition.
RNNCORE_INLINE void keep_row(std::uint8_t* keep, std::uint64_t key, std::uint64_t threshold, index_t u0, index_t u1) {
  std::uint64_t v = key + (static_cast<std::uint64_t>(u0) + 1) * kGolden;
  for (index_t j = u0; j < u1; ++j, v += kGolden) keep[j - u0] = (mix(v) >> 11) < threshold;
}

// The rows' loops, per instruction set (RNNCORE_CLONES); each row's mask is hashed into a
// stack chunk, then applied.
template <typename scalar_t>
RNNCORE_CLONES void forward_rows(scalar_t* next, scalar_t* unmixed, const scalar_t* prev, const Regularise& r,
                                 int k, index_t t, index_t b0, index_t rows, index_t H, index_t u0, index_t u1) {
  const scalar_t z = scalar_t(r.zoneout), keep_new = scalar_t(1) - z;
  const std::uint64_t threshold = zoneout_threshold(r.zoneout);
  std::uint8_t keep[kMaskChunk];
  for (index_t b = 0; b < rows; ++b) {
    scalar_t* s = next + b * H;
    const scalar_t* sp = prev + b * H;
    if (unmixed)
      for (index_t j = u0; j < u1; ++j) unmixed[b * H + j] = s[j];
    if (!r.zoneout_masks) {
      for (index_t j = u0; j < u1; ++j) s[j] = z * sp[j] + keep_new * s[j];
      continue;
    }
    const std::uint64_t key = row_key(r.seed, zoneout_stream(k), r.t0 + t, b0 + b);
    for (index_t c0 = u0; c0 < u1; c0 += kMaskChunk) {
      const index_t c1 = u1 - c0 < kMaskChunk ? u1 : c0 + kMaskChunk;
      keep_row(keep, key, threshold, c0, c1);
      for (index_t j = c0; j < c1; ++j) s[j] = keep[j - c0] ? sp[j] : s[j];
    }
  }
}

template <typename scalar_t>
RNNCORE_CLONES void split_rows(scalar_t* cell, scalar_t* keep, const scalar_t* g, const scalar_t* dy,
                               const Regularise& r, int k, index_t t, index_t b0, index_t rows, index_t H, index_t u0,
                               index_t u1) {
  const scalar_t z = scalar_t(r.zoneout), keep_new = scalar_t(1) - z, zero = 0;
  const std::uint64_t threshold = zoneout_threshold(r.zoneout);
  std::uint8_t m[kMaskChunk];
  for (index_t b = 0; b < rows; ++b) {
    scalar_t* cb = cell + b * H;
    scalar_t* kb = keep + b * H;
    const scalar_t* gb = g + b * H;
    const scalar_t* db = dy ? dy + b * H : nullptr;
    if (!r.zoneout_masks) {
      for (index_t j = u0; j < u1; ++j) {
        const scalar_t v = db ? gb[j] + db[j] : gb[j];
        cb[j] = keep_new * v;
        kb[j] = z * v;
      }
      continue;
    }
    const std::uint64_t key = row_key(r.seed, zoneout_stream(k), r.t0 + t, b0 + b);
    for (index_t c0 = u0; c0 < u1; c0 += kMaskChunk) {
      const index_t c1 = u1 - c0 < kMaskChunk ? u1 : c0 + kMaskChunk;
      keep_row(m, key, threshold, c0, c1);
      for (index_t j = c0; j < c1; ++j) {
        const scalar_t v = db ? gb[j] + db[j] : gb[j];
        const bool kept = m[j - c0];
        cb[j] = kept ? zero : v;
        kb[j] = kept ? v : zero;
      }
    }
  }
}

}  // namespace

template <typename scalar_t>
void zoneout_forward(scalar_t* next, scalar_t* unmixed, const scalar_t* prev, const Regularise& r, int k, index_t t,
                     index_t b0, index_t rows, index_t H, index_t u0, index_t u1) {
  forward_rows(next, unmixed, prev, r, k, t, b0, rows, H, u0, u1);
}

template <typename scalar_t>
void zoneout_split(scalar_t* cell, scalar_t* keep, const scalar_t* g, const scalar_t* dy, const Regularise& r, int k,
                   index_t t, index_t b0, index_t rows, index_t H, index_t u0, index_t u1) {
  split_rows(cell, keep, g, dy, r, k, t, b0, rows, H, u0, u1);
}

#define RNNCORE_INSTANTIATE(S)                                                                                       \
  template void zoneout_forward<S>(S*, S*, const S*, const Regularise&, int, index_t, index_t, index_t, index_t,     \
                                   index_t, index_t);                                                                \
  template void zoneout_split<S>(S*, S*, const S*, const S*, const Regularise&, int, index_t, index_t, index_t,      \
                                 index_t, index_t, index_t);
RNNCORE_INSTANTIATE(float)
RNNCORE_INSTANTIATE(double)
#undef RNNCORE_INSTANTIATE

}  // namespace regularise
}  // namespace rnncore

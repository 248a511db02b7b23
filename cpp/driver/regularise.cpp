// Zoneout's masks and mixing (regularise.h), compiled once per instruction set: each
// unit's hash is two 32-bit multiplies, 8 units to an AVX2 register (16 with AVX-512),
// where a scalar 64-bit hash per unit was most of zoneout's cost.
#include "driver/regularise.h"

#include "runtime/activations.h"

namespace rnncore {
namespace regularise {

namespace {

// Units per stack chunk of a row's mask.
constexpr index_t kMaskChunk = 512;

// Zoneout's mask of one row: keep[j - u0] = 1 where unit j in [u0,u1) keeps its previous
// value, unit_bits(key, j) < threshold (threshold32(z)); the hash's argument stepped by
// addition, all in 32-bit lanes.
RNNCORE_INLINE void keep_row(std::uint8_t* keep, std::uint32_t key, std::uint64_t threshold, index_t u0, index_t u1) {
  if (threshold > 0xffffffffULL) {
    for (index_t j = u0; j < u1; ++j) keep[j - u0] = 1;
    return;
  }
  const std::uint32_t limit = static_cast<std::uint32_t>(threshold);
  std::uint32_t v = key + (static_cast<std::uint32_t>(u0) + 1U) * kGolden32;
  for (index_t j = u0; j < u1; ++j, v += kGolden32) keep[j - u0] = fmix32(v) < limit;
}

// The rows' loops, per instruction set (RNNCORE_CLONES); each row's mask is hashed into a
// stack chunk, then applied.
template <typename scalar_t>
RNNCORE_CLONES void forward_rows(scalar_t* next, scalar_t* unmixed, const scalar_t* prev, const Regularise& r,
                                 int k, index_t t, index_t b0, index_t rows, index_t H, index_t u0, index_t u1) {
  const scalar_t z = scalar_t(r.zoneout), keep_new = scalar_t(1) - z;
  const std::uint64_t threshold = threshold32(r.zoneout);
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
    const std::uint32_t key = row_key(r.seed, zoneout_stream(k), r.t0 + t, b0 + b);
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
  const std::uint64_t threshold = threshold32(r.zoneout);
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
    const std::uint32_t key = row_key(r.seed, zoneout_stream(k), r.t0 + t, b0 + b);
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

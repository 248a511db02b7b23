// The regularisers the driver applies around a cell's maths (loop.h), the same for every
// cell: zoneout on the states and variational dropout on the recurrent input.
//
// Zoneout (Krueger et al. 2017, "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
// Activations"; haste's semantics): after the cell computes its new states s~_t, each
// unit of each state keeps its previous value with probability z:
//   s_t = m * s_{t-1} + (1 - m) * s~_t,      m ~ Bernoulli(z) per (t, b, unit), per state
// and y_t = h_t. Without masks (evaluation) m is z itself, the expectation. Backward: the
// gradient reaching s_t goes (1 - m) to the cell (as if it reached s~_t) and m straight
// to s_{t-1}. The cell's backward reads the un-mixed s~_t of the states it reads
// (CellSpec::step_reads_next), which forward writes to the `unmixed` buffers.
//
// Variational recurrent dropout (Gal & Ghahramani 2016, "A Theoretically Grounded
// Application of Dropout in Recurrent Neural Networks"; Keras's recurrent_dropout): one
// mask per sequence, the same at every step, on the state entering the recurrence:
//   hin_{t-1} = h_{t-1} * M,     M = Bernoulli(1 - p) / (1 - p) per (b, unit)
// The cells multiply hin where they multiply h_{t-1} by w_hh (GRU Cho: r * hin enters
// w_hn); their other uses of h_{t-1} (GRU's z * h_{t-1}) stay unmasked. Backward: the
// cells add the gradient of hin into dh_in, the driver adds dh_in * M into dh_{t-1}, and
// dw_hh is taken against hin.
//
// The masks are a counter-based hash of (seed, stream, t, b, unit), so forward and
// backward (and the reference, src/rnncore/reference/common.py, line for line) draw the
// same ones with nothing stored: a row's key is splitmix64 of (seed, stream, t, b), each
// unit's 32 bits murmur3's 32-bit finaliser of that key folded to 32 bits plus (j + 1)
// times the golden ratio, which vectorises 8 units to an AVX2 register. t is absolute
// (Regularise::t0 plus the step's index), so a sequence run in segments draws the masks
// of the whole. Each mask is as wide as what it masks (Cell::out_width: the LSTMP's h and
// M are P units, its c H).
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/common.h"

namespace rnncore {

// What the driver applies; all zero: nothing (the plain loop, no extra pass).
struct Regularise {
  double zoneout = 0;            // z in [0,1]: probability of keeping each unit's previous state
  bool zoneout_masks = true;     // false: mix with z itself (evaluation), no masks
  double recurrent_dropout = 0;  // p in [0,1]
  std::uint64_t seed = 0;        // the masks' seed (one per call and direction)
  index_t t0 = 0;                // absolute time of step 0
  bool zoneout_on() const { return zoneout > 0; }
  bool dropout_on() const { return recurrent_dropout > 0; }
};

namespace regularise {

// Streams of the hash: the dropout mask, then zoneout's mask of each state k.
constexpr std::uint64_t kDropoutStream = 0;
inline std::uint64_t zoneout_stream(int k) { return 1 + static_cast<std::uint64_t>(k); }

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// splitmix64's finaliser (Steele et al. 2014): a bijection with full avalanche.
inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
inline std::uint64_t next(std::uint64_t key, std::uint64_t v) { return mix(key + (v + 1) * kGolden); }

// The key of a row's masks at time t, folded to the 32 bits the units' hash starts from.
inline std::uint32_t row_key(std::uint64_t seed, std::uint64_t stream, index_t t, index_t b) {
  const std::uint64_t k =
      next(next(next(seed, stream), static_cast<std::uint64_t>(t)), static_cast<std::uint64_t>(b));
  return static_cast<std::uint32_t>(k ^ (k >> 32));
}
// murmur3's 32-bit finaliser (a bijection with full avalanche).
inline std::uint32_t fmix32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bU;
  x ^= x >> 13;
  x *= 0xc2b2ae35U;
  return x ^ (x >> 16);
}
constexpr std::uint32_t kGolden32 = 0x9e3779b9U;
// Unit j's 32 bits; its uniform is bits * 2^-32, in [0,1).
inline std::uint32_t unit_bits(std::uint32_t key, index_t j) {
  return fmix32(key + (static_cast<std::uint32_t>(j) + 1U) * kGolden32);
}
// uniform < q, tested in integers: bits < ceil(q 2^32) (q 2^32 is exact); a threshold of
// 2^32 or more keeps every unit.
inline std::uint64_t threshold32(double q) {
  return q >= 1 ? (std::uint64_t(1) << 32) : static_cast<std::uint64_t>(std::ceil(q * 0x1.0p32));
}

// M [B,H] rows [0,B), units [u0,u1): 1/(1-p) where the unit is kept (uniform >= p), else 0.
template <typename scalar_t>
void dropout_mask(scalar_t* M, const Regularise& r, index_t B, index_t H, index_t u0, index_t u1) {
  const scalar_t scale = r.recurrent_dropout < 1 ? scalar_t(1.0 / (1.0 - r.recurrent_dropout)) : scalar_t(0);
  const std::uint64_t drop = threshold32(r.recurrent_dropout);
  for (index_t b = 0; b < B; ++b) {
    const std::uint32_t key = row_key(r.seed, kDropoutStream, 0, b);
    for (index_t j = u0; j < u1; ++j) M[b * H + j] = unit_bits(key, j) >= drop ? scale : scalar_t(0);
  }
}

// hin = h * M on rows [0,rows) (M at row b0 on), units [u0,u1).
template <typename scalar_t>
void mask_rows(scalar_t* hin, const scalar_t* h, const scalar_t* M, index_t rows, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < rows; ++b)
    for (index_t j = u0; j < u1; ++j) hin[b * H + j] = h[b * H + j] * M[b * H + j];
}

// Zoneout's forward on one state, rows [0,rows) (absolute rows b0...), units [u0,u1):
// next holds s~_t and becomes s_t; unmixed, if given, keeps s~_t.
template <typename scalar_t>
void zoneout_forward(scalar_t* next, scalar_t* unmixed, const scalar_t* prev, const Regularise& r, int k, index_t t,
                     index_t b0, index_t rows, index_t H, index_t u0, index_t u1);

// Zoneout's backward on one state's gradient g reaching s_t (plus dy, if given): the
// cell's share (1-m) g into cell, the share m g that goes straight to s_{t-1} into keep.
// cell may be g itself (in place). Both in regularise.cpp, vectorised.
template <typename scalar_t>
void zoneout_split(scalar_t* cell, scalar_t* keep, const scalar_t* g, const scalar_t* dy, const Regularise& r, int k,
                   index_t t, index_t b0, index_t rows, index_t H, index_t u0, index_t u1);

// d[b, u0:u1] += a[b, u0:u1] (* M[b, u0:u1] if M), rows [0,rows).
template <typename scalar_t>
void add_rows(scalar_t* d, const scalar_t* a, const scalar_t* M, index_t rows, index_t H, index_t u0, index_t u1) {
  for (index_t b = 0; b < rows; ++b)
    for (index_t j = u0; j < u1; ++j) d[b * H + j] += M ? a[b * H + j] * M[b * H + j] : a[b * H + j];
}

}  // namespace regularise
}  // namespace rnncore

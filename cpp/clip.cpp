#include "clip.h"

#include "activations.h"

namespace rnncore {

template <typename scalar_t>
RNNCORE_CLONES double sum_of_squares(const scalar_t* x, index_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // independent chains for the vector units
  index_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += static_cast<double>(x[i]) * x[i];
    s1 += static_cast<double>(x[i + 1]) * x[i + 1];
    s2 += static_cast<double>(x[i + 2]) * x[i + 2];
    s3 += static_cast<double>(x[i + 3]) * x[i + 3];
  }
  for (; i < n; ++i) s0 += static_cast<double>(x[i]) * x[i];
  return (s0 + s1) + (s2 + s3);
}

template <typename scalar_t>
RNNCORE_CLONES void scale_in_place(scalar_t* x, index_t n, scalar_t factor) {
  for (index_t i = 0; i < n; ++i) x[i] *= factor;
}

template <typename scalar_t>
RNNCORE_CLONES void clip_in_place(scalar_t* x, index_t n, scalar_t clip) {
  for (index_t i = 0; i < n; ++i) {
    scalar_t v = x[i];
    v = v > clip ? clip : v;
    v = v < -clip ? -clip : v;
    x[i] = v;
  }
}

template double sum_of_squares<float>(const float*, index_t);
template double sum_of_squares<double>(const double*, index_t);
template void scale_in_place<float>(float*, index_t, float);
template void scale_in_place<double>(double*, index_t, double);
template void clip_in_place<float>(float*, index_t, float);
template void clip_in_place<double>(double*, index_t, double);

}  // namespace rnncore

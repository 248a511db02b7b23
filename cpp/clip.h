// Gradient clipping over every gradient array of a model in one call.
//
// By global norm (Pascanu et al. 2013, algorithm 1): g <- g * max_norm / ||g|| when the
// norm of all gradients together exceeds max_norm. By value: each element clipped to
// [-clip, clip]. NaN stays NaN in both.
#pragma once

#include "common.h"

namespace rnncore {

// Sum of squares of x [n], accumulated in double.
template <typename scalar_t>
double sum_of_squares(const scalar_t* x, index_t n);

// x [n] in/out: x *= factor.
template <typename scalar_t>
void scale_in_place(scalar_t* x, index_t n, scalar_t factor);

// x [n] in/out: each element clipped to [-clip, clip]; NaN passes through.
template <typename scalar_t>
void clip_in_place(scalar_t* x, index_t n, scalar_t clip);

}  // namespace rnncore

// Softmax cross-entropy over the rows of a logits matrix (the output layer of a
// language model: one row per time step and sequence, V classes).
//
//   p[n]     = softmax(logits[n])                         (max subtracted first)
//   loss[n]  = -log p[n][targets[n]] = logsumexp(logits[n]) - logits[n][targets[n]]
//   dlogits[n] = scale * (p[n] - onehot(targets[n]))
//
// Rows whose target equals ignore_index have loss 0 and a zero gradient. Targets must
// be in [0, V) or equal ignore_index (checked by the caller). Rows are split across the
// thread pool when there are enough of them.
#pragma once

#include "runtime/common.h"

namespace rnncore {

// loss:    [N] out; per-row loss, 0 for ignored rows.
// probs:   [N,V] out; softmax of each row. May alias logits (computed in place).
// logits:  [N,V] in.
// targets: [N] in; class index per row.
template <typename scalar_t>
void softmax_xent_forward(scalar_t* loss, scalar_t* probs, const scalar_t* logits, const std::int64_t* targets,
                          std::int64_t ignore_index, index_t N, index_t V);

// dlogits: [N,V] out; written (not added). May alias probs.
// probs:   [N,V] in; from softmax_xent_forward.
// targets: [N] in.
template <typename scalar_t>
void softmax_xent_backward(scalar_t* dlogits, const scalar_t* probs, const std::int64_t* targets,
                           std::int64_t ignore_index, scalar_t scale, index_t N, index_t V);

}  // namespace rnncore

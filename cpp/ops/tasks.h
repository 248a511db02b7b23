// How the ops (linear, embedding, losses, optimizers, clipping) spread over the pool.
#pragma once

#include <algorithm>

#include "runtime/parallel.h"
#include "runtime/parallel_gemm.h"

namespace rnncore {
namespace ops {

// Threads for a call doing `work` multiply-adds (or elementwise updates): the pool when
// the work covers the cost of waking it (parallel_threshold), else the caller alone.
inline int threads_for(index_t work) { return work >= parallel_threshold() ? num_threads() : 1; }

// Runs fn(task) for every task in [0, tasks) on up to nt threads of the pool, tasks
// claimed dynamically (a thread that lost its core delays only what it has claimed).
// BLAS inside stays single-threaded.
template <typename Fn>
void run_tasks(int nt, index_t tasks, Fn&& fn) {
  if (tasks <= 0) return;
  single_threaded_blas();
  if (nt <= 1 || tasks == 1) {
    for (index_t k = 0; k < tasks; ++k) fn(k);
    return;
  }
  const int n = static_cast<int>(std::min<index_t>(tasks, index_t(1) << 30));
  run_phased(nt, 1, n, [&](index_t, int k) { fn(k); });
}

// Elementwise passes over long buffers are cut into chunks of this many elements: small
// enough that two threads balance, large enough that claiming one costs nothing. The
// partition does not depend on the thread count, so neither do sums over chunks.
constexpr index_t kChunk = 16384;

inline index_t chunks_of(index_t n) { return (n + kChunk - 1) / kChunk; }

// Calls fn(k, begin, end) for each array k of a TensorList (clip.h) that overlaps chunk
// `chunk` of the arrays' elements back to back, with [begin, end) the part of array k in
// it (offsets within array k).
template <typename List, typename Fn>
void for_each_span(const List& list, index_t chunk, Fn&& fn) {
  const index_t lo = chunk * kChunk, hi = std::min(lo + kChunk, list.total());
  // the first array whose end lies beyond lo
  index_t k = std::upper_bound(list.offset, list.offset + list.count + 1, lo) - list.offset - 1;
  for (; k < list.count && list.offset[k] < hi; ++k) {
    const index_t b = std::max(lo, list.offset[k]) - list.offset[k];
    const index_t e = std::min(hi, list.offset[k + 1]) - list.offset[k];
    if (e > b) fn(k, b, e);
  }
}

}  // namespace ops
}  // namespace rnncore

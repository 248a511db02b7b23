// Threads for the kernels: a small persistent pool and a barrier.
//
// Design, from measurements on a 2-core machine: a threaded BLAS call per time step
// collapses when another process holds a core, and gains little on small steps. So
// every BLAS call inside rnncore is single-threaded, and rnncore splits the work itself:
// a sequence kernel runs its whole time loop on each of n threads, each thread owning
// a fixed slice of the hidden units (its columns of every gate), with one barrier per
// step. The hoisted GEMMs before and after the loop are split the same way. The split
// depends only on the thread count, so results are bitwise reproducible at a given
// count.
#pragma once

#include <atomic>
#include <functional>

#include "common.h"

namespace rnncore {

// Threads a kernel call uses (default: the CPUs this process may run on).
int num_threads();
void set_num_threads(int n);

// Work per time step (B*G*H*H multiply-adds) below which a sequence kernel stays on
// one thread: a barrier costs about a microsecond. Tests lower it to 0 to exercise the
// threaded paths on small shapes.
index_t parallel_threshold();
void set_parallel_threshold(index_t work);

// Runs fn(tid) for tid = 0..n-1 concurrently and returns when all have. The calling
// thread runs tid 0. If the pool is busy (another Python thread is inside a kernel),
// this call gets temporary threads of its own: same split, same results.
void parallel_run(int n, const std::function<void(int)>& fn);

// Reusable barrier for n threads: spins briefly, then yields the CPU (so that it
// degrades gracefully when the machine is oversubscribed).
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait();

 private:
  const int n_;
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<int> generation_{0};
};

// The slice [begin, end) of n items that thread tid of nt owns, in whole blocks of
// `align` items (the last thread takes the remainder).
struct Range {
  index_t begin, end;
};
Range split(index_t n, int tid, int nt, index_t align);

}  // namespace rnncore

// Threads for the kernels: a small persistent pool and a barrier.
//
// Design, from measurements on a 2-core machine: a threaded BLAS call per time step
// collapses when another thread pool holds a core (NumPy's OpenBLAS and PyTorch's
// OpenMP workers spin for milliseconds after each call), and gains little on small
// steps. So every BLAS call inside rnncore is single-threaded, and rnncore splits the
// work itself into a fixed partition: a sequence kernel is a chain of phases (packing
// and the input projection, then each time step, then the weight gradients), each
// phase a fixed set of tasks (a slice of the hidden units, or of the rows of a GEMM).
//
// Threads claim tasks dynamically (run_phased): a phase starts when every task of the
// previous one has finished. A thread that the OS has taken away only delays the
// tasks it has already claimed; the others are done by whoever is running, so an
// oversubscribed machine degrades to one thread's speed instead of collapsing. The
// partition depends only on the configured thread count, never on which thread runs a
// task, so results are bitwise reproducible at a given count.
#pragma once

#include <functional>

#include "runtime/common.h"

namespace rnncore {

// Threads a kernel call uses (default: the CPUs this process may run on, at most
// kMaxThreads; workspaces with per-task parts are sized for that many).
constexpr int kMaxThreads = 64;
int num_threads();
void set_num_threads(int n);

// Work per time step (B*G*H*H multiply-adds) below which a sequence kernel stays on
// one thread: a barrier costs about a microsecond. Tests lower it to 0 to exercise the
// threaded paths on small shapes.
index_t parallel_threshold();
// Since load: threaded kernel calls, and how many of them finished on the calling thread
// alone because the workers had lost their cores.
void parallel_stats(index_t* calls, index_t* solo);
void set_parallel_threshold(index_t work);

// Runs fn(tid) for tid = 0..n-1 concurrently and returns when all have. The calling
// thread runs tid 0. If the pool is busy (another Python thread is inside a kernel),
// this call gets temporary threads of its own: same split, same results.
void parallel_run(int n, const std::function<void(int)>& fn);

// Runs fn(phase, task) for every phase in [0, phases) and task in [0, tasks) on up to
// nt threads (the caller included): every task of a phase finishes before any task of
// the next phase starts.
void run_phased(int nt, index_t phases, int tasks, const std::function<void(index_t, int)>& fn);

// The slice [begin, end) of n items that thread tid of nt owns, in whole blocks of
// `align` items (the last thread takes the remainder).
struct Range {
  index_t begin, end;
};
Range split(index_t n, int tid, int nt, index_t align);

}  // namespace rnncore

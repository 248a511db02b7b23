#include "parallel.h"

#include <sched.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define RNNCORE_PAUSE() _mm_pause()
#else
#define RNNCORE_PAUSE() ((void)0)
#endif

namespace rnncore {

namespace {

int default_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

std::atomic<int> g_threads{0};
std::atomic<index_t> g_threshold{index_t(1) << 17};

// Workers wait for a new generation: spin for a short while (back-to-back kernel calls
// from Python arrive within tens of microseconds), then sleep on a condition variable.
class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  std::mutex busy;  // held by the caller that owns the pool for one parallel_run

  void run(int n, const std::function<void(int)>& fn) {
    grow(n - 1);
    job_ = &fn;
    active_ = n - 1;
    pending_.store(n - 1);
    errors_.assign(n, nullptr);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    try {
      fn(0);
    } catch (...) {
      errors_[0] = std::current_exception();
    }
    for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
      if (i < 4000) RNNCORE_PAUSE(); else std::this_thread::yield();
    }
    for (auto& e : errors_)
      if (e) std::rethrow_exception(e);
  }

 private:
  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      const int tid = static_cast<int>(workers_.size()) + 1;
      // the generation before this run's announcement: a worker that starts late must
      // still see that announcement as new
      const int seen = generation_.load();
      workers_.emplace_back([this, tid, seen] { loop(tid, seen); });
    }
  }

  void loop(int tid, int seen) {
    for (;;) {
      for (int i = 0; generation_.load(std::memory_order_acquire) == seen; ++i) {
        if (i < 20000) {
          RNNCORE_PAUSE();
        } else {
          std::unique_lock<std::mutex> lock(mutex_);
          wake_.wait(lock, [&] { return generation_.load() != seen; });
        }
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      if (tid <= active_) {
        try {
          (*job_)(tid);
        } catch (...) {
          errors_[tid] = std::current_exception();
        }
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int)>* job_ = nullptr;
  int active_ = 0;
  bool stop_ = false;
  std::vector<std::exception_ptr> errors_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(n < 1 ? 1 : n, std::memory_order_relaxed); }

index_t parallel_threshold() { return g_threshold.load(std::memory_order_relaxed); }
void set_parallel_threshold(index_t work) { g_threshold.store(work < 0 ? 0 : work, std::memory_order_relaxed); }

void parallel_run(int n, const std::function<void(int)>& fn) {
  if (n <= 1) {
    fn(0);
    return;
  }
  Pool& p = pool();
  std::unique_lock<std::mutex> lock(p.busy, std::try_to_lock);
  if (lock.owns_lock()) {
    p.run(n, fn);
    return;
  }
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::thread> threads;
  for (int tid = 1; tid < n; ++tid)
    threads.emplace_back([&, tid] {
      try {
        fn(tid);
      } catch (...) {
        errors[tid] = std::current_exception();
      }
    });
  try {
    fn(0);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

void Barrier::wait() {
  if (n_ <= 1) return;
  const int gen = generation_.load(std::memory_order_acquire);
  if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    count_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    return;
  }
  for (int i = 0; generation_.load(std::memory_order_acquire) == gen; ++i) {
    if (i < 4000) RNNCORE_PAUSE(); else std::this_thread::yield();
  }
}

Range split(index_t n, int tid, int nt, index_t align) {
  const index_t blocks = (n + align - 1) / align;
  const index_t per = blocks / nt, extra = blocks % nt;
  const index_t b0 = tid * per + (tid < extra ? tid : extra);
  const index_t b1 = b0 + per + (tid < extra ? 1 : 0);
  Range r{b0 * align, b1 * align};
  if (r.begin > n) r.begin = n;
  if (r.end > n) r.end = n;
  return r;
}

}  // namespace rnncore

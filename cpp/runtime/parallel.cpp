#include "runtime/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <atomic>
#include <chrono>
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
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return n < 1 ? 1 : n > kMaxThreads ? kMaxThreads : n;
}

std::atomic<int> g_threads{0};
std::atomic<index_t> g_threshold{index_t(1) << 17};
std::atomic<index_t> g_parallel_calls{0}, g_solo_calls{0};  // statistics: run_phased calls, and those finished alone

// Workers wait for a new generation: spin for a short while (back-to-back kernel calls
// from Python arrive within tens of microseconds), then sleep on a condition variable.
// The caller never waits for a worker that has not started: when its own share is done
// it closes the job, and only workers already inside are waited for (a worker the OS
// has not scheduled yet would otherwise hold up the call for a whole time slice).
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

  // CPU time (ns) the workers that may take part in the current run have used so far;
  // it stops advancing while the OS has them off their cores.
  index_t workers_cpu_ns() {
    index_t total = 0;
    for (int i = 0; i < limit_ && i < static_cast<int>(clocks_.size()); ++i) {
      timespec ts;
      if (clock_gettime(clocks_[i], &ts) != 0) return -1;
      total += static_cast<index_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    }
    return total;
  }

  void run(int n, const std::function<void(int)>& fn) {
    grow(n - 1);
    job_ = &fn;
    limit_ = n - 1;
    error_ = nullptr;
    closed_.store(false);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    std::exception_ptr own;
    try {
      fn(0);
    } catch (...) {
      own = std::current_exception();
    }
    closed_.store(true);  // seq_cst with the workers' increment of inside_ (Dekker)
    for (int i = 0; inside_.load() != 0; ++i) {
      if (i < 4000) RNNCORE_PAUSE(); else std::this_thread::yield();
    }
    if (own) std::rethrow_exception(own);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      const int tid = static_cast<int>(workers_.size()) + 1;
      const int seen = generation_.load();  // a worker that starts late still sees this run as new
      workers_.emplace_back([this, tid, seen] { loop(tid, seen); });
      clockid_t clock;
      if (pthread_getcpuclockid(workers_.back().native_handle(), &clock) != 0) clock = CLOCK_MONOTONIC;
      clocks_.push_back(clock);
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
      seen = generation_.load();
      if (stop_) return;
      inside_.fetch_add(1);
      if (!closed_.load() && tid <= limit_) {
        try {
          (*job_)(tid);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex_);
          error_ = std::current_exception();
        }
      }
      inside_.fetch_sub(1);
    }
  }

  std::vector<std::thread> workers_;
  std::vector<clockid_t> clocks_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> generation_{0};
  std::atomic<int> inside_{0};
  std::atomic<bool> closed_{true};
  const std::function<void(int)>* job_ = nullptr;
  int limit_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

thread_local bool t_owns_pool = false;  // this thread is inside a parallel_run on the pool

// The pool workers' CPU time while this thread runs a job on them, else -1.
index_t workers_cpu_ns() { return t_owns_pool ? pool().workers_cpu_ns() : -1; }

}  // namespace

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(n < 1 ? 1 : n > kMaxThreads ? kMaxThreads : n, std::memory_order_relaxed); }

void parallel_stats(index_t* calls, index_t* solo) {
  *calls = g_parallel_calls.load();
  *solo = g_solo_calls.load();
}

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
    t_owns_pool = true;
    try {
      p.run(n, fn);
    } catch (...) {
      t_owns_pool = false;
      throw;
    }
    t_owns_pool = false;
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

void run_phased(int nt, index_t phases, int tasks, const std::function<void(index_t, int)>& fn) {
  if (phases <= 0 || tasks <= 0) return;
  if (nt <= 1 || tasks == 1) {
    for (index_t k = 0; k < phases; ++k)
      for (int p = 0; p < tasks; ++p) fn(k, p);
    return;
  }
  using clock = std::chrono::steady_clock;
  const index_t total = phases * tasks;
  alignas(64) std::atomic<index_t> claimed{0};
  alignas(64) std::atomic<index_t> done{0};
  alignas(64) std::atomic<bool> solo{false};
  g_parallel_calls.fetch_add(1, std::memory_order_relaxed);
  parallel_run(nt, [&](int tid) {
    const bool caller = tid == 0;
    clock::duration worked{}, waited{};  // the caller's own tasks, and its waits on others'
    bool counted_solo = false;
    for (;;) {
      if (!caller && solo.load(std::memory_order_relaxed)) return;
      index_t k = claimed.load(std::memory_order_acquire);
      if (k >= total) return;
      // claim only tasks whose phase may start, so that a claimed task runs at once
      const index_t ready = (k / tasks) * tasks;
      if (done.load(std::memory_order_acquire) < ready) {
        const clock::time_point start = caller ? clock::now() : clock::time_point{};
        clock::time_point since{};
        index_t cpu_since = -1;
        for (int i = 0; done.load(std::memory_order_acquire) < ready; ++i) {
          if (i < 4000) {
            RNNCORE_PAUSE();
            continue;
          }
          std::this_thread::yield();
          if (!caller || solo.load(std::memory_order_relaxed) || (i & 63) != 0) continue;
          // Waiting on a task a worker holds. If the workers have had less than a quarter
          // of a CPU over the last half millisecond, the OS has given their cores to
          // another process: finish the call alone instead of stalling at every phase.
          const clock::time_point now = clock::now();
          const index_t cpu = workers_cpu_ns();
          if (cpu < 0) continue;
          if (cpu_since < 0) {
            since = now;
            cpu_since = cpu;
          } else if (now - since > std::chrono::microseconds(500)) {
            const index_t wall = std::chrono::duration_cast<std::chrono::nanoseconds>(now - since).count();
            if ((cpu - cpu_since) * 4 < wall) solo.store(true, std::memory_order_relaxed);
            since = now;
            cpu_since = cpu;
          }
        }
        if (caller) {
          // Workers sharing their cores with another busy thread pool run slower than
          // the caller; once the caller has waited on them longer than it has worked,
          // doing their share itself is no slower, and immune to their stalls.
          waited += clock::now() - start;
          if (waited > worked + std::chrono::microseconds(200)) solo.store(true, std::memory_order_relaxed);
        }
        continue;
      }
      if (!claimed.compare_exchange_weak(k, k + 1, std::memory_order_acq_rel)) continue;
      const clock::time_point start = caller ? clock::now() : clock::time_point{};
      if (caller && solo.load(std::memory_order_relaxed) && !counted_solo) {
        counted_solo = true;
        g_solo_calls.fetch_add(1, std::memory_order_relaxed);
      }
      fn(k / tasks, static_cast<int>(k % tasks));
      if (caller) worked += clock::now() - start;
      done.fetch_add(1, std::memory_order_acq_rel);
    }
  });
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

// Threading stress test of the kernel library, without Python, for ThreadSanitizer.
//
// Every sequence kernel (Elman tanh/relu/sigmoid, LSTM with and without peepholes, GRU
// both variants), forward then backward, in float and double, over shapes that take
// each split of the work (by hidden units when B is small, by rows when B is large),
// with and without lengths, in both directions. Checked:
//   - with the threaded paths forced on (threshold 0), a call gives the same bits as
//     the same call made earlier (the partition does not depend on which thread runs
//     a task);
//   - two application threads calling kernels at once (the second one finds the pool
//     busy and gets temporary threads) each get exactly the bits of their serial run.
// Exit status 0 when everything matches; ThreadSanitizer reports races on its own.
//
// Built by CMake with -DRNNCORE_STRESS=ON (see CMakeLists.txt); .ci/run builds it with
// -fsanitize=thread -DRNNCORE_NO_CLONES and runs it.

#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "elman.h"
#include "gru.h"
#include "lstm.h"
#include "parallel.h"

namespace {

using rnncore::index_t;

struct Shape {
  index_t T, B, I, H;
};

template <typename scalar_t>
std::vector<scalar_t> random_vector(std::size_t n, std::mt19937_64& rng, double scale = 0.5) {
  std::uniform_real_distribution<double> dist(-scale, scale);
  std::vector<scalar_t> v(n);
  for (auto& e : v) e = static_cast<scalar_t>(dist(rng));
  return v;
}

template <typename scalar_t>
void append(std::vector<double>& out, const std::vector<scalar_t>& v) {
  out.insert(out.end(), v.begin(), v.end());
}

// One problem: kind 0-2 Elman (tanh, relu, sigmoid), 3 LSTM, 4 LSTM with peepholes,
// 5 GRU (reset after), 6 GRU (reset before). Returns every output of forward and
// backward, concatenated.
template <typename scalar_t>
std::vector<double> run_problem(int kind, const Shape& s, bool with_lengths, bool reverse, unsigned seed) {
  const index_t T = s.T, B = s.B, I = s.I, H = s.H;
  const index_t G = kind <= 2 ? 1 : kind <= 4 ? 4 : 3;
  std::mt19937_64 rng(seed);
  auto x = random_vector<scalar_t>(T * B * I, rng);
  auto h0 = random_vector<scalar_t>(B * H, rng);
  auto c0 = random_vector<scalar_t>(B * H, rng);
  auto w_ih = random_vector<scalar_t>(G * H * I, rng);
  auto w_hh = random_vector<scalar_t>(G * H * H, rng);
  auto b_ih = random_vector<scalar_t>(G * H, rng);
  auto b_hh = random_vector<scalar_t>(G * H, rng);
  auto w_ch = random_vector<scalar_t>(3 * H, rng);
  auto dy = random_vector<scalar_t>(T * B * H, rng, 1.0);
  auto dh_n = random_vector<scalar_t>(B * H, rng, 1.0);
  std::vector<index_t> lengths(B);
  for (index_t b = 0; b < B; ++b) lengths[b] = static_cast<index_t>(rng() % (T + 1));
  const index_t* len = with_lengths ? lengths.data() : nullptr;

  std::vector<scalar_t> y(T * B * H), h((T + 1) * B * H), c((T + 1) * B * H), gates(T * B * G * H),
      hn(T * B * H), dx(T * B * I), dh0(B * H), dc0(B * H), dw_ih(G * H * I), dw_hh(G * H * H),
      db_ih(G * H), db_hh(G * H), dw_ch(3 * H);
  std::vector<double> out;
  if (kind <= 2) {
    const auto act = static_cast<rnncore::Activation>(kind);
    std::vector<scalar_t> ws(rnncore::elman_forward_workspace_size<scalar_t>(B, H));
    rnncore::elman_forward<scalar_t>(y.data(), h.data(), x.data(), h0.data(), w_ih.data(), w_hh.data(), b_ih.data(),
                           b_hh.data(), act, len, reverse, T, B, I, H, ws.data());
    ws.assign(rnncore::elman_backward_workspace_size<scalar_t>(T, B, H), 0);
    rnncore::elman_backward<scalar_t>(dx.data(), dh0.data(), dw_ih.data(), dw_hh.data(), db_ih.data(), db_hh.data(),
                            dy.data(), dh_n.data(), x.data(), h.data(), w_ih.data(), w_hh.data(), act, len,
                            reverse, T, B, I, H, ws.data());
  } else if (kind <= 4) {
    const scalar_t* peep = kind == 4 ? w_ch.data() : nullptr;
    std::vector<scalar_t> ws(rnncore::lstm_forward_workspace_size<scalar_t>(B, H));
    rnncore::lstm_forward<scalar_t>(y.data(), h.data(), c.data(), gates.data(), x.data(), h0.data(), c0.data(), w_ih.data(),
                          w_hh.data(), b_ih.data(), b_hh.data(), peep, len, reverse, T, B, I, H, ws.data());
    ws.assign(rnncore::lstm_backward_workspace_size<scalar_t>(T, B, H, kind == 4), 0);
    rnncore::lstm_backward<scalar_t>(dx.data(), dh0.data(), dc0.data(), dw_ih.data(), dw_hh.data(), db_ih.data(),
                           db_hh.data(), kind == 4 ? dw_ch.data() : nullptr, dy.data(), dh_n.data(), nullptr,
                           x.data(), h.data(), c.data(), gates.data(), w_ih.data(), w_hh.data(), peep, len,
                           reverse, T, B, I, H, ws.data());
  } else {
    const bool reset_after = kind == 5;
    std::vector<scalar_t> ws(rnncore::gru_forward_workspace_size<scalar_t>(B, H, reset_after));
    rnncore::gru_forward<scalar_t>(y.data(), h.data(), gates.data(), hn.data(), x.data(), h0.data(), w_ih.data(),
                         w_hh.data(), b_ih.data(), b_hh.data(), reset_after, len, reverse, T, B, I, H, ws.data());
    ws.assign(rnncore::gru_backward_workspace_size<scalar_t>(T, B, H, reset_after), 0);
    rnncore::gru_backward<scalar_t>(dx.data(), dh0.data(), dw_ih.data(), dw_hh.data(), db_ih.data(), db_hh.data(),
                          dy.data(), dh_n.data(), x.data(), h.data(), gates.data(), hn.data(), w_ih.data(),
                          w_hh.data(), reset_after, len, reverse, T, B, I, H, ws.data());
  }
  for (const auto* v : {&y, &h, &c, &gates, &hn, &dx, &dh0, &dc0, &dw_ih, &dw_hh, &db_ih, &db_hh, &dw_ch}) {
    append(out, *v);
  }
  return out;
}

struct Case {
  int kind;
  Shape shape;
  bool with_lengths, reverse, dbl;
  unsigned seed;
};

std::vector<double> run_case(const Case& k) {
  return k.dbl ? run_problem<double>(k.kind, k.shape, k.with_lengths, k.reverse, k.seed)
               : run_problem<float>(k.kind, k.shape, k.with_lengths, k.reverse, k.seed);
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

int main() {
  rnncore::set_num_threads(2);
  rnncore::set_parallel_threshold(0);

  // B = 1 and 3 split by hidden units; B = 16 and 24 by rows (B >= 4 * threads).
  const Shape shapes[] = {{5, 1, 3, 8}, {6, 3, 5, 16}, {4, 16, 4, 12}, {3, 24, 6, 20}};
  std::vector<Case> cases;
  unsigned seed = 1;
  for (int kind = 0; kind < 7; ++kind)
    for (const auto& s : shapes)
      for (int variant = 0; variant < 4; ++variant)
        cases.push_back({kind, s, (variant & 1) != 0, (variant & 2) != 0, (seed & 1) != 0, seed++});

  std::vector<std::vector<double>> serial;
  serial.reserve(cases.size());
  for (const auto& k : cases) serial.push_back(run_case(k));

  int failures = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    if (!same_bits(run_case(cases[i]), serial[i])) {
      std::printf("repeat differs: case %zu (kind %d)\n", i, cases[i].kind);
      ++failures;
    }
  }

  // Two application threads at once, each through all the cases from its own end, a few
  // rounds so that both meet the pool busy and free in every kind of call.
  std::vector<int> mismatches(2, 0);
  auto worker = [&](int who) {
    for (int round = 0; round < 4; ++round) {
      for (std::size_t j = 0; j < cases.size(); ++j) {
        const std::size_t i = who == 0 ? j : cases.size() - 1 - j;
        if (!same_bits(run_case(cases[i]), serial[i])) ++mismatches[who];
      }
    }
  };
  std::thread other(worker, 1);
  worker(0);
  other.join();
  if (mismatches[0] + mismatches[1]) std::printf("concurrent calls differ: %d\n", mismatches[0] + mismatches[1]);
  failures += mismatches[0] + mismatches[1];

  index_t calls = 0, solo = 0;
  rnncore::parallel_stats(&calls, &solo);
  std::printf("%zu cases, %lld threaded calls (%lld finished solo): %s\n", cases.size(),
              static_cast<long long>(calls), static_cast<long long>(solo), failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

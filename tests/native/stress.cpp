// Threading stress test of the kernel library, without Python, for ThreadSanitizer.
//
// Every cell on the recurrence driver (Elman tanh/relu/sigmoid, LSTM with and without
// peepholes, LSTM with a projection (LSTMP), GRU both variants, IndRNN relu/tanh, the
// layer-normalised LSTM and GRU), forward
// then backward, in float and double, over shapes that take each split of the work (by
// hidden units when B is small, by rows when B is large), with and without lengths, in
// both directions, plain and with the driver's regularisers (zoneout and recurrent
// dropout, whose masks every task hashes for its own rows and units). Checked:
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

#include "cells/elman.h"
#include "cells/gru.h"
#include "cells/indrnn.h"
#include "cells/layer_norm.h"
#include "cells/lstm.h"
#include "runtime/parallel.h"

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

template <typename scalar_t>
bool cell_has_extra(const rnncore::LstmCell<scalar_t>& c) { return c.peephole; }
template <typename scalar_t>
bool cell_has_extra(const rnncore::LstmProjCell<scalar_t>& c) { return c.peephole; }
template <typename scalar_t>
bool cell_has_extra(const rnncore::LstmNormCell<scalar_t>&) { return true; }
template <typename scalar_t>
bool cell_has_extra(const rnncore::GruNormCell<scalar_t>&) { return true; }
template <class Cell>
bool cell_has_extra(const Cell&) { return false; }

// Forward then backward of one cell through the driver's sequence entry points; every
// output concatenated. With regularise, zoneout and recurrent dropout on.
template <class Cell>
std::vector<double> run_cell(const Cell& cell, const Shape& s, bool with_lengths, bool reverse, bool regularise,
                             unsigned seed) {
  using scalar_t = typename Cell::scalar_t;
  constexpr const rnncore::CellSpec& spec = Cell::spec;
  const index_t T = s.T, B = s.B, I = s.I, H = s.H, G = spec.G, P = cell.out_width(H);
  const index_t R = spec.vector_recurrence ? H : G * H * P;
  std::mt19937_64 rng(seed);
  auto x = random_vector<scalar_t>(T * B * I, rng);
  auto h0 = random_vector<scalar_t>(B * P, rng);
  auto c0 = random_vector<scalar_t>(B * H, rng);
  auto w_ih = random_vector<scalar_t>(G * H * I, rng);
  auto w_hh = random_vector<scalar_t>(R, rng);
  auto b_ih = random_vector<scalar_t>(G * H, rng);
  auto b_hh = random_vector<scalar_t>(G * H, rng);
  auto w_e = random_vector<scalar_t>(spec.extra.width * H, rng);
  auto w_hr = random_vector<scalar_t>(P * H, rng);
  auto dy = random_vector<scalar_t>(T * B * P, rng, 1.0);
  auto dh_n = random_vector<scalar_t>(B * P, rng, 1.0);
  std::vector<index_t> lengths(B);
  for (index_t b = 0; b < B; ++b) lengths[b] = static_cast<index_t>(rng() % (T + 1));

  const index_t W0 = spec.saved > 0 ? spec.saved_buffers[0].width : G;
  const index_t W1 = spec.saved > 1 ? spec.saved_buffers[1].width : 1;
  std::vector<scalar_t> y(T * B * P), h((T + 1) * B * P), c((T + 1) * B * H), s0(T * B * W0 * H), s1(T * B * W1 * H),
      dx(T * B * I), dh0(B * P), dc0(B * H), dw_ih(G * H * I), dw_hh(R), db_ih(G * H), db_hh(G * H),
      dw_e(spec.extra.width * H), dw_hr(P * H), u0(T * B * P), u1(T * B * H);
  const bool proj = spec.proj != nullptr;
  const rnncore::Params<scalar_t> p{w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(),
                                    cell_has_extra(cell) ? w_e.data() : nullptr, proj ? w_hr.data() : nullptr};
  rnncore::Regularise reg{};
  if (regularise) {
    reg.zoneout = 0.3;
    reg.recurrent_dropout = 0.25;
    reg.seed = seed;
    reg.t0 = 7;
  }
  rnncore::SequenceForward<scalar_t> f{};
  f.y = y.data();
  f.state[0] = h.data();
  f.state[1] = c.data();
  f.saved[0] = s0.data();
  f.saved[1] = s1.data();
  f.x = x.data();
  f.state0[0] = h0.data();
  f.state0[1] = c0.data();
  f.p = p;
  f.lengths = with_lengths ? lengths.data() : nullptr;
  f.reverse = reverse;
  f.reg = reg;
  f.unmixed[0] = u0.data();
  f.unmixed[1] = u1.data();
  std::vector<scalar_t> ws(rnncore::sequence_forward_workspace(cell, T, B, I, H, reg));
  rnncore::sequence_forward(cell, f, T, B, I, H, ws.data());
  rnncore::SequenceBackward<scalar_t> bk{};
  bk.dx = dx.data();
  bk.dstate0[0] = dh0.data();
  bk.dstate0[1] = dc0.data();
  bk.g = {dw_ih.data(), dw_hh.data(), db_ih.data(), db_hh.data(), p.extra ? dw_e.data() : nullptr,
          proj ? dw_hr.data() : nullptr};
  bk.dy = dy.data();
  bk.dstate_n[0] = dh_n.data();
  bk.x = x.data();
  bk.state[0] = h.data();
  bk.state[1] = c.data();
  bk.saved[0] = s0.data();
  bk.saved[1] = s1.data();
  bk.p = p;
  bk.lengths = f.lengths;
  bk.reverse = reverse;
  bk.reg = reg;
  bk.unmixed[0] = u0.data();
  bk.unmixed[1] = u1.data();
  ws.assign(rnncore::sequence_backward_workspace(cell, T, B, I, H, reg), 0);
  rnncore::sequence_backward(cell, bk, T, B, I, H, ws.data());
  std::vector<double> out;
  for (const auto* v : {&y, &h, &c, &s0, &s1, &dx, &dh0, &dc0, &dw_ih, &dw_hh, &db_ih, &db_hh, &dw_e, &dw_hr, &u0, &u1})
    append(out, *v);
  return out;
}

// kind 0-2 Elman (tanh, relu, sigmoid), 3 LSTM, 4 LSTM with peepholes, 5 GRU (reset
// after), 6 GRU (reset before), 7-8 IndRNN (relu, tanh), 9 LSTMP (P = H/2, peepholes),
// 10 LSTM and 11 GRU with layer norm.
constexpr int kKinds = 12;
template <typename scalar_t>
std::vector<double> run_problem(int kind, const Shape& s, bool with_lengths, bool reverse, bool reg, unsigned seed) {
  using rnncore::Activation;
  auto run = [&](const auto& cell) { return run_cell(cell, s, with_lengths, reverse, reg, seed); };
  if (kind <= 2) return run(rnncore::ElmanCell<scalar_t>::make(kind, false, 0));
  if (kind <= 4) return run(rnncore::LstmCell<scalar_t>::make(0, kind == 4, 0));
  if (kind <= 6) return run(rnncore::GruCell<scalar_t>::make(kind == 5, false, 0));
  if (kind == 9) return run(rnncore::LstmProjCell<scalar_t>::make(0, true, s.H / 2));
  if (kind == 10) return run(rnncore::LstmNormCell<scalar_t>::make(0, true, 0));
  if (kind == 11) return run(rnncore::GruNormCell<scalar_t>::make(0, true, 0));
  const Activation act = kind == 7 ? Activation::relu : Activation::tanh;
  return run(rnncore::IndrnnCell<scalar_t>::make(static_cast<int>(act), false, 0));
}

struct Case {
  int kind;
  Shape shape;
  bool with_lengths, reverse, dbl, reg;
  unsigned seed;
};

std::vector<double> run_case(const Case& k) {
  return k.dbl ? run_problem<double>(k.kind, k.shape, k.with_lengths, k.reverse, k.reg, k.seed)
               : run_problem<float>(k.kind, k.shape, k.with_lengths, k.reverse, k.reg, k.seed);
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
  // each cell: every shape, with and without lengths, both directions; float or double
  // and the regularisers on or off by the seed (regularised: one case with lengths, one
  // reversed, per cell and shape)
  for (int kind = 0; kind < kKinds; ++kind)
    for (const auto& s : shapes)
      for (int variant = 0; variant < 4; ++variant, ++seed)
        cases.push_back({kind, s, (variant & 1) != 0, (variant & 2) != 0, (seed & 1) != 0, (seed & 2) != 0, seed});

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

#include "ops/generate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include <type_traits>

#include "cells/elman.h"
#include "cells/gru.h"
#include "cells/indrnn.h"
#include "cells/lstm.h"
#include "ops/linear.h"

namespace rnncore {

template <typename scalar_t>
index_t sample_logits(const scalar_t* logits, index_t V, double temperature, double u) {
  if (V <= 0) return -1;
  if (temperature == 0) {
    index_t best = 0;
    for (index_t v = 0; v < V; ++v) {
      if (std::isnan(logits[v])) return v;
      if (logits[v] > logits[best]) best = v;
    }
    return best;
  }
  double zmax = -INFINITY;
  for (index_t v = 0; v < V; ++v) {
    const double z = static_cast<double>(logits[v]) / temperature;
    if (std::isnan(z) || z == INFINITY) return -1;
    zmax = z > zmax ? z : zmax;
  }
  if (zmax == -INFINITY) return -1;
  double total = 0;
  for (index_t v = 0; v < V; ++v) total += std::exp(static_cast<double>(logits[v]) / temperature - zmax);
  const double target = u * total;
  double acc = 0;
  for (index_t v = 0; v < V; ++v) {
    acc += std::exp(static_cast<double>(logits[v]) / temperature - zmax);
    if (target < acc) return v;
  }
  for (index_t v = V - 1; v >= 0; --v)  // u rounded up to the total: the last possible index
    if (std::exp(static_cast<double>(logits[v]) / temperature - zmax) > 0) return v;
  return -1;
}

namespace {

// Calls fn(cell) with the driver's cell of a generation layer.
template <typename scalar_t, typename Fn>
decltype(auto) with_cell(const GenLayer<scalar_t>& l, Fn&& fn) {
  switch (l.cell) {
    case GenCell::lstm: return fn(LstmCell<scalar_t>::make(l.option, l.extra != nullptr, l.H));
    case GenCell::gru: return fn(GruCell<scalar_t>::make(l.option, false, l.H));
    case GenCell::indrnn: return fn(IndrnnCell<scalar_t>::make(l.option, false, l.H));
    default: return fn(ElmanCell<scalar_t>::make(l.option, false, l.H));
  }
}

// Elements of the new states and saved buffers of one step of a layer.
template <typename Cell>
index_t step_width(index_t H) {
  index_t w = Cell::spec.states;
  for (int k = 0; k < Cell::spec.saved; ++k) w += Cell::spec.saved_buffers[k].width;
  return w * H;
}

}  // namespace

template <typename scalar_t>
index_t generate_workspace_size(const GenLayer<scalar_t>* layers, index_t L, index_t V) {
  index_t step = 0, width = 0;
  for (index_t k = 0; k < L; ++k)
    with_cell(layers[k], [&](const auto& cell) {
      using Cell = std::decay_t<decltype(cell)>;
      step = std::max(step, step_forward_workspace(cell, 1, layers[k].I, layers[k].H));
      width = std::max(width, step_width<Cell>(layers[k].H));
    });
  const index_t E = L ? layers[0].I : 0;
  return E + width + V + step;
}

template <typename scalar_t>
index_t generate(std::int64_t* out, index_t steps, const scalar_t* embedding, index_t Vin, index_t E,
                 const GenLayer<scalar_t>* layers, index_t L, const scalar_t* head_w, const scalar_t* head_b,
                 index_t V, const scalar_t* logits0, double temperature, const double* uniforms, std::int64_t end,
                 scalar_t* workspace) {
  index_t width = 0;
  for (index_t k = 0; k < L; ++k)
    with_cell(layers[k], [&](const auto& cell) {
      width = std::max(width, step_width<std::decay_t<decltype(cell)>>(layers[k].H));
    });
  scalar_t* x = workspace;              // [E] the embedded id
  scalar_t* scratch = x + E;            // [width] a layer's new states and saved buffers
  scalar_t* logits = scratch + width;   // [V]
  scalar_t* ws = logits + V;            // the step kernels' scratch
  const scalar_t* z = logits0;
  for (index_t n = 0; n < steps; ++n) {
    const index_t id = sample_logits(z, V, temperature, temperature == 0 ? 0.0 : uniforms[n]);
    if (id < 0) return -1 - n;
    out[n] = id;
    if (id == end || n + 1 == steps) return n + 1;
    if (id >= Vin) return -1 - (n + 1);
    std::memcpy(x, embedding + id * E, sizeof(scalar_t) * E);
    const scalar_t* in = x;
    for (index_t k = 0; k < L; ++k) {
      const GenLayer<scalar_t>& l = layers[k];
      with_cell(l, [&](const auto& cell) {
        using Cell = std::decay_t<decltype(cell)>;
        StepForward<scalar_t> a{};
        scalar_t* next = scratch;
        scalar_t* prev[kMaxStates] = {l.h, l.c};
        for (int i = 0; i < Cell::spec.states; ++i, next += l.H) {
          a.state[i] = next;
          a.state_prev[i] = prev[i];
        }
        for (int i = 0; i < Cell::spec.saved; ++i) {
          a.saved[i] = next;
          next += Cell::spec.saved_buffers[i].width * l.H;
        }
        a.x = in;
        a.p = {l.w_ih, l.w_hh, l.b_ih, l.b_hh, l.extra, nullptr};
        step_forward(cell, a, 1, l.I, l.H, ws);
        for (int i = 0; i < Cell::spec.states; ++i) std::memcpy(prev[i], a.state[i], sizeof(scalar_t) * l.H);
      });
      in = l.h;
    }
    linear_forward<scalar_t>(logits, in, head_w, head_b, 1, layers[L - 1].H, V);
    z = logits;
  }
  return steps;
}

template index_t sample_logits<float>(const float*, index_t, double, double);
template index_t sample_logits<double>(const double*, index_t, double, double);
template index_t generate_workspace_size<float>(const GenLayer<float>*, index_t, index_t);
template index_t generate_workspace_size<double>(const GenLayer<double>*, index_t, index_t);
template index_t generate<float>(std::int64_t*, index_t, const float*, index_t, index_t, const GenLayer<float>*,
                                 index_t, const float*, const float*, index_t, const float*, double, const double*,
                                 std::int64_t, float*);
template index_t generate<double>(std::int64_t*, index_t, const double*, index_t, index_t, const GenLayer<double>*,
                                  index_t, const double*, const double*, index_t, const double*, double,
                                  const double*, std::int64_t, double*);

}  // namespace rnncore

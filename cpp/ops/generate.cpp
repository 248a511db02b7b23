#include "generate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "elman.h"
#include "gru.h"
#include "linear.h"
#include "lstm.h"

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

template <typename scalar_t>
index_t gates_of(const GenLayer<scalar_t>& l) {
  return l.cell == GenCell::lstm ? 4 : l.cell == GenCell::gru ? 3 : 1;
}

template <typename scalar_t>
index_t step_workspace(const GenLayer<scalar_t>& l) {
  switch (l.cell) {
    case GenCell::lstm: return lstm_step_forward_workspace_size<scalar_t>(1, l.H);
    case GenCell::gru: return gru_step_forward_workspace_size<scalar_t>(1, l.H, l.reset_after);
    default: return elman_step_forward_workspace_size<scalar_t>(1, l.H);
  }
}

}  // namespace

template <typename scalar_t>
index_t generate_workspace_size(const GenLayer<scalar_t>* layers, index_t L, index_t V) {
  index_t step = 0, width = 0;
  for (index_t k = 0; k < L; ++k) {
    step = std::max(step, step_workspace(layers[k]));
    // new h, new c, gates, the gru's saved term
    width = std::max(width, layers[k].H * (2 + gates_of(layers[k]) + 1));
  }
  index_t E = L ? layers[0].I : 0;
  return E + width + V + step;
}

template <typename scalar_t>
index_t generate(std::int64_t* out, index_t steps, const scalar_t* embedding, index_t Vin, index_t E,
                 const GenLayer<scalar_t>* layers, index_t L, const scalar_t* head_w, const scalar_t* head_b,
                 index_t V, const scalar_t* logits0, double temperature, const double* uniforms, std::int64_t end,
                 scalar_t* workspace) {
  index_t width = 0;
  for (index_t k = 0; k < L; ++k) width = std::max(width, layers[k].H * (2 + gates_of(layers[k]) + 1));
  scalar_t* x = workspace;              // [E] the embedded id
  scalar_t* scratch = x + E;            // [width] a layer's new state and gates
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
      const index_t H = l.H;
      scalar_t* h_new = scratch;
      scalar_t* c_new = h_new + H;
      scalar_t* gates = c_new + H;
      switch (l.cell) {
        case GenCell::lstm:
          lstm_step_forward<scalar_t>(h_new, c_new, gates, in, l.h, l.c, l.w_ih, l.w_hh, l.b_ih, l.b_hh, l.w_ch, 1,
                                      l.I, H, ws);
          std::memcpy(l.c, c_new, sizeof(scalar_t) * H);
          break;
        case GenCell::gru:
          gru_step_forward<scalar_t>(h_new, gates, gates + 3 * H, in, l.h, l.w_ih, l.w_hh, l.b_ih, l.b_hh,
                                     l.reset_after, 1, l.I, H, ws);
          break;
        default:
          elman_step_forward<scalar_t>(h_new, in, l.h, l.w_ih, l.w_hh, l.b_ih, l.b_hh, l.act, 1, l.I, H, ws);
      }
      std::memcpy(l.h, h_new, sizeof(scalar_t) * H);
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

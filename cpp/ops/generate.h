// Sampling from a language model's output, and generation token by token in one call.
//
// sample_logits draws an index from softmax(logits / temperature): with a uniform u in
// [0, 1), the first i whose cumulative probability exceeds u (computed in double, with
// the maximum subtracted first). Temperature 0 takes the argmax (the first maximum; a
// NaN counts as the maximum, as numpy.argmax has it).
//
// generate runs the model that rnncore.generate recognises, Embedding -> recurrent
// layers (one direction each, any cell) -> Linear, for one sequence: each step embeds
// the last sampled id, runs one step of every layer (the cells' step kernels, on the
// thread pool), projects to the logits and samples the next id, until `steps` ids or the
// end id. Nothing is allocated per step and the interpreter is not involved, so a token
// costs what its arithmetic and memory traffic cost.
#pragma once

#include <cstdint>

#include "runtime/activations.h"
#include "runtime/common.h"

namespace rnncore {

// logits: [V] in. u: a uniform draw in [0, 1) (unused at temperature 0). Returns the
// index, or -1 when the logits do not define a distribution (a NaN, +inf, or all -inf).
template <typename scalar_t>
index_t sample_logits(const scalar_t* logits, index_t V, double temperature, double u);

enum class GenCell : int { elman = 0, lstm = 1, gru = 2, indrnn = 3 };

// One recurrent layer (one direction) as generation runs it, batch of one.
template <typename scalar_t>
struct GenLayer {
  GenCell cell;
  int option;           // the cell's option: elman/indrnn an Activation, gru reset_after
  index_t I, H;
  const scalar_t *w_ih, *w_hh, *b_ih, *b_hh;  // the cell's parameters (biases both or neither)
  const scalar_t* extra;                      // lstm peepholes [3H], or nullptr
  scalar_t* h;                                // [H] in/out: the state, carried from step to step
  scalar_t* c;                                // [H] in/out: the lstm's cell state, else unused
};

// Scratch for generate, in elements of scalar_t.
template <typename scalar_t>
index_t generate_workspace_size(const GenLayer<scalar_t>* layers, index_t L, index_t V);

// out: [steps] written: the sampled ids; returns how many (steps, or fewer when `end`
//      was drawn: it is included).
// embedding: [Vin, E] in.   layers: [L] (layers[0].I == E, layers[k].I == layers[k-1].H).
// head_w: [V, H_last] in.  head_b: [V] in or nullptr.
// logits0: [V] in: the logits after the prime, from which the first id is drawn.
// uniforms: [steps] in: one uniform draw per sampled id (unused at temperature 0).
// end: the id that ends generation, or -1.   Vin: rows of the embedding (ids >= Vin
// cannot be embedded: generation stops with a negative return, -1 - count).
// Returns -1 - count if the logits stopped defining a distribution at step `count`.
template <typename scalar_t>
index_t generate(std::int64_t* out, index_t steps, const scalar_t* embedding, index_t Vin, index_t E,
                 const GenLayer<scalar_t>* layers, index_t L, const scalar_t* head_w, const scalar_t* head_b,
                 index_t V, const scalar_t* logits0, double temperature, const double* uniforms, std::int64_t end,
                 scalar_t* workspace);

}  // namespace rnncore

// The recurrence driver: one time loop for every cell.
//
// A cell (cells/*.h) is its pointwise maths plus a few traits: gates per step G, the
// states it carries (h, and c for the LSTM), what forward saves per step beyond them,
// how its recurrent weights are multiplied, and how many parts a step has. Everything
// else is here, written once: the input projection of all steps as one GEMM before the
// loop, packing the recurrent weights once per sequence, the direction, variable
// lengths and padding, the state history, threads, and backward's tail (the
// weight-gradient GEMMs, the bias sums and dx after the loop).
//
// The time loop, as the driver runs it (loop.h), for one direction:
//
//   forward:   pre[t] = x[t] @ w_ih.T + biases             for all t   (one GEMM)
//              for s in 0..T-1:  t = reverse ? T-1-s : s
//                for each part of the step: the cell's recurrent product (rows of
//                h_{t-1} times blocks of w_hh), then its pointwise maths on the rows
//                where t < lengths[b]; padded rows keep their state, output 0
//   backward:  for s in 0..T-1:  t = reverse ? s : T-1-s   (forward's order reversed)
//                for each part: the cell's product, then its pointwise maths; padded
//                rows pass the state gradient through and get zero gate gradients
//              dw_ih += dA.T @ x, dw_hh += (cell's), db += sums of dA (a layer-normalised
//              cell's biases act after its norms: its own per-task sums), dx = dA @ w_ih
//
// Widths: h (state 0), y and their gradients are P = Cell::out_width(H) wide, H but for
// LSTMP (h projected by w_hr [P,H]); every other state is H wide. Below, "[.., H]" of a
// state means its width.
//
// Zoneout and variational recurrent dropout (Regularise, regularise.h) are the driver's
// too, around the cell's maths: the masked h a step's products read (P wide), the mixing
// of the new states with the previous ones (each at its own width, after the part that
// makes it final), and their backward; with both off (all zero) the loop is the plain one
// above.
//
// Layouts are in runtime/common.h. Every call is either a whole sequence of T steps
// (state histories [T+1,B,H]) or a single step (the cells API: separate [B,H] arrays
// for the states read and written, weights read in place, nothing copied): the same
// loop with T = 1 and the states in place of the history slots.
//
// Threads (runtime/parallel.h): a call is a chain of phases (packing and the input
// projection; the time loop; the tail), each a fixed set of tasks, so the results are
// bitwise reproducible at a given thread count. The time loop is split one of three
// ways (Plan in loop.h):
//   rows:          each task runs the whole loop on a slice of the batch (rows are
//                  independent, the packed weights shared read-only): no sync at all;
//   units:         each task runs the whole loop on a slice of the hidden units, for a
//                  cell whose recurrence is elementwise (IndRNN): no sync either;
//   units per step: every part of every step is a phase in which each task owns a
//                  slice of the units (whole packed panels of every gate); used for
//                  small batches of the matrix cells, one barrier per part.
// Threads only pay when a step has enough work (Cell::step_work >= parallel_threshold).
#pragma once

#include "driver/regularise.h"
#include "runtime/common.h"

namespace rnncore {

constexpr int kMaxStates = 2;  // states a cell carries: h, and c (LSTM)
constexpr int kMaxSaved = 2;   // per-step buffers a cell saves besides them (GRU: gates, hn)

// One direction's parameters, in PyTorch's layout.
template <typename scalar_t>
struct Params {
  const scalar_t* w_ih;   // [G*H,I]
  const scalar_t* w_hh;   // [G*H,H] (IndRNN: [H], the element-wise recurrent weights)
  const scalar_t* b_ih;   // [G*H], or nullptr (then b_hh is too)
  const scalar_t* b_hh;   // [G*H], or nullptr
  const scalar_t* extra;  // the cell's own parameter (LSTM peepholes w_ch [3H]), or nullptr
  const scalar_t* w_hr;   // [P,H] the projection h_t = m_t @ w_hr.T (LSTMP), or nullptr
};

// Their gradients: every non-null one is ADDED to (callers zero them).
template <typename scalar_t>
struct ParamGrads {
  scalar_t* w_ih;
  scalar_t* w_hh;
  scalar_t* b_ih;
  scalar_t* b_hh;
  scalar_t* extra;
  scalar_t* w_hr;
};

// A whole sequence, one direction, forward.
template <typename scalar_t>
struct SequenceForward {
  scalar_t* y;                        // [T,B,P] out; zero at padded steps
  scalar_t* state[kMaxStates];        // [T+1,B,H] out; state histories (layout in common.h)
  scalar_t* saved[kMaxSaved];         // [T,B,width*H] out; the cell's per-step buffers
  const scalar_t* x;                  // [T,B,I] in
  const scalar_t* state0[kMaxStates]; // [B,H] in, or nullptr for zeros
  Params<scalar_t> p;
  const index_t* lengths;             // [B] in, each in [0,T], or nullptr (all T)
  bool reverse;                       // run t = T-1 ... 0
  Regularise reg;                     // zoneout, recurrent dropout (regularise.h)
  scalar_t* unmixed[kMaxStates];      // [T,B,H] out, with zoneout, for each state the cell's
                                      // backward reads (step_reads_next): the new states
                                      // before mixing; zero at padded steps
};

// Its backward.
template <typename scalar_t>
struct SequenceBackward {
  scalar_t* dx;                         // [T,B,I] out, written
  scalar_t* dstate0[kMaxStates];        // [B,H] out, written: gradients of the initial states
  ParamGrads<scalar_t> g;               // added to
  const scalar_t* dy;                   // [T,B,P] in, or nullptr (zero); ignored at padded steps
  const scalar_t* dstate_n[kMaxStates]; // [B,H] in, or nullptr: gradients reaching the final states
  const scalar_t* x;                    // [T,B,I] in, as forward read it
  const scalar_t* state[kMaxStates];    // [T+1,B,H] in, as forward wrote them
  const scalar_t* saved[kMaxSaved];     // in, as forward wrote them
  Params<scalar_t> p;
  const index_t* lengths;
  bool reverse;
  Regularise reg;                       // as forward ran
  const scalar_t* unmixed[kMaxStates];  // in, as forward wrote them
};

// One step (the cells API), forward: no lengths, no history.
template <typename scalar_t>
struct StepForward {
  scalar_t* state[kMaxStates];            // [B,H] out: the new states
  scalar_t* saved[kMaxSaved];             // [B,width*H] out
  const scalar_t* x;                      // [B,I] in
  const scalar_t* state_prev[kMaxStates]; // [B,H] in
  Params<scalar_t> p;
  Regularise reg;                         // t0: the step's time, for zoneout's masks
  scalar_t* unmixed[kMaxStates];          // [B,H] out, as in SequenceForward
};

// Its backward.
template <typename scalar_t>
struct StepBackward {
  scalar_t* dx;                           // [B,I] out
  scalar_t* dstate_prev[kMaxStates];      // [B,H] out
  ParamGrads<scalar_t> g;                 // added to
  const scalar_t* dstate[kMaxStates];     // [B,H] in: whole gradient reaching each new state;
                                          // states after the first may be nullptr (zero)
  const scalar_t* x;                      // [B,I] in
  const scalar_t* state_prev[kMaxStates]; // [B,H] in
  const scalar_t* state[kMaxStates];      // [B,H] in: the new states the cell reads (others nullptr);
                                          // with zoneout, forward's unmixed ones
  const scalar_t* saved[kMaxSaved];       // in
  Params<scalar_t> p;
  Regularise reg;                         // as forward ran
};

// The entry points, for every cell in cells/ (instantiated in cells/*.cpp). Scratch space
// is the caller's, sized by the *_workspace functions (for the Regularise the call will
// have); no output may alias an input.
template <class Cell>
index_t sequence_forward_workspace(const Cell& cell, index_t T, index_t B, index_t I, index_t H,
                                  const Regularise& reg = {});
template <class Cell>
void sequence_forward(const Cell& cell, const SequenceForward<typename Cell::scalar_t>& a, index_t T, index_t B,
                      index_t I, index_t H, typename Cell::scalar_t* workspace);
template <class Cell>
index_t sequence_backward_workspace(const Cell& cell, index_t T, index_t B, index_t I, index_t H,
                                  const Regularise& reg = {});
template <class Cell>
void sequence_backward(const Cell& cell, const SequenceBackward<typename Cell::scalar_t>& a, index_t T, index_t B,
                       index_t I, index_t H, typename Cell::scalar_t* workspace);

template <class Cell>
index_t step_forward_workspace(const Cell& cell, index_t B, index_t I, index_t H, const Regularise& reg = {});
template <class Cell>
void step_forward(const Cell& cell, const StepForward<typename Cell::scalar_t>& a, index_t B, index_t I, index_t H,
                  typename Cell::scalar_t* workspace);
template <class Cell>
index_t step_backward_workspace(const Cell& cell, index_t B, index_t I, index_t H, const Regularise& reg = {});
template <class Cell>
void step_backward(const Cell& cell, const StepBackward<typename Cell::scalar_t>& a, index_t B, index_t I, index_t H,
                   typename Cell::scalar_t* workspace);

// Explicit instantiations of the six entry points for one cell type (in its .cpp).
#define RNNCORE_DRIVER_INSTANTIATE(Cell)                                                                          \
  template index_t sequence_forward_workspace<Cell>(const Cell&, index_t, index_t, index_t, index_t,          \
                                                   const Regularise&);                                       \
  template void sequence_forward<Cell>(const Cell&, const SequenceForward<Cell::scalar_t>&, index_t, index_t,  \
                                       index_t, index_t, Cell::scalar_t*);                                     \
  template index_t sequence_backward_workspace<Cell>(const Cell&, index_t, index_t, index_t, index_t,         \
                                                    const Regularise&);                                      \
  template void sequence_backward<Cell>(const Cell&, const SequenceBackward<Cell::scalar_t>&, index_t, index_t, \
                                        index_t, index_t, Cell::scalar_t*);                                    \
  template index_t step_forward_workspace<Cell>(const Cell&, index_t, index_t, index_t, const Regularise&);   \
  template void step_forward<Cell>(const Cell&, const StepForward<Cell::scalar_t>&, index_t, index_t, index_t, \
                                   Cell::scalar_t*);                                                           \
  template index_t step_backward_workspace<Cell>(const Cell&, index_t, index_t, index_t, const Regularise&);  \
  template void step_backward<Cell>(const Cell&, const StepBackward<Cell::scalar_t>&, index_t, index_t, index_t, \
                                    Cell::scalar_t*);

}  // namespace rnncore

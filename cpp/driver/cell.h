// What a cell gives the driver, and what the driver hands a cell at each step.
//
// A cell is a struct, templated on scalar_t, with (MatrixCell below has the defaults a
// cell with a [G*H,H] recurrent matrix shares):
//
//   static constexpr index_t G;                  gates per step
//   static constexpr bool elementwise;           the recurrence couples no two units (IndRNN)
//   static constexpr CellSpec spec;              names, states, saved buffers (below)
//   int forward_parts(), backward_parts()        parts of a step (a barrier between parts)
//   int views(bool backward, RecurrentView*)     the products' views of w_hh, w_hr (packed once)
//   void forward_product(FwdStep&, part)         the recurrent product(s) of a part, all rows
//   void forward_pointwise(FwdStep&, part, r0, r1)   the maths of a part, on valid rows [r0,r1)
//   void backward_product(BwdStep&, part), backward_pointwise(BwdStep&, part, r0, r1)
//   void weight_grad(Tail&)                      dw_hh += ..., after the loop
//   index_t forward_scratch_ld(H), backward_scratch_ld(H)   scratch per row of the batch
//   index_t accum(H)                             per-task sums of the extra parameter's gradient
//                                                (its first spec.extra.width*H), then any the
//                                                cell keeps for bias_accum
//   index_t bias_accum(H, k)                     where in accum the sums of b_ih's (k=0), b_hh's
//                                                (k=1) gradient are, or -1: the column sums of
//                                                dgate[k] (the layer-normalised cells, whose
//                                                biases act after the norms)
//   input_bias(p, H, scratch, &b1, &b2)          the biases the input projection adds
//   index_t step_work(B,I,H)                     multiply-adds per step (threads pay above
//                                                parallel_threshold)
//   index_t out_width(H)                         P: the width of h (state 0), y and their
//                                                gradients; H but for a projection (LSTMP)
//   int state_part(k)                            the forward part that writes state k (y with h);
//                                                zoneout mixes a state but h after it, h after
//                                                the last part
//   index_t units(bool backward, int part, H)    the units a part splits among threads (H or P)
//   int gate_part()                              the backward part that writes the gate gradients
//                                                (and carries dc back: zoneout splits it there)
//   index_t backward_history_ld(H)               a per-step backward buffer [T,B,ld] (LSTMP:
//                                                the whole dh_t, for dw_hr after the loop)
//
// The driver handles padding itself (in place of the pointwise maths): a padded row keeps
// its states and outputs 0 (in the part that writes them), zeroes the saved buffers the
// projection does not fill (part 0); in backward it passes dh through (part 0) and zeroes
// its gate gradients (gate_part). Cells see only valid rows. It applies zoneout and
// recurrent dropout around the cell's maths (regularise.h): a cell multiplies hin (not
// prev[0]) by w_hh and sends that product's gradient to dh_in.
#pragma once

#include "runtime/common.h"
#include "runtime/packed_gemm.h"
#include "runtime/parallel_gemm.h"
#include "driver/recurrence.h"

namespace rnncore {

// The weights of a recurrent product, Bmat[K, blocks*nb] as pack_weights reads them from
// rows [row0, ...) of w_hh (or w_hr), rows of ld: trans means Bmat = those rows transposed
// (h @ w_hh.T, the forward), otherwise the rows as they are (dh @ w_hh, the backward).
struct RecurrentView {
  index_t row0;
  bool trans;
  index_t K, blocks, nb, ld;
  bool proj;  // the rows are w_hr's, not w_hh's
};

// A view packed once per sequence, or, for a single step, read in place by BLAS: packing
// reads and writes every weight to save one read per later step, a loss when there is
// no later step.
template <typename scalar_t>
struct StepWeights {
  const scalar_t* W;
  index_t ldw;
  bool trans;
  index_t K, nb, blocks;
  scalar_t* packed;  // the packed copy, or nullptr: W in place

  // Task p's share of the packing (none in place).
  void pack(int p, int nt) const;
  // C[0:M, 0:nc] (+)= A[0:M, 0:K] @ Bmat[0:K, g*nb + n0 + (0:nc)], n0 a multiple of the
  // panel width; accumulate adds, otherwise overwrites.
  void product(index_t g, index_t M, index_t nc, const scalar_t* A, index_t lda, index_t n0, scalar_t* C,
               index_t ldc, bool accumulate) const;
};

// One part of one step of one task, forward: rows [0,rows) of the buffers below (the
// task's slice of the batch, time step t) and the units [u0,u1) it owns.
template <typename scalar_t>
struct FwdStep {
  index_t rows, H, P, u0, u1;        // P: out_width(H)
  const scalar_t* prev[kMaxStates];  // [rows,P] h_{t-1}, [rows,H] c_{t-1}: states read by step t
  const scalar_t* hin;               // [rows,P] the h_{t-1} the recurrence multiplies by w_hh:
                                     // prev[0], or its dropout-masked copy (regularise.h)
  scalar_t* next[kMaxStates];        // [rows,P] h_t, [rows,H] c_t: states written
  scalar_t* y;                       // [rows,P] output
  scalar_t* saved[kMaxSaved];        // [rows,width*H] the cell's per-step buffers
  scalar_t* scratch;                 // the cell's forward scratch, at this task's rows
  const Params<scalar_t>* p;
  const StepWeights<scalar_t>* w;    // the views of w_hh (w_hr), in the cell's order

  // C[0:rows, u0:u1] (+)= A[0:rows, :] @ block k of view v, its columns u0:u1. C points
  // at column 0 of the block's columns in the output.
  void product(int v, index_t k, const scalar_t* A, index_t lda, scalar_t* C, index_t ldc, bool accumulate) const {
    w[v].product(k, rows, u1 - u0, A, lda, u0, C + u0, ldc, accumulate);
  }
};

// Backward of one part of one step of one task.
template <typename scalar_t>
struct BwdStep {
  index_t rows, H, P, u0, u1;
  const scalar_t* dh;                // [rows,P] gradient reaching h_t from step t+1 (and dh_n)
  const scalar_t* dy;                // [rows,P] gradient of y_t, or nullptr
  scalar_t* dh_prev;                 // [rows,P] out: dh_{t-1}; part 0's pointwise primes it with
                                     // the gradient through h_{t-1}'s direct uses (GRU's z h)
  scalar_t* dh_in;                   // [rows,P] out: the gradient of hin, added to by the
                                     // products and the recurrent-side pointwise terms; the
                                     // same buffer as dh_prev without recurrent dropout, else
                                     // zeroed by the driver, which adds it (masked) to dh_prev
  scalar_t* carry[kMaxStates];       // [rows,H] in/out: gradients of the states after h (dc),
                                     // carried back in place ([0] unused)
  const scalar_t* prev[kMaxStates];  // as in FwdStep, as forward left them
  const scalar_t* hin;               // as in FwdStep
  const scalar_t* next[kMaxStates];  // the new states (with zoneout: before mixing)
  const scalar_t* saved[kMaxSaved];
  scalar_t* dgate[2];                // [rows,G*H] out: gradients of the input-side and the
                                     // recurrent-side pre-activations (one buffer when equal)
  scalar_t* scratch;                 // the cell's backward scratch, at this task's rows
  scalar_t* history;                 // [rows,backward_history_ld] step t's rows of the cell's
                                     // per-step buffer (zero before the loop)
  scalar_t* accum;                   // [accum(H)] this task's sums for the extra parameter
  const Params<scalar_t>* p;
  const StepWeights<scalar_t>* w;

  void product(int v, index_t k, const scalar_t* A, index_t lda, scalar_t* C, index_t ldc, bool accumulate) const {
    w[v].product(k, rows, u1 - u0, A, lda, u0, C + u0, ldc, accumulate);
  }
};

// After the backward loop, task p of nt: what a cell's weight_grad needs.
template <typename scalar_t>
struct Tail {
  int p, nt;
  index_t rows, H, P;                // rows = T*B
  const scalar_t* dgate[2];          // [rows,G*H]
  const scalar_t* h_in;              // [rows,P] the hin each step multiplied, in time order
  const scalar_t* saved[kMaxSaved];  // [rows,width*H]
  const scalar_t* history;           // [rows,backward_history_ld] the cell's per-step buffer
  scalar_t* dw_hh;                   // added to
  scalar_t* dw_hr;                   // added to (LSTMP), or nullptr
};

// dw [N,K] += dA[rows, a0:a0+N].T @ B[rows,K], rows or columns split across threads.
template <typename scalar_t>
void weight_grad_gemm(const Tail<scalar_t>& t, scalar_t* dw, index_t N, const scalar_t* dA, index_t lda,
                      const scalar_t* B, index_t K);


// What every cell with a [G*H,H] recurrent matrix shares: the forward product h @ w_hh.T
// in G blocks, the backward one dA @ w_hh, dw_hh += dA.T @ h_{t-1}, the biases summed
// into the projection, threads over whole packed panels.
template <typename scalar_t, index_t G_>
struct MatrixCell {
  static constexpr index_t G = G_;
  static constexpr bool elementwise = false;
  int forward_parts() const { return 1; }
  int backward_parts() const { return 2; }
  int views(bool backward, RecurrentView* v, index_t H) const {
    v[0] = backward ? RecurrentView{0, false, G * H, 1, H, H, false} : RecurrentView{0, true, H, G, H, H, false};
    return 1;
  }
  index_t forward_scratch_ld(index_t) const { return 0; }
  index_t backward_scratch_ld(index_t) const { return 0; }
  index_t accum(index_t) const { return 0; }
  index_t bias_accum(index_t, int) const { return -1; }
  int grad_buffers() const { return 1; }  // dA serves the input and the recurrent side
  void input_bias(const Params<scalar_t>& p, index_t, scalar_t*, const scalar_t** b1, const scalar_t** b2) const {
    *b1 = p.b_ih;
    *b2 = p.b_hh;
  }
  static index_t step_work(index_t B, index_t, index_t H) { return B * G * H * H; }
  static index_t unit_align() { return packed_nr<scalar_t>(); }
  index_t out_width(index_t H) const { return H; }
  int state_part(int) const { return 0; }
  index_t units(bool, int, index_t H) const { return H; }
  int gate_part() const { return 0; }
  index_t backward_history_ld(index_t) const { return 0; }
  // backward part 1: dhin += dA_t @ w_hh
  void backward_product(const BwdStep<scalar_t>& s, int part) const {
    if (part == 1) s.product(0, 0, s.dgate[0], G * s.H, s.dh_in, s.H, true);
  }
  void weight_grad(const Tail<scalar_t>& t) const {
    weight_grad_gemm(t, t.dw_hh, G * t.H, t.dgate[0], G * t.H, t.h_in, t.H);
  }
};

// What the bindings read from a cell (its Python-facing argument names and shapes): the
// states' names, the saved buffers' names and widths (in units of H), the extra
// parameter, the projection, the option that configures the cell, which new states a step's
// backward reads.
enum class OptionKind { none, activation, flag };
struct Buffer {
  const char* name;
  index_t width;
};
struct CellSpec {
  const char* name;                 // prefix of the _core functions: lstm_forward, ...
  index_t G;
  int states;
  const char* state_names[kMaxStates];
  int saved;
  Buffer saved_buffers[kMaxSaved];
  int preact;                       // the saved buffer the input projection fills (-1: y)
  Buffer extra;                     // {nullptr, 0}: none; else a [width*H] parameter, optional
  const char* proj;                 // nullptr, or the [P,H] projection after w_hh (LSTMP's w_hr):
                                    // then h, y are P wide and w_hh is [G*H,P]
  OptionKind option;
  const char* option_name;
  int option_default;               // an Activation, or 0/1
  bool vector_recurrence;           // w_hh is [H] (IndRNN), not [G*H,H]
  bool step_reads_next[kMaxStates]; // which new states a step's backward needs
};

}  // namespace rnncore

// Elman RNN kernels: whole sequence (one direction) forward and backward, and one step.
//
//   a_t = x_t @ w_ih.T + b_ih + h_{t-1} @ w_hh.T + b_hh        h_t = phi(a_t)
// with phi = tanh, relu or sigmoid (Activation in activations.h). The seed notes'
// s_t = phi(x_t W_x + s_{t-1} W_s): W_x / W_ax / U is w_ih, W_s / W_aa / W is w_hh.
#pragma once

#include "activations.h"
#include "common.h"

namespace rnncore {

template <typename scalar_t>
index_t elman_forward_workspace_size(index_t B, index_t H);

// y:       [T,B,H] out; outputs, zero at padded steps (also the pre-activation scratch).
// h:       [T+1,B,H] out; state history (layout in common.h), read by elman_backward.
// x:       [T,B,I] in.   h0: [B,H] in, or nullptr for zeros.
// w_ih:    [H,I] in.     w_hh: [H,H] in.     b_ih, b_hh: [H] in, or both nullptr.
// lengths: [B] in, each in [0,T], or nullptr.   reverse: run t = T-1 ... 0.
template <typename scalar_t>
void elman_forward(scalar_t* y, scalar_t* h, const scalar_t* x, const scalar_t* h0, const scalar_t* w_ih,
                   const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh, Activation act,
                   const index_t* lengths, bool reverse, index_t T, index_t B, index_t I, index_t H,
                   scalar_t* workspace);

template <typename scalar_t>
index_t elman_backward_workspace_size(index_t T, index_t B, index_t H);

// Backward, with dh the gradient reaching h_t (from y_t and from step t+1):
//   da_t = dh * phi'(h_t)     phi' from the saved output: tanh 1-h^2, sigmoid h(1-h), relu [h>0]
//   dh_{t-1} = da_t @ w_hh    dx_t = da_t @ w_ih
//   dw_ih += da.T @ x         dw_hh += da.T @ h_{t-1}       db_ih, db_hh += sum da
// dx: [T,B,I] out.  dh0: [B,H] out.  dw_ih, dw_hh, db_ih, db_hh: ADDED to (biases may be
// nullptr).  dy: [T,B,H] in or nullptr.  dh_n: [B,H] in or nullptr.  x, h: as forward.
template <typename scalar_t>
void elman_backward(scalar_t* dx, scalar_t* dh0, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih, scalar_t* db_hh,
                    const scalar_t* dy, const scalar_t* dh_n, const scalar_t* x, const scalar_t* h,
                    const scalar_t* w_ih, const scalar_t* w_hh, Activation act, const index_t* lengths, bool reverse,
                    index_t T, index_t B, index_t I, index_t H, scalar_t* workspace);

// One step. h: [B,H] out.  x: [B,I] in.  h_prev: [B,H] in.
template <typename scalar_t>
index_t elman_step_forward_workspace_size(index_t B, index_t H);
template <typename scalar_t>
void elman_step_forward(scalar_t* h, const scalar_t* x, const scalar_t* h_prev, const scalar_t* w_ih,
                        const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh, Activation act, index_t B,
                        index_t I, index_t H, scalar_t* workspace);

// Backward of one step: dx [B,I], dh_prev [B,H] out; weight gradients added.
// dh: [B,H] in, the gradient reaching h.  x, h_prev, h: as the step saw and made them.
template <typename scalar_t>
index_t elman_step_backward_workspace_size(index_t B, index_t H);
template <typename scalar_t>
void elman_step_backward(scalar_t* dx, scalar_t* dh_prev, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih,
                         scalar_t* db_hh, const scalar_t* dh, const scalar_t* x, const scalar_t* h_prev,
                         const scalar_t* h, const scalar_t* w_ih, const scalar_t* w_hh, Activation act, index_t B,
                         index_t I, index_t H, scalar_t* workspace);

}  // namespace rnncore

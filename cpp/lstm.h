// LSTM kernels: whole sequence (one direction) forward and backward, and one step.
//
// Gates in PyTorch's order i, f, g, o, blocks of H in a row of G*H = 4H:
//   a_t = x_t @ w_ih.T + b_ih + h_{t-1} @ w_hh.T + b_hh
//   i = sigmoid(a_i + p_i * c_{t-1})   f = sigmoid(a_f + p_f * c_{t-1})   g = tanh(a_g)
//   c_t = f * c_{t-1} + i * g          o = sigmoid(a_o + p_o * c_t)       h_t = o * tanh(c_t)
// The peephole terms p = w_ch [3H] (i, f, o) exist only when w_ch != nullptr.
//
// Forward: the input projection of all T steps is one GEMM into `gates` (biases
// folded in); each step adds the recurrent product from weights packed once (see
// packed_gemm.h; a single step, T = 1, reads w_hh in place instead, as packing would
// cost more than it saves) and runs one fused pass of the gate maths over its rows.
// Threads (parallel.h) each own a slice of the H units for the whole time loop.
#pragma once

#include "common.h"

namespace rnncore {

// Scratch for lstm_forward, in elements of scalar_t.
template <typename scalar_t>
index_t lstm_forward_workspace_size(index_t B, index_t H);

// y:      [T,B,H] out; outputs, zero at padded steps.
// h, c:   [T+1,B,H] out; state histories (layout in common.h), read by lstm_backward.
//         Final states are h[T], c[T] (reverse: h[0], c[0]).
// gates:  [T,B,4H] out; post-activation gates i, f, g, o, read by lstm_backward.
//         Rows of padded steps hold unused pre-activations.
// x:      [T,B,I] in.   h0, c0: [B,H] in, or nullptr for zeros.
// w_ih:   [4H,I] in.    w_hh: [4H,H] in.   b_ih, b_hh: [4H] in, or both nullptr.
// w_ch:   [3H] in, peephole weights, or nullptr for none.
// lengths:[B] in, each in [0,T], or nullptr (all T).   reverse: run t = T-1 ... 0.
// workspace: [lstm_forward_workspace_size(B,H)] scratch.
// No output may alias an input.
template <typename scalar_t>
void lstm_forward(scalar_t* y, scalar_t* h, scalar_t* c, scalar_t* gates, const scalar_t* x, const scalar_t* h0,
                  const scalar_t* c0, const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih,
                  const scalar_t* b_hh, const scalar_t* w_ch, const index_t* lengths, bool reverse, index_t T,
                  index_t B, index_t I, index_t H, scalar_t* workspace);

// Scratch for lstm_backward, in elements of scalar_t (more with peepholes).
template <typename scalar_t>
index_t lstm_backward_workspace_size(index_t T, index_t B, index_t H, bool peephole);

// Backward, with dh, dc the gradients reaching h_t, c_t (from the output and step t+1):
//   do = dh * tanh(c_t)                    da_o = do * o(1-o)
//   dc += dh * o * (1 - tanh(c_t)^2) + da_o * p_o
//   da_i = dc * g * i(1-i)   da_f = dc * c_{t-1} * f(1-f)   da_g = dc * i * (1-g^2)
//   dc_{t-1} = dc * f + da_i * p_i + da_f * p_f          dh_{t-1} = da_t @ w_hh
//   dw_ih += da.T @ x   dw_hh += da.T @ h_{t-1}   db_ih, db_hh += sum da   dx = da @ w_ih
//   dp_i += sum da_i c_{t-1}   dp_f += sum da_f c_{t-1}   dp_o += sum da_o c_t
// (The notes' W_x / W_ax / U is w_ih, W_s / W_aa / W is w_hh, s / a is h.)
//
// dx:         [T,B,I] out, written.      dh0, dc0: [B,H] out, written.
// dw_ih [4H,I], dw_hh [4H,H], db_ih, db_hh [4H], dw_ch [3H]: in/out, ADDED to (biases and
//             dw_ch may be nullptr when absent).
// dy:         [T,B,H] in or nullptr (zero); ignored at padded steps.
// dh_n, dc_n: [B,H] in or nullptr (zero): gradients reaching the final states.
// x, h, c, gates: in, as lstm_forward read and wrote them. w_ih, w_hh, w_ch: in.
// workspace:  [lstm_backward_workspace_size(T,B,H)] scratch.
template <typename scalar_t>
void lstm_backward(scalar_t* dx, scalar_t* dh0, scalar_t* dc0, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih,
                   scalar_t* db_hh, scalar_t* dw_ch, const scalar_t* dy, const scalar_t* dh_n, const scalar_t* dc_n,
                   const scalar_t* x, const scalar_t* h, const scalar_t* c, const scalar_t* gates,
                   const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* w_ch, const index_t* lengths,
                   bool reverse, index_t T, index_t B, index_t I, index_t H, scalar_t* workspace);

// One step: lstm_forward with T = 1 and no lengths.
// h, c: [B,H] out.  gates: [B,4H] out.  x: [B,I] in.  h_prev, c_prev: [B,H] in.
template <typename scalar_t>
index_t lstm_step_forward_workspace_size(index_t B, index_t H);
template <typename scalar_t>
void lstm_step_forward(scalar_t* h, scalar_t* c, scalar_t* gates, const scalar_t* x, const scalar_t* h_prev,
                       const scalar_t* c_prev, const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih,
                       const scalar_t* b_hh, const scalar_t* w_ch, index_t B, index_t I, index_t H,
                       scalar_t* workspace);

// Backward of one step. dx [B,I], dh_prev, dc_prev [B,H] out; weight gradients added.
// dh, dc: [B,H] in (dc may be nullptr). x, h_prev, c_prev, c, gates: as the step saw them.
template <typename scalar_t>
index_t lstm_step_backward_workspace_size(index_t B, index_t H, bool peephole);
template <typename scalar_t>
void lstm_step_backward(scalar_t* dx, scalar_t* dh_prev, scalar_t* dc_prev, scalar_t* dw_ih, scalar_t* dw_hh,
                        scalar_t* db_ih, scalar_t* db_hh, scalar_t* dw_ch, const scalar_t* dh, const scalar_t* dc,
                        const scalar_t* x, const scalar_t* h_prev, const scalar_t* c_prev, const scalar_t* c,
                        const scalar_t* gates, const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* w_ch,
                        index_t B, index_t I, index_t H, scalar_t* workspace);

}  // namespace rnncore

// GRU kernels: whole sequence (one direction) forward and backward, and one step.
//
// Gates in PyTorch's order r, z, n, blocks of H in a row of G*H = 3H. With
// ax = x_t @ w_ih.T + b_ih and ah = h_{t-1} @ w_hh.T + b_hh:
//   r = sigmoid(ax_r + ah_r)      z = sigmoid(ax_z + ah_z)
//   reset_after (torch.nn.GRU):   n = tanh(ax_n + r * ah_n)
//   otherwise (Cho et al.):       n = tanh(ax_n + (r * h_{t-1}) @ w_hn.T + b_hn)
//   h_t = (1 - z) * n + z * h_{t-1}
// w_hn is rows [2H,3H) of w_hh. The extra saved buffer hn holds ah_n (reset_after) or
// r * h_{t-1} (otherwise): what backward cannot recover from the gates.
//
// reset_after=false needs two recurrent products per step (r first, then the product
// with r * h), so two barriers per step when threaded; reset_after=true needs one.
#pragma once

#include "common.h"

namespace rnncore {

template <typename scalar_t>
index_t gru_forward_workspace_size(index_t B, index_t H, bool reset_after);

// y:      [T,B,H] out; outputs, zero at padded steps.
// h:      [T+1,B,H] out; state history (layout in common.h).
// gates:  [T,B,3H] out; post-activation r, z, n.  hn: [T,B,H] out (see above).
// x:      [T,B,I] in.  h0: [B,H] in or nullptr.  w_ih: [3H,I].  w_hh: [3H,H].
// b_ih, b_hh: [3H] in, or both nullptr.  lengths: [B] or nullptr.  reverse as in lstm.h.
template <typename scalar_t>
void gru_forward(scalar_t* y, scalar_t* h, scalar_t* gates, scalar_t* hn, const scalar_t* x, const scalar_t* h0,
                 const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh,
                 bool reset_after, const index_t* lengths, bool reverse, index_t T, index_t B, index_t I, index_t H,
                 scalar_t* workspace);

template <typename scalar_t>
index_t gru_backward_workspace_size(index_t T, index_t B, index_t H, bool reset_after);

// Backward, with dh the gradient reaching h_t:
//   dn = dh (1-z)       dz = dh (h_{t-1} - n)      da_n = dn (1-n^2)     da_z = dz z(1-z)
//   reset_after:  dah_n = da_n r        dr = da_n ah_n
//   otherwise:    drh = da_n @ w_hn      dr = drh h_{t-1}
//   da_r = dr r(1-r)
//   dh_{t-1} = dh z + [da_r, da_z, dah_n] @ w_hh                      (reset_after)
//   dh_{t-1} = dh z + [da_r, da_z] @ w_h{r,z} + drh r                  (otherwise)
//   input side dax = [da_r, da_z, da_n]: dw_ih += dax.T @ x, db_ih += sum dax, dx = dax @ w_ih
//   recurrent side: dw_hh += dah.T @ h_{t-1} (n rows: @ r*h_{t-1} when not reset_after),
//   db_hh += sum dah
// dx: [T,B,I] out.  dh0: [B,H] out.  dw_ih, dw_hh, db_ih, db_hh: ADDED to.
// dy: [T,B,H] in or nullptr.  dh_n: [B,H] in or nullptr.  x, h, gates, hn: as forward.
template <typename scalar_t>
void gru_backward(scalar_t* dx, scalar_t* dh0, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih, scalar_t* db_hh,
                  const scalar_t* dy, const scalar_t* dh_n, const scalar_t* x, const scalar_t* h,
                  const scalar_t* gates, const scalar_t* hn, const scalar_t* w_ih, const scalar_t* w_hh,
                  bool reset_after, const index_t* lengths, bool reverse, index_t T, index_t B, index_t I, index_t H,
                  scalar_t* workspace);

// One step. h: [B,H] out.  gates: [B,3H] out.  hn: [B,H] out.  x: [B,I].  h_prev: [B,H].
template <typename scalar_t>
index_t gru_step_forward_workspace_size(index_t B, index_t H, bool reset_after);
template <typename scalar_t>
void gru_step_forward(scalar_t* h, scalar_t* gates, scalar_t* hn, const scalar_t* x, const scalar_t* h_prev,
                      const scalar_t* w_ih, const scalar_t* w_hh, const scalar_t* b_ih, const scalar_t* b_hh,
                      bool reset_after, index_t B, index_t I, index_t H, scalar_t* workspace);

// Backward of one step: dx [B,I], dh_prev [B,H] out; weight gradients added.
template <typename scalar_t>
index_t gru_step_backward_workspace_size(index_t B, index_t H, bool reset_after);
template <typename scalar_t>
void gru_step_backward(scalar_t* dx, scalar_t* dh_prev, scalar_t* dw_ih, scalar_t* dw_hh, scalar_t* db_ih,
                       scalar_t* db_hh, const scalar_t* dh, const scalar_t* x, const scalar_t* h_prev,
                       const scalar_t* gates, const scalar_t* hn, const scalar_t* w_ih, const scalar_t* w_hh,
                       bool reset_after, index_t B, index_t I, index_t H, scalar_t* workspace);

}  // namespace rnncore

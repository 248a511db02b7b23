// GRU cell: its maths and traits for the recurrence driver (driver/recurrence.h).
//
// Gates in PyTorch's order r, z, n, blocks of H in a row of G*H = 3H. With
// ax = x_t @ w_ih.T + b_ih and ah = h_{t-1} @ w_hh.T + b_hh:
//   r = sigmoid(ax_r + ah_r)      z = sigmoid(ax_z + ah_z)
//   reset_after (torch.nn.GRU):   n = tanh(ax_n + r * ah_n)
//   otherwise (Cho et al.):       n = tanh(ax_n + (r * h_{t-1}) @ w_hn.T + b_hn)
//   h_t = (1 - z) * n + z * h_{t-1}
// w_hn is rows [2H,3H) of w_hh. With recurrent dropout (driver/regularise.h) every product
// above multiplies hin = h_{t-1} * M instead of h_{t-1}, and the Cho form's reset too
// (r * hin enters w_hn); z * h_{t-1} keeps the unmasked state. State: h. Saved per step:
// gates [T,B,3H], post-activation r, z, n, and hn [T,B,H] (sn_t in the kernels: the saved
// n term, not a state), what backward cannot recover from the gates: ah_n (reset_after)
// or r * hin_{t-1} (otherwise); zero at padded steps.
//
// Backward, with dh the gradient reaching h_t:
//   dn = dh (1-z)       dz = dh (h_{t-1} - n)      da_n = dn (1-n^2)     da_z = dz z(1-z)
//   reset_after:  dah_n = da_n r        dr = da_n ah_n
//   otherwise:    drh = da_n @ w_hn      dr = drh hin_{t-1}
//   da_r = dr r(1-r)
//   dh_{t-1} = dh z + dhin * M, where (M = 1 without recurrent dropout)
//   dhin = [da_r, da_z, dah_n] @ w_hh                                  (reset_after)
//   dhin = [da_r, da_z] @ w_h{r,z} + drh r                             (otherwise)
//   input side dax = [da_r, da_z, da_n]: dw_ih += dax.T @ x, db_ih += sum dax, dx = dax @ w_ih
//   recurrent side: dw_hh += dah.T @ hin_{t-1} (n rows: @ r*hin_{t-1} when not reset_after),
//   db_hh += sum dah
//
// Parts of a step: reset_after, one forward (the product into scratch, the gate maths)
// and two backward (the gate maths; dh_{t-1} += dah @ w_hh). The Cho form needs r before
// the n product: two forward parts (r, z; then n) and three backward (n, z; drh =
// da_n @ w_hn and r; dh_{t-1} += [da_r, da_z] @ w_h{r,z}).
#pragma once

#include "driver/cell.h"
#include "runtime/activations.h"

namespace rnncore {

// The reset-after gates' gradients from g, the gradient reaching h_t, and the step's r, z,
// n, ah_n and h_{t-1}: da_r, da_z, da_n (GruCell's and GruNormCell's backward, inlined into
// their vectorised loops).
template <typename scalar_t>
RNNCORE_INLINE void gru_after_grads(scalar_t g, scalar_t r, scalar_t z, scalar_t n, scalar_t ahn, scalar_t hp,
                                    scalar_t& dar, scalar_t& daz, scalar_t& dan) {
  dan = g * (scalar_t(1) - z) * (scalar_t(1) - n * n);
  daz = g * (hp - n) * z * (scalar_t(1) - z);
  dar = dan * ahn * r * (scalar_t(1) - r);
}

template <typename scalar_t_>
struct GruCell : MatrixCell<scalar_t_, 3> {
  using scalar_t = scalar_t_;
  static constexpr CellSpec spec = {"gru", 3, 1, {"h"}, 2, {{"gates", 3}, {"hn", 1}}, 0, {nullptr, 0}, nullptr,
                                    OptionKind::flag, "reset_after", 1, false, {false}};
  bool reset_after;

  static GruCell make(int option, bool, index_t) { return {{}, option != 0}; }
  int forward_parts() const { return reset_after ? 1 : 2; }
  int backward_parts() const { return reset_after ? 2 : 3; }
  int grad_buffers() const { return reset_after ? 2 : 1; }  // dax and dah differ in the n block
  index_t forward_scratch_ld(index_t H) const { return reset_after ? 3 * H : 0; }  // ah without b_hh
  index_t backward_scratch_ld(index_t H) const { return reset_after ? 0 : H; }      // drh
  int views(bool backward, RecurrentView* v, index_t H) const {
    if (!backward || reset_after) return MatrixCell<scalar_t, 3>::views(backward, v, H);
    v[0] = {2 * H, false, H, 1, H, H, false};  // w_hn
    v[1] = {0, false, 2 * H, 1, H, H, false};  // w_h{r,z}
    return 2;
  }
  // The projection adds b_ih and b_hh, but for b_hn when the reset multiplies w_hn h + b_hn.
  void input_bias(const Params<scalar_t>& p, index_t H, scalar_t* bias, const scalar_t** b1,
                  const scalar_t** b2) const {
    *b1 = *b2 = nullptr;
    if (!p.b_ih) return;
    for (index_t j = 0; j < 3 * H; ++j) bias[j] = p.b_ih[j] + (reset_after && j >= 2 * H ? scalar_t(0) : p.b_hh[j]);
    *b1 = bias;
  }
  void forward_product(const FwdStep<scalar_t>& s, int part) const {
    const index_t H = s.H, N = 3 * H;
    if (reset_after)
      for (index_t k = 0; k < 3; ++k) s.product(0, k, s.hin, H, s.scratch + k * H, N, false);
    else if (part == 0)
      for (index_t k = 0; k < 2; ++k) s.product(0, k, s.hin, H, s.saved[0] + k * H, N, true);
    else
      s.product(0, 2, s.saved[1], H, s.saved[0] + 2 * H, N, true);  // (r * hin_{t-1}) @ w_hn.T
  }
  void backward_product(const BwdStep<scalar_t>& s, int part) const {
    const index_t H = s.H, N = 3 * H;
    if (reset_after && part == 1) s.product(0, 0, s.dgate[1], N, s.dh_in, H, true);
    if (!reset_after && part == 1) s.product(0, 0, s.dgate[0] + 2 * H, N, s.scratch, H, false);  // drh
    if (!reset_after && part == 2) s.product(1, 0, s.dgate[0], N, s.dh_in, H, true);
  }
  void weight_grad(const Tail<scalar_t>& t) const {
    const index_t H = t.H, N = 3 * H;
    if (reset_after) return weight_grad_gemm(t, t.dw_hh, N, t.dgate[1], N, t.h_in, H);
    weight_grad_gemm(t, t.dw_hh, 2 * H, t.dgate[0], N, t.h_in, H);
    weight_grad_gemm(t, t.dw_hh + 2 * H * H, H, t.dgate[0] + 2 * H, N, t.saved[1], H);
  }
  void forward_pointwise(const FwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
  void backward_pointwise(const BwdStep<scalar_t>& s, int part, index_t r0, index_t r1) const;
};

}  // namespace rnncore

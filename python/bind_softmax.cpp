#include "arrays.h"
#include "ops/softmax.h"

namespace rnncore_py {

namespace {

void check_targets(const std::int64_t* targets, index_t N, index_t V, std::int64_t ignore_index) {
  for (index_t n = 0; n < N; ++n)
    if ((targets[n] < 0 || targets[n] >= V) && targets[n] != ignore_index)
      throw py::value_error("targets: every target must be in [0, " + std::to_string(V) +
                            ") or equal ignore_index, got " + std::to_string(targets[n]));
}

template <typename scalar_t>
py::tuple xent_forward(const py::array& logits, const py::array& targets, std::int64_t ignore_index) {
  if (logits.ndim() != 2) throw py::value_error("logits: expected 2-D array (N, V), got shape " + shape_of(logits));
  const index_t N = logits.shape(0), V = logits.shape(1);
  if (V == 0) throw py::value_error("logits: the class dimension V must be positive");
  const scalar_t* z = checked<scalar_t>(logits, "logits", {N, V});
  const std::int64_t* t = checked<std::int64_t>(targets, "targets", {N});
  check_targets(t, N, V, ignore_index);
  auto loss = empty<scalar_t>({N});
  auto probs = empty<scalar_t>({N, V});
  scalar_t* l = loss.mutable_data();
  scalar_t* p = probs.mutable_data();
  {
    py::gil_scoped_release release;
    rnncore::softmax_xent_forward(l, p, z, t, ignore_index, N, V);
  }
  return py::make_tuple(loss, probs);
}

template <typename scalar_t>
py::array xent_backward(const py::array& probs, const py::array& targets, std::int64_t ignore_index, double scale) {
  if (probs.ndim() != 2) throw py::value_error("probs: expected 2-D array (N, V), got shape " + shape_of(probs));
  const index_t N = probs.shape(0), V = probs.shape(1);
  const scalar_t* p = checked<scalar_t>(probs, "probs", {N, V});
  const std::int64_t* t = checked<std::int64_t>(targets, "targets", {N});
  check_targets(t, N, V, ignore_index);
  auto dlogits = empty<scalar_t>({N, V});
  scalar_t* d = dlogits.mutable_data();
  {
    py::gil_scoped_release release;
    rnncore::softmax_xent_backward(d, p, t, ignore_index, static_cast<scalar_t>(scale), N, V);
  }
  return dlogits;
}

}  // namespace

void bind_softmax(py::module_& m) {
  m.def(
      "softmax_xent_forward",
      [](const py::array& logits, const py::array& targets, std::int64_t ignore_index) {
        return dispatch_float(logits, "logits", [&](auto s) {
          return xent_forward<decltype(s)>(logits, targets, ignore_index);
        });
      },
      py::arg("logits"), py::arg("targets"), py::arg("ignore_index") = -100,
      "Row-wise softmax cross-entropy. logits (N,V) float, targets (N,) int64 -> (loss (N,), probs (N,V)).");
  m.def(
      "softmax_xent_backward",
      [](const py::array& probs, const py::array& targets, std::int64_t ignore_index, double scale) {
        return dispatch_float(probs, "probs", [&](auto s) {
          return xent_backward<decltype(s)>(probs, targets, ignore_index, scale);
        });
      },
      py::arg("probs"), py::arg("targets"), py::arg("ignore_index") = -100, py::arg("scale") = 1.0,
      "Gradient of the summed loss times scale with respect to the logits: scale * (probs - onehot).");
}

}  // namespace rnncore_py

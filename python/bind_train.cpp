#include <cmath>

#include "arrays.h"
#include "clip.h"

namespace rnncore_py {

namespace {

template <typename S>
S* flat(const py::array& a, const char* name) {
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  if (!(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_)) throw py::value_error(std::string(name) + ": read-only");
  return static_cast<S*>(const_cast<void*>(a.data()));
}

// The arrays of `grads` (kept alive in `arrays`) and their data, checked to be float32 or
// float64, C-contiguous and writeable, before any is touched.
std::vector<void*> gradient_buffers(const py::iterable& grads, std::vector<py::array>& arrays) {
  for (const py::handle& g : grads) {
    if (!py::isinstance<py::array>(g)) throw py::type_error("grads: expected numpy arrays");
    arrays.push_back(py::reinterpret_borrow<py::array>(g));
  }
  std::vector<void*> ptrs;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const std::string name = "grads[" + std::to_string(i) + "]";
    require_float(arrays[i], name.c_str());
    ptrs.push_back(is_float32(arrays[i]) ? static_cast<void*>(flat<float>(arrays[i], name.c_str()))
                                         : static_cast<void*>(flat<double>(arrays[i], name.c_str())));
  }
  return ptrs;
}

}  // namespace

void bind_train(py::module_& m) {
  m.def(
      "clip_grad_norm",
      [](const py::iterable& grads, double max_norm) {
        if (!(max_norm > 0)) throw py::value_error("max_norm: expected a positive number");
        std::vector<py::array> arrays;
        const std::vector<void*> ptrs = gradient_buffers(grads, arrays);
        double total = 0;
        {
          py::gil_scoped_release release;
          for (std::size_t i = 0; i < arrays.size(); ++i)
            total += is_float32(arrays[i]) ? rnncore::sum_of_squares(static_cast<float*>(ptrs[i]), arrays[i].size())
                                           : rnncore::sum_of_squares(static_cast<double*>(ptrs[i]), arrays[i].size());
          const double norm = std::sqrt(total);
          if (std::isfinite(norm) && norm > max_norm) {
            const double factor = max_norm / norm;
            for (std::size_t i = 0; i < arrays.size(); ++i) {
              if (is_float32(arrays[i]))
                rnncore::scale_in_place(static_cast<float*>(ptrs[i]), arrays[i].size(), static_cast<float>(factor));
              else
                rnncore::scale_in_place(static_cast<double*>(ptrs[i]), arrays[i].size(), factor);
            }
          }
          total = norm;
        }
        return total;
      },
      py::arg("grads"), py::arg("max_norm"),
      "Scale every array in grads by max_norm / norm when their global L2 norm exceeds max_norm.\n"
      "Returns the norm before clipping; a non-finite norm leaves the arrays unchanged.");
  m.def(
      "clip_grad_value",
      [](const py::iterable& grads, double clip) {
        if (!(clip > 0)) throw py::value_error("clip: expected a positive number");
        std::vector<py::array> arrays;
        const std::vector<void*> ptrs = gradient_buffers(grads, arrays);
        py::gil_scoped_release release;
        for (std::size_t i = 0; i < arrays.size(); ++i) {
          if (is_float32(arrays[i]))
            rnncore::clip_in_place(static_cast<float*>(ptrs[i]), arrays[i].size(), static_cast<float>(clip));
          else
            rnncore::clip_in_place(static_cast<double*>(ptrs[i]), arrays[i].size(), clip);
        }
      },
      py::arg("grads"), py::arg("clip"), "Clip every element of every array in grads to [-clip, clip].");
}

}  // namespace rnncore_py

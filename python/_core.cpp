// rnncore._core: the pybind11 module. Glue only: each bind_* file checks arguments,
// allocates outputs, releases the GIL and calls one kernel from cpp/.
#include <pybind11/pybind11.h>

#include "common.h"

namespace py = pybind11;

namespace rnncore_py {
void bind_softmax(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnncore native kernels (C++ over NumPy buffers, no copies, GIL released while running)";
  m.def("blas_config", &rnncore::blas_config, "OpenBLAS build description (version, kernel, threads).");
  m.def(
      "set_blas_threads",
      [](int n) {
        if (n < 1) throw py::value_error("n: expected a positive number of threads, got " + std::to_string(n));
        rnncore::set_blas_threads(n);
      },
      py::arg("n"), "Threads for BLAS calls inside rnncore's kernels.");
  m.def("get_blas_threads", &rnncore::get_blas_threads);
  rnncore_py::bind_softmax(m);
}

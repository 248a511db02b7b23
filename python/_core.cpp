// rnncore._core: the pybind11 module. Glue only: each bind_* file checks arguments,
// allocates outputs, releases the GIL and calls one kernel from cpp/ (the recurrent cells
// all through one template, bind_cell.h).
#include <pybind11/pybind11.h>

#include "runtime/common.h"
#include "runtime/packed_gemm.h"
#include "runtime/parallel.h"

namespace py = pybind11;

// C entry points for threadpoolctl (rnncore/_threads.py registers a controller that
// finds this library by them).
extern "C" {
__attribute__((visibility("default"))) int rnncore_get_num_threads() { return rnncore::num_threads(); }
__attribute__((visibility("default"))) void rnncore_set_num_threads(int n) { rnncore::set_num_threads(n); }
}

namespace rnncore_py {
void bind_cells(py::module_& m);
void bind_softmax(py::module_& m);
void bind_ops(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnncore native kernels (C++ over NumPy buffers, no copies, GIL released while running)";
  m.def("blas_config", &rnncore::blas_config, "OpenBLAS build description (version, kernel, threads).");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("n: expected a positive number of threads, got " + std::to_string(n));
        rnncore::set_num_threads(n);
      },
      py::arg("n"), "Threads a kernel call may use (rnncore splits the work; BLAS calls stay single-threaded).");
  m.def("get_num_threads", &rnncore::num_threads);
  m.def("_set_parallel_threshold", &rnncore::set_parallel_threshold, py::arg("work"),
        "Testing knob: per-step work (B*G*H*H) below which a kernel stays on one thread.");
  m.def("_parallel_threshold", &rnncore::parallel_threshold);
  m.def("_parallel_stats", [] {
    rnncore::index_t calls, solo;
    rnncore::parallel_stats(&calls, &solo);
    return py::make_tuple(calls, solo);
  }, "(threaded kernel calls, calls that finished alone because the workers lost their cores)");
  m.def("kernel_isa", &rnncore::packed_isa, "Instruction set of the packed step kernels: avx512, avx2 or sse2.");
  rnncore_py::bind_cells(m);
  rnncore_py::bind_softmax(m);
  rnncore_py::bind_ops(m);
}

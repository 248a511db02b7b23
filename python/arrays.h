// Glue helpers for the bindings: check a NumPy array against an exact dtype, shape and
// C-contiguity and hand out its pointer, or raise an error that names the argument.
// Nothing is ever cast or copied: a silent copy of an output would lose what the
// kernel writes, and a cast would hide a caller's mistake.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rnncore_py {

namespace py = pybind11;
using index_t = std::int64_t;
constexpr index_t ANY = -1;  // a free dimension in a shape pattern

inline std::string shape_str(const std::vector<index_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += shape[i] == ANY ? std::string("?") : std::to_string(shape[i]);
    if (i + 1 < shape.size() || shape.size() == 1) s += ", ";
  }
  if (shape.size() == 1) s.resize(s.size() - 1);
  return s + ")";
}

inline std::string shape_of(const py::array& a) {
  std::vector<index_t> s(a.shape(), a.shape() + a.ndim());
  return shape_str(s);
}

template <typename scalar_t>
const char* dtype_name() {
  if constexpr (std::is_same_v<scalar_t, float>) return "float32";
  else if constexpr (std::is_same_v<scalar_t, double>) return "float64";
  else return "int64";
}

// Checks dtype, ndim, shape (ANY matches anything) and C-contiguity; for outputs,
// writeability. Returns the data pointer.
template <typename scalar_t>
scalar_t* checked(const py::array& a, const char* name, const std::vector<index_t>& shape, bool writable = false) {
  if (!a.dtype().is(py::dtype::of<scalar_t>()))
    throw py::type_error(std::string(name) + ": expected " + dtype_name<scalar_t>() + " array, got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != static_cast<py::ssize_t>(shape.size()))
    throw py::value_error(std::string(name) + ": expected " + std::to_string(shape.size()) + "-D array of shape " +
                          shape_str(shape) + ", got " + std::to_string(a.ndim()) + "-D of shape " + shape_of(a));
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (shape[i] != ANY && a.shape(i) != shape[i])
      throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " + shape_of(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(scalar_t) != 0)
    throw py::value_error(std::string(name) + ": expected an aligned array");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + ": output array is read-only");
  return static_cast<scalar_t*>(const_cast<void*>(a.data()));
}

// Like checked(), for an optional argument: None gives nullptr.
template <typename scalar_t>
scalar_t* optional(const py::object& o, const char* name, const std::vector<index_t>& shape, bool writable = false) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray or None");
  return checked<scalar_t>(o.cast<py::array>(), name, shape, writable);
}

inline bool is_float32(const py::array& a) { return a.dtype().is(py::dtype::of<float>()); }
inline bool is_float64(const py::array& a) { return a.dtype().is(py::dtype::of<double>()); }

inline void require_float(const py::array& a, const char* name) {
  if (!is_float32(a) && !is_float64(a))
    throw py::type_error(std::string(name) + ": expected float32 or float64 array, got " +
                         std::string(py::str(a.dtype())));
}

template <typename scalar_t>
py::array_t<scalar_t> empty(const std::vector<index_t>& shape) {
  return py::array_t<scalar_t>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

}  // namespace rnncore_py

// Glue helpers for the bindings: check a NumPy array against an exact dtype, shape and
// C-contiguity and hand out its pointer, or raise an error that names the argument.
// Nothing is ever cast or copied: a silent copy of an output would lose what the
// kernel writes, and a cast would hide a caller's mistake.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <utility>
#include <string>
#include <vector>

namespace rnncore_py {

namespace py = pybind11;
using index_t = std::int64_t;
constexpr index_t ANY = -1;  // a free dimension in a shape pattern
// A shape pattern of up to four dimensions, written as a braced list: {T, B, ANY}.
struct Shape {
  Shape(std::initializer_list<index_t> dims) : n(dims.size()) {
    std::size_t i = 0;
    for (index_t v : dims) d[i++] = v;
  }
  const index_t* begin() const { return d; }
  const index_t* end() const { return d + n; }
  std::size_t size() const { return n; }
  index_t d[4] = {};
  std::size_t n;
};

template <typename ShapeT>
std::string shape_str(const ShapeT& shape) {
  std::string s = "(";
  std::size_t i = 0;
  for (index_t d : shape) {
    s += d == ANY ? std::string("?") : std::to_string(d);
    if (++i < shape.size() || shape.size() == 1) s += ",";
    if (i < shape.size()) s += " ";
  }
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

template <typename scalar_t>
constexpr int npy_type() {
  if constexpr (std::is_same_v<scalar_t, float>) return py::detail::npy_api::NPY_FLOAT_;
  else if constexpr (std::is_same_v<scalar_t, double>) return py::detail::npy_api::NPY_DOUBLE_;
  else return py::detail::npy_api::NPY_LONGLONG_;
}

// The array's element type and flags, read off its C struct (no Python objects made:
// the checks run on every call of a kernel that may take only microseconds).
inline int type_num(const py::array& a) {
  return py::detail::array_descriptor_proxy(py::detail::array_proxy(a.ptr())->descr)->type_num;
}

template <typename scalar_t>
bool has_type(const py::array& a) {
  const int t = type_num(a);
  if constexpr (std::is_same_v<scalar_t, std::int64_t>)  // int64 is "long" on Linux
    return t == py::detail::npy_api::NPY_LONG_ || t == py::detail::npy_api::NPY_LONGLONG_;
  else
    return t == npy_type<scalar_t>();
}

// Checks dtype, ndim, shape (ANY matches anything) and C-contiguity; for outputs,
// writeability. Returns the data pointer.
template <typename scalar_t>
scalar_t* checked(const py::array& a, const char* name, Shape shape, bool writable = false) {
  if (!has_type<scalar_t>(a))
    throw py::type_error(std::string(name) + ": expected " + dtype_name<scalar_t>() + " array, got " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != static_cast<py::ssize_t>(shape.size()))
    throw py::value_error(std::string(name) + ": expected " + std::to_string(shape.size()) + "-D array of shape " +
                          shape_str(shape) + ", got " + std::to_string(a.ndim()) + "-D of shape " + shape_of(a));
  py::ssize_t axis = 0;
  for (index_t d : shape) {
    if (d != ANY && a.shape(axis) != d)
      throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " + shape_of(a));
    ++axis;
  }
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(scalar_t) != 0)
    throw py::value_error(std::string(name) + ": expected an aligned array");
  if (writable && !(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
    throw py::value_error(std::string(name) + ": output array is read-only");
  return static_cast<scalar_t*>(const_cast<void*>(a.data()));
}

// Like checked(), for an optional argument: None gives nullptr.
template <typename scalar_t>
scalar_t* optional(const py::object& o, const char* name, Shape shape, bool writable = false) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray or None");
  return checked<scalar_t>(o.cast<py::array>(), name, shape, writable);
}

inline bool is_float32(const py::array& a) { return type_num(a) == py::detail::npy_api::NPY_FLOAT_; }
inline bool is_float64(const py::array& a) { return type_num(a) == py::detail::npy_api::NPY_DOUBLE_; }

inline void require_float(const py::array& a, const char* name) {
  if (!is_float32(a) && !is_float64(a))
    throw py::type_error(std::string(name) + ": expected float32 or float64 array, got " +
                         std::string(py::str(a.dtype())));
}

// Cache-line alignment of every array a kernel writes: threads write neighbouring column
// slices of the same rows, and NumPy's large allocations start 16 bytes into a page, so
// a slice boundary could otherwise share a cache line between two threads.
constexpr std::size_t ALIGN = 64;

template <typename scalar_t>
py::array_t<scalar_t> empty(Shape shape) {
  py::ssize_t n = 1;
  for (index_t d : shape) n *= static_cast<py::ssize_t>(d);
  constexpr py::ssize_t pad = ALIGN / sizeof(scalar_t);
  py::array_t<scalar_t> base(n + pad);
  const auto addr = reinterpret_cast<std::uintptr_t>(base.data());
  const py::ssize_t skip = static_cast<py::ssize_t>(((ALIGN - addr % ALIGN) % ALIGN) / sizeof(scalar_t));
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array_t<scalar_t>(dims, base.mutable_data() + skip, base);
}

// Per-sequence lengths: None, or an int64 array of B values in [0, T].
inline const index_t* checked_lengths(const py::object& o, index_t T, index_t B) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) throw py::type_error("lengths: expected an int64 numpy.ndarray or None");
  const index_t* l = checked<index_t>(o.cast<py::array>(), "lengths", {B});
  for (index_t b = 0; b < B; ++b)
    if (l[b] < 0 || l[b] > T)
      throw py::value_error("lengths: every length must be in [0, " + std::to_string(T) + "], got " +
                            std::to_string(l[b]));
  return l;
}

// Raises if the bytes of an output overlap those of an input or of another output:
// kernels read inputs while writing outputs, so aliasing would silently corrupt both.
struct Named {
  Named(const py::handle& h, const char* n) : name(n) {
    if (h.is_none() || !py::isinstance<py::array>(h)) return;
    const auto a = py::reinterpret_borrow<py::array>(h);
    lo = static_cast<const char*>(a.data());
    hi = lo + a.nbytes();  // arrays reaching the kernels are C-contiguous
  }
  const char* lo = nullptr;
  const char* hi = nullptr;
  const char* name;
};

inline bool overlap(const Named& a, const Named& b) { return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi; }

inline void check_disjoint(const std::vector<Named>& outputs, const std::vector<Named>& inputs) {
  for (auto o = outputs.begin(); o != outputs.end(); ++o) {
    for (const auto& in : inputs)
      if (overlap(*o, in))
        throw py::value_error(std::string(o->name) + ": output buffer overlaps the input " + in.name);
    for (auto p = outputs.begin(); p != o; ++p)
      if (overlap(*o, *p))
        throw py::value_error(std::string(o->name) + ": output buffer overlaps the output " + p->name);
  }
}

// Kernel scratch space: one buffer per Python thread, grown on demand and kept, so that
// repeated calls neither allocate nor page-fault. Valid until the next call on the
// same thread.
template <typename scalar_t>
scalar_t* workspace(index_t n) {
  struct Free {
    void operator()(scalar_t* p) const { ::operator delete[](p, std::align_val_t(ALIGN)); }
  };
  thread_local std::unique_ptr<scalar_t[], Free> data;
  thread_local index_t size = 0;
  if (n > size) {
    data.reset();  // free first: never hold the old and the new buffer at once
    data.reset(static_cast<scalar_t*>(::operator new[](sizeof(scalar_t) * n, std::align_val_t(ALIGN))));
    size = n;
  }
  return data.get();
}

// An output array: taken from `out` (a caller's buffer, checked) when given, else new.
template <typename scalar_t>
py::array_t<scalar_t> output(const py::object& out, const char* name, Shape shape) {
  if (out.is_none()) return empty<scalar_t>(shape);
  if (!py::isinstance<py::array>(out))
    throw py::type_error(std::string(name) + ": expected a " + dtype_name<scalar_t>() + " numpy.ndarray or None");
  py::array a = out.cast<py::array>();
  checked<scalar_t>(a, name, shape, true);
  return py::reinterpret_borrow<py::array_t<scalar_t>>(a);
}

// The entries of an `out` tuple of n output buffers (None entries allocate).
inline std::vector<py::object> out_tuple(const py::object& out, std::size_t n, const char* names) {
  std::vector<py::object> items(n, py::none());
  if (out.is_none()) return items;
  if (!py::isinstance<py::tuple>(out) || py::len(out) != n)
    throw py::type_error(std::string("out: expected None or a tuple (") + names + ")");
  py::tuple t = out.cast<py::tuple>();
  for (std::size_t i = 0; i < n; ++i) items[i] = t[i];
  return items;
}

// One dtype dispatch for every binding: calls f(float{}) or f(double{}) after the
// float32/float64 array `a` (any other dtype, or no array, raises TypeError naming it).
//   return dispatch_float(x, "x", [&](auto tag) { using S = decltype(tag); ... });
template <typename F>
decltype(auto) dispatch_float(const py::handle& a, const char* name, F&& f) {
  if (!py::isinstance<py::array>(a))
    throw py::type_error(std::string(name) + ": expected a float32 or float64 numpy.ndarray, got " +
                         std::string(py::str(py::type::handle_of(a).attr("__name__"))));
  const auto arr = py::reinterpret_borrow<py::array>(a);
  require_float(arr, name);
  if (is_float32(arr)) return f(float{});
  return f(double{});
}

// Both of a pair (biases, bias gradients) or neither.
template <typename scalar_t>
std::pair<scalar_t*, scalar_t*> checked_pair(const py::object& a, const char* a_name, const py::object& b,
                                            const char* b_name, Shape shape, const char* what, bool writable) {
  if (a.is_none() != b.is_none())
    throw py::value_error(std::string(a_name) + ", " + b_name + ": give both " + what + " or neither");
  return {optional<scalar_t>(a, a_name, shape, writable), optional<scalar_t>(b, b_name, shape, writable)};
}

}  // namespace rnncore_py

// One binding template for every recurrent cell: bind_cell<LstmCell>(m, "LSTM") defines
// lstm_forward, lstm_backward, lstm_step_forward and lstm_step_backward, with argument
// names and shapes read from the cell's CellSpec (driver/cell.h). Each function checks
// its arguments (dtype, shape, C-contiguity, writability, overlaps: the kernels' contract,
// with messages that start with the argument's name), allocates the outputs, releases the
// GIL and calls one driver entry point. No arithmetic here.
//
// The argument lists, for a cell with states h (, c), saved buffers s..., extra parameter
// w_e and option opt (LSTM: h, c; gates; w_ch; none):
//   forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_e=None, opt=default, lengths=None,
//           reverse=False, *, out=None) -> (y, h, c, s...)
//   backward(dy, dh_n, dc_n, x, h, c, s..., w_ih, w_hh, w_e, opt, lengths, reverse,
//            dw_ih, dw_hh, db_ih, db_hh, dw_e, *, out=None) -> (dx, dh0, dc0)
//   step_forward(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh, w_e=None, opt=default)
//            -> (h, c, s...), or h alone
//   step_backward(dh, dc, x, h_prev, c_prev, <new states it reads>, s..., w_ih, w_hh, w_e,
//            opt, dw_ih, dw_hh, db_ih, db_hh, dw_e) -> (dx, dh_prev, dc_prev)
// A cell with a projection (LSTMP's w_hr [P,H]) takes it after w_hh and its gradient after
// dw_hh; h, y and their gradients are then [.., P] and w_hh is [G*H, P].
// Every function takes, keyword-only, the regularisers (driver/regularise.h):
//   zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True
// (seed: the masks', in [0, 2**64); t0: absolute time of step 0; training=False: zoneout's
// expectation instead of its masks)
// and forward, backward and step_forward unmixed=None: the [R,T,B,W] ([R,B,W] for a step)
// new states before zoneout's mixing of the R states the cell's backward reads (W their
// width: H, or P for h), written by forward and read by backward; required with zoneout
// when R > 0. step_backward takes them in place of the new states.
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "arrays.h"
#include "driver/cell.h"
#include "driver/recurrence.h"
#include "runtime/activations.h"

namespace rnncore_py {

using rnncore::CellSpec;
using rnncore::OptionKind;

enum class Fn { forward, backward, step_forward, step_backward };

// What an argument is; k indexes the cell's states or saved buffers.
enum class Role {
  x, state_in, w_ih, w_hh, w_proj, b_ih, b_hh, extra, option, lengths, reverse, dy, dstate_in, state_out,
  saved, dw_ih, dw_hh, dw_proj, db_ih, db_hh, dextra, zoneout, recurrent_dropout, seed, t0, training, unmixed, out
};
constexpr bool keyword_only(Role r) { return r >= Role::zoneout; }
struct Arg {
  Role role;
  int k;
  bool has_default;
};

template <template <typename> class CellT, Fn F>
struct Signature {
  static constexpr const CellSpec& spec = CellT<float>::spec;
  static constexpr int S = spec.states, K = spec.saved;
  static constexpr int E = spec.extra.name != nullptr ? 1 : 0;
  static constexpr int O = spec.option != OptionKind::none ? 1 : 0;
  static constexpr int Pr = spec.proj != nullptr ? 1 : 0;
  static constexpr int R = int(spec.step_reads_next[0]) + int(spec.states > 1 && spec.step_reads_next[1]);
  static constexpr bool sequence = F == Fn::forward || F == Fn::backward;
  static constexpr int N = F == Fn::forward         ? 1 + S + 4 + Pr + E + O + 2 + 6 + 1
                           : F == Fn::backward      ? 1 + S + 1 + S + K + 2 + Pr + E + O + 2 + 4 + Pr + E + 6 + 1
                           : F == Fn::step_forward  ? 1 + S + 4 + Pr + E + O + 6
                                                    : S + 1 + S + R + K + 2 + Pr + E + O + 4 + Pr + E + 5;
  static constexpr int positional = N - (F == Fn::step_backward ? 5 : F == Fn::step_forward ? 6 : 7);

  static constexpr std::array<Arg, N> build() {
    std::array<Arg, N> a{};
    int i = 0;
    auto add = [&](Role r, int k = 0, bool def = false) { a[i++] = Arg{r, k, def}; };
    const bool fwd = F == Fn::forward || F == Fn::step_forward;
    if (F == Fn::backward) {
      add(Role::dy);
      for (int k = 0; k < S; ++k) add(Role::dstate_in, k);
    }
    if (F == Fn::step_backward)
      for (int k = 0; k < S; ++k) add(Role::dstate_in, k);
    add(Role::x);
    if (F != Fn::backward)
      for (int k = 0; k < S; ++k) add(Role::state_in, k);
    if (F == Fn::backward)
      for (int k = 0; k < S; ++k) add(Role::state_out, k);
    if (F == Fn::step_backward)
      for (int k = 0; k < S; ++k)
        if (spec.step_reads_next[k]) add(Role::state_out, k);
    if (!fwd)
      for (int k = 0; k < K; ++k) add(Role::saved, k);
    add(Role::w_ih);
    add(Role::w_hh);
    if (Pr) add(Role::w_proj);
    if (fwd) {
      add(Role::b_ih);
      add(Role::b_hh);
    }
    if (E) add(Role::extra, 0, fwd);
    if (O) add(Role::option, 0, fwd);
    if (sequence) {
      add(Role::lengths, 0, fwd);
      add(Role::reverse, 0, fwd);
    }
    if (!fwd) {
      add(Role::dw_ih);
      add(Role::dw_hh);
      if (Pr) add(Role::dw_proj);
      add(Role::db_ih);
      add(Role::db_hh);
      if (E) add(Role::dextra);
    }
    for (Role r : {Role::zoneout, Role::recurrent_dropout, Role::seed, Role::t0, Role::training}) add(r, 0, true);
    if (F != Fn::step_backward) add(Role::unmixed, 0, true);
    if (sequence) add(Role::out, 0, true);
    return a;
  }
  static constexpr std::array<Arg, N> args = build();

  static std::string name_of(const Arg& a) {
    const std::string s = a.k < S ? spec.state_names[a.k] : "";
    const std::string e = E ? spec.extra.name : "";
    const std::string pr = Pr ? spec.proj : "";
    switch (a.role) {
      case Role::x: return "x";
      case Role::state_in: return s + (F == Fn::forward ? "0" : "_prev");
      case Role::w_ih: return "w_ih";
      case Role::w_hh: return "w_hh";
      case Role::w_proj: return pr;
      case Role::b_ih: return "b_ih";
      case Role::b_hh: return "b_hh";
      case Role::extra: return e;
      case Role::option: return spec.option_name;
      case Role::lengths: return "lengths";
      case Role::reverse: return "reverse";
      case Role::dy: return "dy";
      case Role::dstate_in: return "d" + s + (F == Fn::backward ? "_n" : "");
      case Role::state_out: return s;
      case Role::saved: return spec.saved_buffers[a.k].name;
      case Role::dw_ih: return "dw_ih";
      case Role::dw_hh: return "dw_hh";
      case Role::dw_proj: return "d" + pr;
      case Role::db_ih: return "db_ih";
      case Role::db_hh: return "db_hh";
      case Role::dextra: return "d" + e;
      case Role::zoneout: return "zoneout";
      case Role::recurrent_dropout: return "recurrent_dropout";
      case Role::seed: return "seed";
      case Role::t0: return "t0";
      case Role::training: return "training";
      case Role::unmixed: return "unmixed";
      case Role::out: return "out";
    }
    return "";
  }
  // Argument names, kept for the module's lifetime (py::arg holds the pointer).
  static const std::array<std::string, N>& names() {
    static const std::array<std::string, N> n = [] {
      std::array<std::string, N> r;
      for (int i = 0; i < N; ++i) r[i] = name_of(args[i]);
      return r;
    }();
    return n;
  }
  static int index_of(Role r) {
    for (int i = 0; i < N; ++i)
      if (args[i].role == r) return i;
    return -1;
  }
};

const char* activation_name(int a);
int parse_activation(const py::handle& o);
bool parse_flag(const py::handle& o, const char* name);
double parse_probability(const py::handle& o, const char* name);
std::uint64_t parse_seed(const py::handle& o);
index_t parse_t0(const py::handle& o);

inline py::object option_default(const CellSpec& spec) {
  if (spec.option == OptionKind::activation) return py::str(activation_name(spec.option_default));
  return py::bool_(spec.option_default != 0);
}

// A required array argument: a numpy.ndarray, else TypeError naming it; then checked().
template <typename scalar_t>
scalar_t* required(const py::handle& o, const char* name, Shape shape, bool writable = false) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a " + dtype_name<scalar_t>() + " numpy.ndarray, got " +
                         std::string(py::str(py::type::handle_of(o).attr("__name__"))));
  return checked<scalar_t>(py::reinterpret_borrow<py::array>(o), name, shape, writable);
}

struct Dims {
  index_t T, B, I, H, P;  // P: the width of h, y (the projection's rows; H without one)
  const void* x;          // checked here, read by the kernels
  const void* w_hh;
  const void* w_proj;
};

// T, B, I from x ([T,B,I], or [B,I] for a step), H from w_hh (or P, H from the projection
// w_proj, nullptr without one), checked before anything else is read; every GEMM
// dimension must fit BLAS's 32-bit integers.
template <typename scalar_t>
Dims recurrent_dims(const py::handle& x, const py::handle& w_hh, const py::handle* w_proj, const CellSpec& spec,
                    bool sequence) {
  if (!py::isinstance<py::array>(w_hh)) required<scalar_t>(w_hh, "w_hh", {});
  const auto w = py::reinterpret_borrow<py::array>(w_hh);
  Dims d{};
  if (spec.vector_recurrence) {
    if (w.ndim() != 1) throw py::value_error("w_hh: expected 1-D array (H,), got shape " + shape_of(w));
    d.H = d.P = w.shape(0);
    if (d.H <= 0) throw py::value_error("w_hh: the hidden size (its length) must be positive");
    d.w_hh = checked<scalar_t>(w, "w_hh", {d.H});
  } else if (w_proj) {
    const std::string name = spec.proj;
    if (!py::isinstance<py::array>(*w_proj)) required<scalar_t>(*w_proj, name.c_str(), {});
    const auto r = py::reinterpret_borrow<py::array>(*w_proj);
    if (r.ndim() != 2) throw py::value_error(name + ": expected 2-D array (P, H), got shape " + shape_of(r));
    d.P = r.shape(0);
    d.H = r.shape(1);
    if (d.P <= 0 || d.H <= 0)
      throw py::value_error(name + ": the projection size P and the hidden size H (its dimensions) must be positive");
    d.w_proj = checked<scalar_t>(r, name.c_str(), {d.P, d.H});
    d.w_hh = checked<scalar_t>(w, "w_hh", {spec.G * d.H, d.P});
  } else {
    if (w.ndim() != 2) throw py::value_error("w_hh: expected 2-D array (G*H, H), got shape " + shape_of(w));
    d.H = d.P = w.shape(1);
    if (d.H <= 0) throw py::value_error("w_hh: the hidden size (its second dimension) must be positive");
    d.w_hh = checked<scalar_t>(w, "w_hh", {spec.G * d.H, d.H});
  }
  const auto a = py::reinterpret_borrow<py::array>(x);  // dispatch_float checked it is one
  if (sequence) {
    if (a.ndim() != 3) throw py::value_error("x: expected 3-D array (T, B, I), got shape " + shape_of(a));
    d.T = a.shape(0);
    d.B = a.shape(1);
    d.I = a.shape(2);
    d.x = checked<scalar_t>(a, "x", {d.T, d.B, d.I});
  } else {
    if (a.ndim() != 2) throw py::value_error("x: expected 2-D array (B, I), got shape " + shape_of(a));
    d.T = 1;
    d.B = a.shape(0);
    d.I = a.shape(1);
    d.x = checked<scalar_t>(a, "x", {d.B, d.I});
  }
  if (d.I <= 0) throw py::value_error("x: the input size (its last dimension) must be positive");
  // (Sizes are products of the dimensions of C-contiguous arrays that exist, so they
  // cannot overflow 64 bits.)
  constexpr index_t limit = 2147483647;
  if (d.T * d.B > limit)
    throw py::value_error("x: T*B = " + std::to_string(d.T * d.B) +
                          " rows exceed the 2**31-1 that BLAS can index; split the batch or the sequence");
  if (spec.G * d.H > limit || d.I > limit)
    throw py::value_error("w_hh, x: a gate or input dimension exceeds the 2**31-1 that BLAS can index");
  return d;
}

// Checks every argument of one call against the signature and calls the driver.
// One call's signature at run time (invoke is compiled once per cell and dtype, not per
// function as well).
struct Call {
  Fn F;
  int N;
  const Arg* args;
  const std::string* names;
  int index_of(Role r) const {
    for (int i = 0; i < N; ++i)
      if (args[i].role == r) return i;
    return -1;
  }
};

template <template <typename> class CellT, typename S>
py::object invoke(const Call& call, const py::object* a) {
  using Cell = CellT<S>;
  constexpr const CellSpec& spec = Cell::spec;
  const Fn F = call.F;
  const int N = call.N;
  const bool seq = F == Fn::forward || F == Fn::backward;
  const std::string* names = call.names;
  const int proj = call.index_of(Role::w_proj);
  const Dims d = recurrent_dims<S>(a[call.index_of(Role::x)], a[call.index_of(Role::w_hh)],
                                   proj < 0 ? nullptr : &a[proj], spec, seq);
  const index_t T = d.T, B = d.B, I = d.I, H = d.H, P = d.P, NG = spec.G * H;
  auto width = [&](int k) { return k == 0 ? P : H; };  // of state k
  const S* x = nullptr;
  const S* state_in[rnncore::kMaxStates] = {};
  const S* dstate_in[rnncore::kMaxStates] = {};
  const S* state_out[rnncore::kMaxStates] = {};
  const S* saved_in[rnncore::kMaxSaved] = {};
  rnncore::Params<S> p{};
  rnncore::ParamGrads<S> g{};
  const S* dy = nullptr;
  const index_t* lengths = nullptr;
  bool reverse = false;
  int option = spec.option_default;
  rnncore::Regularise reg{};
  py::object out = py::none(), unmixed_arg = py::none();
  std::vector<Named> inputs, outputs;
  for (int i = 0; i < N; ++i) {
    const Arg& arg = call.args[i];
    const py::object& o = a[i];
    const char* name = names[i].c_str();
    const int k = arg.k;
    const bool writes = arg.role == Role::dw_ih || arg.role == Role::dw_hh || arg.role == Role::dw_proj ||
                        arg.role == Role::db_ih || arg.role == Role::db_hh || arg.role == Role::dextra;
    if (arg.role != Role::unmixed) (writes ? outputs : inputs).emplace_back(o, name);  // unmixed: below
    switch (arg.role) {
      case Role::x: x = static_cast<const S*>(d.x); break;  // checked by recurrent_dims
      case Role::state_in:
        state_in[k] = F == Fn::forward ? optional<S>(o, name, {B, width(k)}) : required<S>(o, name, {B, width(k)});
        break;
      case Role::w_ih: p.w_ih = required<S>(o, name, {NG, I}); break;
      case Role::w_hh: p.w_hh = static_cast<const S*>(d.w_hh); break;
      case Role::w_proj: p.w_hr = static_cast<const S*>(d.w_proj); break;
      case Role::b_ih: std::tie(p.b_ih, p.b_hh) = checked_pair<S>(o, name, a[i + 1], "b_hh", {NG}, "biases", false);
        break;
      case Role::b_hh: break;  // with b_ih
      case Role::extra: p.extra = optional<S>(o, name, {spec.extra.width * H}); break;
      case Role::option:
        option = spec.option == OptionKind::activation ? parse_activation(o) : parse_flag(o, name);
        break;
      case Role::lengths: lengths = checked_lengths(o, T, B); break;
      case Role::reverse: reverse = parse_flag(o, name); break;
      case Role::dy: dy = optional<S>(o, name, {T, B, P}); break;
      case Role::dstate_in:
        dstate_in[k] = F == Fn::step_backward && k == 0 ? required<S>(o, name, {B, width(k)})
                                                        : optional<S>(o, name, {B, width(k)});
        break;
      case Role::state_out:
        state_out[k] = required<S>(o, name, seq ? Shape{T + 1, B, width(k)} : Shape{B, width(k)});
        break;
      case Role::saved: {
        const index_t w = spec.saved_buffers[k].width * H;
        saved_in[k] = required<S>(o, name, seq ? Shape{T, B, w} : Shape{B, w});
        break;
      }
      case Role::dw_ih: g.w_ih = required<S>(o, name, {NG, I}, true); break;
      case Role::dw_hh: g.w_hh = required<S>(o, name, spec.vector_recurrence ? Shape{H} : Shape{NG, P}, true); break;
      case Role::dw_proj: g.w_hr = required<S>(o, name, {P, H}, true); break;
      case Role::db_ih:
        std::tie(g.b_ih, g.b_hh) = checked_pair<S>(o, name, a[i + 1], "db_hh", {NG}, "bias gradients", true);
        break;
      case Role::db_hh: break;
      case Role::dextra: {
        if (o.is_none() != (p.extra == nullptr))
          throw py::value_error(std::string(name) + ": expected exactly when " + spec.extra.name + " is given");
        g.extra = optional<S>(o, name, {spec.extra.width * H}, true);
        break;
      }
      case Role::zoneout: reg.zoneout = parse_probability(o, name); break;
      case Role::recurrent_dropout: reg.recurrent_dropout = parse_probability(o, name); break;
      case Role::seed: reg.seed = parse_seed(o); break;
      case Role::t0: reg.t0 = parse_t0(o); break;
      case Role::training: reg.zoneout_masks = parse_flag(o, name); break;
      case Role::unmixed: unmixed_arg = o; break;
      case Role::out: out = o; break;
    }
  }
  // the unmixed states: per state the cell's backward reads, a [T,B,W] (or [B,W]) block, W
  // those states' width (one width: LSTMP reads c, not its P-wide h)
  S* unmixed[rnncore::kMaxStates] = {};
  if (call.index_of(Role::unmixed) >= 0) {
    int R = 0;
    index_t W = H;
    for (int k = 0; k < spec.states; ++k)
      if (spec.step_reads_next[k]) {
        W = R ? W : width(k);
        if (width(k) != W) throw py::value_error("unmixed: the states the cell's backward reads differ in width");
        ++R;
      }
    const bool needed = reg.zoneout_on() && R > 0;
    if (needed && unmixed_arg.is_none())
      throw py::value_error("unmixed: required with zoneout > 0 (the new states before mixing, which backward reads)");
    if (!needed && !unmixed_arg.is_none())
      throw py::value_error(std::string("unmixed: expected None ") +
                            (R ? "without zoneout" : "(this cell's backward reads no new state)"));
    const bool writes = F == Fn::forward || F == Fn::step_forward;
    S* base = optional<S>(unmixed_arg, "unmixed", seq ? Shape{R, T, B, W} : Shape{R, B, W}, writes);
    (writes ? outputs : inputs).emplace_back(unmixed_arg, "unmixed");
    for (int k = 0, r = 0; base && k < spec.states; ++k)
      if (spec.step_reads_next[k]) unmixed[k] = base + (r++) * (seq ? T : 1) * B * W;
  }
  const Cell cell = Cell::make(option, p.extra != nullptr, P);
  // The outputs: y, the states, the saved buffers (forward); dx, the states' gradients
  // (backward). A sequence's states are histories; a step's gradients are *_prev.
  struct Out {
    std::string name;
    Shape shape;
  };
  std::vector<Out> outs;
  const std::string gsuffix = seq ? "0" : "_prev";
  if (F == Fn::forward) outs.push_back({"y", {T, B, P}});
  if (F == Fn::backward || F == Fn::step_backward) outs.push_back({"dx", seq ? Shape{T, B, I} : Shape{B, I}});
  for (int k = 0; k < spec.states; ++k) {
    const std::string s = spec.state_names[k];
    if (F == Fn::forward) outs.push_back({s, {T + 1, B, width(k)}});
    if (F == Fn::step_forward) outs.push_back({s, {B, width(k)}});
    if (F == Fn::backward || F == Fn::step_backward) outs.push_back({"d" + s + gsuffix, {B, width(k)}});
  }
  for (int k = 0; k < spec.saved; ++k) {
    const index_t w = spec.saved_buffers[k].width * H;
    if (F == Fn::forward) outs.push_back({spec.saved_buffers[k].name, {T, B, w}});
    if (F == Fn::step_forward) outs.push_back({spec.saved_buffers[k].name, {B, w}});
  }
  std::string joined;
  for (std::size_t j = 0; j < outs.size(); ++j) joined += (j ? ", " : "") + outs[j].name;
  const std::vector<py::object> given = out_tuple(out, outs.size(), joined.c_str());
  std::vector<py::array> res;
  for (std::size_t j = 0; j < outs.size(); ++j) {
    const std::string label = "out[" + std::to_string(j) + "] (" + outs[j].name + ")";
    res.push_back(output<S>(given[j], label.c_str(), outs[j].shape));
    outputs.emplace_back(res[j], outs[j].name.c_str());
  }
  check_disjoint(outputs, inputs);
  std::vector<S*> ptr;
  for (auto& r : res) ptr.push_back(static_cast<S*>(r.mutable_data()));
  {
    py::gil_scoped_release release;
    if (F == Fn::forward) {
      rnncore::SequenceForward<S> s{};
      s.y = ptr[0];
      for (int k = 0; k < spec.states; ++k) {
        s.state[k] = ptr[1 + k];
        s.state0[k] = state_in[k];
      }
      for (int k = 0; k < spec.saved; ++k) s.saved[k] = ptr[1 + spec.states + k];
      s.x = x;
      s.p = p;
      s.lengths = lengths;
      s.reverse = reverse;
      s.reg = reg;
      for (int k = 0; k < spec.states; ++k) s.unmixed[k] = unmixed[k];
      S* ws = workspace<S>(rnncore::sequence_forward_workspace(cell, T, B, I, H, reg));
      rnncore::sequence_forward(cell, s, T, B, I, H, ws);
    } else if (F == Fn::backward) {
      rnncore::SequenceBackward<S> s{};
      s.dx = ptr[0];
      for (int k = 0; k < spec.states; ++k) {
        s.dstate0[k] = ptr[1 + k];
        s.dstate_n[k] = dstate_in[k];
        s.state[k] = state_out[k];
      }
      for (int k = 0; k < spec.saved; ++k) s.saved[k] = saved_in[k];
      s.g = g;
      s.dy = dy;
      s.x = x;
      s.p = p;
      s.lengths = lengths;
      s.reverse = reverse;
      s.reg = reg;
      for (int k = 0; k < spec.states; ++k) s.unmixed[k] = unmixed[k];
      S* ws = workspace<S>(rnncore::sequence_backward_workspace(cell, T, B, I, H, reg));
      rnncore::sequence_backward(cell, s, T, B, I, H, ws);
    } else if (F == Fn::step_forward) {
      rnncore::StepForward<S> s{};
      for (int k = 0; k < spec.states; ++k) {
        s.state[k] = ptr[k];
        s.state_prev[k] = state_in[k];
      }
      for (int k = 0; k < spec.saved; ++k) s.saved[k] = ptr[spec.states + k];
      s.x = x;
      s.p = p;
      s.reg = reg;
      for (int k = 0; k < spec.states; ++k) s.unmixed[k] = unmixed[k];
      S* ws = workspace<S>(rnncore::step_forward_workspace(cell, B, I, H, reg));
      rnncore::step_forward(cell, s, B, I, H, ws);
    } else {
      rnncore::StepBackward<S> s{};
      s.dx = ptr[0];
      for (int k = 0; k < spec.states; ++k) {
        s.dstate_prev[k] = ptr[1 + k];
        s.dstate[k] = dstate_in[k];
        s.state_prev[k] = state_in[k];
        s.state[k] = state_out[k];
      }
      for (int k = 0; k < spec.saved; ++k) s.saved[k] = saved_in[k];
      s.g = g;
      s.x = x;
      s.p = p;
      s.reg = reg;
      S* ws = workspace<S>(rnncore::step_backward_workspace(cell, B, I, H, reg));
      rnncore::step_backward(cell, s, B, I, H, ws);
    }
  }
  if (res.size() == 1) return res[0];
  py::tuple t(res.size());
  for (std::size_t j = 0; j < res.size(); ++j) t[j] = res[j];
  return t;
}

template <std::size_t>
using Obj = py::object;

// The py::arg annotation of argument I (with its default, if it has one).
template <class Sig, std::size_t I>
auto annotation() {
  constexpr Arg arg = Sig::args[I];
  const char* name = Sig::names()[I].c_str();
  if constexpr (!arg.has_default) {
    return py::arg(name);
  } else if constexpr (arg.role == Role::option) {
    return py::arg(name) = option_default(Sig::spec);
  } else if constexpr (arg.role == Role::reverse) {
    return py::arg(name) = false;
  } else if constexpr (arg.role == Role::zoneout || arg.role == Role::recurrent_dropout) {
    return py::arg(name) = 0.0;
  } else if constexpr (arg.role == Role::seed || arg.role == Role::t0) {
    return py::arg(name) = 0;
  } else if constexpr (arg.role == Role::training) {
    return py::arg(name) = true;
  } else {
    return py::arg(name) = py::none();
  }
}

// The default of a keyword argument as the text signature shows it.
inline std::string default_text(Role r) {
  switch (r) {
    case Role::reverse: return "False";
    case Role::zoneout:
    case Role::recurrent_dropout: return "0.0";
    case Role::seed:
    case Role::t0: return "0";
    case Role::training: return "True";
    default: return "None";
  }
}

// Defines one function: a lambda of N py::object parameters (the pack P), annotated with
// the names and defaults of the positional ones (the pack A) and, after a `*`, of the
// keyword-only ones (the pack K, offset by Sig::positional).
template <template <typename> class CellT, Fn F, std::size_t... P, std::size_t... A, std::size_t... K>
void define(py::module_& m, const char* name, const char* doc, std::index_sequence<P...>, std::index_sequence<A...>,
            std::index_sequence<K...>) {
  using Sig = Signature<CellT, F>;
  auto fn = [](Obj<P>... args) -> py::object {
    const std::array<py::object, sizeof...(P)> a{std::move(args)...};
    const Call call{F, Sig::N, Sig::args.data(), Sig::names().data()};
    return dispatch_float(a[Sig::index_of(Role::x)], "x",
                          [&](auto tag) { return invoke<CellT, decltype(tag)>(call, a.data()); });
  };
  m.def(name, fn, annotation<Sig, A>()..., py::kw_only(), annotation<Sig, Sig::positional + K>()..., doc);
}

// "name(x, h0, ..., reverse=False, *, out=None)\n--\n\n": a docstring that starts so gives
// the function a __text_signature__ (inspect.signature, help(), mypy's stubtest read it);
// bind_cells turns pybind11's own signature line off.
template <class Sig>
std::string text_signature(const std::string& name) {
  std::string s = name + "(";
  for (int i = 0; i < Sig::N; ++i) {
    const Arg& a = Sig::args[i];
    if (i) s += ", ";
    if (i == Sig::positional) s += "*, ";
    s += Sig::names()[i];
    if (!a.has_default) continue;
    if (a.role == Role::option)
      s += "=" + std::string(py::repr(option_default(Sig::spec)));
    else
      s += "=" + default_text(a.role);
  }
  return s + ")\n--\n\n";
}

template <template <typename> class CellT, Fn F>
void define(py::module_& m, const std::string& name, const std::string& doc) {
  using Sig = Signature<CellT, F>;
  // pybind11 keeps the name and docstring pointers: strings for the module's lifetime
  static const std::string n = name, d = text_signature<Sig>(name) + doc;
  define<CellT, F>(m, n.c_str(), d.c_str(), std::make_index_sequence<Sig::N>{},
                   std::make_index_sequence<Sig::positional>{},
                   std::make_index_sequence<Sig::N - Sig::positional>{});
}

std::string shapes_doc(const CellSpec& spec, Fn f);

// Defines <name>_forward, _backward, _step_forward, _step_backward for the cell.
template <template <typename> class CellT>
void bind_cell(py::module_& m, const char* title) {
  const CellSpec& spec = CellT<float>::spec;
  const std::string n = spec.name, t = title;
  define<CellT, Fn::forward>(m, n + "_forward", t + " over a sequence, one direction -> " +
                                                    shapes_doc(spec, Fn::forward) +
                                                    ".\nout: optional tuple of buffers for those (None entries are "
                                                    "allocated).");
  define<CellT, Fn::backward>(m, n + "_backward", "BPTT for " + n + "_forward: adds into the weight gradients -> " +
                                                      shapes_doc(spec, Fn::backward) + ".");
  define<CellT, Fn::step_forward>(m, n + "_step_forward", "One " + t + " step -> " +
                                                              shapes_doc(spec, Fn::step_forward) + ".");
  define<CellT, Fn::step_backward>(m, n + "_step_backward", "Backward of one " + t + " step -> " +
                                                                shapes_doc(spec, Fn::step_backward) + ".");
}

}  // namespace rnncore_py

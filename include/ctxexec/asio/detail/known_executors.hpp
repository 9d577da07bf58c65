// ctxexec/asio/detail/known_executors.hpp
//
// Not API. The one list of executor types that ctxexec looks for inside an
// `any_io_executor` (a coroutine's own executor is one):
//   * an io_context executor and a strand of one, the concrete executors
//     behind almost every Asio server;
//   * a `context_executor` over either of those, or over an any_io_executor,
//     the adaptors that ctxexec itself makes.
// `unwrap()`, `co_spawn()`, `bind_context()` and `run_sync_with_context()`
// all see through an any_io_executor by these functions and no others, so a
// new kind is added here once.

#ifndef CTXEXEC_ASIO_DETAIL_KNOWN_EXECUTORS_HPP
#define CTXEXEC_ASIO_DETAIL_KNOWN_EXECUTORS_HPP

#include <ctxexec/asio/context_executor.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <optional>

namespace ctxexec::detail {

using io_executor = plain_io_executor;
using io_strand = plain_io_strand;

/// Calls `f` with the context_executor that `ex` holds, when it holds one of
/// the kinds ctxexec makes (over an io_context executor, a strand of one, or
/// an any_io_executor). Returns whether it did.
template <class F>
bool with_context_executor(const boost::asio::any_io_executor& ex, F&& f) {
  if (auto* c = ex.template target<context_executor<io_executor>>()) {
    f(*c);
    return true;
  }
  if (auto* c = ex.template target<context_executor<io_strand>>()) {
    f(*c);
    return true;
  }
  if (auto* c = ex.template target<
                context_executor<boost::asio::any_io_executor>>()) {
    f(*c);
    return true;
  }
  return false;
}

/// The io_context executor that `ex` holds, directly or under a
/// context_executor; nullptr when it holds another kind.
inline const io_executor* find_io_executor(
    const boost::asio::any_io_executor& ex) noexcept {
  if (auto* c = ex.template target<context_executor<io_executor>>()) {
    return &c->get_inner_executor();
  }
  return ex.template target<io_executor>();
}

/// The strand of an io_context that `ex` holds, directly or under a
/// context_executor; nullopt when it holds another kind.
inline std::optional<io_strand> find_io_strand(
    const boost::asio::any_io_executor& ex) {
  if (auto* c = ex.template target<context_executor<io_strand>>()) {
    return c->get_inner_executor();
  }
  if (auto* s = ex.template target<io_strand>()) return *s;
  return std::nullopt;
}

/// The io_context that runs `ex`'s functions, when `ex` is one of the kinds
/// above; nullptr otherwise.
inline boost::asio::io_context* find_io_context(
    const boost::asio::any_io_executor& ex) {
  if (const io_executor* io = find_io_executor(ex)) return &io->context();
  if (auto s = find_io_strand(ex)) return &s->get_inner_executor().context();
  boost::asio::io_context* io = nullptr;
  with_context_executor(ex, [&](const auto& c) {
    const auto& inner = c.get_inner_executor();
    if constexpr (std::is_same_v<std::decay_t<decltype(inner)>,
                                 boost::asio::any_io_executor>) {
      io = find_io_context(inner);
    }
  });
  return io;
}

}  // namespace ctxexec::detail

#endif  // CTXEXEC_ASIO_DETAIL_KNOWN_EXECUTORS_HPP

// ctxexec/spdlog/context_flag.hpp
//
// The optional spdlog integration: `logging::context_flag`, a custom flag
// of spdlog's pattern formatter that prints chosen context variables (the
// trace id, the user id, ...) on every log line, each read with
// `try_get()` in the logging thread's current context; `logging::field`,
// one variable to print; and `logging::make_formatter()`. CMake target:
// `ctxexec::spdlog` (the core and spdlog).
//
// Example:
//   inline ctxexec::context_var<std::string> user_id{"user_id"};
//   auto f = ctxexec::logging::make_formatter(
//       "%H:%M:%S.%e %l [%*] %v",
//       {ctxexec::logging::field::trace_id(),
//        ctxexec::logging::field::of("user", user_id)});
//   spdlog::default_logger()->set_formatter(std::move(f));
//   spdlog::info("charged");  // 12:00:01.003 info [trace_id=4bf9...
//   user=alice] charged
//
// Only the chosen variables are read, never the whole context: nothing else
// a context holds (tokens, secrets in baggage) reaches the log. A variable
// with no value prints `-`.

#ifndef CTXEXEC_SPDLOG_CONTEXT_FLAG_HPP
#define CTXEXEC_SPDLOG_CONTEXT_FLAG_HPP

#include <ctxexec/context_var.hpp>
#include <ctxexec/trace_context.hpp>

#include <spdlog/fmt/fmt.h>
#include <spdlog/pattern_formatter.h>

#include <array>
#include <concepts>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctxexec::logging {

namespace detail {

inline void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

/// Appends `v` as text: a string as it is, else through fmt, else through
/// `operator<<`, else "<unprintable>".
template <class T>
void append_value(spdlog::memory_buf_t& dest, const T& v) {
  if constexpr (std::convertible_to<const T&, std::string_view>) {
    append(dest, std::string_view(v));
  } else if constexpr (fmt::is_formattable<T>::value) {
    fmt::format_to(std::back_inserter(dest), "{}", v);
  } else if constexpr (requires(std::ostream & os) { os << v; }) {
    std::ostringstream os;
    os << v;
    append(dest, os.str());
  } else {
    append(dest, "<unprintable>");
  }
}

template <std::size_t N>
void append_id(spdlog::memory_buf_t& dest, const hex_id<N>& id) {
  if (!id.is_valid()) {
    append(dest, "-");
    return;
  }
  std::array<char, 2 * N> text{};
  id.format_to(text);
  append(dest, std::string_view(text.data(), text.size()));
}

}  // namespace detail

/// One context variable to print, with its label: `label=value`.
///
/// Thread safety: distinct objects: safe; shared objects: safe for const
/// members (`append` reads the calling thread's current context).
///
/// Propagation: `append` reads the variable with `try_get()` in the
/// current context at the time of the log call.
///
/// Errors: `append` throws std::bad_alloc at most. The variable must
/// outlive the field.
///
/// Example:
///   auto f = ctxexec::logging::field::of("tenant", tenant);
class field {
 public:
  /// Prints `var`'s value: a string as it is, else with fmt, else with
  /// `operator<<`; `-` when it has none.
  template <class T>
  [[nodiscard]] static field of(std::string_view label,
                                const context_var<T>& var) {
    return field(label, &var, [](const void* v, spdlog::memory_buf_t& dest) {
      const T* value = static_cast<const context_var<T>*>(v)->try_get();
      if (value == nullptr) {
        detail::append(dest, "-");
      } else {
        detail::append_value(dest, *value);
      }
    });
  }

  /// The trace id of `current_trace` (32 hex digits), or `-`.
  [[nodiscard]] static field trace_id(std::string_view label = "trace_id") {
    return field(label, nullptr, [](const void*, spdlog::memory_buf_t& dest) {
      const trace_context* t = current_trace.try_get();
      detail::append_id(dest, t != nullptr ? t->trace : ctxexec::trace_id{});
    });
  }

  /// The span id of `current_trace` (16 hex digits), or `-`.
  [[nodiscard]] static field span_id(std::string_view label = "span_id") {
    return field(label, nullptr, [](const void*, spdlog::memory_buf_t& dest) {
      const trace_context* t = current_trace.try_get();
      detail::append_id(dest, t != nullptr ? t->span : ctxexec::span_id{});
    });
  }

  /// The label.
  [[nodiscard]] std::string_view label() const noexcept { return label_; }

  /// Appends `label=value`.
  void append(spdlog::memory_buf_t& dest) const {
    detail::append(dest, label_);
    detail::append(dest, "=");
    append_(target_, dest);
  }

 private:
  using append_fn = void (*)(const void*, spdlog::memory_buf_t&);
  field(std::string_view label, const void* target, append_fn f)
      : label_(label), target_(target), append_(f) {}

  std::string label_;
  const void* target_;
  append_fn append_;
};

/// A custom flag of spdlog's `pattern_formatter` that prints its fields,
/// separated by spaces: `trace_id=4bf9... user=alice`.
///
/// Thread safety: as spdlog's formatters: a logger calls it under its
/// sinks' locks; `clone()` gives each sink its own.
///
/// Propagation: reads the context current on the thread that logs; a log
/// line written on a worker of `run_sync_with_context` shows the request's
/// values (the worker runs in a copy of its context).
///
/// Errors: `format` throws std::bad_alloc at most.
///
/// Example:
///   auto f = std::make_unique<spdlog::pattern_formatter>();
///   f->add_flag<ctxexec::logging::context_flag>(
///        '*', std::vector{ctxexec::logging::field::trace_id()})
///       .set_pattern("[%*] %v");
class context_flag final : public spdlog::custom_flag_formatter {
 public:
  explicit context_flag(std::vector<field> fields)
      : fields_(std::move(fields)) {}

  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    bool first = true;
    for (const field& f : fields_) {
      if (!first) detail::append(dest, " ");
      first = false;
      f.append(dest);
    }
  }

  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<context_flag>(fields_);
  }

 private:
  std::vector<field> fields_;
};

/// A `pattern_formatter` with `pattern`, where `%<flag>` (default `%*`)
/// prints `fields`. Set it on a logger with `set_formatter`.
///
/// Thread safety: safe. Propagation: none at the call. Errors:
/// std::bad_alloc; spdlog's errors for an invalid pattern.
///
/// Example:
///   logger->set_formatter(ctxexec::logging::make_formatter(
///       "%l [%*] %v", {ctxexec::logging::field::trace_id()}));
[[nodiscard]] inline std::unique_ptr<spdlog::formatter> make_formatter(
    std::string pattern, std::vector<field> fields, char flag = '*') {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<context_flag>(flag, std::move(fields));
  f->set_pattern(std::move(pattern));
  return f;
}

}  // namespace ctxexec::logging

#endif  // CTXEXEC_SPDLOG_CONTEXT_FLAG_HPP

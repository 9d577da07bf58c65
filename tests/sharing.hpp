// tests/sharing.hpp: helpers of the tests of one context object used
// by several threads: the values that concurrent flows write into it, the
// check that a read returns one of them ("some flow really set it"), not a
// torn or freed one; and a thread that holds an object entered until told.

#ifndef CTXEXEC_TESTS_SHARING_HPP
#define CTXEXEC_TESTS_SHARING_HPP

#include <ctxexec/context.hpp>

#include <atomic>
#include <charconv>
#include <initializer_list>
#include <latch>
#include <string>
#include <string_view>
#include <thread>

namespace ctxexec_test {

/// "<flow>:<i>": the i-th value that flow `flow` sets.
inline std::string flow_value(std::string_view flow, int i) {
  return std::string(flow) + ":" + std::to_string(i);
}

/// Whether `v` is the i-th value of one of `flows`, for some i < `limit`.
inline bool is_flow_value(std::string_view v,
                          std::initializer_list<std::string_view> flows,
                          int limit) {
  const auto colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  bool known = false;
  for (std::string_view f : flows) known |= v.substr(0, colon) == f;
  int i = -1;
  const std::string_view digits = v.substr(colon + 1);
  const auto [end, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), i);
  return known && ec == std::errc() && end == digits.data() + digits.size() &&
         i >= 0 && i < limit;
}

/// A thread that enters `ctx`, sets `tag` to 1 and holds the object entered
/// until release() is called, then sets `tag` to 2 and exits it.
class holder_thread {
 public:
  holder_thread(ctxexec::context& ctx, ctxexec::context_var<int>& tag)
      : ctx_(ctx), thread_([this, &ctx, &tag] {
          ctx.run([&] {
            (void)tag.set(1);
            entered_.count_down();
            release_.wait();
            (void)tag.set(2);
            done_ = true;
          });
        }) {
    entered_.wait();
  }
  ~holder_thread() { release(); }

  /// Returns once some flow waits for the object (its waiters mark is set):
  /// no sleep decides the order of the test.
  void wait_for_a_waiter() const {
    const auto* object = ctxexec::detail::context_access::impl(ctx_);
    while ((object->state.load() & ctxexec::detail::context_impl::kWaiters) ==
           0) {
      std::this_thread::yield();
    }
  }

  /// Lets the holder set 2 and exit the object, and joins it.
  void release() {
    if (!thread_.joinable()) return;
    release_.count_down();
    thread_.join();
  }

  /// Whether the holder has set 2 (it then exits the object).
  bool done() const { return done_.load(); }

 private:
  ctxexec::context& ctx_;
  std::latch entered_{1};
  std::latch release_{1};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace ctxexec_test

#endif  // CTXEXEC_TESTS_SHARING_HPP

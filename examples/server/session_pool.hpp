// examples/server/session_pool.hpp: a fake DB connection pool of a fixed
// size. `async_acquire` waits (FIFO) for a free session; `release` may be
// called from any thread (a worker closing the session). Counts sessions in
// use and acquisitions that had to wait.

#ifndef CTXEXEC_EXAMPLES_SERVER_SESSION_POOL_HPP
#define CTXEXEC_EXAMPLES_SERVER_SESSION_POOL_HPP

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/system_executor.hpp>

#include <absl/functional/any_invocable.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

namespace demo {

struct session_pool_statistics {
  std::size_t size;
  std::size_t in_use;
  std::size_t waiting;
  std::uint64_t waits_total;
};

class session_pool {
 public:
  explicit session_pool(std::size_t size) : size_(size) {
    for (std::size_t i = size; i-- > 0;) free_.push_back(static_cast<int>(i));
  }

  session_pool(const session_pool&) = delete;
  session_pool& operator=(const session_pool&) = delete;

  /// Completes with `void(int session)` on the handler's executor, never
  /// inside this call.
  template <class Token>
  auto async_acquire(Token&& token) {
    return boost::asio::async_initiate<Token, void(int)>(
        [this](auto handler) {
          auto ex = boost::asio::prefer(
              boost::asio::get_associated_executor(
                  handler, boost::asio::system_executor()),
              boost::asio::execution::outstanding_work.tracked);
          waiter w = [ex, h = std::move(handler)](int session) mutable {
            boost::asio::post(ex, [h = std::move(h), session]() mutable {
              std::move(h)(session);
            });
          };
          int session = -1;
          {
            std::lock_guard lock(mutex_);
            if (free_.empty()) {
              ++waits_total_;
              waiters_.push_back(std::move(w));
              return;
            }
            session = free_.back();
            free_.pop_back();
          }
          std::move(w)(session);
        },
        token);
  }

  /// Returns `session`, to the first waiter if any. Any thread.
  void release(int session) {
    waiter w;
    {
      std::lock_guard lock(mutex_);
      if (waiters_.empty()) {
        free_.push_back(session);
        return;
      }
      w = std::move(waiters_.front());
      waiters_.pop_front();
    }
    std::move(w)(session);
  }

  [[nodiscard]] session_pool_statistics statistics() const {
    std::lock_guard lock(mutex_);
    return {size_, size_ - free_.size(), waiters_.size(), waits_total_};
  }

 private:
  using waiter = absl::AnyInvocable<void(int) &&>;

  const std::size_t size_;
  // A std::mutex, which ThreadSanitizer sees (Debian's Abseil is not
  // instrumented).
  mutable std::mutex mutex_;
  std::vector<int> free_;
  std::deque<waiter> waiters_;
  std::uint64_t waits_total_ = 0;
};

}  // namespace demo

#endif  // CTXEXEC_EXAMPLES_SERVER_SESSION_POOL_HPP

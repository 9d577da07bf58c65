// ctxexec/asio/loop_monitor.hpp
//
// Defines `loop_monitor`: event-loop health for an io_context, whichever
// number of threads run it. It measures loop lag with a periodic probe (as
// Node's monitorEventLoopDelay does) into histograms, per thread and
// overall; and a watchdog thread reports any single handler that runs
// longer than a threshold (100 ms by default, asyncio's
// slow_callback_duration) while it is still running, with a snapshot of
// that handler's context: its trace id, its user id. Also
// `loop_monitor_options`, `handler_report`, `lag_statistics` and
// `loop_statistics`.
//
// Example:
//   ctxexec::loop_monitor monitor(io, {}, [](const ctxexec::handler_report& r)
//   {
//     log("{} {} ms {}", r.what == r.blocked ? "blocked" : "returned",
//         r.duration / 1ms, r.context);  // e.g. {trace_id=..., user_id=...}
//   });
//   std::cout << monitor.statistics();  // lag p50/p90/p99/max per thread
//
// What it sees: every handler that runs in a context (a step of a
// `ctxexec::co_spawn` task, a function through a `context_executor`, a
// `bind_context` handler). A plain Asio handler that blocks is seen only
// through the lag it causes.

#ifndef CTXEXEC_ASIO_LOOP_MONITOR_HPP
#define CTXEXEC_ASIO_LOOP_MONITOR_HPP

#include <ctxexec/asio/detail/handler_watch.hpp>
#include <ctxexec/context.hpp>
#include <ctxexec/detail/context_impl.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <ostream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace ctxexec {

/// Tuning of a `loop_monitor`.
///
/// Thread safety: a plain aggregate. Errors: none.
/// Example: `ctxexec::loop_monitor m(io, {.blocked_threshold = 50ms});`
struct loop_monitor_options {
  /// A handler running longer than this is reported. asyncio's
  /// slow_callback_duration: 100 ms.
  std::chrono::steady_clock::duration blocked_threshold =
      std::chrono::milliseconds(100);
  /// How often the watchdog looks at the loop's threads and sends a lag
  /// probe (Node's default resolution: 10 ms); a blocked handler is
  /// reported at most this long after it passed the threshold.
  std::chrono::steady_clock::duration interval = std::chrono::milliseconds(10);
};

/// What the watchdog reports about one handler: once while it is still
/// running past the threshold (`blocked`), and once when it returns
/// (`returned`, with its total duration).
///
/// Thread safety: a plain value. Propagation: `context` is a snapshot
/// (its own context object) of the handler's context, taken when it was
/// found blocked; the handler's own object is never held. Errors: none.
/// Example: `if (auto t = r.context.find(trace_id)) log(*t);`
struct handler_report {
  enum kind { blocked, returned };
  kind what;
  /// Pairs the `returned` report with its `blocked` one.
  std::uint64_t handler;
  /// How long it has run so far (`blocked`), or in all (`returned`).
  /// Measured by the watchdog: within one watchdog interval.
  std::chrono::steady_clock::duration duration;
  /// The thread it runs on, and a small number for it.
  std::thread::id thread;
  unsigned thread_index;
  /// A snapshot of its context; empty if the handler ran in none.
  ctxexec::context context;
};

/// Loop lag percentiles, from a histogram with 1/16 relative precision.
///
/// Thread safety: a plain value. Errors: none.
/// Example: `if (s.overall.p99 > 20ms) shed_load();`
struct lag_statistics {
  std::uint64_t samples = 0;
  std::chrono::nanoseconds p50{0}, p90{0}, p99{0}, max{0};
};

/// A loop_monitor's statistics: lag overall and per thread that ran the
/// probe, and how many handlers were reported blocked.
///
/// Thread safety: a plain value. Errors: none.
/// Example: `std::cout << monitor.statistics() << "\n";`
struct loop_statistics {
  lag_statistics overall;
  std::vector<std::pair<unsigned, lag_statistics>> per_thread;
  std::uint64_t blocked_handlers = 0;
};

/// Prints `samples=N p50=…us p90=…us p99=…us max=…us`.
inline std::ostream& operator<<(std::ostream& os, const lag_statistics& s) {
  auto us = [](std::chrono::nanoseconds d) {
    return static_cast<double>(d.count()) / 1000.0;
  };
  return os << "samples=" << s.samples << " p50=" << us(s.p50)
            << "us p90=" << us(s.p90) << "us p99=" << us(s.p99)
            << "us max=" << us(s.max) << "us";
}

/// Prints the overall lag, each thread's, and the blocked handler count.
inline std::ostream& operator<<(std::ostream& os, const loop_statistics& s) {
  os << "loop lag: " << s.overall;
  for (const auto& [thread, lag] : s.per_thread) {
    os << "; thread " << thread << ": " << lag;
  }
  return os << "; blocked handlers: " << s.blocked_handlers;
}

namespace detail {

/// A log-linear histogram of durations: 16 buckets per power of two.
class lag_histogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept {
    const auto ns =
        static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0));
    ++counts_[bucket_of(ns)];
    ++samples_;
    max_ = std::max(max_, ns);
  }

  [[nodiscard]] lag_statistics statistics() const {
    lag_statistics s;
    s.samples = samples_;
    if (samples_ == 0) return s;
    s.p50 = percentile(0.50);
    s.p90 = percentile(0.90);
    s.p99 = percentile(0.99);
    s.max = std::chrono::nanoseconds(max_);
    return s;
  }

 private:
  static constexpr unsigned kSub = 16;
  static constexpr std::size_t kBuckets = 64 * kSub;

  static std::size_t bucket_of(std::uint64_t ns) noexcept {
    if (ns < kSub) return static_cast<std::size_t>(ns);
    const unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(ns));
    const std::uint64_t mantissa = (ns >> (e - 4)) & (kSub - 1);
    return static_cast<std::size_t>((e - 3) * kSub + mantissa);
  }

  /// The upper bound of bucket `b`.
  static std::uint64_t bound_of(std::size_t b) noexcept {
    if (b < kSub) return b;
    const unsigned e = static_cast<unsigned>(b / kSub) + 3;
    const std::uint64_t mantissa = b % kSub;
    return ((kSub + mantissa + 1) << (e - 4)) - 1;
  }

  std::chrono::nanoseconds percentile(double q) const noexcept {
    const auto rank =
        static_cast<std::uint64_t>(q * static_cast<double>(samples_ - 1));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen > rank) {
        return std::chrono::nanoseconds(std::min(bound_of(b), max_));
      }
    }
    return std::chrono::nanoseconds(max_);
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t samples_ = 0;
  std::uint64_t max_ = 0;
};

/// The lag probe: the watchdog posts a plain handler to the loop whenever
/// none is outstanding; the lag is how long it waited to run. No timer is
/// kept pending, so io_context::run() still returns once its own work is
/// done. Shared with a queued probe, which may run after the monitor is
/// gone.
class lag_probe : public std::enable_shared_from_this<lag_probe> {
 public:
  explicit lag_probe(boost::asio::io_context& io) : io_(io) {}

  /// Sends a probe unless one is on its way. Throws std::bad_alloc.
  void send() {
    if (outstanding_.exchange(true, std::memory_order_acq_rel)) return;
    const auto sent = std::chrono::steady_clock::now();
    boost::asio::post(io_, [self = shared_from_this(), sent] {
      self->arrived(std::chrono::steady_clock::now() - sent);
    });
  }

  [[nodiscard]] loop_statistics statistics() const {
    std::lock_guard<std::mutex> lock(mutex_);
    loop_statistics s;
    s.overall = overall_.statistics();
    for (const auto& [thread, h] : per_thread_) {
      s.per_thread.emplace_back(thread, h.statistics());
    }
    return s;
  }

 private:
  void arrived(std::chrono::steady_clock::duration lag) {
    unsigned thread = 0;
    watch_slot* slot = tl_watch_slot;
    if (slot == nullptr) {
      try {
        slot = refresh_watch_slot();  // names this thread in the statistics
      } catch (const std::bad_alloc&) {
      }
    }
    if (slot != nullptr) thread = slot->index;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(lag);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      overall_.record(ns);
      per_thread_[thread].record(ns);
    }
    outstanding_.store(false, std::memory_order_release);
  }

  boost::asio::io_context& io_;
  std::atomic<bool> outstanding_{false};
  mutable std::mutex mutex_;
  lag_histogram overall_;                         // guarded by mutex_
  std::map<unsigned, lag_histogram> per_thread_;  // guarded by mutex_
};

}  // namespace detail

/// Watches one io_context's health: loop lag, and handlers that block a
/// thread (see the file comment).
///
/// Thread safety: distinct objects: safe; shared objects: safe for
/// `statistics()` and `stop()` from any thread. The report callback runs on
/// the monitor's watchdog thread, never on the loop, and never after
/// `stop()` returned.
///
/// Propagation: none of its own. A report carries a snapshot of the
/// blocked handler's context, taken without waiting for the blocked
/// thread (see docs/asio.md); the monitor keeps no reference to any
/// context once a handler's `returned` report is made, nor after `stop()`.
///
/// Cost: a handler that runs in a context pays one relaxed load while no
/// monitor runs; while one runs, a few relaxed stores (measured in
/// benchmarks/README.md). The probe is one posted handler per interval; it
/// keeps no work pending, so `io_context::run()` returns as it would
/// without the monitor.
///
/// Errors: the constructor throws std::system_error when the watchdog
/// thread cannot start, std::bad_alloc. An exception thrown by the callback
/// is caught and printed to stderr.
///
/// Example:
///   ctxexec::loop_monitor monitor(io);  // reports to stderr
///   io.run();
class loop_monitor {
 public:
  using callback = std::function<void(const handler_report&)>;

  /// Starts watching `io` (which must outlive the monitor); `on_report`
  /// receives the reports (by default, one line each on stderr).
  explicit loop_monitor(boost::asio::io_context& io,
                        loop_monitor_options options = {},
                        callback on_report = {})
      : io_(io),
        options_(options),
        on_report_(on_report ? std::move(on_report) : callback(print_report)),
        probe_(std::make_shared<detail::lag_probe>(io)) {
    detail::watch_clock.store(now_ns(), std::memory_order_relaxed);
    {
      detail::watch_registry& r = detail::watch_registry::instance();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.loops.push_back(&io_);
    }
    detail::watch_active.fetch_add(1, std::memory_order_relaxed);
    detail::watch_epoch.fetch_add(1, std::memory_order_release);
    watchdog_ = std::thread([this] { watch(); });
  }

  loop_monitor(const loop_monitor&) = delete;
  loop_monitor& operator=(const loop_monitor&) = delete;

  /// Stops (see `stop()`).
  ~loop_monitor() { stop(); }

  /// Stops the probe and the watchdog: when it returns, no report is being
  /// made or will be, and the monitor holds no context. Idempotent. Must
  /// not be called from the report callback.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
    {
      detail::watch_registry& r = detail::watch_registry::instance();
      std::lock_guard<std::mutex> lock(r.mutex);
      std::erase(r.loops, &io_);
      for (detail::watch_slot* s = r.head; s != nullptr; s = s->next) {
        if (s->loop.load(std::memory_order_relaxed) == &io_) {
          s->loop.store(nullptr, std::memory_order_relaxed);
        }
      }
    }
    detail::watch_active.fetch_sub(1, std::memory_order_relaxed);
    detail::watch_epoch.fetch_add(1, std::memory_order_release);
  }

  /// Loop lag, overall and per thread, and the blocked handler count.
  [[nodiscard]] loop_statistics statistics() const {
    loop_statistics s = probe_->statistics();
    s.blocked_handlers = blocked_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  /// A blocked handler, until it returns.
  struct pending {
    detail::watch_slot* slot;
    std::uint64_t seq;
    std::int64_t start;
    handler_report report;
  };

  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  static void print_report(const handler_report& r) {
    std::ostringstream line;
    line << "ctxexec: handler " << r.handler
         << (r.what == handler_report::blocked ? " blocked the loop for "
                                               : " returned after ")
         << std::chrono::duration_cast<std::chrono::milliseconds>(r.duration)
                .count()
         << " ms on thread " << r.thread_index << " " << r.context << "\n";
    std::fputs(line.str().c_str(), stderr);
  }

  void deliver(const handler_report& r) noexcept {
    try {
      on_report_(r);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ctxexec::loop_monitor: the callback threw: %s\n",
                   e.what());
    } catch (...) {
      std::fputs("ctxexec::loop_monitor: the callback threw\n", stderr);
    }
  }

  /// The watchdog thread.
  void watch() {
    std::vector<running> seen;
    std::vector<pending> blocked;
    std::unique_lock<std::mutex> lock(mutex_);
    while (
        !wake_.wait_for(lock, options_.interval, [this] { return stopped_; })) {
      lock.unlock();
      try {
        probe_->send();
        tick(seen, blocked);
      } catch (const std::bad_alloc&) {
        // Out of memory for a probe or a snapshot: try again next tick.
      }
      lock.lock();
    }
  }

  /// A handler seen running, not (yet) reported.
  struct running {
    detail::watch_slot* slot;
    std::uint64_t seq;
    std::int64_t first_seen;
  };

  void tick(std::vector<running>& seen, std::vector<pending>& blocked) {
    const std::int64_t now = now_ns();
    detail::watch_clock.store(now, std::memory_order_relaxed);
    const std::int64_t threshold =
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            options_.blocked_threshold)
            .count();
    const std::int64_t interval =
        std::chrono::duration_cast<std::chrono::nanoseconds>(options_.interval)
            .count();
    // Returns first: a handler that ended (its slot moved on).
    for (auto it = blocked.begin(); it != blocked.end();) {
      if (it->slot->seq.load(std::memory_order_acquire) != it->seq) {
        it->report.what = handler_report::returned;
        it->report.duration = std::chrono::nanoseconds(now - it->start);
        deliver(it->report);
        it = blocked.erase(it);  // its context snapshot goes with it
      } else {
        ++it;
      }
    }
    // Then handlers running past the threshold, each reported once. A
    // handler counts as blocked once this watchdog saw it running for the
    // whole threshold: its recorded start may be early by as much as this
    // watchdog was late to advance the clock (a starved watchdog must not
    // take a short handler for a blocked one).
    struct candidate {
      detail::watch_slot* slot;
      std::uint64_t seq;
      detail::context_impl* context;
      std::uint64_t generation;
      std::int64_t start;
      std::thread::id thread;
    };
    std::vector<candidate> found;
    std::vector<running> still;
    {
      detail::watch_registry& r = detail::watch_registry::instance();
      std::lock_guard<std::mutex> lock(r.mutex);
      for (detail::watch_slot* s = r.head; s != nullptr; s = s->next) {
        if (s->loop.load(std::memory_order_relaxed) != &io_) continue;
        const std::uint64_t seq = s->seq.load(std::memory_order_acquire);
        if ((seq & 1) == 0) continue;  // idle
        candidate c{s,
                    seq,
                    s->context.load(std::memory_order_relaxed),
                    s->generation.load(std::memory_order_relaxed),
                    s->start.load(std::memory_order_relaxed),
                    s->thread};
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s->seq.load(std::memory_order_relaxed) != seq) continue;
        const bool reported = std::any_of(
            blocked.begin(), blocked.end(),
            [&](const pending& p) { return p.slot == s && p.seq == seq; });
        if (reported) continue;
        auto it = std::find_if(seen.begin(), seen.end(), [&](const running& x) {
          return x.slot == s && x.seq == seq;
        });
        const std::int64_t first_seen = it != seen.end() ? it->first_seen : now;
        // Started at most one interval before it was first seen, if the
        // watchdog was on time; never before its recorded start.
        c.start = std::max(c.start, first_seen - interval);
        if (now - first_seen >= threshold - interval &&
            now - c.start >= threshold) {
          found.push_back(c);
        } else {
          still.push_back(running{s, seq, first_seen});
        }
      }
    }
    seen.swap(still);
    for (const candidate& c : found) {
      handler_report report{handler_report::blocked,
                            (std::uint64_t{c.slot->index} << 40) | (c.seq >> 1),
                            std::chrono::nanoseconds(now - c.start),
                            c.thread,
                            c.slot->index,
                            snapshot(c.context, c.generation)};
      blocked_.fetch_add(1, std::memory_order_relaxed);
      deliver(report);
      blocked.push_back(pending{c.slot, c.seq, c.start, std::move(report)});
    }
  }

  /// A snapshot of the object named by (`c`, `generation`), or an empty
  /// handle if there is none any more.
  static ctxexec::context snapshot(detail::context_impl* c,
                                   std::uint64_t generation) {
    if (c == nullptr || !detail::try_pin(c, generation)) {
      return detail::context_access::adopt(nullptr);
    }
    const ctxexec::context held = detail::context_access::adopt(c);
    return detail::context_access::snapshot(held);
  }

  boost::asio::io_context& io_;
  const loop_monitor_options options_;
  const callback on_report_;
  const std::shared_ptr<detail::lag_probe> probe_;
  std::atomic<std::uint64_t> blocked_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;  // guarded by mutex_
  std::thread watchdog_;
};

}  // namespace ctxexec

#endif  // CTXEXEC_ASIO_LOOP_MONITOR_HPP

// Multi-threaded behaviour of the core, meant to run under TSan: threads
// copying, running and setting at once, exclusive entry across threads, and
// context objects released on threads other than their creator's.

#include <ctxexec/context.hpp>

#include <ctxexec/context_var.hpp>
#include "context_fixture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using ctxexec::context;
using ctxexec::context_error;
using ctxexec::context_var;
using ctxexec::copy_context;

class ThreadsTest : public ctxexec_test::ContextFixture {};

context_var<std::shared_ptr<int>> exit_var("exit_var");

// A value whose destructor sets a variable. Held in a thread's own context,
// it is destroyed by the thread's exit cleanup, and sets a value in a new
// root context that the cleanup must free as well.
struct sets_on_destroy {
  explicit sets_on_destroy(std::shared_ptr<int> p) : payload(std::move(p)) {}
  sets_on_destroy(sets_on_destroy&& other) noexcept = default;
  ~sets_on_destroy() {
    if (payload) (void)exit_var.set(std::move(payload));
  }
  std::shared_ptr<int> payload;
};
context_var<sets_on_destroy> holder_var("holder_var");

TEST_F(ThreadsTest, ContextEnteredOnOneThreadCannotBeEnteredOnAnother) {
  context ctx;
  std::promise<void> entered;
  std::promise<void> attempted;
  std::thread a([&] {
    ctx.run([&] {
      entered.set_value();
      attempted.get_future().wait();  // hold it entered until B tried
    });
  });
  entered.get_future().wait();
  bool refused = false;
  try {
    ctx.run([] {});
  } catch (const context_error&) {
    refused = true;
  }
  attempted.set_value();
  a.join();
  EXPECT_TRUE(refused);
  EXPECT_NO_THROW(ctx.run([] {}));  // exited on A: enterable on B now
}

TEST_F(ThreadsTest, WritesInARunAreSeenByTheNextRunOnAnotherThread) {
  context_var<std::string> v("v");
  context ctx;
  std::thread([&] {
    ctx.run([&] { (void)v.set(std::string(50, 'a')); });
  }).join();
  std::thread([&] {
    ctx.run([&] { EXPECT_EQ(v.get(), std::string(50, 'a')); });
  }).join();
}

TEST_F(ThreadsTest, ManyThreadsCopyRunAndSet) {
  const std::uint64_t seed = [] {
    if (const char* s = std::getenv("CTXEXEC_THREADS_SEED")) {
      return static_cast<std::uint64_t>(std::strtoull(s, nullptr, 10));
    }
    return static_cast<std::uint64_t>(std::random_device{}());
  }();
  std::cout << "[ threads ] seed " << seed << "\n";
  constexpr int kThreads = 8;
  constexpr int kIterations = 3000;
  constexpr int kShared = 4;

  context_var<int> own("own");
  context_var<int> mark("mark", -1);
  std::vector<context> shared(kShared);
  std::vector<std::atomic<int>> inside(kShared);
  std::atomic<int> overlaps{0};
  std::atomic<int> refusals{0};
  std::atomic<int> wrong{0};
  std::mutex handoff_mutex;
  std::vector<context>
      handoff;  // contexts made on one thread, freed on another

  auto worker = [&](int id) {
    std::mt19937_64 rng(seed + id);
    auto t = own.set(id);
    for (int i = 0; i < kIterations; ++i) {
      switch (rng() % 5) {
        case 0: {  // snapshot, change the original, check the snapshot
          auto g = mark.scoped_set(i);
          context snap = copy_context();
          auto g2 = mark.scoped_set(-i);
          snap.run([&] {
            if (own.get() != id || mark.get() != i) ++wrong;
          });
          break;
        }
        case 1: {  // contend for a shared context
          const std::size_t k = rng() % kShared;
          context ctx = shared[k];
          try {
            ctx.run([&] {
              if (inside[k].fetch_add(1) != 0) ++overlaps;
              (void)mark.set(id);         // stays in the shared context
              std::this_thread::yield();  // widen the window for contention
              if (mark.get() != id) ++wrong;
              if (own.try_get() != nullptr) ++wrong;
              inside[k].fetch_sub(1);
            });
          } catch (const context_error&) {
            ++refusals;
          }
          break;
        }
        case 2: {  // nested runs of fresh contexts
          context a;
          a.run([&] {
            auto g = own.scoped_set(id * 10);
            context b = copy_context();
            b.run([&] {
              if (own.get() != id * 10) ++wrong;
            });
          });
          break;
        }
        case 3: {  // pass a context to another thread to be freed there
          context c = copy_context();
          std::lock_guard<std::mutex> lock(handoff_mutex);
          handoff.push_back(std::move(c));
          if (handoff.size() > 16) handoff.erase(handoff.begin());
          break;
        }
        default:
          if (own.get() != id) ++wrong;
          break;
      }
    }
    own.reset(t);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& th : threads) th.join();
  handoff.clear();
  std::cout << "[ threads ] refusals " << refusals.load() << ", overlaps "
            << overlaps.load() << ", wrong " << wrong.load() << "\n";
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  for (auto& ctx : shared) {
    ASSERT_NE(ctx.find(mark), nullptr);  // the last writer's value stayed
  }
}

// Two threads path-copy one shared snapshot at the same moment: both copy
// the same root and retain the same boxes, whose counts must not lose an
// increment (a lost one frees a value another context still holds).
TEST_F(ThreadsTest, ConcurrentPathCopiesOfOneSnapshotKeepValuesAlive) {
  context_var<std::string> a("a");
  context_var<std::string> b("b");
  context_var<std::string> c("c");
  const std::string va(40, 'A');
  const std::string vb(40, 'B');
  int corrupted = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    context base;
    base.run([&] {
      (void)a.set(va);  // each box held once, by the shared root
      (void)b.set(vb);
    });
    context c1;
    context c2;
    base.run([&] {
      c1 = copy_context();
      c2 = copy_context();
    });
    std::latch start(2);
    auto work = [&](context& ctx) {
      start.arrive_and_wait();
      ctx.run([&] { (void)c.set("x"); });  // path-copies the shared root
    };
    std::thread t1(work, std::ref(c1));
    std::thread t2(work, std::ref(c2));
    t1.join();
    t2.join();
    base = context();
    c1 = context();
    c2.run([&] {
      if (a.get() != va || b.get() != vb || c.get() != "x") ++corrupted;
    });
  }
  EXPECT_EQ(corrupted, 0);
}

// A context object entered by one thread may be read from another at any
// time, without waiting: a thread that joins the reader while it has the
// object entered must not wait forever (Python's ctx[var] and len(ctx) work
// there too).
TEST_F(ThreadsTest, ReadingAContextEnteredElsewhereDoesNotWaitForIt) {
  context_var<int> v("v");
  context ctx;
  ctx.run([&] {
    auto tok = v.set(7);
    std::size_t size = 0;
    int seen = 0;
    std::string printed;
    std::thread reader([&] {  // joined while ctx stays entered here
      size = ctx.size();
      seen = *ctx.find(v);
      std::ostringstream os;
      os << ctx;
      printed = os.str();
    });
    reader.join();
    EXPECT_EQ(size, 1u);
    EXPECT_EQ(seen, 7);
    EXPECT_EQ(printed, "{v=7}");
    v.reset(tok);
  });
}

// Readers take snapshots while the thread that has the object entered keeps
// changing it (in place where it can): every snapshot is whole, and every
// value read is one that thread really set. For TSan and ASan.
TEST_F(ThreadsTest, SnapshotsWhileTheHolderChangesTheMapAreWhole) {
  constexpr int kRounds = 20000;
  std::vector<std::unique_ptr<context_var<int>>> vars;
  for (int i = 0; i < 8; ++i) {
    vars.push_back(std::make_unique<context_var<int>>("v" + std::to_string(i)));
  }
  context ctx;
  std::atomic<bool> done{false};
  std::atomic<long> bad{0};
  std::atomic<long> reads{0};
  std::latch readers_started(2);
  std::thread holder([&] {
    ctx.run([&] {
      auto keep = vars[0]->set(-1);  // always there
      // Entered and holding a value: the readers start now, so that their
      // reads overlap the changes below.
      readers_started.wait();
      // At least kRounds rounds, and on until the readers have read a
      // thousand times while the map changes.
      for (int r = 0; r < kRounds || reads.load() < 1000; ++r) {
        auto& var = *vars[1 + r % 7];
        auto tok = var.set(r % kRounds);
        var.reset(tok);
        (void)var.set(r % kRounds);  // stays: the next set replaces it
      }
      vars[0]->reset(keep);
    });
    done = true;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      readers_started.count_down();
      while (!done.load()) {
        ++reads;
        const std::size_t n = ctx.size();
        if (n > 8) ++bad;
        for (int i = 1; i < 8; ++i) {
          if (auto value = ctx.find(*vars[i])) {
            if (*value < 0 || *value >= kRounds) ++bad;
          }
        }
        ctx.for_each([&](std::string_view name, std::string_view) {
          if (name.empty() || name[0] != 'v') ++bad;
        });
      }
    });
  }
  holder.join();
  for (auto& r : readers) r.join();
  EXPECT_GE(reads.load(), 1000);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ctx.size(), 7u);
}

TEST_F(ThreadsTest, ContextsCreatedDuringThreadExitAreFreed) {
  auto payload = std::make_shared<int>(1);
  std::weak_ptr<int> watch = payload;
  std::thread([&] {
    (void)holder_var.set(sets_on_destroy(std::move(payload)));
  }).join();
  EXPECT_TRUE(watch.expired()) << "the value set during thread exit leaked";
}

TEST_F(ThreadsTest, ThreadRootContextsAreFreedAtThreadExit) {
  // Values set in a thread's own context die with the thread (checked for
  // leaks by LSan, and here through the value's destructor).
  auto payload = std::make_shared<int>(1);
  std::weak_ptr<int> watch = payload;
  context_var<std::shared_ptr<int>> v("v");
  std::thread([&] { (void)v.set(std::move(payload)); }).join();
  EXPECT_TRUE(watch.expired());
}

}  // namespace

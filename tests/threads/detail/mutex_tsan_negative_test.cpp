// Built only in the tsan preset, with CTXEXEC_DETAIL_NO_TSAN_ANNOTATIONS:
// the same hand-off as MutexTest.WaitWithPredicateSeesTheNotifiersWrites,
// without the wrapper's happens-before edges. TSan cannot see inside the
// uninstrumented absl::Mutex, so it must report a data race; ctest expects
// the report. This shows the annotations in detail/mutex.hpp are what keeps
// the other tests quiet.

#include <ctxexec/threads/detail/mutex.hpp>

#include <cstdio>
#include <thread>

#if !defined(CTXEXEC_DETAIL_NO_TSAN_ANNOTATIONS) || defined(CTXEXEC_DETAIL_TSAN)
#error "build this test with CTXEXEC_DETAIL_NO_TSAN_ANNOTATIONS"
#endif

int main() {
  ctxexec::detail::mutex mu;
  ctxexec::detail::condition_variable cv;
  long value = 0;
  bool ready = false;
  std::thread writer([&] {
    ctxexec::detail::mutex_lock lock(mu);
    value = 42;
    ready = true;
    cv.notify_one();
  });
  long seen;
  {
    ctxexec::detail::mutex_lock lock(mu);
    cv.wait(mu, [&] { return ready; });
    seen = value;
  }
  writer.join();
  std::printf("seen %ld\n", seen);
  return seen == 42 ? 0 : 1;
}

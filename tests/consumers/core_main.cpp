// A consumer of the core alone: proves the package's include paths, C++20
// and thread requirements reach a project that links only ctxexec::core.

#include <ctxexec/core.hpp>

#include <cstdio>
#include <string>
#include <thread>

inline ctxexec::context_var<std::string> request_id{"request_id", "-"};

int main() {
  auto guard = request_id.scoped_set("req-1");
  ctxexec::context snapshot = ctxexec::copy_context();
  std::string seen;
  std::thread([&] {
    seen = snapshot.run([] { return request_id.get(); });
  }).join();
  std::printf("core consumer saw %s\n", seen.c_str());
  return seen == "req-1" ? 0 : 1;
}

// pool_server.cpp and pool_server_plain.cpp: an HTTP/1.1 server without
// Asio. One thread accepts connections (blocking POSIX sockets) and hands
// each to a pool of std::threads, where a worker reads its requests one
// after the other (keep-alive); rendering goes to a second pool.
// pool_server_plain.cpp is the server before ctxexec, pool_server.cpp the
// same server with it: they differ only by what adopting ctxexec changes.
// docs/adopting.md shows their diff (the test adopt.docs_diffs checks it);
// ctest builds and runs both.
//
// Each request: a log line, rendering on the second pool, and the answer
// "hello <target>". With ctxexec (the core only: the standard library), the
// pool takes a `copy_context()` with each job it is given and runs the job
// in it (`ctx.run()`) on its worker, and each request runs in its own copy
// of its connection's context. The request's trace id and user id, set
// once, are on every log line written for it (also on the rendering
// thread) and in its answer.
//
// Usage: pool_server[_plain] [port]   (0, the default, picks a free port)
// Prints "listening on 127.0.0.1:<port>" on stdout, logs to stderr, and stops
// on SIGINT or SIGTERM, after the open connections end (idle ones after 30 s).

#include "request_log.hpp"

#include <ctxexec/core.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// A fixed number of threads that run the jobs submitted to them.
class thread_pool {
 public:
  explicit thread_pool(int threads) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  // Runs the jobs already submitted, then joins the threads.
  ~thread_pool() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  // Queues `job` to run on a worker, in a copy of the caller's context.
  void submit(std::function<void()> job) {
    {
      const std::lock_guard lock(mutex_);
      jobs_.push_back([ctx = ctxexec::copy_context(),
                       job = std::move(job)]() mutable { ctx.run(job); });
    }
    ready_.notify_one();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// A request as this server reads it: its request line and its headers.
struct request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  bool keep_alive = true;

  // The value of the header `name` (in lower case), or "" if there is none.
  std::string_view header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return {};
  }
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Reads the next request of the connection `fd`; the bytes after it stay in
// `buffer`. Nothing when the client closed the connection, on an error, or
// for a request with a body (this server reads none).
std::optional<request> read_request(int fd, std::string& buffer) {
  std::size_t end = 0;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > 16384) return std::nullopt;
    char chunk[4096];
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  std::istringstream head(buffer.substr(0, end + 2));
  buffer.erase(0, end + 4);
  request req;
  std::string version;
  std::string line;
  head >> req.method >> req.target >> version;
  std::getline(head, line);
  req.keep_alive = version == "HTTP/1.1";
  while (std::getline(head, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::size_t first = line.find_first_not_of(" \t", colon + 1);
    const std::size_t last = line.find_last_not_of(" \t\r");
    std::string name = lower(line.substr(0, colon));
    std::string value =
        first <= last ? line.substr(first, last - first + 1) : "";
    if (name == "content-length" && value != "0") return std::nullopt;
    if (name == "transfer-encoding") return std::nullopt;
    if (name == "connection") req.keep_alive = lower(value) != "close";
    req.headers.emplace_back(std::move(name), std::move(value));
  }
  return req;
}

// Sends a 200 response with `body` on the connection `fd`.
void write_response(int fd, const std::string& body, bool keep_alive) {
  const std::string out =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n" +
      (keep_alive ? "" : "Connection: close\r\n") + "\r\n" + body;
  for (std::size_t sent = 0; sent < out.size();) {
    const ssize_t n =
        send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client is gone: the next read ends it
    sent += static_cast<std::size_t>(n);
  }
}

// Answers one request; rendering runs on the `renderers` pool.
void handle(const request& req, int fd, thread_pool& renderers) {
  enter_request(req.header("traceparent"), req.header("x-user-id"));
  log_line(req.method + " " + req.target);
  auto rendered = std::make_shared<std::promise<std::string>>();
  renderers.submit([rendered, target = req.target] {
    log_line("rendering " + target);
    rendered->set_value("hello " + target + " " + request_ids());
  });
  const std::string body = rendered->get_future().get() + "\n";
  log_line("responding 200");
  write_response(fd, body, req.keep_alive);
}

// Serves the connection `fd`: its requests one after the other.
void serve(int fd, thread_pool& renderers) {
  std::string buffer;
  while (std::optional<request> req = read_request(fd, buffer)) {
    ctxexec::copy_context().run(handle, *req, fd, renderers);  // per request
    if (!req->keep_alive) break;
  }
  close(fd);
}

int main(int argc, char* argv[]) {
  // SIGINT and SIGTERM go to the thread that waits for them (`stopper`):
  // blocked here, before any thread starts, they are blocked in all others.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port =
      htons(static_cast<in_port_t>(argc > 1 ? std::atoi(argv[1]) : 0));
  auto* any_address = reinterpret_cast<sockaddr*>(&address);
  socklen_t size = sizeof address;
  if (listener < 0 || bind(listener, any_address, size) != 0 ||
      listen(listener, 64) != 0 ||
      getsockname(listener, any_address, &size) != 0) {
    std::perror("listen");
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << ntohs(address.sin_port)
            << std::endl;

  std::atomic<bool> stopping = false;
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    stopping = true;
    shutdown(listener, SHUT_RDWR);  // wakes accept()
  });
  {
    thread_pool renderers(2);
    thread_pool connections(8);
    while (!stopping) {
      const int fd = accept(listener, nullptr, nullptr);
      if (fd < 0) continue;
      const timeval idle{30, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
      connections.submit([fd, &renderers] { serve(fd, renderers); });
    }
  }  // the pools run their jobs: the open connections end first
  stopper.join();
  close(listener);
}

// run_server.hpp: what the main() of the two Beast servers share, with
// ctxexec and without: the address to listen on, from the command line, and
// running an io_context on two threads until SIGINT or SIGTERM.

#ifndef ADOPT_RUN_SERVER_HPP
#define ADOPT_RUN_SERVER_HPP

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdlib>
#include <thread>

// 127.0.0.1 and the port given as the first argument; 0 (the default)
// picks a free port.
inline boost::asio::ip::tcp::endpoint loopback_endpoint(int argc,
                                                        char* argv[]) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 0;
  return {boost::asio::ip::make_address("127.0.0.1"),
          static_cast<boost::asio::ip::port_type>(port)};
}

// Runs `io` on this thread and one more until SIGINT or SIGTERM, then stops
// it (the handlers still pending are destroyed with `io`).
inline void run_until_stopped(boost::asio::io_context& io) {
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, auto) { io.stop(); });
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
}

#endif  // ADOPT_RUN_SERVER_HPP

// Tests of ctxexec::unwrap: the executor under a context_executor, also
// when it is held by an any_io_executor, and any other executor unchanged.

#include <ctxexec/asio/unwrap.hpp>

#include <ctxexec/asio/context_executor.hpp>
#include "../context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <type_traits>

namespace {

namespace asio = boost::asio;

class UnwrapTest : public ctxexec_test::ContextFixture {};

TEST_F(UnwrapTest, SeesThroughEveryContextExecutorKind) {
  asio::io_context io;
  ctxexec::context ctx;
  auto on_io = ctxexec::make_context_executor(io.get_executor(), ctx);
  static_assert(std::is_same_v<decltype(ctxexec::unwrap(on_io)),
                               asio::io_context::executor_type>);
  EXPECT_TRUE(ctxexec::unwrap(on_io) == io.get_executor());
  EXPECT_TRUE(ctxexec::unwrap(asio::any_io_executor(on_io)) ==
              asio::any_io_executor(io.get_executor()));

  auto strand = asio::make_strand(io);
  auto on_strand = ctxexec::make_context_executor(strand, ctx);
  EXPECT_TRUE(ctxexec::unwrap(on_strand) == strand);
  EXPECT_TRUE(ctxexec::unwrap(asio::any_io_executor(on_strand)) ==
              asio::any_io_executor(strand));

  const asio::any_io_executor erased(io.get_executor());
  auto on_erased = ctxexec::make_context_executor(erased, ctx);
  EXPECT_TRUE(ctxexec::unwrap(asio::any_io_executor(on_erased)) == erased);
}

TEST_F(UnwrapTest, LeavesOtherExecutorsAlone) {
  asio::io_context io;
  asio::thread_pool pool(1);
  EXPECT_TRUE(ctxexec::unwrap(io.get_executor()) == io.get_executor());
  const asio::any_io_executor plain(pool.get_executor());
  EXPECT_TRUE(ctxexec::unwrap(plain) == plain);
  pool.join();
}

}  // namespace

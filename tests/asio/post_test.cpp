// Tests of ctxexec::post, dispatch and defer: the context is captured at the
// call.

#include <ctxexec/asio/post.hpp>

#include <ctxexec/asio.hpp>
#include "../context_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <vector>

namespace {

namespace asio = boost::asio;

class PostTest : public ctxexec_test::ContextFixture {};

ctxexec::context_var<int> task_id("task_id", -1);

TEST_F(PostTest, PostDispatchAndDeferCaptureAtTheCall) {
  asio::io_context io;
  std::vector<int> seen;
  {
    auto g = task_id.scoped_set(21);
    ctxexec::post(io, [&] { seen.push_back(task_id.get()); });
    ctxexec::defer(io.get_executor(), [&] { seen.push_back(task_id.get()); });
    ctxexec::dispatch(io, [&] { seen.push_back(task_id.get()); });
  }
  asio::post(io, [&] { seen.push_back(task_id.get()); });  // plain: root
  io.run();
  EXPECT_EQ(seen, (std::vector<int>{21, 21, 21, -1}));
}

}  // namespace

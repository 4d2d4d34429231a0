// SIGTERM/SIGINT handling, in its own binary: the termination request is process-wide and stays
// set, so no other test may run after it in the same process.
#include <signal.h>

#include "job_test_util.h"
#include "job_wait_test_util.h"

namespace gale {
namespace {

using namespace gale::testing;
using MicroBatchJobTest = Fixture;

TEST_F(MicroBatchJobTest, SigtermStopsGracefullyAndCommitsTheBatchInFlight) {
  auto src = std::make_shared<GrowingSource>(1);
  src->add(0, 10);
  MicroBatch cfg;
  SumPipeline* pipe = nullptr;
  shared->holdBatches = true;
  installSignalHandlers();
  auto job = start(src, cfg, &pipe);
  ASSERT_TRUE(waitFor([&] { return shared->held.count(1) == 1; }));
  ::kill(::getpid(), SIGTERM);
  EXPECT_TRUE(terminationRequested());
  src->add(0, 10);  // must not start another batch
  ASSERT_TRUE(jobHasLooked(job));
  EXPECT_FALSE(job.done());  // waits for the batch in flight
  pipe->release(1);
  ASSERT_TRUE(awaitAnyTermination(5000ms));
  EXPECT_TRUE(job.done());
  auto p = job.progress();
  EXPECT_EQ(p.lastTxid, 1u);
  EXPECT_EQ(p.records, 10u);
  std::lock_guard lk(shared->mutex);
  EXPECT_EQ(shared->dispatched.size(), 1u);
}

}  // namespace
}  // namespace gale

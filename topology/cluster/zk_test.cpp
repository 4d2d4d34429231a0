// The ZooKeeper wrapper and the `gale` client commands against a real ZooKeeper server started
// by the test. Skipped, saying why, when Java or ZooKeeper is not installed.
#include <gtest/gtest.h>

#include "gale/cluster/daemons.h"
#include "gale/cluster/state.h"
#include "test_cluster.h"

namespace gale::cluster {
namespace {

using namespace std::chrono_literals;
using namespace gale::cluster::testing;

class ZooKeeperTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!TestZooKeeper::missing().empty()) return;
    dir_ = "/tmp/gale-zk-test-" + std::to_string(::getpid());
    server_ = new TestZooKeeper(dir_);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(dir_);
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << "no ZooKeeper: " << TestZooKeeper::missing();
  }
  ZkClient::Options options(std::chrono::milliseconds session = 2000ms) const {
    return {server_->servers(), session, 30s};
  }
  // `gale <args>` against the test's server; its exit code. Output lands in `out`.
  int gale(std::vector<std::string> args, std::string& out) const {
    args.insert(args.begin(), {GALE_BIN, "--zookeeper", server_->servers()});
    std::string log = dir_ + "/gale-" + std::to_string(++runs_) + ".log";
    int rc = runToEnd(args, log);
    out = readFile(log);
    return rc;
  }

  static inline std::string dir_;
  static inline TestZooKeeper* server_ = nullptr;
  static inline int runs_ = 0;
};

TEST_F(ZooKeeperTest, AnEphemeralNodeVanishesWithItsSessionAndTheWatcherIsWoken) {
  ZkClient watcher(options());
  watcher.ensurePath("/t1/members");
  auto member = std::make_unique<ZkClient>(options());
  member->create("/t1/members/a", "host-a", NodeKind::Ephemeral);
  EXPECT_EQ(watcher.children("/t1/members", true), std::vector<std::string>{"a"});
  EXPECT_EQ(watcher.get("/t1/members/a"), "host-a");
  uint64_t seen = watcher.changes();
  member.reset();  // the session closes: its ephemeral node goes
  ASSERT_TRUE(watcher.waitForChange(seen, 30s)) << "the children watch did not fire";
  EXPECT_TRUE(watcher.children("/t1/members").empty());
}

TEST_F(ZooKeeperTest, SequentialNodesAreNumberedInCreationOrder) {
  ZkClient zk(options());
  zk.ensurePath("/t2");
  std::string a = zk.create("/t2/c_", "x", NodeKind::EphemeralSequential);
  std::string b = zk.create("/t2/c_", "y", NodeKind::EphemeralSequential);
  EXPECT_LT(a, b);
  EXPECT_EQ(zk.children("/t2"),
            (std::vector<std::string>{a.substr(a.rfind('/') + 1), b.substr(b.rfind('/') + 1)}));
}

TEST_F(ZooKeeperTest, AConditionalWriteFailsAfterSomeoneElseWrote) {
  ZkClient zk(options());
  zk.ensurePath("/t3");
  zk.create("/t3/a", "1", NodeKind::Persistent);
  int version = -1;
  ASSERT_EQ(zk.get("/t3/a", false, &version), "1");
  EXPECT_TRUE(zk.set("/t3/a", "2", version));
  EXPECT_FALSE(zk.set("/t3/a", "3", version)) << "a write with a stale version went through";
  EXPECT_EQ(zk.get("/t3/a"), "2");
  EXPECT_FALSE(zk.set("/t3/missing", "x"));
  EXPECT_FALSE(zk.remove("/t3/missing"));
  try {
    zk.create("/t3/a", "again", NodeKind::Persistent);
    ADD_FAILURE() << "created a node twice";
  } catch (const ZkError& e) {
    EXPECT_TRUE(e.nodeExists());
  }
}

TEST_F(ZooKeeperTest, ALostSessionIsReported) {
  // A child process holds a session with an ephemeral node and is frozen (SIGSTOP: a long pause)
  // until the server expired its session (the node is gone); woken, it must learn of the loss.
  // (Freezing the server instead races: a client may reconnect before the server expires it.)
  std::string servers = server_->servers();
  std::fflush(nullptr);
  pid_t child = ::fork();  // no ZooKeeper client exists in this process now: no threads to lose
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(120);
    ZkClient zk({servers, 1000ms, 30s});
    zk.create("/t4", "", NodeKind::Ephemeral);
    ::raise(SIGSTOP);
    ::_exit(waitFor([&] { return zk.sessionLost(); }, 60s) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status));
  {
    ZkClient other(options());
    EXPECT_TRUE(waitFor([&] { return !other.exists("/t4"); }, 60s)) << "the session never expired";
  }
  ::kill(child, SIGCONT);
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the client did not report its lost session";
}

TEST_F(ZooKeeperTest, NoServerIsAClearErrorAfterTheConnectTimeout) {
  try {
    ZkClient zk({"127.0.0.1:" + std::to_string(freePort()), 2000ms, 300ms});
    ADD_FAILURE() << "connected to nothing";
  } catch (const ZkError& e) {
    EXPECT_NE(std::string(e.what()).find("no ZooKeeper session"), std::string::npos) << e.what();
  }
}

TEST_F(ZooKeeperTest, TheClientCommandsWriteTheTopologyAndRefuseBadRequests) {
  std::string out;
  std::string bin = GALE_WORD_COUNT;
  std::vector<std::string> args{"--input", "in", "--output", "out", "--offsets", "off"};
  std::vector<std::string> submit{"submit", "wc", "--binary", bin, "--workers", "2", "--"};
  submit.insert(submit.end(), args.begin(), args.end());
  EXPECT_EQ(gale(submit, out), 0) << out;
  ZkClient zk(options());
  ClusterOptions c;
  auto spec = parseTopologySpec(zk.get(topologiesPath(c) + "/wc").value_or("{}"));
  EXPECT_EQ(spec.binary, bin);
  EXPECT_EQ(spec.workers, 2);
  EXPECT_EQ(spec.args, args);
  EXPECT_EQ(spec.tasks(), 6) << "lines 1 + split 2 + sink 2 + acker 1, as the program described";

  EXPECT_EQ(gale({"submit", "other", "--binary", "/bin/true"}, out), 1);
  EXPECT_NE(out.find("did not describe its topology"), std::string::npos) << out;
  EXPECT_EQ(gale({"submit", "other", "--binary", bin, "--", "--bad-option"}, out), 1)
      << "the program refused its arguments: nothing to run";

  EXPECT_EQ(gale({"submit", "wc", "--binary", bin}, out), 1);
  EXPECT_NE(out.find("already running"), std::string::npos) << out;
  EXPECT_EQ(gale({"submit", "other", "--binary", "relative/path"}, out), 2);
  EXPECT_NE(out.find("absolute path"), std::string::npos) << out;
  EXPECT_EQ(gale({"submit", "a/b", "--binary", bin}, out), 2);
  EXPECT_EQ(gale({"submit", "x", "--binary", bin, "--workers", "0"}, out), 2);
  EXPECT_EQ(gale({"supervisor", "--id", "s", "--ports", "16000,abc", "--dir", "/tmp"}, out), 2);
  EXPECT_EQ(gale({"supervisor", "--id", "a/b", "--ports", "16000", "--dir", "/tmp"}, out), 2);
  EXPECT_NE(out.find("bad supervisor name"), std::string::npos) << out;
  EXPECT_EQ(gale({"kill", "nothing"}, out), 1);
  EXPECT_NE(out.find("no topology 'nothing'"), std::string::npos) << out;

  EXPECT_EQ(gale({"rebalance", "wc", "--workers", "3"}, out), 0) << out;
  EXPECT_EQ(gale({"deactivate", "wc"}, out), 0) << out;
  spec = parseTopologySpec(*zk.get(topologiesPath(c) + "/wc"));
  EXPECT_EQ(spec.workers, 3);
  EXPECT_FALSE(spec.active);
  EXPECT_EQ(gale({"activate", "wc"}, out), 0) << out;
  EXPECT_TRUE(parseTopologySpec(*zk.get(topologiesPath(c) + "/wc")).active);
  EXPECT_EQ(gale({"list"}, out), 0);
  EXPECT_NE(out.find("topology wc:"), std::string::npos) << out;
  EXPECT_EQ(gale({"kill", "wc"}, out), 0) << out;
  EXPECT_FALSE(zk.exists(topologiesPath(c) + "/wc"));
}

}  // namespace
}  // namespace gale::cluster

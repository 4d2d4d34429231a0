// SharedKeyedState: keyed state in a shared directory, updated under a per-key-group lock, read by
// any task of any parallelism (what a rebalance of a stateful bolt relies on).
#include "gale/cluster/shared_keyed_state.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "temp_dir_for_test.h"

namespace gale::cluster {
namespace {

class SharedKeyedStateTest : public ::testing::Test {
 protected:
  gale::testing::TempDir tmp;
  std::string dir = tmp.path();
};

TEST_F(SharedKeyedStateTest, TasksOfAnotherParallelismReadWhatTheFirstOnesWrote) {
  // Two "tasks" count, then four new ones (other objects, as in new processes) go on counting.
  {
    SharedKeyedState a(dir + "/s"), b(dir + "/s");
    for (int i = 0; i < 3; ++i) a.add("alpha", 1);
    b.add("beta", 5);
  }
  std::vector<std::unique_ptr<SharedKeyedState>> next;
  for (int t = 0; t < 4; ++t) next.push_back(std::make_unique<SharedKeyedState>(dir + "/s"));
  EXPECT_EQ(next[2]->add("alpha", 1), 4);
  EXPECT_EQ(next[3]->add("beta", 1), 6);
  EXPECT_EQ(next[0]->get("alpha"), "4");
  EXPECT_EQ(next[1]->get("gamma"), std::nullopt);
  EXPECT_EQ(next[1]->readAll(), (std::map<std::string, std::string>{{"alpha", "4"}, {"beta", "6"}}));
}

TEST_F(SharedKeyedStateTest, ProcessesUpdatingTheSameKeysAtOnceLoseNoUpdate) {
  // Two key groups for 8 keys: every group is contended by every process.
  const SharedKeyedState::Options two{2, false};
  const int processes = 4, rounds = 150;
  std::vector<pid_t> children;
  for (int p = 0; p < processes; ++p) {
    pid_t pid = ::fork();
    if (pid == 0) {
      try {
        SharedKeyedState s(dir + "/s", two);
        for (int r = 0; r < rounds; ++r)
          for (int k = 0; k < 8; ++k) s.add("k" + std::to_string(k), 1);
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  SharedKeyedState s(dir + "/s", two);
  for (int k = 0; k < 8; ++k)
    EXPECT_EQ(s.get("k" + std::to_string(k)), std::to_string(processes * rounds)) << k;
}

TEST_F(SharedKeyedStateTest, KeysAndValuesOfAnyBytesRoundTrip) {
  SharedKeyedState s(dir + "/s", {1, true});
  std::string odd("a b\n\0c", 6);
  s.update(odd, [](const std::optional<std::string>& old) {
    EXPECT_FALSE(old);
    return std::string("x\ny 1 2\n");
  });
  s.update("", [](const std::optional<std::string>&) { return std::string(); });
  EXPECT_EQ(s.get(odd), "x\ny 1 2\n");
  EXPECT_EQ(s.get(""), "");
  EXPECT_EQ(s.readAll().size(), 2u);
}

TEST_F(SharedKeyedStateTest, ADamagedGroupFileIsReportedAndLeftAsItIs) {
  SharedKeyedState s(dir + "/s", {1, false});
  s.add("alpha", 2);
  std::string file = dir + "/s/g0";
  std::string text;
  {
    std::ifstream in(file);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(file, std::ios::trunc) << text.substr(0, text.size() - 3);  // cut short
  try {
    s.add("alpha", 1);
    FAIL() << "a damaged file was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("damaged key group file " + file), std::string::npos)
        << e.what();
  }
  std::ifstream in(file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), text.substr(0, text.size() - 3));
  std::ofstream(file, std::ios::trunc) << "something else\n";
  EXPECT_THROW(s.get("alpha"), std::runtime_error);
}

TEST_F(SharedKeyedStateTest, AnotherKeyGroupCountOrANonCountIsRefused) {
  SharedKeyedState s(dir + "/s", {8, false});
  s.update("name", [](const std::optional<std::string>&) { return std::string("twelve"); });
  try {
    SharedKeyedState other(dir + "/s", {16, false});
    FAIL() << "another key group count was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("key-groups '8'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SharedKeyedState(dir + "/t", {0, false}), std::runtime_error);
  EXPECT_THROW(s.add("name", 1), std::runtime_error);
  EXPECT_EQ(s.get("name"), "twelve");
}

}  // namespace
}  // namespace gale::cluster

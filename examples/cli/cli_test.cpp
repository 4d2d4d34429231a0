// Runs every example and tool with --help, with bad values and with good ones: --help exits 0
// and lists the options, a bad command line exits 2 with a message naming the option (it used to
// abort on an uncaught exception: `microbatch_word_count --sentences abc`), good values reach
// the program.
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "run_program_for_test.h"

namespace gale::examples {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using gale::testing::ProgramRun;
using gale::testing::runProgram;

struct Program {
  const char* name;
  std::string bin;
  std::vector<std::string> options;  // every option the docs, tests and README use
  bool ui = true;                    // takes --ui and --ui-token (docs/ui.md says which do not)
};

const std::vector<Program>& programs() {
  static const std::vector<Program> all = {
      {"word_count", GALE_BIN_WORD_COUNT,
       {"--sentences", "--no-acking", "--bench", "--latency", "--socket", "--ui-cost", "--rounds"}},
      {"windowed_word_count", GALE_BIN_WINDOWED_WORD_COUNT, {"--sentences", "--update"}},
      {"microbatch_word_count", GALE_BIN_MICROBATCH_WORD_COUNT,
       {"--checkpoint", "--sentences", "--bench", "--seconds", "--rate"}},
      {"window_bench", GALE_BIN_WINDOW_BENCH,
       {"--events", "--keys", "--per-key-per-sec", "--disorder-ms"}, false},
      {"window_runtime_bench", GALE_BIN_WINDOW_RUNTIME_BENCH,
       {"--events", "--keys", "--step-us", "--disorder-ms", "--rate", "--rate-seconds", "--acking",
        "--only"}, false},
      {"join_bench", GALE_BIN_JOIN_BENCH,
       {"--events", "--keys", "--step-us", "--disorder-us", "--range-us", "--batch-records",
        "--micro-batch-only", "--only"}, false},
      {"gale-compare", GALE_BIN_GALE_COMPARE,
       {"--pipeline", "--loads", "--intervals", "--no-continuous", "--seconds", "--warmup",
        "--window", "--watermark-delay", "--acking", "--partitions", "--parallelism",
        "--check-events", "--out"}},
      {"quickstart", GALE_BIN_QUICKSTART, {"continuous", "micro-batch"}},
      {"hashtag_count", GALE_BIN_HASHTAG_COUNT, {"--tweets", "--micro-batch"}},
      {"stateful_network_word_count", GALE_BIN_STATEFUL_NETWORK_WORD_COUNT,
       {"--sentences", "--micro-batch"}},
      {"kafka_json_transform", GALE_BIN_KAFKA_JSON_TRANSFORM, {"--bootstrap"}},
      {"pos_sales", GALE_BIN_POS_SALES, {"micro-batch", "continuous"}},
      {"login_join", GALE_BIN_LOGIN_JOIN, {"--users"}},
      {"ysb_kafka_redis", GALE_BIN_YSB_KAFKA_REDIS, {"--events", "--redis"}},
      {"checkpoint_bench", GALE_BIN_CHECKPOINT_BENCH,
       {"--state-mb", "--rate", "--seconds", "--interval-ms", "--no-sync"}, false},
  };
  return all;
}

TEST(ExampleCommandLines, HelpListsEveryOptionAndExitsZeroInEveryProgram) {
  for (const auto& p : programs()) {
    for (const char* help : {"--help", "-h"}) {
      ProgramRun r = runProgram(p.bin, help);
      EXPECT_EQ(r.exitCode, 0) << p.name << " " << help << "\n" << r.out;
      for (const auto& o : p.options) EXPECT_THAT(r.out, HasSubstr(o)) << p.name;
    }
  }
}

struct Bad {
  const char* program;
  const char* args;
  const char* message;  // part of what it must say
};

TEST(ExampleCommandLines, ABadValueGetsAMessageNamingItAndExitCodeTwoNotAnAbort) {
  const Bad cases[] = {
      {"microbatch_word_count", "--sentences abc", "--sentences: 'abc' is not an integer"},
      {"microbatch_word_count", "--sentences 99999999999999999999", "out of range"},
      {"microbatch_word_count", "--seconds -1 --bench", "--seconds: must be > 0"},
      {"microbatch_word_count", "--rate fast --bench", "--rate: 'fast' is not a number"},
      {"microbatch_word_count", "--checkpoint", "--checkpoint"},
      {"word_count", "--sentences 0", "--sentences: must be >= 1"},
      {"word_count", "--socket localhost", "--socket: wants host:port"},
      {"word_count", "--socket localhost:70000", "port must be 1..65535"},
      {"word_count", "--socket localhost:9999 --bench", "excludes"},
      {"word_count", "--sentence 5", "--sentence"},
      {"word_count", "--rounds 2", "--rounds requires --ui-cost"},
      {"word_count", "--ui-cost --bench", "excludes"},
      {"windowed_word_count", "--sentences 1e3", "--sentences: '1e3' is not an integer"},
      {"windowed_word_count", "5000", "5000"},  // a value without its option
      {"window_bench", "--keys -3", "--keys: must be >= 1"},
      {"window_bench", "--keys 1 --per-key-per-sec 1", "at least 10 events per second"},
      {"window_bench", "--disorder-ms x", "--disorder-ms: 'x' is not an integer"},
      {"window_runtime_bench", "--acking 2", "--acking: must be >= 0 and <= 1"},
      {"window_runtime_bench", "--only both", "--only"},
      {"window_runtime_bench", "--step-us 0", "--step-us: must be >= 1"},
      {"gale-compare", "--loads 10Q", "bad load '10Q'"},
      {"gale-compare", "--intervals 5parsecs", "bad interval '5parsecs'"},
      {"gale-compare", "--window 0", "--window must be positive"},
      {"gale-compare", "--acking maybe", "--acking"},
      {"gale-compare", "--partitions 1.5", "--partitions: '1.5' is not an integer"},
      {"gale-compare", "--seconds", "--seconds"},
      {"gale-compare", "--guarantee exactly-once --acking on", "excludes"},
      {"gale-compare", "--guarantee twice", "--guarantee"},
      {"gale-compare", "--checkpoint-interval 0", "--checkpoint-interval must be positive"},
      {"gale-compare", "--no-continuous --intervals continuous --pipeline nope", "unknown pipeline"},
      {"checkpoint_bench", "--state-mb 0", "--state-mb: must be > 0"},
      {"checkpoint_bench", "--interval-ms soon", "--interval-ms: 'soon' is not an integer"},
      {"quickstart", "batch", "batch not in {continuous,micro-batch}"},
      {"quickstart", "micro-batch extra", "extra"},
      {"join_bench", "--keys 0", "--keys: must be >= 1"},
      {"join_bench", "--range-us x", "--range-us: 'x' is not an integer"},
      {"pos_sales", "batch", "batch not in {micro-batch,continuous}"},
      {"login_join", "--users /nonexistent/users.csv", "--users"},
      {"ysb_kafka_redis", "--events 0", "--events"},
  };
  for (const auto& c : cases) {
    std::string bin;
    for (const auto& p : programs())
      if (std::string(p.name) == c.program) bin = p.bin;
    ASSERT_FALSE(bin.empty()) << c.program;
    ProgramRun r = runProgram(bin, c.args);
    EXPECT_EQ(r.exitCode, 2) << c.program << " " << c.args << "\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.message)) << c.program << " " << c.args;
    EXPECT_THAT(r.out, HasSubstr(std::string(c.program) + ": ")) << "names the program";
    EXPECT_THAT(r.out, HasSubstr("--help")) << "points to --help";
  }
}

// The values parsed are the values used: small runs whose output shows them.
TEST(ExampleCommandLines, GoodValuesReachTheProgram) {
  ProgramRun wc = runProgram(GALE_BIN_WORD_COUNT, "--sentences 1500 --no-acking");
  EXPECT_EQ(wc.exitCode, 0) << wc.out;
  EXPECT_THAT(wc.out, HasSubstr("1500 sentences"));
  EXPECT_THAT(wc.out, HasSubstr("equal to a direct count of the same input: yes"));

  ProgramRun wwc = runProgram(GALE_BIN_WINDOWED_WORD_COUNT, "--sentences 3000 --update");
  EXPECT_EQ(wwc.exitCode, 0) << wwc.out;
  EXPECT_THAT(wwc.out, HasSubstr("3000 sentences (3 s of event time)"));

  auto chk = std::filesystem::temp_directory_path() /
             ("gale-cli-test-" + std::to_string(::getpid()) + ".chk");
  std::filesystem::remove_all(chk);
  ProgramRun mb = runProgram(GALE_BIN_MICROBATCH_WORD_COUNT, "--sentences 700 --checkpoint " + chk.string());
  EXPECT_EQ(mb.exitCode, 0) << mb.out;
  EXPECT_THAT(mb.out, HasSubstr("700 sentences in this run"));
  EXPECT_TRUE(std::filesystem::exists(chk)) << "--checkpoint was not used";
  std::filesystem::remove_all(chk);

  ProgramRun wb = runProgram(GALE_BIN_WINDOW_BENCH, "--events 5000 --keys 10 --per-key-per-sec 10 --disorder-ms 0");
  EXPECT_EQ(wb.exitCode, 0) << wb.out;
  EXPECT_THAT(wb.out, HasSubstr("10 keys, 100 events/s of event time, disorder 0 ms"));
  EXPECT_THAT(wb.out, HasSubstr("events        5000 in"));
}

// Every program with `ui` takes --ui PORT and --ui-token, and refuses a bad port.
TEST(ExampleCommandLines, EveryProgramTakesUiAndUiToken) {
  for (const auto& p : programs()) {
    if (!p.ui) continue;  // see docs/ui.md
    ProgramRun help = runProgram(p.bin, "--help");
    EXPECT_THAT(help.out, HasSubstr("--ui")) << p.name;
    EXPECT_THAT(help.out, HasSubstr("--ui-token")) << p.name;
    ProgramRun bad = runProgram(p.bin, "--ui 70000");
    EXPECT_EQ(bad.exitCode, 2) << p.name << "\n" << bad.out;
    EXPECT_THAT(bad.out, HasSubstr("--ui")) << p.name;
  }
}

// Runs `bin args --ui 0`: waits until it says its job ended and where its UI is, reads the UI's
// job list, then interrupts it (the UI stays up until Ctrl-C). Returns the list, "" on failure.
struct UiRun {
  std::string out, summary;
  int exitCode = -1;
};
UiRun runWithUi(const std::string& bin, const std::string& args) {
  UiRun r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    std::string cmd = "exec " + bin + " " + args + " --ui 0";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  const std::string marker = "the web UI stays at ";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  size_t at;
  while ((at = r.out.find(marker)) == std::string::npos ||
         r.out.find('\n', at) == std::string::npos) {
    pollfd pfd{fds[0], POLLIN, 0};
    if (std::chrono::steady_clock::now() > deadline || poll(&pfd, 1, 1000) < 0) break;
    char buf[4096];
    ssize_t n = pfd.revents ? read(fds[0], buf, sizeof buf) : 0;
    if (n < 0 || (pfd.revents && n == 0)) break;
    r.out.append(buf, static_cast<size_t>(n));
  }
  if (at != std::string::npos) {
    size_t from = at + marker.size();
    std::string url = r.out.substr(from, r.out.find(' ', from) - from);
    ProgramRun curl = runProgram("curl -s --max-time 10", url + "api/v1/topology/summary");
    r.summary = curl.out;
  }
  kill(pid, SIGINT);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(ExampleCommandLines, WithUiEveryExampleShowsItsJobsAndServesThemUntilInterrupted) {
  if (std::system("command -v curl >/dev/null 2>&1") != 0) GTEST_SKIP() << "curl not found";
  auto chk = std::filesystem::temp_directory_path() /
             ("gale-cli-ui-test-" + std::to_string(::getpid()) + ".chk");
  std::filesystem::remove_all(chk);
  struct Case {
    std::string bin, args;
    std::vector<std::string> jobs;  // names in the UI's job list
  };
  std::vector<Case> cases = {
      {GALE_BIN_WORD_COUNT, "--sentences 2000", {"\"word count\""}},
      {GALE_BIN_WINDOWED_WORD_COUNT, "--sentences 2000", {"\"windowed word count\""}},
      {GALE_BIN_MICROBATCH_WORD_COUNT, "--sentences 500 --checkpoint " + chk.string(),
       {"\"microbatch_word_count\""}},
      {GALE_BIN_QUICKSTART, "continuous", {"\"quickstart\""}},
      {GALE_BIN_HASHTAG_COUNT, "--tweets 600", {"\"hashtag-count\""}},
      {GALE_BIN_STATEFUL_NETWORK_WORD_COUNT, "--sentences 200 --rate 0",
       {"\"stateful-word-count\""}},
      {GALE_BIN_KAFKA_JSON_TRANSFORM, "continuous", {"\"to kafka\"", "\"to files\""}},
      {GALE_BIN_POS_SALES, "micro-batch", {"\"pos_sales\""}},
      {GALE_BIN_POS_SALES, "continuous", {"\"pos_sales\""}},
      {GALE_BIN_LOGIN_JOIN, "micro-batch", {"\"login_join\""}},
      {GALE_BIN_LOGIN_JOIN, "continuous", {"\"login_join\""}},
  };
  // It starts its own redis-server (its ctest test skips without one, too).
  if (std::system("command -v redis-server >/dev/null 2>&1") == 0) {
    for (const char* mode : {"micro-batch", "continuous"})
      cases.push_back({GALE_BIN_YSB_KAFKA_REDIS, mode + std::string(" --events 2000"),
                       {"\"ysb_kafka_redis\""}});
  }
  for (const auto& c : cases) {
    UiRun r = runWithUi(c.bin, c.args);
    EXPECT_EQ(r.exitCode, 0) << c.bin << "\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr("web UI: http://127.0.0.1:")) << c.bin;
    for (const auto& job : c.jobs) {
      EXPECT_THAT(r.summary, HasSubstr("\"name\":" + job)) << c.bin << "\n" << r.out;
    }
    EXPECT_THAT(r.summary, HasSubstr("\"status\":\"FINISHED\"")) << c.bin;
  }
  std::filesystem::remove_all(chk);
}

}  // namespace
}  // namespace gale::examples

// The fixture of tests that run micro-batch jobs (batch/, ui/, tests/): a directory of their own
// per test (checkpoints, scratch files), and the jobs they ran forgotten afterwards.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "gale/batch/microbatch.h"

namespace gale::testing {

struct CheckpointDirTest : ::testing::Test {
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir = std::filesystem::temp_directory_path() /
          ("gale-" + std::string(test->test_suite_name()) + "-" + std::to_string(::getpid()) +
           "-" + test->name());
    std::filesystem::remove_all(dir);
  }
  void TearDown() override {
    resetTerminated();  // awaitAnyTermination() of the next test sees only its own jobs
    if (!dir.empty()) std::filesystem::remove_all(dir);  // empty: skipped before SetUp() ran
  }
  std::filesystem::path dir;
};

}  // namespace gale::testing

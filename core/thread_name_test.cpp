#include "gale/core/thread_name.h"

#include <pthread.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace gale {
namespace {

std::string nameOf(pthread_t t) {
  char buf[64] = {};
  EXPECT_EQ(::pthread_getname_np(t, buf, sizeof buf), 0);
  return buf;
}

TEST(ThreadName, AThreadNamesItselfAndALongNameIsCutToTheKernelsFifteenCharacters) {
  std::string shortName, longName;
  bool shortOk = false, longOk = false;
  std::thread([&] {
    shortOk = nameThisThread("gale-test");
    shortName = nameOf(::pthread_self());
    longOk = nameThisThread("gale-a-name-longer-than-fifteen");
    longName = nameOf(::pthread_self());
  }).join();
  EXPECT_TRUE(shortOk);
  EXPECT_EQ(shortName, "gale-test");
  EXPECT_TRUE(longOk);
  EXPECT_EQ(longName, "gale-a-name-lon");
  EXPECT_EQ(longName.size(), kThreadNameMax);
}

}  // namespace
}  // namespace gale

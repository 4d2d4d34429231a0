// Runs a program (a gale tool or example) the way a user's shell would, for the tests of
// command-line programs.
#pragma once

#include <stdio.h>
#include <sys/wait.h>

#include <string>

namespace gale::testing {

struct ProgramRun {
  int exitCode = -1;  // -1: killed by a signal (or not started)
  std::string out;    // stdout and stderr
};

// `bin args` through the shell, stderr into stdout.
inline ProgramRun runProgram(const std::string& bin, const std::string& args) {
  ProgramRun r;
  std::string cmd = bin + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace gale::testing

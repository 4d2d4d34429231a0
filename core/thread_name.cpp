#include "gale/core/thread_name.h"

#include <pthread.h>

#include <cstring>
#include <string>

#include "gale/core/log.h"

namespace gale {

bool nameThisThread(std::string_view name) {
  std::string cut(name.substr(0, kThreadNameMax));
  int rc = ::pthread_setname_np(::pthread_self(), cut.c_str());
  if (rc == 0) return true;
  logWarn("could not name thread '" + cut + "': " + std::strerror(rc));
  return false;
}

}  // namespace gale

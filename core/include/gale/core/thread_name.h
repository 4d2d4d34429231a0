// The name of the calling thread as perf, top, gdb and /proc/<pid>/task/<tid>/comm show it.
// Every thread gale starts names itself first thing, so captures say which thread is which
// (`gale-task-3`, `gale-acker-5`, `gale-mb-job`, ...) instead of the program's name on all.
#pragma once

#include <string_view>

namespace gale {

// The kernel keeps at most this many characters of a thread's name.
inline constexpr size_t kThreadNameMax = 15;

// Names the calling thread `name`, cut to kThreadNameMax characters (the kernel rejects longer
// names instead of cutting them). Returns false, and logs a warning, if the kernel refused; the
// thread then keeps the name it inherited, which harms nothing but the captures' readability.
bool nameThisThread(std::string_view name);

}  // namespace gale

// For allocation tests: replaces the global operator new of the test binary that includes this
// header (in exactly one of its .cpp files) with one that counts its calls, from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace gale::examples {
inline std::atomic<uint64_t> gHeapAllocations{0};
}  // namespace gale::examples

void* operator new(std::size_t n) {
  gale::examples::gHeapAllocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

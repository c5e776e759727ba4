#include "huge_pages.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include "errors.h"

namespace qf {

namespace {

constexpr size_t kHugePage = 2 << 20;
// Above this a Buffer is not worth the check (and V8 limits a Buffer to 4 GiB on 64-bit anyway).
constexpr double kMaxBytes = 4.0 * 1024 * 1024 * 1024;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Runs on the Buffer's own thread (Node-API defers buffer finalizers to it), so V8's accounting may be adjusted.
void Unmap(Napi::Env env, void* data, size_t* length) {
  munmap(data, *length);
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(*length));
  delete length;
}

}  // namespace

Napi::Value HugePageBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowUsage(env, "hugePageBuffer(bytes): a number expected", true);
  double asked = info[0].As<Napi::Number>().DoubleValue();
  if (!(asked >= 1 && asked <= kMaxBytes) || asked != static_cast<double>(static_cast<size_t>(asked))) {
    ThrowUsage(env, "hugePageBuffer(bytes): a whole number of bytes from 1 to 4 GiB expected", true);
  }
  size_t bytes = static_cast<size_t>(asked);
  size_t length = RoundUp(bytes, kHugePage);
  // Over-allocate by one huge page and trim both ends, so the kept range starts on a 2 MiB boundary: THP backs
  // only aligned 2 MiB extents.
  size_t reserved = length + kHugePage;
  void* raw = mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) ThrowErrno(env, errno, "mmap(" + std::to_string(reserved) + " bytes)", "out of memory?");
  uintptr_t start = RoundUp(reinterpret_cast<uintptr_t>(raw), kHugePage);
  uintptr_t end = start + length;
  uintptr_t rawEnd = reinterpret_cast<uintptr_t>(raw) + reserved;
  if (start > reinterpret_cast<uintptr_t>(raw)) munmap(raw, start - reinterpret_cast<uintptr_t>(raw));
  if (rawEnd > end) munmap(reinterpret_cast<void*>(end), rawEnd - end);
  void* data = reinterpret_cast<void*>(start);
  madvise(data, length, MADV_HUGEPAGE);  // EINVAL where THP is not built in: ordinary pages then
  // V8 does not see memory it did not allocate: told, it collects a dead block as it would a Buffer of that size.
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(length));
  return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(data), bytes, Unmap, new size_t(length));
}

}  // namespace qf

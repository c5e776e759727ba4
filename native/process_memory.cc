// readProcessMemory(pid, requests, out): many reads of another process's memory in few process_vm_readv calls.
// Generic (knows nothing of Go): callers batch the structures they want and get one result per request.
#include <errno.h>
#include <napi.h>
#include <sys/uio.h>

#include <algorithm>
#include <string>
#include <vector>

#include "errors.h"
#include "process_memory.h"

namespace qf {

namespace {

constexpr size_t kIovMax = 1024;  // UIO_MAXIOV

}  // namespace

// requests: Float64Array [addr0, len0, addr1, len1, ...]; request i's bytes go to out at the sum of the lengths
// before it. Returns an Int32Array: bytes read for each request (its length when whole, less when the remote range
// ends in unmapped memory, 0 when none of it is mapped). Throws when the process is gone (ESRCH) or may not be
// read (EPERM), naming the pid.
Napi::Value ReadProcessMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsBuffer())
    ThrowUsage(env, "readProcessMemory(pid, requests: Float64Array, out: Buffer) expected", true);
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array) ThrowUsage(env, "readProcessMemory: requests must be a Float64Array", true);
  Napi::Float64Array reqs = ta.As<Napi::Float64Array>();
  Napi::Buffer<uint8_t> out = info[2].As<Napi::Buffer<uint8_t>>();
  size_t n = reqs.ElementLength() / 2;
  std::vector<size_t> offsets(n + 1, 0);
  for (size_t i = 0; i < n; i++) {
    double len = reqs[2 * i + 1];
    if (!(len >= 0) || len > (1 << 30)) ThrowUsage(env, "readProcessMemory: request " + std::to_string(i) + " has a bad length");
    offsets[i + 1] = offsets[i] + static_cast<size_t>(len);
  }
  if (offsets[n] > out.Length()) ThrowUsage(env, "readProcessMemory: out is smaller than the requests' total length");
  Napi::Int32Array result = Napi::Int32Array::New(env, n);
  std::vector<iovec> local(kIovMax), remote(kIovMax);
  size_t next = 0;
  while (next < n) {
    size_t count = std::min(kIovMax, n - next);
    for (size_t k = 0; k < count; k++) {
      size_t i = next + k;
      local[k] = {out.Data() + offsets[i], offsets[i + 1] - offsets[i]};
      remote[k] = {reinterpret_cast<void*>(static_cast<uintptr_t>(reqs[2 * i])), offsets[i + 1] - offsets[i]};
    }
    ssize_t got = process_vm_readv(pid, local.data(), count, remote.data(), count, 0);
    if (got < 0) {
      int err = errno;
      if (err == EFAULT || err == ENOMEM) {  // the first request is not mapped: it reads nothing, go on after it
        result[next++] = 0;
        continue;
      }
      if (err == ESRCH) ThrowErrno(env, err, "process_vm_readv(pid " + std::to_string(pid) + ")", "the process has exited");
      ThrowErrno(env, err, "process_vm_readv(pid " + std::to_string(pid) + ")",
                 err == EPERM ? "reading another process's memory needs CAP_SYS_PTRACE" : "");
    }
    // Whole requests first; the one the kernel stopped in is partial (it stops at the first unmapped page).
    size_t left = static_cast<size_t>(got);
    size_t k = 0;
    for (; k < count; k++) {
      size_t len = offsets[next + k + 1] - offsets[next + k];
      if (left < len) break;
      result[next + k] = static_cast<int32_t>(len);
      left -= len;
    }
    if (k < count) result[next + k++] = static_cast<int32_t>(left);
    next += k;
  }
  return result;
}

}  // namespace qf

#pragma once

#include <napi.h>

namespace qf {

// readProcessMemory(pid, requests: Float64Array, out: Buffer) -> Int32Array (see process_memory.cc).
Napi::Value ReadProcessMemory(const Napi::CallbackInfo& info);

}  // namespace qf

#pragma once

#include <napi.h>

namespace qf {

// hugePageBuffer(bytes) -> Buffer: zero-filled anonymous memory, 2 MiB-aligned and marked MADV_HUGEPAGE, unmapped when
// the Buffer is collected. Each fresh 4 KiB page costs a fault; on the Firecracker guests this project runs on a fault
// costs ~12 µs, so reading an 18 MiB table into malloc'd memory took 65 ms of which 3 were the copy. A transparent
// huge page is one fault per 2 MiB (where THP is off, the memory is ordinary pages: correct, only slower).
Napi::Value HugePageBuffer(const Napi::CallbackInfo& info);

}  // namespace qf

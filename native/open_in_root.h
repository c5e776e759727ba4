#pragma once

#include <napi.h>

namespace qf {

// openInRoot(root: string, path: string) -> fd (see open_in_root.cc).
Napi::Value OpenInRoot(const Napi::CallbackInfo& info);
// closeDescriptor(fd: number): closes a descriptor openInRoot gave.
Napi::Value CloseDescriptor(const Napi::CallbackInfo& info);

}  // namespace qf

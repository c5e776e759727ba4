// Errors thrown to JS: Error with errno (positive, as in os.constants.errno), code ('EPERM'),
// syscall (the libbpf/kernel call that failed) and, when libbpf said something, log.
#pragma once

#include <napi.h>

#include <string>

namespace qf {

// What libbpf printed on this thread since the last ResetLibbpfLog() (warnings, verifier output).
void InstallLibbpfPrint();
void ResetLibbpfLog();
std::string LibbpfLog();

// Name of an errno value: "EPERM", "ENOTSUPP", "LIBBPF_ERRNO__VERIFY", ...
std::string ErrnoCode(int err);
std::string ErrnoMessage(int err);

// Throws a JS Error: "<what>: <strerror(err)>[ — <hint>]" followed by `detail`, or by the last lines
// libbpf printed when detail is empty. err may be negative (libbpf style). err.log gets libbpf's output.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& what, const std::string& hint = "",
                             const std::string& detail = "");

// Last `lines` lines of s.
std::string TailLines(const std::string& s, int lines);

// Throws a plain usage error (TypeError when type is true), code 'ERR_QF_BPF_USAGE'.
[[noreturn]] void ThrowUsage(Napi::Env env, const std::string& message, bool type = false);

// Hint for capability problems, shared by every bpf()/perf_event_open() call site.
std::string CapabilityHint();

}  // namespace qf

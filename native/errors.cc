#include "errors.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace qf {

namespace {

thread_local std::string tls_log;
constexpr size_t kMaxLog = 64 * 1024;
bool debug_print = false;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  if (debug_print) {
    vfprintf(stderr, fmt, copy);
  }
  va_end(copy);
  if (level == LIBBPF_DEBUG) return 0;
  // Whole messages: libbpf prints a verifier log as one message, often far over any fixed buffer.
  va_list again;
  va_copy(again, args);
  int n = vsnprintf(nullptr, 0, fmt, args);
  if (n > 0) {
    std::string msg(static_cast<size_t>(n), '\0');
    vsnprintf(msg.data(), msg.size() + 1, fmt, again);
    tls_log += msg;
    if (tls_log.size() > kMaxLog) tls_log.erase(0, tls_log.size() - kMaxLog);
  }
  va_end(again);
  return 0;
}

const char* const kLibbpfCodes[] = {
    "LIBBPF_ERRNO__LIBELF", "LIBBPF_ERRNO__FORMAT", "LIBBPF_ERRNO__KVERSION", "LIBBPF_ERRNO__ENDIAN",
    "LIBBPF_ERRNO__INTERNAL", "LIBBPF_ERRNO__RELOC", "LIBBPF_ERRNO__LOAD", "LIBBPF_ERRNO__VERIFY",
    "LIBBPF_ERRNO__PROG2BIG", "LIBBPF_ERRNO__KVER", "LIBBPF_ERRNO__PROGTYPE", "LIBBPF_ERRNO__WRNGPID",
    "LIBBPF_ERRNO__INVSEQ", "LIBBPF_ERRNO__NLPARSE",
};

}  // namespace

std::string TailLines(const std::string& s, int lines) {
  size_t end = s.size();
  while (end > 0 && s[end - 1] == '\n') end--;
  size_t pos = end;
  int n = 0;
  while (pos > 0) {
    if (s[pos - 1] == '\n' && ++n == lines) break;
    pos--;
  }
  return s.substr(pos, end - pos);
}

void InstallLibbpfPrint() {
  const char* d = getenv("QUIETFLAME_LIBBPF_DEBUG");
  debug_print = d != nullptr && *d != '\0' && strcmp(d, "0") != 0;
  libbpf_set_print(LibbpfPrint);
}

void ResetLibbpfLog() { tls_log.clear(); }
std::string LibbpfLog() { return tls_log; }

std::string ErrnoCode(int err) {
  if (err < 0) err = -err;
  if (err >= __LIBBPF_ERRNO__START && err < __LIBBPF_ERRNO__END) {
    return kLibbpfCodes[err - __LIBBPF_ERRNO__START];
  }
  if (err == 524) return "ENOTSUPP";  // kernel-internal, leaks out of bpf()
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

std::string ErrnoMessage(int err) {
  if (err < 0) err = -err;
  if (err == 524) return "Operation not supported (ENOTSUPP)";
  char buf[256];
  if (libbpf_strerror(err, buf, sizeof(buf)) == 0) return buf;
  return strerror(err);
}

std::string CapabilityHint() {
  if (geteuid() == 0) {
    return "the agent runs as uid 0 but lacks CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN in this namespace "
           "(or kernel lockdown/seccomp/LSM forbids bpf()); run it privileged or grant CAP_BPF and CAP_PERFMON";
  }
  return "the agent needs CAP_BPF and CAP_PERFMON (or root)";
}

void ThrowErrno(Napi::Env env, int err, const std::string& what, const std::string& hint, const std::string& detail) {
  if (err < 0) err = -err;
  if (err == 0) err = EINVAL;
  std::string msg = what + ": " + ErrnoMessage(err);
  if (!hint.empty()) msg += " \xE2\x80\x94 " + hint;  // em dash
  std::string log = tls_log;
  if (!detail.empty()) {
    msg += "\n" + detail;
  } else if (!log.empty()) {
    std::string tail = TailLines(log, 12);
    if (!tail.empty()) msg += "\n" + tail;
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, ErrnoCode(err)));
  e.Set("syscall", Napi::String::New(env, what));
  if (!log.empty()) e.Set("log", Napi::String::New(env, log));
  tls_log.clear();
  throw e;
}

void ThrowUsage(Napi::Env env, const std::string& message, bool type) {
  Napi::Error e = type ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_QF_BPF_USAGE"));
  throw e;
}

}  // namespace qf

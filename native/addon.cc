// quietflame's libbpf binding: module entry point and the few free functions.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <napi.h>
#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/mount.h>

#include "bpf_object.h"
#include "errors.h"
#include "huge_pages.h"
#include "inflater.h"
#include "open_in_root.h"
#include "process_memory.h"
#include "util.h"

namespace qf {

Napi::Object Init(Napi::Env env, Napi::Object exports);

namespace {

// mount(source, target, fstype): mount(2) with no flags/data, for tracefs and bpffs.
Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; i++) {
    if (info.Length() <= i || !info[i].IsString()) ThrowUsage(env, "mount(source, target, fstype): strings expected", true);
  }
  std::string source = info[0].As<Napi::String>(), target = info[1].As<Napi::String>(),
              fstype = info[2].As<Napi::String>();
  if (mount(source.c_str(), target.c_str(), fstype.c_str(), 0, nullptr) != 0) {
    int err = errno;
    std::string hint;
    if (err == EPERM) hint = "mounting needs CAP_SYS_ADMIN in the host mount namespace; mount " + fstype + " at " + target + " before starting the agent";
    if (err == ENOENT) hint = target + " does not exist";
    if (err == ENODEV) hint = "this kernel has no " + fstype + " filesystem";
    if (err == EBUSY) hint = "something is already mounted at " + target;
    ThrowErrno(env, err, "mount(" + fstype + " on " + target + ")", hint);
  }
  return env.Undefined();
}

// enableRunTimeStats() -> fd: run_time_ns/run_cnt of every program are counted while it is open
// (BPF_ENABLE_STATS; the same as kernel.bpf_stats_enabled=1, undone when the fd closes).
Napi::Value EnableRunTimeStats(const Napi::CallbackInfo& info) {
  ResetLibbpfLog();
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) {
    int err = errno;
    ThrowErrno(info.Env(), err, "bpf_enable_stats(BPF_STATS_RUN_TIME)",
               err == EPERM ? "needs CAP_SYS_ADMIN" : err == EINVAL ? "kernel older than 5.8" : "");
  }
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value PossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), n, "libbpf_num_possible_cpus");
  return Napi::Number::New(info.Env(), n);
}

Napi::Value OnlineCpuList(const Napi::CallbackInfo& info) {
  std::vector<int> cpus = OnlineCpus();
  Napi::Array out = Napi::Array::New(info.Env(), cpus.size());
  for (size_t i = 0; i < cpus.size(); i++) out.Set(static_cast<uint32_t>(i), cpus[i]);
  return out;
}

// Hands the free pages inside glibc's heaps back to the kernel: after a thread that read big tables has ended, its
// arena's free chunks would otherwise stay resident. True when some memory was released.
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// setThreadName(name): the calling thread's name (comm, 15 bytes) as `top -H` and /proc/PID/task/TID/comm show it,
// so a worker thread's CPU can be told from V8's own threads, which are all "node".
Napi::Value SetThreadName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowUsage(env, "setThreadName(name): a string expected", true);
  std::string name = info[0].As<Napi::String>();
  int err = pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (err != 0) ThrowErrno(env, err, "pthread_setname_np(" + name + ")", "");
  return env.Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef __GLIBC__
  // The agent reads and frees symbol tables of many MiB. By default glibc raises its mmap threshold to each such
  // block freed, so later ones come from its heaps and stay there (and each thread gets an arena): keep it fixed.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  mallopt(M_ARENA_MAX, 2);
#endif
  InstallLibbpfPrint();
  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("Inflater", Inflater::Init(env));
  exports.Set("mount", Napi::Function::New<Mount>(env, "mount"));
  exports.Set("enableRunTimeStats", Napi::Function::New<EnableRunTimeStats>(env, "enableRunTimeStats"));
  exports.Set("possibleCpus", Napi::Function::New<PossibleCpus>(env, "possibleCpus"));
  exports.Set("readProcessMemory", Napi::Function::New<ReadProcessMemory>(env, "readProcessMemory"));
  exports.Set("openInRoot", Napi::Function::New<OpenInRoot>(env, "openInRoot"));
  exports.Set("closeDescriptor", Napi::Function::New<CloseDescriptor>(env, "closeDescriptor"));
  exports.Set("onlineCpus", Napi::Function::New<OnlineCpuList>(env, "onlineCpus"));
  exports.Set("releaseFreeMemory", Napi::Function::New<ReleaseFreeMemory>(env, "releaseFreeMemory"));
  exports.Set("hugePageBuffer", Napi::Function::New<HugePageBuffer>(env, "hugePageBuffer"));
  exports.Set("setThreadName", Napi::Function::New<SetThreadName>(env, "setThreadName"));
  exports.Set("libbpfVersion",
              Napi::String::New(env, std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version())));
  return exports;
}

}  // namespace qf

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return qf::Init(env, exports); }

NODE_API_MODULE(quietflame_bpf, InitModule)

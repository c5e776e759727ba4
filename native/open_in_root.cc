// openInRoot(root, path) -> fd: opens `path` as if `root` were "/" (openat2 RESOLVE_IN_ROOT), so a symlink or ".."
// in another container's tree can never lead to one of the host's files. Magic links (/proc/self/...) are refused
// on the way, and the open never blocks (O_NONBLOCK: a FIFO or a device answers at once; the caller fstat()s).
// closeDescriptor(fd) closes such a descriptor: Node's fs.closeSync in a worker thread warns about any descriptor
// that thread did not open through fs ("closed but not opened in unmanaged mode").
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <napi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "open_in_root.h"

namespace qf {

Napi::Value OpenInRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    ThrowUsage(env, "openInRoot(root: string, path: string): strings expected", true);
  std::string root = info[0].As<Napi::String>(), path = info[1].As<Napi::String>();
  int dirfd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    int err = errno;
    ThrowErrno(env, err, "open(" + root + ")");
  }
  struct open_how how = {};
  how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd;
  do {
    fd = static_cast<int>(syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how)));
  } while (fd < 0 && errno == EAGAIN);  // a rename raced the lookup: RESOLVE_IN_ROOT asks to retry
  int err = errno;
  close(dirfd);
  if (fd < 0) ThrowErrno(env, err, "openat2(" + root + ", " + path + ")", err == ENOSYS ? "kernel older than 5.6" : "");
  return Napi::Number::New(env, fd);
}

Napi::Value CloseDescriptor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowUsage(env, "closeDescriptor(fd: number): a number expected", true);
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0 && errno != EINTR) {  // after EINTR the descriptor is gone all the same (Linux)
    int err = errno;
    ThrowErrno(env, err, "close(" + std::to_string(fd) + ")");
  }
  return env.Undefined();
}

}  // namespace qf

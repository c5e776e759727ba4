#include "ring_buffer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "errors.h"

namespace qf {

struct RingBufferPoller::Batch {
  std::vector<uint8_t> data;
  std::vector<uint32_t> offsets{0};
  std::vector<uint32_t> counts;  // empty while every record stands for itself
  std::shared_ptr<RingStats> stats;
  size_t count() const { return offsets.size() - 1; }
  // Every record read into it is dropped: merged ones move from coalesced to dropped.
  void Drop(RingStats& st) const {
    uint64_t merged = 0;
    for (uint32_t c : counts) merged += c - 1;
    st.coalesced.fetch_sub(merged);
    st.dropped.fetch_add(count() + merged);
  }
};

namespace {
constexpr uint64_t kStopTag = 1;
constexpr uint64_t kRingTag = 2;
constexpr uint64_t kReadNowTag = 3;
}  // namespace

RingBufferPoller::RingBufferPoller(Napi::Env env, int map_fd, const std::string& map_name,
                                   Napi::Function callback, Options options)
    : name_(map_name), options_(options), stats_(std::make_shared<RingStats>()) {
  ResetLibbpfLog();
  rb_ = ring_buffer__new(map_fd, OnRecord, this, nullptr);
  if (rb_ == nullptr) {
    int err = errno;
    ThrowErrno(env, err, "ring_buffer__new(" + name_ + ")",
               err == EPERM || err == EACCES ? CapabilityHint() : "is it a BPF_MAP_TYPE_RINGBUF map of a loaded object?");
  }
  struct bpf_map_info map_info = {};
  uint32_t info_len = sizeof(map_info);
  if (bpf_obj_get_info_by_fd(map_fd, &map_info, &info_len) == 0) ring_bytes_ = map_info.max_entries;
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  read_now_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (event_fd_ < 0 || read_now_fd_ < 0 || epoll_fd_ < 0) {
    int err = errno;
    Stop();
    ThrowErrno(env, err, "eventfd/epoll_create1 for ring buffer " + name_);
  }
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kStopTag;
  int r1 = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev);
  ev.data.u64 = kRingTag;
  int r2 = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ring_buffer__epoll_fd(rb_), &ev);
  ev.data.u64 = kReadNowTag;
  int r3 = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, read_now_fd_, &ev);
  if (r1 < 0 || r2 < 0 || r3 < 0) {
    int err = errno;
    Stop();
    ThrowErrno(env, err, "epoll_ctl for ring buffer " + name_);
  }

  tsfn_ = Napi::ThreadSafeFunction::New(env, callback, "quietflame:ringbuf:" + name_, 0, 1);
  batch_ = std::make_unique<Batch>();
  batch_->stats = stats_;
  running_ = true;
  thread_ = std::thread(&RingBufferPoller::Run, this);
  // Registered after the TSFN's own hook, so it runs first at environment teardown
  // (hooks run in reverse order): join the thread while the TSFN is still valid.
  env_ = env;
  cleanup_hook_ = napi_add_env_cleanup_hook(env_, OnEnvCleanup, this) == napi_ok;
}

void RingBufferPoller::OnEnvCleanup(void* arg) {
  auto* self = static_cast<RingBufferPoller*>(arg);
  self->cleanup_hook_ = false;  // being run: must not be removed
  self->Stop();
}

RingBufferPoller::~RingBufferPoller() { Stop(); }

int RingBufferPoller::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingBufferPoller*>(ctx);
  RingStats& st = *self->stats_;
  st.records.fetch_add(1, std::memory_order_relaxed);
  st.bytes.fetch_add(size, std::memory_order_relaxed);
  Batch& b = *self->batch_;
  if (st.queued_bytes.load(std::memory_order_relaxed) + static_cast<int64_t>(b.data.size()) >
      self->options_.max_queued_bytes) {
    st.dropped.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  const uint8_t* p = static_cast<const uint8_t*>(data);
  if (self->options_.coalesce_samples) {
    const size_t at = self->coalescer_.Place(p, size, b.count());
    if (at != b.count()) {
      if (b.counts.empty()) b.counts.assign(b.count(), 1);
      b.counts[at]++;
      st.coalesced.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
  }
  b.data.insert(b.data.end(), p, p + size);
  b.offsets.push_back(static_cast<uint32_t>(b.data.size()));
  if (!b.counts.empty()) b.counts.push_back(1);
  if (b.count() >= self->options_.max_batch_records) self->Flush();
  return 0;
}

void RingBufferPoller::Flush() {
  if (batch_->count() == 0) return;
  coalescer_.Reset();
  Batch* b = batch_.release();
  batch_ = std::make_unique<Batch>();
  batch_->stats = stats_;
  stats_->queued_bytes.fetch_add(static_cast<int64_t>(b->data.size()));
  napi_status st = tsfn_.NonBlockingCall(b, [](Napi::Env env, Napi::Function fn, Batch* batch) {
    std::unique_ptr<Batch> owned(batch);
    RingStats& stats = *owned->stats;
    stats.queued_bytes.fetch_sub(static_cast<int64_t>(owned->data.size()));
    if (env == nullptr || fn.IsEmpty()) {
      owned->Drop(stats);
      return;
    }
    size_t n = owned->count();
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env, owned->data.data(), owned->data.size());
    Napi::Uint32Array offsets = Napi::Uint32Array::New(env, owned->offsets.size());
    memcpy(offsets.Data(), owned->offsets.data(), owned->offsets.size() * sizeof(uint32_t));
    Napi::Value counts = env.Undefined();
    if (!owned->counts.empty()) {
      Napi::Uint32Array c = Napi::Uint32Array::New(env, owned->counts.size());
      memcpy(c.Data(), owned->counts.data(), owned->counts.size() * sizeof(uint32_t));
      counts = c;
    }
    stats.delivered.fetch_add(n);
    stats.batches.fetch_add(1);
    owned.reset();
    fn.Call({data, offsets, counts});
  });
  if (st != napi_ok) {  // closing: the function no longer accepts calls
    stats_->queued_bytes.fetch_sub(static_cast<int64_t>(b->data.size()));
    b->Drop(*stats_);
    delete b;
  }
}

void RingBufferPoller::Run() {
  // Named so that `top -H` and per-thread CPU accounting tell it from Node's own threads (15 characters at most).
  pthread_setname_np(pthread_self(), ("qf-rb-" + name_).substr(0, 15).c_str());
  using Clock = std::chrono::steady_clock;
  using Ms = std::chrono::duration<double, std::milli>;
  const double max_wait_ms = options_.min_interval_ms;
  double wait_ms = max_wait_ms;
  auto last = Clock::now();
  struct epoll_event events[3];
  bool stop = false;
  while (!stop) {
    // Reads the ring every wait_ms, and at once when a producer wakes it: records sent with
    // BPF_RB_NO_WAKEUP (profile.bpf.c's samples) wait for the timed read, a record sent with a
    // wakeup (an exec) is delivered now, with what gathered before it.
    const double since = Ms(Clock::now() - last).count();
    const int timeout = static_cast<int>(std::max(0.0, std::ceil(wait_ms - since)));
    int n = epoll_wait(epoll_fd_, events, 3, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      thread_error_ = errno;
      break;
    }
    bool woken = false;  // by a producer
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == kStopTag) stop = true;
      if (events[i].data.u64 == kRingTag) woken = true;
      if (events[i].data.u64 == kReadNowTag) {
        uint64_t asked;
        ssize_t r = read(read_now_fd_, &asked, sizeof(asked));  // resets the count
        (void)r;
      }
    }
    // Woken by the ring again right after a read: let 1 ms pass, so that records arriving back to
    // back cannot turn this loop into a spin.
    const double gap = Ms(Clock::now() - last).count();
    if (!stop && n > 0 && gap < 1) {
      struct pollfd pfd = {event_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 1) > 0) stop = true;
    }
    const auto now = Clock::now();
    const double elapsed_ms = std::max(Ms(now - last).count(), 1.0);
    last = now;
    // Drain whatever is there (also on stop, so records produced before stop() arrive).
    const uint64_t before = stats_->bytes.load(std::memory_order_relaxed);
    int r = ring_buffer__consume(rb_);
    if (r < 0 && r != -EINTR) {
      thread_error_ = -r;
      stop = true;
    }
    Flush();
    // Next timed read: when the ring would be half full at the rate records came in since the
    // last read, within [1 ms, max_wait_ms].
    const double read = static_cast<double>(stats_->bytes.load(std::memory_order_relaxed) - before);
    wait_ms = max_wait_ms;
    if (read > 0 && ring_bytes_ > 0) {
      wait_ms = std::clamp(static_cast<double>(ring_bytes_) / 2 / (read / elapsed_ms), 1.0, max_wait_ms);
    }
    if (woken && options_.follow_up_ms > 0) wait_ms = std::min(wait_ms, static_cast<double>(options_.follow_up_ms));
  }
}

void RingBufferPoller::ReadNow() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t w = write(read_now_fd_, &one, sizeof(one));
  (void)w;
}

void RingBufferPoller::Ref(Napi::Env env, bool ref) {
  if (!running_) return;
  if (ref) {
    tsfn_.Ref(env);
  } else {
    tsfn_.Unref(env);
  }
}

void RingBufferPoller::Stop() {
  if (cleanup_hook_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanup_hook_ = false;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t w = write(event_fd_, &one, sizeof(one));
    (void)w;
    thread_.join();
  }
  if (running_) {
    // End-of-stream marker, queued behind every batch: JS sees (null, null) last.
    tsfn_.NonBlockingCall(static_cast<Batch*>(nullptr), [](Napi::Env env, Napi::Function fn, Batch*) {
      if (env != nullptr && !fn.IsEmpty()) fn.Call({env.Null(), env.Null()});
    });
    tsfn_.Release();
    running_ = false;
  }
  if (rb_ != nullptr) {
    ring_buffer__free(rb_);
    rb_ = nullptr;
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (event_fd_ >= 0) close(event_fd_);
  if (read_now_fd_ >= 0) close(read_now_fd_);
  epoll_fd_ = event_fd_ = read_now_fd_ = -1;
}

}  // namespace qf

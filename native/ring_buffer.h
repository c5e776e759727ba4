// A BPF ring buffer drained by its own thread; records reach JS in batches through a
// ThreadSafeFunction as (data: Buffer, offsets: Uint32Array, counts?: Uint32Array) — record i is
// data[offsets[i], offsets[i + 1]), and stands for counts[i] records read (counts only when some
// were merged: Options::coalesce_samples).
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sample_coalescer.h"

struct ring_buffer;

namespace qf {

struct RingStats {
  std::atomic<uint64_t> records{0};     // read from the kernel
  std::atomic<uint64_t> delivered{0};   // handed to the JS callback
  std::atomic<uint64_t> batches{0};     // JS callback invocations
  std::atomic<uint64_t> bytes{0};       // record bytes read from the kernel
  std::atomic<uint64_t> dropped{0};     // read but dropped because JS fell too far behind
  std::atomic<uint64_t> coalesced{0};   // read and folded into an earlier record of their batch
  std::atomic<int64_t> queued_bytes{0}; // handed off, not yet delivered
};

class RingBufferPoller {
 public:
  struct Options {
    uint32_t max_batch_records = 4096;
    int64_t max_queued_bytes = 64 << 20;
    // The ring is read this often (and at once when a producer asks for a wakeup): records sent
    // with BPF_RB_NO_WAKEUP gather into few large batches instead of a wakeup per record (each
    // costs the JS thread a callback). Shorter when, at the rate last seen, the ring would be
    // half full sooner. A consumer that needs the records now (a profile's window ended) calls
    // ReadNow().
    uint32_t min_interval_ms = 100;
    // After a read a producer woke the thread for, the next one comes at most this much later (0: the
    // interval as usual): records sent right after a wakeup without one of their own wait no longer.
    uint32_t follow_up_ms = 0;
    // Merge CPU samples (bpf/profile.h's struct sample_record) that differ only in cpu and time_ns
    // within a batch (SampleCoalescer).
    bool coalesce_samples = false;
  };

  // Throws a JS error when the ring buffer cannot be set up.
  RingBufferPoller(Napi::Env env, int map_fd, const std::string& map_name, Napi::Function callback,
                   Options options);
  ~RingBufferPoller();

  // Wakes the thread, joins it, frees the ring buffer. Batches already queued are still delivered.
  // Idempotent.
  void Stop();
  // Wakes the thread to read the ring at once: records gathered so far are delivered without waiting
  // for the next timed read.
  void ReadNow();
  bool running() const { return running_; }
  void Ref(Napi::Env env, bool ref);
  const RingStats& stats() const { return *stats_; }
  int error() const { return thread_error_.load(); }

 private:
  struct Batch;
  static int OnRecord(void* ctx, void* data, size_t size);
  void Run();
  void Flush();

  static void OnEnvCleanup(void* arg);

  napi_env env_ = nullptr;
  bool cleanup_hook_ = false;
  std::string name_;
  Options options_;
  struct ring_buffer* rb_ = nullptr;
  int event_fd_ = -1;  // stop
  int read_now_fd_ = -1;
  int epoll_fd_ = -1;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<RingStats> stats_;
  std::unique_ptr<Batch> batch_;  // owned by the polling thread while running
  SampleCoalescer coalescer_;     // of batch_
  uint64_t ring_bytes_ = 0;       // the map's data size (max_entries), 0 when unknown
  std::atomic<int> thread_error_{0};
  bool running_ = false;
};

}  // namespace qf

// CPU samples that are the same sample but for when and where they ran (struct sample_record of bpf/profile.h:
// the same thread, comm, goroutine, flags, stacks and labels; any cpu and time_ns) are, within one batch of the
// ring buffer, delivered once with a count: a CPU-bound loop sends the same few stacks over and over, and each
// record costs the JS thread a decode and a lookup, while here it costs a hash.
//
// Exec and exit records end a run of merges: a sample after one is never folded into a sample before it, so the
// stream's order around them (samples of an old image before its exec record, every sample of a process before
// its exit record) holds for the merged stream too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace qf {

class SampleCoalescer {
 public:
  // The record's position among the batch's records (its index) when it is new, or the index of the earlier
  // record it is the same sample as. Records of other kinds are always new.
  size_t Place(const uint8_t* data, size_t size, size_t index);
  // A new batch begins: indexes start again at 0.
  void Reset() { seen_.clear(); }

 private:
  // Empty when the record is not a well-formed sample record.
  static bool KeyOf(const uint8_t* data, size_t size, std::string& key);

  std::unordered_map<std::string, size_t> seen_;
  std::string key_;  // reused: one allocation per distinct sample, not per record
};

}  // namespace qf

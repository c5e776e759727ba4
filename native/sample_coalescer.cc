#include "sample_coalescer.h"

#include <linux/types.h>
#include <stddef.h>
#include <string.h>

#include "../bpf/profile.h"

namespace qf {

bool SampleCoalescer::KeyOf(const uint8_t* data, size_t size, std::string& key) {
  struct sample_record rec;
  if (size < sizeof(rec)) return false;
  memcpy(&rec, data, offsetof(struct sample_record, user_stack));  // the fixed fields, aligned
  if (rec.kind != RECORD_SAMPLE || size != sizeof(rec) + rec.labels_len) return false;
  if (rec.user_len > MAX_USER_STACK || rec.kernel_len > MAX_KERNEL_STACK) return false;
  // cpu and time_ns are left out; goid only counts with SAMPLE_F_GOID (the field is not cleared otherwise);
  // stack entries past their lengths are whatever the per-CPU buffer held before.
  if (!(rec.flags & SAMPLE_F_GOID)) rec.goid = 0;
  key.clear();
  key.append(reinterpret_cast<const char*>(&rec.tgid), 2 * sizeof(__u32));
  key.append(reinterpret_cast<const char*>(&rec.goid),
             offsetof(struct sample_record, user_stack) - offsetof(struct sample_record, goid));
  key.append(reinterpret_cast<const char*>(data + offsetof(struct sample_record, user_stack)), rec.user_len * sizeof(__u64));
  key.append(reinterpret_cast<const char*>(data + offsetof(struct sample_record, kernel_stack)), rec.kernel_len * sizeof(__u64));
  key.append(reinterpret_cast<const char*>(data + sizeof(rec)), rec.labels_len);
  return true;
}

size_t SampleCoalescer::Place(const uint8_t* data, size_t size, size_t index) {
  if (size >= sizeof(__u32)) {
    __u32 kind;
    memcpy(&kind, data, sizeof(kind));
    if (kind == RECORD_EXEC || kind == RECORD_EXIT) {
      seen_.clear();
      return index;
    }
  }
  if (!KeyOf(data, size, key_)) return index;
  auto [it, added] = seen_.try_emplace(key_, index);
  return it->second;
}

}  // namespace qf

// BpfObject: one BPF object file (bpf_object__open_file) and everything hanging off it —
// programs, maps, global variables, links and ring-buffer pollers. Programs and maps are
// addressed by their index in programs()/maps(); links and ring buffers by the ids the
// attach/ringBuffer calls return. close() (or garbage collection) releases all of it.
#pragma once

#include <napi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ring_buffer.h"

struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;

namespace qf {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

 private:
  struct Global {
    std::string name;
    std::string section;
    struct bpf_map* map;
    uint32_t offset;
    uint32_t size;
  };

  // lifecycle
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value State(const Napi::CallbackInfo& info);
  // introspection
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Globals(const Napi::CallbackInfo& info);
  Napi::Value ProgramInfo(const Napi::CallbackInfo& info);
  Napi::Value MapInfo(const Napi::CallbackInfo& info);
  // before load
  Napi::Value SetGlobal(const Napi::CallbackInfo& info);
  Napi::Value GetGlobal(const Napi::CallbackInfo& info);
  Napi::Value SetAutoload(const Napi::CallbackInfo& info);
  Napi::Value SetAttachTarget(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  // attach
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value AttachTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachPerfEvent(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value LinkCount(const Napi::CallbackInfo& info);
  // map operations (Buffers in, Buffers out)
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value LookupAndDelete(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value NextKey(const Napi::CallbackInfo& info);
  Napi::Value Dump(const Napi::CallbackInfo& info);
  // ring buffers
  Napi::Value RingBufferStart(const Napi::CallbackInfo& info);
  Napi::Value RingBufferStop(const Napi::CallbackInfo& info);
  Napi::Value RingBufferStats(const Napi::CallbackInfo& info);
  Napi::Value RingBufferRef(const Napi::CallbackInfo& info);
  Napi::Value RingBufferReadNow(const Napi::CallbackInfo& info);

  void CloseAll();
  void RequireOpen(Napi::Env env) const;
  void RequireLoaded(Napi::Env env, const char* what) const;
  void RequireNotLoaded(Napi::Env env, const char* what) const;
  struct bpf_program* ProgramAt(const Napi::CallbackInfo& info, size_t arg);
  struct bpf_map* MapAt(const Napi::CallbackInfo& info, size_t arg);
  const Global& GlobalNamed(Napi::Env env, const std::string& name) const;
  uint32_t AddLink(struct bpf_link* link);
  size_t ValueBufferSize(struct bpf_map* map) const;
  void CheckKey(Napi::Env env, struct bpf_map* map, const Napi::Buffer<uint8_t>& key) const;
  std::string Where(const std::string& fn, const std::string& name) const;
  void MapGlobalSections();
  uint8_t* LiveSection(struct bpf_map* map) const;

  struct bpf_object* obj_ = nullptr;
  std::string path_;
  std::string file_;  // basename, for messages
  bool loaded_ = false;
  bool closed_ = false;
  std::vector<struct bpf_program*> programs_;
  std::vector<struct bpf_map*> maps_;
  std::vector<Global> globals_;
  // After load, .bss/.data/.rodata mmaped from the kernel maps (libbpf 1.1 only remaps them
  // for skeletons): map -> (address, length).
  std::map<struct bpf_map*, std::pair<void*, size_t>> live_;
  std::map<uint32_t, struct bpf_link*> links_;
  std::map<uint32_t, std::unique_ptr<RingBufferPoller>> rings_;
  uint32_t next_id_ = 1;
};

}  // namespace qf

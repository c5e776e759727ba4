#include "bpf_object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "errors.h"
#include "util.h"

namespace qf {

namespace {

bool IsPerCpu(enum bpf_map_type t) {
  return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_ARRAY ||
         t == BPF_MAP_TYPE_LRU_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

std::string ProgTypeName(enum bpf_prog_type t) {
  const char* s = libbpf_bpf_prog_type_str(t);
  return s != nullptr ? s : "unknown(" + std::to_string(t) + ")";
}

std::string MapTypeName(enum bpf_map_type t) {
  const char* s = libbpf_bpf_map_type_str(t);
  return s != nullptr ? s : "unknown(" + std::to_string(t) + ")";
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Where libbpf 1.1 looks for tracepoint ids: debugfs's tracing dir if present, else tracefs.
std::string TracefsBase() {
  return Exists("/sys/kernel/debug/tracing") ? "/sys/kernel/debug/tracing" : "/sys/kernel/tracing";
}

void CheckTracepoint(Napi::Env env, const std::string& what, const std::string& category, const std::string& name) {
  std::string base = TracefsBase();
  if (!Exists(base + "/events")) {
    ThrowErrno(env, ENOENT, what,
               "tracefs not mounted at /sys/kernel/tracing (classic tracepoints read their ids there): "
               "mount -t tracefs tracefs /sys/kernel/tracing, or call ensureTracefs() first");
  }
  if (!Exists(base + "/events/" + category + "/" + name + "/id")) {
    ThrowErrno(env, ENOENT, what,
               "this kernel has no tracepoint " + category + ":" + name + " (" + base + "/events/" + category +
                   "/" + name + " is missing)");
  }
}

std::string ReadFirstLine(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowUsage(info.Env(), std::string(what) + " must be a number", true);
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    ThrowUsage(info.Env(), std::string(what) + " must be an integer in [0, 2^32)", true);
  }
  return static_cast<uint32_t>(d);
}

uint64_t OptU64(const Napi::CallbackInfo& info, size_t i, uint64_t dflt, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return dflt;
  if (info[i].IsBigInt()) {
    bool lossless = false;
    uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowUsage(info.Env(), std::string(what) + " does not fit in a u64", true);
    return v;
  }
  if (!info[i].IsNumber()) ThrowUsage(info.Env(), std::string(what) + " must be a number or bigint", true);
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    ThrowUsage(info.Env(), std::string(what) + " must be a non-negative integer", true);
  }
  return static_cast<uint64_t>(d);
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer()) ThrowUsage(info.Env(), std::string(what) + " must be a Buffer", true);
  return info[i].As<Napi::Buffer<uint8_t>>();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) ThrowUsage(info.Env(), std::string(what) + " must be a string", true);
  return info[i].As<Napi::String>().Utf8Value();
}

}  // namespace

Napi::Function BpfObject::Init(Napi::Env env) {
  return DefineClass(
      env, "BpfObject",
      {
          InstanceMethod<&BpfObject::Load>("load"),
          InstanceMethod<&BpfObject::Close>("close"),
          InstanceMethod<&BpfObject::State>("state"),
          InstanceMethod<&BpfObject::Programs>("programs"),
          InstanceMethod<&BpfObject::Maps>("maps"),
          InstanceMethod<&BpfObject::Globals>("globals"),
          InstanceMethod<&BpfObject::ProgramInfo>("programInfo"),
          InstanceMethod<&BpfObject::MapInfo>("mapInfo"),
          InstanceMethod<&BpfObject::SetGlobal>("setGlobal"),
          InstanceMethod<&BpfObject::GetGlobal>("getGlobal"),
          InstanceMethod<&BpfObject::SetAutoload>("setAutoload"),
          InstanceMethod<&BpfObject::SetAttachTarget>("setAttachTarget"),
          InstanceMethod<&BpfObject::SetMaxEntries>("setMaxEntries"),
          InstanceMethod<&BpfObject::Attach>("attach"),
          InstanceMethod<&BpfObject::AttachTracepoint>("attachTracepoint"),
          InstanceMethod<&BpfObject::AttachRawTracepoint>("attachRawTracepoint"),
          InstanceMethod<&BpfObject::AttachPerfEvent>("attachPerfEvent"),
          InstanceMethod<&BpfObject::Detach>("detach"),
          InstanceMethod<&BpfObject::LinkCount>("linkCount"),
          InstanceMethod<&BpfObject::Lookup>("lookup"),
          InstanceMethod<&BpfObject::LookupAndDelete>("lookupAndDelete"),
          InstanceMethod<&BpfObject::Update>("update"),
          InstanceMethod<&BpfObject::Delete>("delete"),
          InstanceMethod<&BpfObject::NextKey>("nextKey"),
          InstanceMethod<&BpfObject::Dump>("dump"),
          InstanceMethod<&BpfObject::RingBufferStart>("ringBufferStart"),
          InstanceMethod<&BpfObject::RingBufferStop>("ringBufferStop"),
          InstanceMethod<&BpfObject::RingBufferStats>("ringBufferStats"),
          InstanceMethod<&BpfObject::RingBufferRef>("ringBufferRef"),
          InstanceMethod<&BpfObject::RingBufferReadNow>("ringBufferReadNow"),
      });
}

// new BpfObject(path): bpf_object__open_file + index programs, maps and global variables.
BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  path_ = ArgString(info, 0, "path");
  size_t slash = path_.rfind('/');
  file_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);

  ResetLibbpfLog();
  obj_ = bpf_object__open_file(path_.c_str(), nullptr);
  if (obj_ == nullptr) {
    int err = errno;
    std::string hint;
    if (err == ENOENT) {
      hint = "build the BPF objects with `npm run build:bpf` (or `npm ci`)";
      ResetLibbpfLog();  // libbpf only repeats it
    }
    if (err == EACCES) hint = "the file is not readable by this user";
    if (err == EINVAL || err == LIBBPF_ERRNO__FORMAT || err == LIBBPF_ERRNO__LIBELF) {
      hint = "not a BPF ELF object (compile with clang -target bpf -g)";
    }
    ThrowErrno(env, err, "bpf_object__open_file(" + path_ + ")", hint);
  }

  struct bpf_program* prog;
  bpf_object__for_each_program(prog, obj_) programs_.push_back(prog);
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj_) maps_.push_back(map);

  // Global variables: the DATASECs of .rodata/.data/.bss (offsets fixed up by libbpf at open),
  // each backed by an internal map whose initial value is an mmaped buffer.
  const struct btf* btf = bpf_object__btf(obj_);
  if (btf == nullptr) return;
  uint32_t n = btf__type_cnt(btf);
  for (uint32_t id = 1; id < n; id++) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    if (!btf_is_datasec(t)) continue;
    std::string sec = btf__name_by_offset(btf, t->name_off);
    struct bpf_map* owner = nullptr;
    for (struct bpf_map* m : maps_) {
      if (!bpf_map__is_internal(m)) continue;
      std::string mname = bpf_map__name(m);
      if (bpf_map__btf_value_type_id(m) == id ||
          EndsWith(mname, sec.substr(0, std::min<size_t>(sec.size(), BPF_OBJ_NAME_LEN - 1)))) {
        owner = m;
        break;
      }
    }
    if (owner == nullptr) continue;
    size_t sz = 0;
    if (bpf_map__initial_value(owner, &sz) == nullptr) continue;
    const struct btf_var_secinfo* vs = btf_var_secinfos(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, vs++) {
      const struct btf_type* var = btf__type_by_id(btf, vs->type);
      if (var == nullptr || !btf_is_var(var)) continue;
      if (vs->offset + vs->size > sz) continue;
      globals_.push_back(Global{btf__name_by_offset(btf, var->name_off), sec, owner, vs->offset, vs->size});
    }
  }
}

BpfObject::~BpfObject() { CloseAll(); }

void BpfObject::CloseAll() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, ring] : rings_) ring->Stop();
  rings_.clear();
  for (auto& [id, link] : links_) bpf_link__destroy(link);
  links_.clear();
  for (auto& [map, area] : live_) munmap(area.first, area.second);
  live_.clear();
  if (obj_ != nullptr) bpf_object__close(obj_);
  obj_ = nullptr;
  programs_.clear();
  maps_.clear();
  globals_.clear();
}

std::string BpfObject::Where(const std::string& fn, const std::string& name) const {
  return fn + "(" + file_ + (name.empty() ? "" : ":" + name) + ")";
}

void BpfObject::RequireOpen(Napi::Env env) const {
  if (closed_) ThrowUsage(env, "BpfObject(" + file_ + ") is closed");
}

void BpfObject::RequireLoaded(Napi::Env env, const char* what) const {
  RequireOpen(env);
  if (!loaded_) ThrowUsage(env, std::string(what) + " needs a loaded object: call load() first (" + file_ + ")");
}

void BpfObject::RequireNotLoaded(Napi::Env env, const char* what) const {
  RequireOpen(env);
  if (loaded_) ThrowUsage(env, std::string(what) + " must happen before load() (" + file_ + ")");
}

struct bpf_program* BpfObject::ProgramAt(const Napi::CallbackInfo& info, size_t arg) {
  RequireOpen(info.Env());
  uint32_t i = ArgU32(info, arg, "program index");
  if (i >= programs_.size()) ThrowUsage(info.Env(), "no program #" + std::to_string(i) + " in " + file_, true);
  return programs_[i];
}

struct bpf_map* BpfObject::MapAt(const Napi::CallbackInfo& info, size_t arg) {
  RequireOpen(info.Env());
  uint32_t i = ArgU32(info, arg, "map index");
  if (i >= maps_.size()) ThrowUsage(info.Env(), "no map #" + std::to_string(i) + " in " + file_, true);
  return maps_[i];
}

const BpfObject::Global& BpfObject::GlobalNamed(Napi::Env env, const std::string& name) const {
  RequireOpen(env);
  for (const Global& g : globals_) {
    if (g.name == name) return g;
  }
  std::string known;
  for (const Global& g : globals_) known += (known.empty() ? "" : ", ") + g.name;
  ThrowUsage(env, "no global variable '" + name + "' in " + file_ + " (globals: " + (known.empty() ? "none" : known) + ")");
}

size_t BpfObject::ValueBufferSize(struct bpf_map* map) const {
  size_t vs = bpf_map__value_size(map);
  if (!IsPerCpu(bpf_map__type(map))) return vs;
  return ((vs + 7) / 8 * 8) * static_cast<size_t>(libbpf_num_possible_cpus());
}

void BpfObject::CheckKey(Napi::Env env, struct bpf_map* map, const Napi::Buffer<uint8_t>& key) const {
  if (key.Length() != bpf_map__key_size(map)) {
    ThrowUsage(env, std::string("map ") + bpf_map__name(map) + ": key is " + std::to_string(key.Length()) +
                        " bytes, key_size is " + std::to_string(bpf_map__key_size(map)), true);
  }
}

uint32_t BpfObject::AddLink(struct bpf_link* link) {
  uint32_t id = next_id_++;
  links_[id] = link;
  return id;
}

// ---- lifecycle ---------------------------------------------------------------------------

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireNotLoaded(env, "load()");
  ResetLibbpfLog();
  int err = bpf_object__load(obj_);
  if (err != 0) {
    std::string hint, detail;
    std::string log = LibbpfLog();
    const std::string begin = "-- BEGIN PROG LOAD LOG --", end = "-- END PROG LOAD LOG --";
    // A long log may have lost its start to the bound on what is kept: the end marker is enough.
    size_t e = log.rfind(end);
    size_t b = e == std::string::npos ? std::string::npos : log.rfind(begin, e);
    if (e != std::string::npos) {
      // The verifier said no: name the program and quote its last words.
      size_t from = b == std::string::npos ? 0 : b + begin.size();
      std::string prog = "?";
      size_t p = log.find("prog '", e);  // libbpf: prog 'NAME': failed to load
      if (p == std::string::npos && b != std::string::npos) p = log.rfind("prog '", b);
      if (p != std::string::npos) prog = log.substr(p + 6, log.find('\'', p + 6) - (p + 6));
      std::string vlog = log.substr(from, e - from);
      size_t q = vlog.rfind("\nprocessed ");
      std::string before = q == std::string::npos ? vlog : vlog.substr(0, q);
      std::string reason = TailLines(before, 1);
      hint = "the verifier rejected program '" + prog + "': " + reason + " (whole log in err.log)";
      detail = TailLines(before, 8);
    } else if (err == -EPERM || err == -EACCES) {
      hint = CapabilityHint();
      // libbpf's own lines here blame RLIMIT_MEMLOCK or CONFIG_BPF_SYSCALL; the cause is privilege.
      detail = "(libbpf's messages are in err.log)";
    } else if (err == -ESRCH || err == -ENOENT) {
      hint = "a BTF attach target or CO-RE type is missing from this kernel (/sys/kernel/btf/vmlinux)";
    } else {
      hint = "the kernel or the verifier rejected the object; err.log has libbpf's account";
    }
    ThrowErrno(env, err, "bpf_object__load(" + file_ + ")", hint, detail);
  }
  loaded_ = true;
  MapGlobalSections();
  return env.Undefined();
}

void BpfObject::MapGlobalSections() {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (const Global& g : globals_) {
    if (live_.count(g.map) != 0) continue;
    uint32_t flags = bpf_map__map_flags(g.map);
    if ((flags & BPF_F_MMAPABLE) == 0) continue;  // fall back to lookup/update
    size_t sz = static_cast<size_t>((bpf_map__value_size(g.map) + 7) / 8 * 8) * bpf_map__max_entries(g.map);
    sz = (sz + page - 1) / page * page;
    int prot = (flags & BPF_F_RDONLY_PROG) != 0 ? PROT_READ : PROT_READ | PROT_WRITE;
    void* p = mmap(nullptr, sz, prot, MAP_SHARED, bpf_map__fd(g.map), 0);
    if (p != MAP_FAILED) live_[g.map] = {p, sz};
  }
}

uint8_t* BpfObject::LiveSection(struct bpf_map* map) const {
  auto it = live_.find(map);
  return it == live_.end() ? nullptr : static_cast<uint8_t*>(it->second.first);
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  CloseAll();
  return info.Env().Undefined();
}

Napi::Value BpfObject::State(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", path_);
  o.Set("loaded", loaded_);
  o.Set("closed", closed_);
  o.Set("links", static_cast<double>(links_.size()));
  o.Set("ringBuffers", static_cast<double>(rings_.size()));
  return o;
}

// ---- introspection -----------------------------------------------------------------------

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  Napi::Array out = Napi::Array::New(env, programs_.size());
  for (size_t i = 0; i < programs_.size(); i++) {
    struct bpf_program* p = programs_[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("type", ProgTypeName(bpf_program__type(p)));
    o.Set("autoload", bpf_program__autoload(p));
    o.Set("fd", bpf_program__fd(p));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  Napi::Array out = Napi::Array::New(env, maps_.size());
  for (size_t i = 0; i < maps_.size(); i++) {
    struct bpf_map* m = maps_[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("type", MapTypeName(bpf_map__type(m)));
    o.Set("keySize", bpf_map__key_size(m));
    o.Set("valueSize", bpf_map__value_size(m));
    o.Set("valueBufferSize", static_cast<double>(ValueBufferSize(m)));
    o.Set("maxEntries", bpf_map__max_entries(m));
    o.Set("flags", bpf_map__map_flags(m));
    o.Set("perCpu", IsPerCpu(bpf_map__type(m)));
    o.Set("internal", bpf_map__is_internal(m));
    o.Set("fd", bpf_map__fd(m));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Value BpfObject::Globals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  Napi::Array out = Napi::Array::New(env, globals_.size());
  for (size_t i = 0; i < globals_.size(); i++) {
    const Global& g = globals_[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", g.name);
    o.Set("section", g.section);
    o.Set("map", bpf_map__name(g.map));
    o.Set("offset", g.offset);
    o.Set("size", g.size);
    o.Set("readOnly", (bpf_map__map_flags(g.map) & BPF_F_RDONLY_PROG) != 0);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Value BpfObject::ProgramInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_program* p = ProgramAt(info, 0);
  RequireLoaded(env, "programInfo()");
  int fd = bpf_program__fd(p);
  if (fd < 0) ThrowUsage(env, std::string("program ") + bpf_program__name(p) + " was not loaded (autoload off)");
  struct bpf_prog_info pi = {};
  uint32_t len = sizeof(pi);
  ResetLibbpfLog();
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) ThrowErrno(env, errno, Where("bpf_obj_get_info_by_fd", bpf_program__name(p)));
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("name", bpf_program__name(p));
  o.Set("type", ProgTypeName(static_cast<enum bpf_prog_type>(pi.type)));
  o.Set("tag", std::string(tag));
  o.Set("runTimeNs", Napi::BigInt::New(env, static_cast<uint64_t>(pi.run_time_ns)));
  o.Set("runCount", Napi::BigInt::New(env, static_cast<uint64_t>(pi.run_cnt)));
  o.Set("recursionMisses", Napi::BigInt::New(env, static_cast<uint64_t>(pi.recursion_misses)));
  o.Set("verifiedInsns", pi.verified_insns);
  return o;
}

Napi::Value BpfObject::MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "mapInfo()");
  struct bpf_map_info mi = {};
  uint32_t len = sizeof(mi);
  ResetLibbpfLog();
  if (bpf_obj_get_info_by_fd(bpf_map__fd(m), &mi, &len) != 0) ThrowErrno(env, errno, Where("bpf_obj_get_info_by_fd", bpf_map__name(m)));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("name", bpf_map__name(m));
  o.Set("type", MapTypeName(static_cast<enum bpf_map_type>(mi.type)));
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  o.Set("flags", mi.map_flags);
  return o;
}

// ---- configuration -------------------------------------------------------------------------

// setGlobal(name, Buffer): before load any section; after load only writable ones (.bss/.data),
// which libbpf has remapped onto the live map memory.
Napi::Value BpfObject::SetGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Global& g = GlobalNamed(env, ArgString(info, 0, "global name"));
  Napi::Buffer<uint8_t> value = ArgBuffer(info, 1, "value");
  if (value.Length() != g.size) {
    ThrowUsage(env, "global '" + g.name + "' is " + std::to_string(g.size) + " bytes, got " +
                        std::to_string(value.Length()), true);
  }
  if (loaded_ && (bpf_map__map_flags(g.map) & BPF_F_RDONLY_PROG) != 0) {
    ThrowUsage(env, "global '" + g.name + "' lives in " + g.section +
                        ", which is frozen at load(): set it in open(path, { globals }) instead");
  }
  if (!loaded_) {
    size_t sz = 0;
    void* base = const_cast<void*>(bpf_map__initial_value(g.map, &sz));
    if (base == nullptr) ThrowUsage(env, "global '" + g.name + "' has no initial value buffer (" + g.section + ")");
    memcpy(static_cast<uint8_t*>(base) + g.offset, value.Data(), g.size);
    return env.Undefined();
  }
  if (uint8_t* live = LiveSection(g.map)) {
    memcpy(live + g.offset, value.Data(), g.size);
    return env.Undefined();
  }
  // Not mmapable: read-modify-write of the whole section (races with BPF-side writes to neighbours).
  std::vector<uint8_t> buf(bpf_map__value_size(g.map));
  uint32_t zero = 0;
  int fd = bpf_map__fd(g.map);
  if (bpf_map_lookup_elem(fd, &zero, buf.data()) != 0) ThrowErrno(env, errno, Where("bpf_map_lookup_elem", bpf_map__name(g.map)));
  memcpy(buf.data() + g.offset, value.Data(), g.size);
  if (bpf_map_update_elem(fd, &zero, buf.data(), BPF_ANY) != 0) ThrowErrno(env, errno, Where("bpf_map_update_elem", bpf_map__name(g.map)));
  return env.Undefined();
}

Napi::Value BpfObject::GetGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Global& g = GlobalNamed(env, ArgString(info, 0, "global name"));
  if (!loaded_) {
    size_t sz = 0;
    const void* base = bpf_map__initial_value(g.map, &sz);
    if (base == nullptr) ThrowUsage(env, "global '" + g.name + "' has no initial value buffer (" + g.section + ")");
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(base) + g.offset, g.size);
  }
  if (const uint8_t* live = LiveSection(g.map)) return Napi::Buffer<uint8_t>::Copy(env, live + g.offset, g.size);
  std::vector<uint8_t> buf(bpf_map__value_size(g.map));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(g.map), &zero, buf.data()) != 0) {
    ThrowErrno(env, errno, Where("bpf_map_lookup_elem", bpf_map__name(g.map)));
  }
  return Napi::Buffer<uint8_t>::Copy(env, buf.data() + g.offset, g.size);
}

Napi::Value BpfObject::SetAutoload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_program* p = ProgramAt(info, 0);
  RequireNotLoaded(env, "setAutoload()");
  if (info.Length() < 2 || !info[1].IsBoolean()) ThrowUsage(env, "autoload must be a boolean", true);
  int err = bpf_program__set_autoload(p, info[1].As<Napi::Boolean>().Value());
  if (err != 0) ThrowErrno(env, err, Where("bpf_program__set_autoload", bpf_program__name(p)));
  return env.Undefined();
}

// The kernel function or BTF tracepoint a tp_btf/fentry program attaches to, instead of its section's.
Napi::Value BpfObject::SetAttachTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_program* p = ProgramAt(info, 0);
  RequireNotLoaded(env, "setAttachTarget()");
  if (info.Length() < 2 || !info[1].IsString()) ThrowUsage(env, "the attach target must be a string", true);
  std::string target = info[1].As<Napi::String>().Utf8Value();
  int err = bpf_program__set_attach_target(p, 0, target.c_str());
  if (err != 0) ThrowErrno(env, err, Where("bpf_program__set_attach_target", std::string(bpf_program__name(p)) + " to " + target + ", not in the kernel's BTF"));
  return env.Undefined();
}

Napi::Value BpfObject::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireNotLoaded(env, "setMaxEntries()");
  int err = bpf_map__set_max_entries(m, ArgU32(info, 1, "maxEntries"));
  if (err != 0) ThrowErrno(env, err, Where("bpf_map__set_max_entries", bpf_map__name(m)));
  return env.Undefined();
}

// ---- attach ------------------------------------------------------------------------------

Napi::Value BpfObject::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_program* p = ProgramAt(info, 0);
  RequireLoaded(env, "attach()");
  std::string what = Where("bpf_program__attach", bpf_program__name(p));
  std::string sec = bpf_program__section_name(p);
  for (const char* prefix : {"tracepoint/", "tp/"}) {
    if (!StartsWith(sec, prefix)) continue;
    std::string rest = sec.substr(strlen(prefix));
    size_t slash = rest.find('/');
    if (slash != std::string::npos) CheckTracepoint(env, what, rest.substr(0, slash), rest.substr(slash + 1));
  }
  ResetLibbpfLog();
  struct bpf_link* link = bpf_program__attach(p);
  if (link == nullptr) {
    int err = errno;
    std::string hint;
    if (err == EPERM || err == EACCES) hint = CapabilityHint();
    if (err == EOPNOTSUPP || err == ESRCH) {
      hint = "section '" + sec + "' has no auto-attach target here; use attachPerfEvent/attachTracepoint/attachRawTracepoint";
    }
    if (err == ENOENT) hint = "attach target for section '" + sec + "' not found in this kernel";
    ThrowErrno(env, err, what, hint);
  }
  return Napi::Number::New(env, AddLink(link));
}

Napi::Value BpfObject::AttachTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_program* p = ProgramAt(info, 0);
  RequireLoaded(env, "attachTracepoint()");
  std::string category = ArgString(info, 1, "tracepoint category");
  std::string name = ArgString(info, 2, "tracepoint name");
  std::string what = Where("bpf_program__attach_tracepoint", bpf_program__name(p)) + " " + category + ":" + name;
  CheckTracepoint(env, what, category, name);
  ResetLibbpfLog();
  struct bpf_link* link = bpf_program__attach_tracepoint(p, category.c_str(), name.c_str());
  if (link == nullptr) {
    int err = errno;
    ThrowErrno(env, err, what, err == EPERM || err == EACCES ? CapabilityHint() : "");
  }
  return Napi::Number::New(env, AddLink(link));
}

Napi::Value BpfObject::AttachRawTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_program* p = ProgramAt(info, 0);
  RequireLoaded(env, "attachRawTracepoint()");
  std::string name = ArgString(info, 1, "tracepoint name");
  std::string what = Where("bpf_program__attach_raw_tracepoint", bpf_program__name(p)) + " " + name;
  ResetLibbpfLog();
  struct bpf_link* link = bpf_program__attach_raw_tracepoint(p, name.c_str());
  if (link == nullptr) {
    int err = errno;
    std::string hint;
    if (err == EPERM || err == EACCES) hint = CapabilityHint();
    if (err == ENOENT) hint = "this kernel has no tracepoint named '" + name + "'";
    ThrowErrno(env, err, what, hint);
  }
  return Napi::Number::New(env, AddLink(link));
}

// attachPerfEvent(prog, { type, config, frequency | period, cpus?, pid? }) -> link ids, one per CPU.
Napi::Value BpfObject::AttachPerfEvent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_program* p = ProgramAt(info, 0);
  RequireLoaded(env, "attachPerfEvent()");
  if (info.Length() < 2 || !info[1].IsObject()) ThrowUsage(env, "attachPerfEvent options must be an object", true);
  Napi::Object opts = info[1].As<Napi::Object>();
  auto num = [&](const char* key, double dflt) -> double {
    Napi::Value v = opts.Get(key);
    if (v.IsUndefined() || v.IsNull()) return dflt;
    if (!v.IsNumber()) ThrowUsage(env, std::string("attachPerfEvent: ") + key + " must be a number", true);
    return v.As<Napi::Number>().DoubleValue();
  };
  uint32_t type = static_cast<uint32_t>(num("type", PERF_TYPE_SOFTWARE));
  uint64_t config = static_cast<uint64_t>(num("config", PERF_COUNT_SW_CPU_CLOCK));
  double frequency = num("frequency", 0);
  double period = num("period", 0);
  int pid = static_cast<int>(num("pid", -1));
  if ((frequency > 0) == (period > 0)) ThrowUsage(env, "attachPerfEvent: give exactly one of frequency (Hz) or period", true);

  std::vector<int> cpus;
  Napi::Value cv = opts.Get("cpus");
  if (cv.IsArray()) {
    Napi::Array a = cv.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) cpus.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  } else if (pid >= 0) {
    cpus.push_back(-1);  // follow the task on every CPU
  } else {
    cpus = OnlineCpus();
    if (cpus.empty()) ThrowErrno(env, ENOENT, "attachPerfEvent: read /sys/devices/system/cpu/online");
  }

  int possible = libbpf_num_possible_cpus();
  for (int cpu : cpus) {
    if (cpu < -1 || cpu >= possible) {
      ThrowUsage(env, "attachPerfEvent: CPU " + std::to_string(cpu) + " does not exist (possible CPUs: 0-" +
                          std::to_string(possible - 1) + ")", true);
    }
  }

  struct perf_event_attr attr = {};
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config = config;
  if (frequency > 0) {
    attr.freq = 1;
    attr.sample_freq = static_cast<uint64_t>(frequency);
  } else {
    attr.sample_period = static_cast<uint64_t>(period);
  }
  attr.disabled = 1;  // libbpf enables it once the program is attached

  std::vector<uint32_t> ids;
  auto rollback = [&]() {
    for (uint32_t id : ids) {
      bpf_link__destroy(links_[id]);
      links_.erase(id);
    }
  };
  for (int cpu : cpus) {
    int pfd = static_cast<int>(syscall(__NR_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    if (pfd < 0) {
      int err = errno;
      rollback();
      std::string what = "perf_event_open(type=" + std::to_string(type) + ", config=" + std::to_string(config) +
                         ", cpu=" + std::to_string(cpu) + ", pid=" + std::to_string(pid) + ")";
      std::string hint;
      if (err == EACCES || err == EPERM) {
        hint = CapabilityHint() + "; kernel.perf_event_paranoid=" + ReadFirstLine("/proc/sys/kernel/perf_event_paranoid");
      } else if (err == ENODEV) {
        hint = "CPU " + std::to_string(cpu) + " is offline or does not exist";
      } else if (err == ENOENT || err == EOPNOTSUPP) {
        hint = "this event is not supported here (VMs without a PMU only have software events such as cpu-clock)";
      } else if (err == EINVAL) {
        std::string max = ReadFirstLine("/proc/sys/kernel/perf_event_max_sample_rate");
        if (frequency > 0 && frequency > strtod(max.c_str(), nullptr)) {
          hint = std::to_string(static_cast<uint64_t>(frequency)) + " Hz is above kernel.perf_event_max_sample_rate (" +
                 max + ")";
        } else {
          hint = "the kernel rejected this perf_event_attr (type, config or sampling)";
        }
      } else if (err == EMFILE) {
        hint = "too many open files (RLIMIT_NOFILE)";
      } else if (err == ESRCH) {
        hint = "no process " + std::to_string(pid);
      }
      ThrowErrno(env, err, what, hint);
    }
    ResetLibbpfLog();
    struct bpf_link* link = bpf_program__attach_perf_event(p, pfd);
    if (link == nullptr) {
      int err = errno;
      close(pfd);
      rollback();
      std::string hint = err == EPERM || err == EACCES ? CapabilityHint()
                                                       : "program type is " + ProgTypeName(bpf_program__type(p)) +
                                                             "; perf events take SEC(\"perf_event\") programs";
      ThrowErrno(env, err, Where("bpf_program__attach_perf_event", bpf_program__name(p)) + " cpu " + std::to_string(cpu), hint);
    }
    ids.push_back(AddLink(link));
  }
  Napi::Array out = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); i++) out.Set(static_cast<uint32_t>(i), ids[i]);
  return out;
}

Napi::Value BpfObject::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "link id");
  auto it = links_.find(id);
  if (it == links_.end()) return Napi::Boolean::New(env, false);
  bpf_link__destroy(it->second);
  links_.erase(it);
  return Napi::Boolean::New(env, true);
}

Napi::Value BpfObject::LinkCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(links_.size()));
}

// ---- map operations ----------------------------------------------------------------------

Napi::Value BpfObject::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "lookup()");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
  CheckKey(env, m, key);
  uint64_t flags = OptU64(info, 2, 0, "flags");
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, ValueBufferSize(m));
  if (bpf_map_lookup_elem_flags(bpf_map__fd(m), key.Data(), value.Data(), flags) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Undefined();
    ThrowErrno(env, err, Where("bpf_map_lookup_elem", bpf_map__name(m)), err == EPERM ? CapabilityHint() : "");
  }
  return value;
}

Napi::Value BpfObject::LookupAndDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "lookupAndDelete()");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
  CheckKey(env, m, key);
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, ValueBufferSize(m));
  if (bpf_map_lookup_and_delete_elem(bpf_map__fd(m), key.Data(), value.Data()) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Undefined();
    ThrowErrno(env, err, Where("bpf_map_lookup_and_delete_elem", bpf_map__name(m)),
               err == EINVAL || err == ENOTSUP || err == 524 ? "this map type does not support lookup-and-delete" : "");
  }
  return value;
}

// update(map, key, value, flags): flags BPF_ANY=0, BPF_NOEXIST=1, BPF_EXIST=2, BPF_F_LOCK=4.
Napi::Value BpfObject::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "update()");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
  CheckKey(env, m, key);
  Napi::Buffer<uint8_t> value = ArgBuffer(info, 2, "value");
  if (value.Length() != ValueBufferSize(m)) {
    ThrowUsage(env, std::string("map ") + bpf_map__name(m) + ": value is " + std::to_string(value.Length()) +
                        " bytes, expected " + std::to_string(ValueBufferSize(m)) +
                        (IsPerCpu(bpf_map__type(m)) ? " (per-CPU: value_size rounded to 8 x possible CPUs)" : ""), true);
  }
  uint64_t flags = OptU64(info, 3, BPF_ANY, "flags");
  if (bpf_map_update_elem(bpf_map__fd(m), key.Data(), value.Data(), flags) != 0) {
    int err = errno;
    std::string hint;
    std::string max = std::to_string(bpf_map__max_entries(m));
    if (err == E2BIG) {
      hint = bpf_map__type(m) == BPF_MAP_TYPE_ARRAY || bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_ARRAY
                 ? "index out of range (max_entries " + max + ")"
                 : "map is full (max_entries " + max + ")";
    } else if (err == EEXIST) {
      hint = "key exists and flags=BPF_NOEXIST";
    } else if (err == ENOENT) {
      hint = "key does not exist and flags=BPF_EXIST";
    } else if (err == EPERM) {
      hint = bpf_map__map_flags(m) & BPF_F_RDONLY ? "map is read-only from user space" : CapabilityHint();
    }
    ThrowErrno(env, err, Where("bpf_map_update_elem", bpf_map__name(m)), hint);
  }
  return env.Undefined();
}

Napi::Value BpfObject::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "delete()");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
  CheckKey(env, m, key);
  if (bpf_map_delete_elem(bpf_map__fd(m), key.Data()) != 0) {
    int err = errno;
    if (err == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, err, Where("bpf_map_delete_elem", bpf_map__name(m)),
               err == EINVAL ? "elements of " + MapTypeName(bpf_map__type(m)) + " maps cannot be deleted" : "");
  }
  return Napi::Boolean::New(env, true);
}

// nextKey(map, key | null) -> the key after `key` (the first key for null), undefined at the end.
Napi::Value BpfObject::NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "nextKey()");
  const void* prev = nullptr;
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
    Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
    CheckKey(env, m, key);
    prev = key.Data();
  }
  Napi::Buffer<uint8_t> next = Napi::Buffer<uint8_t>::New(env, bpf_map__key_size(m));
  if (bpf_map_get_next_key(bpf_map__fd(m), prev, next.Data()) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Undefined();
    ThrowErrno(env, err, Where("bpf_map_get_next_key", bpf_map__name(m)));
  }
  return next;
}

// dump(map, deleteEntries) -> { keys, values, count }: every entry, with the batch syscalls
// where the kernel has them for this map type, else by get_next_key iteration.
Napi::Value BpfObject::Dump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "dump()");
  bool del = info.Length() > 1 && info[1].ToBoolean().Value();
  int fd = bpf_map__fd(m);
  size_t ks = bpf_map__key_size(m), vs = ValueBufferSize(m);
  std::vector<uint8_t> keys, values;
  size_t count = 0;

  uint32_t chunk = std::max<uint32_t>(16, std::min<uint32_t>(bpf_map__max_entries(m), 4096));
  std::vector<uint8_t> in(std::max<size_t>(ks, 8)), out(std::max<size_t>(ks, 8));
  bool first = true, batched = true;
  while (true) {
    keys.resize((count + chunk) * ks);
    values.resize((count + chunk) * vs);
    uint32_t n = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int r = del ? bpf_map_lookup_and_delete_batch(fd, first ? nullptr : in.data(), out.data(), keys.data() + count * ks,
                                                  values.data() + count * vs, &n, &opts)
                : bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(), keys.data() + count * ks,
                                       values.data() + count * vs, &n, &opts);
    int err = r != 0 ? errno : 0;
    if (err == ENOSPC && n == 0) {  // a hash bucket holds more than `chunk` entries
      chunk *= 2;
      continue;
    }
    if (err != 0 && err != ENOENT && first && (err == EINVAL || err == ENOTSUP || err == 524)) {
      batched = false;
      break;
    }
    if (err != 0 && err != ENOENT) {
      ThrowErrno(env, err, Where(del ? "bpf_map_lookup_and_delete_batch" : "bpf_map_lookup_batch", bpf_map__name(m)));
    }
    count += n;
    first = false;
    if (err == ENOENT) break;
    std::swap(in, out);
  }

  if (!batched) {  // map types without batch support: iterate with get_next_key
    keys.clear();
    values.clear();
    count = 0;
    std::vector<uint8_t> prev, key(ks);
    while (bpf_map_get_next_key(fd, prev.empty() ? nullptr : prev.data(), key.data()) == 0) {
      keys.insert(keys.end(), key.begin(), key.end());
      prev = key;
    }
    size_t total = keys.size() / std::max<size_t>(ks, 1);
    values.resize(total * vs);
    for (size_t i = 0; i < total; i++) {
      uint8_t* k = keys.data() + i * ks;
      if (bpf_map_lookup_elem(fd, k, values.data() + count * vs) != 0) continue;  // deleted meanwhile
      if (del) bpf_map_delete_elem(fd, k);
      if (count != i) memmove(keys.data() + count * ks, k, ks);
      count++;
    }
  }

  Napi::Object o = Napi::Object::New(env);
  o.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), count * ks));
  o.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), count * vs));
  o.Set("count", static_cast<double>(count));
  o.Set("batched", batched);
  return o;
}

// ---- ring buffers --------------------------------------------------------------------------

Napi::Value BpfObject::RingBufferStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_map* m = MapAt(info, 0);
  RequireLoaded(env, "ringBufferStart()");
  if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF) {
    ThrowUsage(env, std::string("map ") + bpf_map__name(m) + " is " + MapTypeName(bpf_map__type(m)) + ", not ringbuf", true);
  }
  if (info.Length() < 2 || !info[1].IsFunction()) ThrowUsage(env, "ring buffer callback must be a function", true);
  RingBufferPoller::Options opts;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    if (o.Get("maxBatchRecords").IsNumber()) opts.max_batch_records = o.Get("maxBatchRecords").As<Napi::Number>().Uint32Value();
    if (o.Get("maxQueuedBytes").IsNumber()) opts.max_queued_bytes = o.Get("maxQueuedBytes").As<Napi::Number>().Int64Value();
    if (o.Get("minIntervalMs").IsNumber()) opts.min_interval_ms = o.Get("minIntervalMs").As<Napi::Number>().Uint32Value();
    if (o.Get("followUpMs").IsNumber()) opts.follow_up_ms = o.Get("followUpMs").As<Napi::Number>().Uint32Value();
    opts.coalesce_samples = o.Get("coalesceSamples").ToBoolean().Value();
    if (opts.max_batch_records == 0) opts.max_batch_records = 1;
  }
  auto ring = std::make_unique<RingBufferPoller>(env, bpf_map__fd(m), bpf_map__name(m), info[1].As<Napi::Function>(), opts);
  uint32_t id = next_id_++;
  rings_[id] = std::move(ring);
  return Napi::Number::New(env, id);
}

namespace {
Napi::Object RingStatsObject(Napi::Env env, const RingBufferPoller& ring) {
  const RingStats& s = ring.stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("records", static_cast<double>(s.records.load()));
  o.Set("delivered", static_cast<double>(s.delivered.load()));
  o.Set("batches", static_cast<double>(s.batches.load()));
  o.Set("bytes", static_cast<double>(s.bytes.load()));
  o.Set("dropped", static_cast<double>(s.dropped.load()));
  o.Set("coalesced", static_cast<double>(s.coalesced.load()));
  o.Set("queuedBytes", static_cast<double>(s.queued_bytes.load()));
  o.Set("running", ring.running());
  int err = ring.error();
  if (err != 0) o.Set("error", ErrnoCode(err));
  return o;
}
}  // namespace

// ringBufferStop(id) -> final stats (undefined when unknown). Queued batches are still delivered.
Napi::Value BpfObject::RingBufferStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "ring buffer id");
  auto it = rings_.find(id);
  if (it == rings_.end()) return env.Undefined();
  it->second->Stop();
  Napi::Object stats = RingStatsObject(env, *it->second);
  rings_.erase(it);
  return stats;
}

Napi::Value BpfObject::RingBufferStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "ring buffer id");
  auto it = rings_.find(id);
  if (it == rings_.end()) return env.Undefined();
  return RingStatsObject(env, *it->second);
}

// ringBufferReadNow(id): the thread reads the ring at once (no-op when unknown or stopped).
Napi::Value BpfObject::RingBufferReadNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "ring buffer id");
  auto it = rings_.find(id);
  if (it != rings_.end()) it->second->ReadNow();
  return env.Undefined();
}

Napi::Value BpfObject::RingBufferRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "ring buffer id");
  auto it = rings_.find(id);
  if (it != rings_.end()) it->second->Ref(env, info.Length() > 1 && info[1].ToBoolean().Value());
  return env.Undefined();
}

}  // namespace qf

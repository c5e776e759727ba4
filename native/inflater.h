#pragma once

#include <napi.h>
#include <zlib.h>

namespace qf {

// zlib decompression a piece at a time: a Go binary's .debug_info inflates to tens of MiB, of which the agent reads
// one struct's units, so it is read through a window instead of held whole (src/gosym/elf.ts sectionPieces).
//   const z = new Inflater();
//   const [consumed, produced, ended] = z.inflate(input, output);   // as far as either buffer allows
//   z.close();                                                       // or left to the garbage collector
class Inflater : public Napi::ObjectWrap<Inflater> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Inflater(const Napi::CallbackInfo& info);
  ~Inflater() override;

 private:
  Napi::Value Inflate(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void End();

  z_stream zs_{};
  bool open_ = false;
  bool ended_ = false;
};

}  // namespace qf

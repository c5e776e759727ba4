// Inflater: see inflater.h.
#include "inflater.h"

#include <algorithm>
#include <string>

#include "errors.h"

namespace qf {

Napi::Function Inflater::Init(Napi::Env env) {
  return DefineClass(env, "Inflater",
                     {
                         InstanceMethod<&Inflater::Inflate>("inflate"),
                         InstanceMethod<&Inflater::Close>("close"),
                     });
}

Inflater::Inflater(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Inflater>(info) {
  int rc = inflateInit(&zs_);
  if (rc != Z_OK) throw Napi::Error::New(info.Env(), std::string("inflateInit failed: ") + (zs_.msg ? zs_.msg : std::to_string(rc)));
  open_ = true;
}

Inflater::~Inflater() { End(); }

void Inflater::End() {
  if (open_) inflateEnd(&zs_);
  open_ = false;
}

// inflate(input: Buffer, output: Buffer) -> [consumed, produced, ended]: decompresses from the start of input into
// the start of output until either runs out or the stream ends. Corrupt data throws (zlib's message).
Napi::Value Inflater::Inflate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsBuffer()) ThrowUsage(env, "inflate(input, output): Buffers expected", true);
  if (!open_) ThrowUsage(env, "inflate: the inflater is closed");
  auto in = info[0].As<Napi::Buffer<uint8_t>>();
  auto out = info[1].As<Napi::Buffer<uint8_t>>();
  size_t consumed = 0, produced = 0;
  // avail_in/avail_out are 32-bit: a bigger buffer is taken a gigabyte at a time.
  while (!ended_ && consumed < in.Length() && produced < out.Length()) {
    uInt inLen = static_cast<uInt>(std::min<size_t>(in.Length() - consumed, 1u << 30));
    uInt outLen = static_cast<uInt>(std::min<size_t>(out.Length() - produced, 1u << 30));
    zs_.next_in = in.Data() + consumed;
    zs_.avail_in = inLen;
    zs_.next_out = out.Data() + produced;
    zs_.avail_out = outLen;
    int rc = inflate(&zs_, Z_NO_FLUSH);
    consumed += inLen - zs_.avail_in;
    produced += outLen - zs_.avail_out;
    if (rc == Z_STREAM_END) {
      ended_ = true;
    } else if (rc == Z_BUF_ERROR) {
      break;  // no progress possible with these buffers: more input or more room needed
    } else if (rc != Z_OK) {
      std::string why = zs_.msg ? zs_.msg : "error " + std::to_string(rc);
      End();
      throw Napi::Error::New(env, "corrupt compressed data (" + why + ")");
    }
  }
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(0u, Napi::Number::New(env, static_cast<double>(consumed)));
  r.Set(1u, Napi::Number::New(env, static_cast<double>(produced)));
  r.Set(2u, Napi::Boolean::New(env, ended_));
  return r;
}

Napi::Value Inflater::Close(const Napi::CallbackInfo& info) {
  End();
  return info.Env().Undefined();
}

}  // namespace qf

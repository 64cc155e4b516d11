// Page-locked host memory that JavaScript reads and writes directly (zero-copy): the TypeScript
// preprocessing writes the input tensor into it, cudaMemcpyAsync sends it to the GPU, and the outputs
// come back into it. Owned through shared_ptr by the context slot AND by every ArrayBuffer that views
// it, so the memory is freed only when both the engine and the last JS view are gone.
#pragma once

#include <cstddef>
#include <memory>

#include "napi_config.h"

namespace deimv2 {

class PinnedBuffer {
 public:
  // cudaHostAlloc(portable): usable from any device's streams. Throws NativeError naming the call.
  static std::shared_ptr<PinnedBuffer> Allocate(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

  // An external ArrayBuffer over the whole buffer; it holds a reference until V8 collects it.
  // Create it ONCE per buffer: V8 refuses two ArrayBuffers over the same memory.
  static Napi::ArrayBuffer ToArrayBuffer(Napi::Env env, const std::shared_ptr<PinnedBuffer>& buffer);

 private:
  PinnedBuffer(void* data, size_t size) : data_(data), size_(size) {}
  void* data_;
  size_t size_;
};

}  // namespace deimv2

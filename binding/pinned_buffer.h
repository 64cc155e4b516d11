// Page-locked host memory that JavaScript reads and writes directly (zero-copy): the TypeScript
// preprocessing writes the input tensor into it, an async copy sends it to the GPU, and the outputs
// come back into it. Owned through shared_ptr by the context slot AND by every ArrayBuffer that views
// it, so the memory is freed only when both the engine and the last JS view are gone. The last owner
// may be a GC finalizer on the JS thread: the free then goes to the teardown thread (rt::DeferRelease),
// never blocking the event loop.
#pragma once

#include <cstddef>
#include <atomic>
#include <memory>

#include "napi_config.h"
#include "runtime/gpu_runtime.h"

namespace deimv2 {

class PinnedBuffer {
 public:
  // Pinned (portable) memory from the runtime; throws NativeError naming the call.
  static std::shared_ptr<PinnedBuffer> Allocate(rt::GpuRuntime& runtime, size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() const noexcept { return data_; }
  // Frees the memory now (engine close, off the JS thread, once every ArrayBuffer over it is detached).
  void FreeNow() noexcept;
  size_t size() const noexcept { return size_; }

  // An external ArrayBuffer over the whole buffer; it holds a reference until V8 collects it.
  // Create it ONCE per buffer: V8 refuses two ArrayBuffers over the same memory. Where the runtime
  // refuses external buffers (napi_no_external_buffers_allowed), throws ERR_NATIVE with the reason.
  static Napi::ArrayBuffer ToArrayBuffer(Napi::Env env, const std::shared_ptr<PinnedBuffer>& buffer);

 private:
  PinnedBuffer(rt::GpuRuntime& runtime, void* data, size_t size) : runtime_(runtime), data_(data), size_(size) {}
  rt::GpuRuntime& runtime_;
  void* data_;
  size_t size_;
  std::atomic<bool> freed_{false};
};

}  // namespace deimv2

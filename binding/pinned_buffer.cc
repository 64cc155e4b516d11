#include "pinned_buffer.h"

#include "options.h"

namespace deimv2 {

std::shared_ptr<PinnedBuffer> PinnedBuffer::Allocate(rt::GpuRuntime& runtime, size_t bytes) {
  void* data = runtime.PinnedAlloc(bytes);
  try {
    return std::shared_ptr<PinnedBuffer>(new PinnedBuffer(runtime, data, bytes));
  } catch (...) {
    runtime.PinnedFree(data);
    throw;
  }
}

PinnedBuffer::~PinnedBuffer() { FreeNow(); }

void PinnedBuffer::FreeNow() noexcept {
  if (data_ != nullptr && !freed_.exchange(true)) runtime_.PinnedFree(data_);
}

Napi::ArrayBuffer PinnedBuffer::ToArrayBuffer(Napi::Env env, const std::shared_ptr<PinnedBuffer>& buffer) {
  auto* keepAlive = new std::shared_ptr<PinnedBuffer>(buffer);
  napi_value value = nullptr;
  napi_status status = napi_create_external_arraybuffer(
      env, buffer->data(), buffer->size(),
      [](napi_env, void*, void* hint) {
        // Runs on the JS thread during GC: hand the last reference to the teardown thread.
        auto* held = static_cast<std::shared_ptr<PinnedBuffer>*>(hint);
        try {
          rt::DeferRelease([held] { delete held; });
        } catch (...) {
          delete held;  // nothing may escape a finalizer
        }
      },
      keepAlive, &value);
  if (status != napi_ok) {
    delete keepAlive;
    // Electron and other runtimes with the V8 sandbox refuse external buffers (napi_no_external_buffers_allowed).
    const napi_extended_error_info* info = nullptr;
    napi_get_last_error_info(env, &info);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    throw NativeError(std::string("cannot expose pinned memory to JavaScript: napi_create_external_arraybuffer failed (") +
                          (info != nullptr && info->error_message != nullptr ? info->error_message : "unknown") +
                          "); this JavaScript runtime refuses external buffers",
                      "ERR_NATIVE");
  }
  return Napi::ArrayBuffer(env, value);
}

}  // namespace deimv2

#include "pinned_buffer.h"

#include <cuda_runtime_api.h>

#include "cuda_check.h"

namespace deimv2 {

std::shared_ptr<PinnedBuffer> PinnedBuffer::Allocate(size_t bytes) {
  void* data = nullptr;
  DEIMV2_CUDA(cudaHostAlloc(&data, bytes, cudaHostAllocPortable));
  return std::shared_ptr<PinnedBuffer>(new PinnedBuffer(data, bytes));
}

PinnedBuffer::~PinnedBuffer() {
  // A destructor cannot report; the only failure (a dead context at process exit) leaks nothing useful.
  if (data_ != nullptr) static_cast<void>(cudaFreeHost(data_));
}

Napi::ArrayBuffer PinnedBuffer::ToArrayBuffer(Napi::Env env, const std::shared_ptr<PinnedBuffer>& buffer) {
  auto* keepAlive = new std::shared_ptr<PinnedBuffer>(buffer);
  return Napi::ArrayBuffer::New(
      env, buffer->data(), buffer->size(),
      [](Napi::Env, void*, std::shared_ptr<PinnedBuffer>* hint) { delete hint; }, keepAlive);
}

}  // namespace deimv2

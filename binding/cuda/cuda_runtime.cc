#include "cuda/cuda_runtime.h"

#include <cuda_runtime_api.h>

#include "cuda/cuda_check.h"

#ifndef DEIMV2_WITH_CUDA_KERNELS
#define DEIMV2_WITH_CUDA_KERNELS 1  // the compile check leaves it undefined and so checks the kernel calls too
#endif
#if DEIMV2_WITH_CUDA_KERNELS
#include "preprocess.h"
#endif

namespace deimv2 {
namespace cuda {

std::vector<rt::DeviceInfo> CudaRuntime::Devices(std::string* error) {
  std::vector<rt::DeviceInfo> list;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // No driver or no GPU is an answer here, not an exception: the caller reports it as the reason.
    *error = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status);
    static_cast<void>(cudaGetLastError());
    return list;
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    status = cudaGetDeviceProperties(&properties, index);
    if (status != cudaSuccess) {
      *error = "cudaGetDeviceProperties(" + std::to_string(index) + ") failed: " + cudaGetErrorName(status);
      continue;
    }
    rt::DeviceInfo device;
    device.index = index;
    device.name = properties.name;
    device.computeCapability = std::to_string(properties.major) + "." + std::to_string(properties.minor);
    device.totalMemory = static_cast<double>(properties.totalGlobalMem);
    device.multiprocessors = properties.multiProcessorCount;
    list.push_back(device);
  }
  return list;
}

bool CudaRuntime::KernelRuns(int32_t device, std::string* why) {
#if DEIMV2_WITH_CUDA_KERNELS
  DEIMV2_CUDA(cudaSetDevice(device));
  cudaError_t status = PreprocessKernelStatus();
  if (status == cudaSuccess) return true;
  *why = std::string("the preprocessing kernel cannot run on device ") + std::to_string(device) + " (" +
         cudaGetErrorName(status) + ": no image for its architecture in this build); preprocessing on the CPU";
  return false;
#else
  static_cast<void>(device);
  *why = "the addon was built without the CUDA preprocessing kernel (nvcc was not found)";
  return false;
#endif
}

void CudaRuntime::SetDevice(int32_t device) { DEIMV2_CUDA(cudaSetDevice(device)); }

void* CudaRuntime::DeviceAlloc(size_t bytes) {
  void* pointer = nullptr;
  DEIMV2_CUDA(cudaMalloc(&pointer, bytes));
  return pointer;
}
void CudaRuntime::DeviceFree(void* pointer) noexcept {
  if (pointer != nullptr) static_cast<void>(cudaFree(pointer));
}
void* CudaRuntime::PinnedAlloc(size_t bytes) {
  void* pointer = nullptr;
  // Portable: usable from any device's streams.
  DEIMV2_CUDA(cudaHostAlloc(&pointer, bytes, cudaHostAllocPortable));
  return pointer;
}
void CudaRuntime::PinnedFree(void* pointer) noexcept {
  if (pointer != nullptr) static_cast<void>(cudaFreeHost(pointer));
}

rt::Stream CudaRuntime::CreateStream() {
  cudaStream_t stream = nullptr;
  // Non-blocking: the slot's copies and kernels never wait for the legacy default stream.
  DEIMV2_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return stream;
}
void CudaRuntime::DestroyStream(rt::Stream stream) noexcept { static_cast<void>(cudaStreamDestroy(static_cast<cudaStream_t>(stream))); }
rt::Event CudaRuntime::CreateEvent() {
  cudaEvent_t event = nullptr;
  // Blocking sync: the waiting thread sleeps, not spins.
  DEIMV2_CUDA(cudaEventCreateWithFlags(&event, cudaEventBlockingSync | cudaEventDisableTiming));
  return event;
}
void CudaRuntime::DestroyEvent(rt::Event event) noexcept { static_cast<void>(cudaEventDestroy(static_cast<cudaEvent_t>(event))); }
void CudaRuntime::RecordEvent(rt::Event event, rt::Stream stream) {
  DEIMV2_CUDA(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
}
void CudaRuntime::WaitEvent(rt::Event event) { DEIMV2_CUDA(cudaEventSynchronize(static_cast<cudaEvent_t>(event))); }
void CudaRuntime::DrainStream(rt::Stream stream) noexcept {
  static_cast<void>(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
}

void CudaRuntime::CopyToDevice(void* device, const void* pinned, size_t bytes, rt::Stream stream) {
  DEIMV2_CUDA(cudaMemcpyAsync(device, pinned, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)));
}
void CudaRuntime::CopyToHost(void* pinned, const void* device, size_t bytes, rt::Stream stream) {
  DEIMV2_CUDA(cudaMemcpyAsync(pinned, device, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream)));
}

void CudaRuntime::Preprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out, rt::Stream stream) {
#if DEIMV2_WITH_CUDA_KERNELS
  DEIMV2_CUDA(EnqueuePreprocess(plan, src, scratch, out, static_cast<cudaStream_t>(stream)));
#else
  static_cast<void>(plan);
  static_cast<void>(src);
  static_cast<void>(scratch);
  static_cast<void>(out);
  static_cast<void>(stream);
  throw NativeError("the addon was built without the CUDA preprocessing kernel (nvcc was not found)", "ERR_UNSUPPORTED");
#endif
}

rt::Graph CudaRuntime::CaptureGraph(rt::Stream handle, const std::function<bool()>& work, std::string* why) {
  auto stream = static_cast<cudaStream_t>(handle);
  // Thread-local capture: other slots' worker threads keep calling CUDA freely meanwhile.
  cudaError_t status = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (status != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    *why = std::string("cudaStreamBeginCapture failed: ") + cudaGetErrorName(status);
    return nullptr;
  }
  bool enqueued = false;
  try {
    enqueued = work();
  } catch (...) {
    enqueued = false;
  }
  cudaGraph_t graph = nullptr;
  status = cudaStreamEndCapture(stream, &graph);
  if (!enqueued || status != cudaSuccess || graph == nullptr) {
    if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
    static_cast<void>(cudaGetLastError());  // capture errors are not sticky; clear the last-error slot
    *why = !enqueued ? "enqueueV3 under stream capture failed" : std::string("cudaStreamEndCapture failed: ") + cudaGetErrorName(status);
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  status = cudaGraphInstantiate(&exec, graph, 0);
  static_cast<void>(cudaGraphDestroy(graph));
  if (status != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    *why = std::string("cudaGraphInstantiate failed: ") + cudaGetErrorName(status);
    return nullptr;
  }
  return exec;
}
void CudaRuntime::LaunchGraph(rt::Graph graph, rt::Stream stream) {
  DEIMV2_CUDA(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), static_cast<cudaStream_t>(stream)));
}
void CudaRuntime::DestroyGraph(rt::Graph graph) noexcept { static_cast<void>(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph))); }


}  // namespace cuda
}  // namespace deimv2

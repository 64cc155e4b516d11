// The CUDA half of the real runtime (binding/runtime/gpu_runtime.h): devices, memory, streams,
// events, async copies, graph capture and the preprocessing kernel, on the CUDA runtime API only.
// The TensorRT runtime (binding/trt/) adds engines and the builder; the GPU self-test
// (binding/selftest/) runs this part alone where only a driver exists.
#pragma once

#include "runtime/gpu_runtime.h"

namespace deimv2 {
namespace cuda {

class CudaRuntime : public rt::GpuRuntime {
 public:
  std::vector<rt::DeviceInfo> Devices(std::string* error) override;
  bool KernelRuns(int32_t device, std::string* why) override;
  void SetDevice(int32_t device) override;
  void* DeviceAlloc(size_t bytes) override;
  void DeviceFree(void* pointer) noexcept override;
  void* PinnedAlloc(size_t bytes) override;
  void PinnedFree(void* pointer) noexcept override;
  rt::Stream CreateStream() override;
  void DestroyStream(rt::Stream stream) noexcept override;
  rt::Event CreateEvent() override;
  void DestroyEvent(rt::Event event) noexcept override;
  void RecordEvent(rt::Event event, rt::Stream stream) override;
  void WaitEvent(rt::Event event) override;
  void DrainStream(rt::Stream stream) noexcept override;
  void CopyToDevice(void* device, const void* pinned, size_t bytes, rt::Stream stream) override;
  void CopyToHost(void* pinned, const void* device, size_t bytes, rt::Stream stream) override;
  void Preprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out, rt::Stream stream) override;
  rt::Graph CaptureGraph(rt::Stream stream, const std::function<bool()>& work, std::string* why) override;
  void LaunchGraph(rt::Graph graph, rt::Stream stream) override;
  void DestroyGraph(rt::Graph graph) noexcept override;
};

}  // namespace cuda
}  // namespace deimv2

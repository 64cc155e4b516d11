// The real runtime in a build without TensorRT: every call says why it is missing (the reason was
// recorded at configure time), with code ERR_TENSORRT_UNAVAILABLE. Argument checks still run first in
// the N-API layer, so callers get the same TypeError/RangeError for bad input everywhere.
#include "build_info.h"
#include "runtime/gpu_runtime.h"

namespace deimv2 {
namespace rt {

namespace {

[[noreturn]] void Unavailable() { throw NativeError(UnavailableMessage(), "ERR_TENSORRT_UNAVAILABLE"); }

class UnavailableRuntime : public GpuRuntime {
 public:
  const char* Name() const override { return "tensorrt"; }
  std::string Version() override { Unavailable(); }
  std::vector<DeviceInfo> Devices(std::string*) override { Unavailable(); }
  bool KernelRuns(int32_t, std::string* why) override {
    *why = "no CUDA runtime in this build";
    return false;
  }
  void SetDevice(int32_t) override { Unavailable(); }
  void* DeviceAlloc(size_t) override { Unavailable(); }
  void DeviceFree(void*) noexcept override {}
  void* PinnedAlloc(size_t) override { Unavailable(); }
  void PinnedFree(void*) noexcept override {}
  Stream CreateStream() override { Unavailable(); }
  void DestroyStream(Stream) noexcept override {}
  Event CreateEvent() override { Unavailable(); }
  void DestroyEvent(Event) noexcept override {}
  void RecordEvent(Event, Stream) override { Unavailable(); }
  void WaitEvent(Event) override { Unavailable(); }
  void DrainStream(Stream) noexcept override {}
  void CopyToDevice(void*, const void*, size_t, Stream) override { Unavailable(); }
  void CopyToHost(void*, const void*, size_t, Stream) override { Unavailable(); }
  void Preprocess(const PreprocessPlan&, const uint8_t*, uint8_t*, float*, Stream) override { Unavailable(); }
  Graph CaptureGraph(Stream, const std::function<bool()>&, std::string*) override { Unavailable(); }
  void LaunchGraph(Graph, Stream) override { Unavailable(); }
  void DestroyGraph(Graph) noexcept override {}
  std::unique_ptr<Engine> Deserialize(const std::vector<char>&, const std::string&) override { Unavailable(); }
  BuildOutput Build(const BuildOptions&, BuildMonitor&) override { Unavailable(); }
};

}  // namespace

std::unique_ptr<GpuRuntime> MakeTensorRtRuntime() { return std::make_unique<UnavailableRuntime>(); }

}  // namespace rt
}  // namespace deimv2

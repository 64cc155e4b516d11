// The one seam between the addon's core (N-API surface, slot pool, pinned buffer lifetimes, async
// workers, progress, argument checks) and a GPU runtime. Two implementations:
//   - TensorRT + CUDA (binding/trt/), compiled only where TensorRT is found: a thin adapter;
//   - Simulated (binding/sim/), compiled in every build, chosen with DEIMV2_GPU_RUNTIME=simulated
//     (through useRuntime() from src/backends/tensorrt/native.ts): it keeps the real contracts, more
//     strictly, so that CI runs all of our own code on the GPU path.
// Every method that can fail throws NativeError naming the call ("cudaMalloc(...) failed: ...");
// methods marked noexcept are teardown and cannot report.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "native_error.h"
#include "preprocess_kernel.h"

namespace deimv2 {

struct BuildOptions;

namespace rt {

constexpr int32_t kMaxRank = 8;

// The element types a pinned buffer can exchange with JavaScript, plus "other" (refused by the pool).
enum class DType { kFloat, kHalf, kBF16, kInt8, kUInt8, kBool, kInt32, kInt64, kOther };

struct Shape {
  int32_t rank = 0;  // -1: unknown rank
  int64_t d[kMaxRank] = {};
};

struct TensorInfo {
  std::string name;
  bool isInput = false;
  DType type = DType::kFloat;
  int32_t rawType = 0;  // the runtime's own type code, for messages about unsupported types
  Shape shape;          // -1 on dynamic axes
};

// Opaque handles; each runtime knows what they are.
using Stream = void*;
using Event = void*;
using Graph = void*;

// One execution context of an engine (TensorRT's IExecutionContext). Each has its own error text,
// so a slot never reports another slot's failure.
class Context {
 public:
  virtual ~Context() = default;
  virtual bool SetInputShape(const std::string& name, const Shape& shape) = 0;
  // The shape the context resolves for a tensor now (-1 on dims not yet set).
  virtual Shape TensorShape(const std::string& name) = 0;
  virtual bool SetTensorAddress(const std::string& name, void* deviceAddress) = 0;
  // Enqueues the inference on `stream`; false with LastError() when it cannot.
  virtual bool Enqueue(Stream stream) = 0;
  virtual std::string LastError() = 0;
};

// A deserialized engine (TensorRT's ICudaEngine).
class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::vector<TensorInfo> Tensors() = 0;
  // Profile 0's min/opt/max shapes of an input.
  virtual void ProfileShapes(const std::string& input, Shape* min, Shape* opt, Shape* max) = 0;
  virtual std::unique_ptr<Context> CreateContext() = 0;  // throws
};

// Progress of a build, called from the builder's thread: kind 0 start, 1 step, 2 finish. Step()
// returns false when the caller cancelled the build.
class BuildMonitor {
 public:
  virtual ~BuildMonitor() = default;
  virtual void Phase(int kind, const char* phase, const char* parent, int32_t step, int32_t steps) noexcept = 0;
  virtual bool Cancelled() const noexcept = 0;
};

struct BuildOutput {
  std::vector<char> engine;  // the serialized engine
  std::vector<std::string> warnings;
  std::string version;       // the runtime version that built it
};

struct DeviceInfo {
  int32_t index = 0;
  std::string name;
  std::string computeCapability;
  double totalMemory = 0;
  int32_t multiprocessors = 0;
};

class GpuRuntime {
 public:
  virtual ~GpuRuntime() = default;
  virtual const char* Name() const = 0;  // "tensorrt" | "simulated"
  // Throws ERR_TENSORRT_UNAVAILABLE (with the build-time reason) where this runtime is absent.
  virtual std::string Version() = 0;
  // Never throws for "no driver / no device": that goes into *error.
  virtual std::vector<DeviceInfo> Devices(std::string* error) = 0;
  // Whether the preprocessing kernel can run on `device` (an image for its architecture exists).
  virtual bool KernelRuns(int32_t device, std::string* why) = 0;

  // The current device of the calling thread (CUDA keeps it per thread).
  virtual void SetDevice(int32_t device) = 0;

  virtual void* DeviceAlloc(size_t bytes) = 0;
  virtual void DeviceFree(void* pointer) noexcept = 0;
  virtual void* PinnedAlloc(size_t bytes) = 0;
  virtual void PinnedFree(void* pointer) noexcept = 0;

  virtual Stream CreateStream() = 0;
  virtual void DestroyStream(Stream stream) noexcept = 0;
  virtual Event CreateEvent() = 0;
  virtual void DestroyEvent(Event event) noexcept = 0;
  virtual void RecordEvent(Event event, Stream stream) = 0;
  // Blocks until the event's work is done; throws the first error of that work.
  virtual void WaitEvent(Event event) = 0;
  // Drains a stream (teardown), ignoring errors.
  virtual void DrainStream(Stream stream) noexcept = 0;

  virtual void CopyToDevice(void* device, const void* pinned, size_t bytes, Stream stream) = 0;
  virtual void CopyToHost(void* pinned, const void* device, size_t bytes, Stream stream) = 0;

  // The preprocessing kernel (binding/preprocess_kernel.h) on `stream`; device pointers in `plan`.
  virtual void Preprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out,
                          Stream stream) = 0;

  // Graph capture of what `work` enqueues on `stream`; returns nullptr with *why when capture fails.
  virtual Graph CaptureGraph(Stream stream, const std::function<bool()>& work, std::string* why) = 0;
  virtual void LaunchGraph(Graph graph, Stream stream) = 0;
  virtual void DestroyGraph(Graph graph) noexcept = 0;

  // `bytes` of an engine file; throws ERR_ENGINE_INVALID for what this runtime cannot read.
  virtual std::unique_ptr<Engine> Deserialize(const std::vector<char>& bytes, const std::string& path) = 0;
  virtual BuildOutput Build(const BuildOptions& options, BuildMonitor& monitor) = 0;
};

// The runtime every call of this process uses (the real one unless useRuntime('simulated') chose the simulator).
GpuRuntime& Active();
// "tensorrt" or "simulated"; throws NativeError(ERR_INVALID_ARGUMENT) otherwise.
void Select(const std::string& name);

// Implemented by binding/trt/ (with TensorRT) or binding/runtime/unavailable_runtime.cc.
std::unique_ptr<GpuRuntime> MakeTensorRtRuntime();
// binding/sim/sim_runtime.cc
std::unique_ptr<GpuRuntime> MakeSimulatedRuntime();

// Runs `task` on the process's teardown thread, off the JS thread (GC finalizers free pinned memory
// and drop engines there, so a cudaFreeHost never blocks the event loop).
void DeferRelease(std::function<void()> task) noexcept;

}  // namespace rt
}  // namespace deimv2

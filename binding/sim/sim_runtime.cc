// The simulated GPU runtime: keeps the contracts of CUDA + TensorRT, more strictly, on the host.
//  - Streams: each has its own host thread; copies, kernels and enqueues run later than they are
//    issued, in stream order, after a random delay (DEIMV2_SIM_DELAY_US, default 200 us max, seeded by
//    DEIMV2_SIM_SEED), so a missing synchronisation shows up as wrong data, not luck. An error of
//    queued work is reported by the next wait on an event recorded after it.
//  - Memory: device allocations are a separate registry from pinned host allocations. A host pointer
//    where a device pointer is expected (or the reverse), or a range past an allocation's end, is an
//    error. A device-to-host copy poisons its destination (0xFF bytes: NaN floats, -1 integers) when
//    it is issued, so reading outputs before the wait sees poison. New device memory is 0xA5 bytes.
//  - Contexts: enqueue fails when an input shape or any tensor address is unset or a shape is outside
//    the profile; dynamic dims read -1 until set. A captured graph replays what was captured (shapes
//    and addresses at capture) and is refused after a shape change of its context.
//  - Engines: the file header is checked at deserialisation (sim_format.h). Inference looks up each
//    batch item's exact input bytes among the recorded items and writes the recorded outputs; an input
//    not recorded fails, naming the item. Without a recording, outputs are a deterministic function of
//    the input: with h = FNV-1a 64 of the item's input bytes (every input in tensor order), element k
//    of output t is x = splitmix64(h + (t + 1) * 0x9E3779B97F4A7C15 + k); floats get (x >> 40) / 2^24,
//    integers x % 80, bools x & 1.
//  - Preprocessing: binding/preprocess_kernel.h, the same source the CUDA kernels run.
//  - Faults: DEIMV2_GPU_FAULT=<call>:<n>[,<call>:<n>...] fails the n-th call (counted from 1 per
//    process) of alloc, pinned-alloc, copy, kernel, enqueue, graph-capture, deserialize or build.
//  - Devices: DEIMV2_SIM_DEVICES (default 2). DEIMV2_SIM_NO_KERNEL=1 makes the kernel unable to run
//    (as on a GPU without an image for its architecture). Teardown on the wrong device or on the JS
//    thread is recorded as a violation (simulator().violations).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "options.h"
#include "runtime/gpu_runtime.h"
#include "sim/sim_format.h"
#include "sim/sim_stats.h"

namespace deimv2 {
namespace sim {

namespace {

constexpr uint8_t kPoison = 0xFF;
constexpr uint8_t kFreshDevice = 0xA5;

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::atoi(value);
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// DEIMV2_GPU_FAULT=<call>:<n>,...: the n-th call of each named function fails.
class Faults {
 public:
  Faults() {
    const char* spec = std::getenv("DEIMV2_GPU_FAULT");
    if (spec == nullptr) return;
    std::string text(spec);
    size_t start = 0;
    while (start < text.size()) {
      size_t comma = text.find(',', start);
      std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      size_t colon = item.find(':');
      if (colon != std::string::npos) targets_[item.substr(0, colon)] = std::atol(item.c_str() + colon + 1);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  // Throws the injected failure when this is the n-th call of `call`.
  void Hit(const std::string& call, const char* code) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto target = targets_.find(call);
    long n = ++counts_[call];
    if (target != targets_.end() && target->second == n) {
      throw NativeError("simulated " + call + " failed: fault injected by DEIMV2_GPU_FAULT=" + call + ":" + std::to_string(n),
                        code);
    }
  }

 private:
  std::mutex mutex_;
  std::map<std::string, long> targets_;
  std::map<std::string, long> counts_;
};

struct Allocation {
  size_t size = 0;
  int32_t device = 0;
};

class SimRuntime;

// A stream: a host thread running queued work in order, each piece after a random delay.
struct SimStream {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::function<void()>> queue;
  bool running = false;  // a task is being run
  bool stop = false;
  std::string error;      // the first failure of queued work, until a wait reports it
  const char* errorCode = "ERR_CUDA";
  std::vector<std::function<void()>>* capture = nullptr;  // set while a graph is being captured
  std::mt19937_64 random;
  int maxDelayUs = 0;
  int32_t device = 0;
  std::thread thread;

  void Run() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      changed.wait(lock, [this] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stop requested and drained
      std::function<void()> task = std::move(queue.front());
      queue.pop_front();
      running = true;
      int delay = maxDelayUs > 0 ? static_cast<int>(random() % static_cast<uint64_t>(maxDelayUs + 1)) : 0;
      lock.unlock();
      if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
      std::string failure;
      const char* code = "ERR_CUDA";
      try {
        task();
      } catch (const NativeError& e) {
        failure = e.what();
        code = e.code();
      } catch (const std::exception& e) {
        failure = e.what();
      } catch (...) {
        failure = "simulated stream work threw a non-standard exception";
      }
      lock.lock();
      if (!failure.empty() && error.empty()) {
        error = failure;
        errorCode = code;
      }
      running = false;
      changed.notify_all();
    }
  }
};

struct SimEvent {
  std::mutex mutex;
  std::condition_variable changed;
  bool pending = false;
  std::string error;
  const char* errorCode = "ERR_CUDA";
};

struct SimGraph {
  std::vector<std::function<void()>> tasks;
  std::vector<std::pair<const struct SimContextState*, uint64_t>> contexts;  // shape generation at capture
};

// The part of a context the queued work reads: copied at enqueue, so later setInputShape calls do
// not change work already issued (as TensorRT).
struct SimContextState {
  std::atomic<uint64_t> generation{0};
};

class SimEngine;

class SimContext : public rt::Context {
 public:
  SimContext(SimRuntime& runtime, std::shared_ptr<const EngineData> data);
  ~SimContext() override;
  bool SetInputShape(const std::string& name, const rt::Shape& shape) override;
  rt::Shape TensorShape(const std::string& name) override;
  bool SetTensorAddress(const std::string& name, void* address) override;
  bool Enqueue(rt::Stream stream) override;
  std::string LastError() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return lastError_;
  }
  SimContextState state;

 private:
  bool Fail(const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex_);
    lastError_ = why;
    return false;
  }
  int Index(const std::string& name) const;
  SimRuntime& runtime_;
  std::shared_ptr<const EngineData> data_;
  std::vector<rt::Shape> shapes_;    // -1 on dynamic dims until set
  std::vector<void*> addresses_;
  std::mutex mutex_;
  std::string lastError_;
};

class SimEngine : public rt::Engine {
 public:
  SimEngine(SimRuntime& runtime, std::shared_ptr<const EngineData> data);
  ~SimEngine() override;
  std::vector<rt::TensorInfo> Tensors() override { return data_->tensors; }
  void ProfileShapes(const std::string& input, rt::Shape* min, rt::Shape* opt, rt::Shape* max) override {
    for (const rt::TensorInfo& t : data_->tensors) {
      if (t.name != input) continue;
      *min = *opt = *max = t.shape;
      if (t.shape.rank > 0 && t.shape.d[0] == -1) {
        min->d[0] = data_->minBatch;
        opt->d[0] = data_->optBatch;
        max->d[0] = data_->maxBatch;
      }
      return;
    }
    throw NativeError("getProfileShape: no input '" + input + "'", "ERR_TENSORRT");
  }
  std::unique_ptr<rt::Context> CreateContext() override;

 private:
  SimRuntime& runtime_;
  std::shared_ptr<const EngineData> data_;
};

class SimRuntime : public rt::GpuRuntime {
 public:
  SimRuntime()
      : devices_(std::max(1, EnvInt("DEIMV2_SIM_DEVICES", 2))),
        maxDelayUs_(std::max(0, EnvInt("DEIMV2_SIM_DELAY_US", 200))),
        seed_(static_cast<uint64_t>(EnvInt("DEIMV2_SIM_SEED", 1))) {}

  const char* Name() const override { return "simulated"; }
  std::string Version() override { return "simulated"; }
  std::vector<rt::DeviceInfo> Devices(std::string*) override {
    std::vector<rt::DeviceInfo> list;
    for (int32_t i = 0; i < devices_; ++i) {
      rt::DeviceInfo d;
      d.index = i;
      d.name = "Simulated GPU " + std::to_string(i);
      d.computeCapability = "8.9";
      d.totalMemory = 8.0 * 1024 * 1024 * 1024;
      d.multiprocessors = 64;
      list.push_back(d);
    }
    return list;
  }
  bool KernelRuns(int32_t device, std::string* why) override {
    if (EnvInt("DEIMV2_SIM_NO_KERNEL", 0) == 0) return true;
    *why = "the preprocessing kernel has no image for simulated device " + std::to_string(device) +
           " (DEIMV2_SIM_NO_KERNEL=1 models a GPU newer than the compiled architectures)";
    return false;
  }
  void SetDevice(int32_t device) override {
    if (device < 0 || device >= devices_) {
      throw NativeError("cudaSetDevice(" + std::to_string(device) + ") failed: cudaErrorInvalidDevice (the simulated runtime has " +
                            std::to_string(devices_) + " device(s))",
                        "ERR_CUDA");
    }
    CurrentDevice() = device;
  }

  void* DeviceAlloc(size_t bytes) override {
    faults_.Hit("alloc", "ERR_CUDA");
    auto* memory = static_cast<uint8_t*>(std::malloc(bytes == 0 ? 1 : bytes));
    if (memory == nullptr) throw NativeError("cudaMalloc(" + std::to_string(bytes) + ") failed: out of memory", "ERR_CUDA");
    std::memset(memory, kFreshDevice, bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    device_[memory] = Allocation{bytes, CurrentDevice()};
    stats_.deviceBytes += bytes;
    stats_.deviceAllocations++;
    return memory;
  }
  void DeviceFree(void* pointer) noexcept override {
    if (pointer == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = device_.find(static_cast<uint8_t*>(pointer));
    if (found == device_.end()) {
      Violation("cudaFree of a pointer that is not a device allocation");
      return;
    }
    if (found->second.device != CurrentDevice()) {
      Violation("cudaFree of device " + std::to_string(found->second.device) + " memory while device " +
                std::to_string(CurrentDevice()) + " is current (teardown on the wrong device)");
    }
    CheckNotJsThread("cudaFree");
    stats_.deviceBytes -= found->second.size;
    stats_.deviceAllocations--;
    device_.erase(found);
    std::free(pointer);
  }
  void* PinnedAlloc(size_t bytes) override {
    faults_.Hit("pinned-alloc", "ERR_CUDA");
    auto* memory = static_cast<uint8_t*>(std::calloc(bytes == 0 ? 1 : bytes, 1));
    if (memory == nullptr) throw NativeError("cudaHostAlloc(" + std::to_string(bytes) + ") failed: out of memory", "ERR_CUDA");
    std::lock_guard<std::mutex> lock(mutex_);
    pinned_[memory] = Allocation{bytes, CurrentDevice()};
    stats_.pinnedBytes += bytes;
    stats_.pinnedAllocations++;
    return memory;
  }
  void PinnedFree(void* pointer) noexcept override {
    if (pointer == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = pinned_.find(static_cast<uint8_t*>(pointer));
    if (found == pinned_.end()) {
      Violation("cudaFreeHost of a pointer that is not a pinned allocation");
      return;
    }
    CheckNotJsThread("cudaFreeHost");
    stats_.pinnedBytes -= found->second.size;
    stats_.pinnedAllocations--;
    pinned_.erase(found);
    std::free(pointer);
  }

  rt::Stream CreateStream() override {
    auto* stream = new SimStream();
    stream->random.seed(seed_ + streamCounter_.fetch_add(1));
    stream->maxDelayUs = maxDelayUs_;
    stream->device = CurrentDevice();
    stream->thread = std::thread([stream] { stream->Run(); });
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.streams++;
    return stream;
  }
  void DestroyStream(rt::Stream handle) noexcept override {
    auto* stream = static_cast<SimStream*>(handle);
    {
      std::lock_guard<std::mutex> lock(stream->mutex);
      if (!stream->queue.empty() || stream->running) Violation("cudaStreamDestroy of a stream with work in flight");
      stream->stop = true;
      stream->changed.notify_all();
    }
    if (stream->thread.joinable()) stream->thread.join();
    delete stream;
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.streams--;
  }
  rt::Event CreateEvent() override {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.events++;
    return new SimEvent();
  }
  void DestroyEvent(rt::Event handle) noexcept override {
    auto* event = static_cast<SimEvent*>(handle);
    {
      std::unique_lock<std::mutex> lock(event->mutex);
      if (event->pending) Violation("cudaEventDestroy of an event whose work is still in flight");
      event->changed.wait(lock, [event] { return !event->pending; });
    }
    delete event;
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.events--;
  }
  void RecordEvent(rt::Event handle, rt::Stream streamHandle) override {
    auto* event = static_cast<SimEvent*>(handle);
    auto* stream = static_cast<SimStream*>(streamHandle);
    {
      std::lock_guard<std::mutex> lock(event->mutex);
      event->pending = true;
      event->error.clear();
    }
    // The event completes when everything before it on the stream has; it takes the stream's error
    // (and clears it: the wait that reports it consumes it).
    Push(stream, [event, stream] {
      std::string error;
      const char* code = "ERR_CUDA";
      {
        std::lock_guard<std::mutex> lock(stream->mutex);
        error.swap(stream->error);
        code = stream->errorCode;
      }
      std::lock_guard<std::mutex> lock(event->mutex);
      event->error = error;
      event->errorCode = code;
      event->pending = false;
      event->changed.notify_all();
    }, false);
  }
  void WaitEvent(rt::Event handle) override {
    auto* event = static_cast<SimEvent*>(handle);
    std::unique_lock<std::mutex> lock(event->mutex);
    event->changed.wait(lock, [event] { return !event->pending; });
    if (!event->error.empty()) {
      std::string error;
      error.swap(event->error);
      throw NativeError(error, event->errorCode);
    }
  }
  void DrainStream(rt::Stream handle) noexcept override {
    auto* stream = static_cast<SimStream*>(handle);
    std::unique_lock<std::mutex> lock(stream->mutex);
    stream->changed.wait(lock, [stream] { return stream->queue.empty() && !stream->running; });
    stream->error.clear();
  }

  void CopyToDevice(void* device, const void* pinned, size_t bytes, rt::Stream stream) override {
    faults_.Hit("copy", "ERR_CUDA");
    CheckDevice(device, bytes, "cudaMemcpyAsync(host to device) destination");
    CheckPinned(pinned, bytes, "cudaMemcpyAsync(host to device) source");
    Push(static_cast<SimStream*>(stream), [device, pinned, bytes] { std::memcpy(device, pinned, bytes); });
  }
  void CopyToHost(void* pinned, const void* device, size_t bytes, rt::Stream stream) override {
    faults_.Hit("copy", "ERR_CUDA");
    CheckPinned(pinned, bytes, "cudaMemcpyAsync(device to host) destination");
    CheckDevice(device, bytes, "cudaMemcpyAsync(device to host) source");
    // What JS sees until the copy has run: poison.
    std::memset(pinned, kPoison, bytes);
    Push(static_cast<SimStream*>(stream), [device, pinned, bytes] { std::memcpy(pinned, device, bytes); });
  }

  void Preprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out, rt::Stream stream) override {
    faults_.Hit("kernel", "ERR_CUDA");
    if (!kernel::PlanFits(plan)) throw NativeError("preprocessing kernel launch failed: cudaErrorInvalidValue (the plan does not fit its plane)", "ERR_CUDA");
    const size_t plane = static_cast<size_t>(plan.planeWidth) * static_cast<size_t>(plan.planeHeight);
    CheckDevice(src, static_cast<size_t>(plan.srcHeight - 1) * static_cast<size_t>(plan.srcStride) + static_cast<size_t>(plan.srcWidth) * 3, "preprocessing kernel source");
    CheckDevice(scratch, static_cast<size_t>(plan.srcHeight) * static_cast<size_t>(plan.horizontal.outSize) * 3, "preprocessing kernel scratch");
    CheckDevice(out, 3 * plane * sizeof(float), "preprocessing kernel output");
    CheckDevice(plan.lut, 3 * 256 * sizeof(float), "preprocessing kernel lut");
    for (const ResamplePass* pass : {&plan.horizontal, &plan.vertical}) {
      CheckDevice(pass->bounds, static_cast<size_t>(pass->outSize) * 2 * sizeof(int32_t), "preprocessing kernel table");
      CheckDevice(pass->coeffs, static_cast<size_t>(pass->outSize) * static_cast<size_t>(pass->taps) * sizeof(int32_t), "preprocessing kernel table");
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.kernelLaunches++;
    }
    PreprocessPlan copy = plan;
    Push(static_cast<SimStream*>(stream), [copy, src, scratch, out] { kernel::RunOnHost(copy, src, scratch, out); });
  }

  rt::Graph CaptureGraph(rt::Stream handle, const std::function<bool()>& work, std::string* why) override {
    auto* stream = static_cast<SimStream*>(handle);
    try {
      faults_.Hit("graph-capture", "ERR_CUDA");
    } catch (const NativeError& e) {
      *why = std::string("cudaStreamBeginCapture failed: ") + e.what();
      return nullptr;
    }
    auto graph = std::make_unique<SimGraph>();
    {
      std::lock_guard<std::mutex> lock(stream->mutex);
      stream->capture = &graph->tasks;
    }
    capturing_ = graph.get();
    bool ok = false;
    std::string failure;
    try {
      ok = work();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    capturing_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(stream->mutex);
      stream->capture = nullptr;
    }
    if (!ok) {
      *why = "enqueue under stream capture failed" + (failure.empty() ? std::string() : ": " + failure);
      return nullptr;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.graphs++;
    return graph.release();
  }
  void LaunchGraph(rt::Graph handle, rt::Stream stream) override {
    auto* graph = static_cast<SimGraph*>(handle);
    for (const auto& [context, generation] : graph->contexts) {
      if (context->generation.load() != generation) {
        throw NativeError("cudaGraphLaunch failed: the graph was captured before its context's input shapes changed "
                          "(a captured graph replays the old shapes; drop it and capture again)",
                          "ERR_CUDA");
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.graphLaunches++;
    }
    for (const auto& task : graph->tasks) Push(static_cast<SimStream*>(stream), task);
  }
  void DestroyGraph(rt::Graph handle) noexcept override {
    delete static_cast<SimGraph*>(handle);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.graphs--;
  }

  std::unique_ptr<rt::Engine> Deserialize(const std::vector<char>& bytes, const std::string& path) override {
    faults_.Hit("deserialize", "ERR_ENGINE_INVALID");
    auto data = std::make_shared<const EngineData>(DeserializeEngine(bytes, path));
    return std::make_unique<SimEngine>(*this, std::move(data));
  }

  rt::BuildOutput Build(const BuildOptions& options, rt::BuildMonitor& monitor) override;

  // --- used by the engine, contexts and queued work ---
  void Push(SimStream* stream, std::function<void()> task, bool capturable = true) {
    std::lock_guard<std::mutex> lock(stream->mutex);
    if (stream->capture != nullptr && capturable) {
      stream->capture->push_back(std::move(task));
      return;
    }
    stream->queue.push_back(std::move(task));
    stream->changed.notify_all();
  }
  SimGraph* Capturing() { return capturing_; }
  void CheckDevice(const void* pointer, size_t bytes, const char* what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Inside(pinned_, pointer, bytes)) {
      throw NativeError(std::string(what) + ": a host (pinned) pointer where a device pointer is expected", "ERR_CUDA");
    }
    if (!Inside(device_, pointer, bytes)) {
      throw NativeError(std::string(what) + ": " + std::to_string(bytes) + " bytes at this address are not device memory" +
                            (Inside(device_, pointer, 1) ? " (past the end of the allocation)" : ""),
                        "ERR_CUDA");
    }
  }
  void CheckPinned(const void* pointer, size_t bytes, const char* what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Inside(device_, pointer, 1)) {
      throw NativeError(std::string(what) + ": a device pointer where a host pointer is expected", "ERR_CUDA");
    }
    if (!Inside(pinned_, pointer, bytes)) {
      throw NativeError(std::string(what) + ": " + std::to_string(bytes) + " bytes at this address are not pinned host memory" +
                            (Inside(pinned_, pointer, 1) ? " (past the end of the allocation)" : ""),
                        "ERR_CUDA");
    }
  }
  void Count(size_t Stats::*field, int delta) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.*field = static_cast<size_t>(static_cast<long long>(stats_.*field) + delta);
  }
  void FaultHit(const char* call, const char* code) { faults_.Hit(call, code); }
  Stats Snapshot() {
    Stats out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      out = stats_;
    }
    std::lock_guard<std::mutex> lock(violationsMutex_);
    out.violations = violations_;
    return out;
  }
  void MarkJsThread() {
    std::lock_guard<std::mutex> lock(mutex_);
    jsThread_ = std::this_thread::get_id();
    haveJsThread_ = true;
  }

 private:
  static int32_t& CurrentDevice() {
    thread_local int32_t device = 0;
    return device;
  }
  static bool Inside(const std::map<uint8_t*, Allocation>& map, const void* pointer, size_t bytes) {
    auto* p = static_cast<uint8_t*>(const_cast<void*>(pointer));
    auto after = map.upper_bound(p);
    if (after == map.begin()) return false;
    --after;
    return p >= after->first && p + bytes <= after->first + after->second.size;
  }
  // Callable with or without mutex_ held (teardown paths hold other locks): its own mutex.
  void Violation(const std::string& what) noexcept {
    try {
      std::lock_guard<std::mutex> lock(violationsMutex_);
      if (violations_.size() < 100) violations_.push_back(what);
    } catch (...) {
    }
  }
  void CheckNotJsThread(const char* call) noexcept {
    if (haveJsThread_ && std::this_thread::get_id() == jsThread_) {
      Violation(std::string(call) + " on the JS thread (blocks the event loop; teardown belongs off it)");
    }
  }

  int32_t devices_;
  int maxDelayUs_;
  uint64_t seed_;
  std::atomic<uint64_t> streamCounter_{0};
  Faults faults_;
  std::mutex mutex_;
  std::map<uint8_t*, Allocation> device_;
  std::map<uint8_t*, Allocation> pinned_;
  Stats stats_;
  std::mutex violationsMutex_;
  std::vector<std::string> violations_;
  std::thread::id jsThread_;
  bool haveJsThread_ = false;
  static thread_local SimGraph* capturing_;
};

thread_local SimGraph* SimRuntime::capturing_ = nullptr;

SimRuntime* Instance() {
  static SimRuntime* runtime = new SimRuntime();
  return runtime;
}

// --- engine and context ---

SimEngine::SimEngine(SimRuntime& runtime, std::shared_ptr<const EngineData> data) : runtime_(runtime), data_(std::move(data)) {
  runtime_.Count(&Stats::engines, 1);
}
SimEngine::~SimEngine() { runtime_.Count(&Stats::engines, -1); }

std::unique_ptr<rt::Context> SimEngine::CreateContext() { return std::make_unique<SimContext>(runtime_, data_); }

SimContext::SimContext(SimRuntime& runtime, std::shared_ptr<const EngineData> data)
    : runtime_(runtime), data_(std::move(data)) {
  for (const rt::TensorInfo& t : data_->tensors) {
    shapes_.push_back(t.shape);  // -1 on dynamic dims until setInputShape
    addresses_.push_back(nullptr);
  }
  runtime_.Count(&Stats::contexts, 1);
}
SimContext::~SimContext() { runtime_.Count(&Stats::contexts, -1); }

int SimContext::Index(const std::string& name) const {
  for (size_t i = 0; i < data_->tensors.size(); ++i) {
    if (data_->tensors[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

bool SimContext::SetInputShape(const std::string& name, const rt::Shape& shape) {
  int i = Index(name);
  if (i < 0 || !data_->tensors[static_cast<size_t>(i)].isInput) return Fail("setInputShape: no input named '" + name + "'");
  const rt::TensorInfo& t = data_->tensors[static_cast<size_t>(i)];
  if (shape.rank != t.shape.rank) return Fail("setInputShape('" + name + "'): rank " + std::to_string(shape.rank) + ", expected " + std::to_string(t.shape.rank));
  for (int32_t axis = 0; axis < shape.rank; ++axis) {
    const bool dynamic = t.shape.d[axis] == -1;
    if (!dynamic && shape.d[axis] != t.shape.d[axis]) return Fail("setInputShape('" + name + "'): axis " + std::to_string(axis) + " is fixed at " + std::to_string(t.shape.d[axis]));
    if (dynamic && (shape.d[axis] < data_->minBatch || shape.d[axis] > data_->maxBatch)) {
      return Fail("setInputShape('" + name + "'): batch " + std::to_string(shape.d[axis]) + " is outside the optimization profile [" +
                  std::to_string(data_->minBatch) + ", " + std::to_string(data_->maxBatch) + "]");
    }
  }
  bool changed = false;
  for (int32_t axis = 0; axis < shape.rank; ++axis) changed = changed || shapes_[static_cast<size_t>(i)].d[axis] != shape.d[axis];
  shapes_[static_cast<size_t>(i)] = shape;
  if (changed) state.generation.fetch_add(1);
  return true;
}

rt::Shape SimContext::TensorShape(const std::string& name) {
  int i = Index(name);
  rt::Shape out;
  out.rank = -1;
  if (i < 0) return out;
  const rt::TensorInfo& t = data_->tensors[static_cast<size_t>(i)];
  if (t.isInput) return shapes_[static_cast<size_t>(i)];
  // Outputs: the batch axis follows the inputs' batch; -1 until every batched input has a shape.
  out = t.shape;
  if (out.rank > 0 && out.d[0] == -1) {
    int64_t batch = -1;
    for (size_t k = 0; k < data_->tensors.size(); ++k) {
      if (data_->tensors[k].isInput && data_->tensors[k].shape.rank > 0 && data_->tensors[k].shape.d[0] == -1) batch = shapes_[k].d[0];
    }
    out.d[0] = batch;
  }
  return out;
}

bool SimContext::SetTensorAddress(const std::string& name, void* address) {
  int i = Index(name);
  if (i < 0) return Fail("setTensorAddress: no tensor named '" + name + "'");
  if (address == nullptr) return Fail("setTensorAddress('" + name + "'): null address");
  addresses_[static_cast<size_t>(i)] = address;
  return true;
}

bool SimContext::Enqueue(rt::Stream streamHandle) {
  try {
    runtime_.FaultHit("enqueue", "ERR_TENSORRT");
  } catch (const NativeError& e) {
    return Fail(e.what());
  }
  // Every shape set and inside the profile, every address set and device memory large enough.
  int64_t batch = 1;
  std::vector<size_t> itemBytes(data_->tensors.size());
  for (size_t i = 0; i < data_->tensors.size(); ++i) {
    const rt::TensorInfo& t = data_->tensors[i];
    rt::Shape shape = TensorShape(t.name);
    size_t elements = 1;
    for (int32_t axis = 0; axis < shape.rank; ++axis) {
      if (shape.d[axis] < 0) return Fail("enqueueV3: the shape of input '" + t.name + "' is not set (call setInputShape first)");
      if (axis > 0 || t.shape.d[0] != -1) elements *= static_cast<size_t>(shape.d[axis]);
    }
    if (t.isInput && t.shape.rank > 0 && t.shape.d[0] == -1) batch = shape.d[0];
    itemBytes[i] = elements * ElementSize(t.type);
    if (addresses_[i] == nullptr) return Fail("enqueueV3: the address of tensor '" + t.name + "' is not set");
  }
  for (size_t i = 0; i < data_->tensors.size(); ++i) {
    const rt::TensorInfo& t = data_->tensors[i];
    const size_t n = t.shape.rank > 0 && t.shape.d[0] == -1 ? static_cast<size_t>(batch) : 1;
    try {
      runtime_.CheckDevice(addresses_[i], itemBytes[i] * n, "enqueueV3 tensor address");
    } catch (const NativeError& e) {
      return Fail(std::string(e.what()) + " ('" + t.name + "')");
    }
  }
  if (SimGraph* graph = runtime_.Capturing()) graph->contexts.emplace_back(&state, state.generation.load());
  runtime_.Count(&Stats::enqueues, 1);
  // Outputs are garbage until the work has run.
  for (size_t i = 0; i < data_->tensors.size(); ++i) {
    if (data_->tensors[i].isInput) continue;
    const size_t n = data_->tensors[i].shape.rank > 0 && data_->tensors[i].shape.d[0] == -1 ? static_cast<size_t>(batch) : 1;
    std::memset(addresses_[i], kPoison, itemBytes[i] * n);
  }
  // The work reads the shapes and addresses of now (a copy), as captured graphs must.
  auto data = data_;
  std::vector<void*> addresses = addresses_;
  runtime_.Push(static_cast<SimStream*>(streamHandle), [data, addresses, itemBytes, batch] {
    const auto& tensors = data->tensors;
    for (int64_t item = 0; item < batch; ++item) {
      // The item's input slices, in tensor order.
      std::vector<std::pair<const uint8_t*, size_t>> inputs;
      for (size_t i = 0; i < tensors.size(); ++i) {
        if (!tensors[i].isInput) continue;
        const bool batched = tensors[i].shape.rank > 0 && tensors[i].shape.d[0] == -1;
        inputs.emplace_back(static_cast<const uint8_t*>(addresses[i]) + (batched ? itemBytes[i] * static_cast<size_t>(item) : 0), itemBytes[i]);
      }
      const Record* match = nullptr;
      for (const Record& record : data->records) {
        bool same = true;
        size_t k = 0;
        for (size_t i = 0; i < tensors.size() && same; ++i) {
          if (!tensors[i].isInput) continue;
          same = record.items[i].size() == inputs[k].second &&
                 std::memcmp(record.items[i].data(), inputs[k].first, inputs[k].second) == 0;
          ++k;
        }
        if (same) {
          match = &record;
          break;
        }
      }
      if (!data->records.empty() && match == nullptr) {
        uint64_t hash = 1469598103934665603ULL;
        for (const auto& [p, n] : inputs) hash = Fnv1a(p, n, hash);
        char hex[17];
        std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash));
        throw NativeError("simulated engine: batch item " + std::to_string(item) + " has an input this engine has not recorded (" +
                              std::to_string(data->records.size()) + " recorded; input hash " + hex +
                              "): the preprocessing or the sizes differ from the recorded CPU run",
                          "ERR_SIM_UNRECORDED");
      }
      uint64_t seed = 1469598103934665603ULL;
      for (const auto& [p, n] : inputs) seed = Fnv1a(p, n, seed);
      for (size_t i = 0; i < tensors.size(); ++i) {
        if (tensors[i].isInput) continue;
        const bool batched = tensors[i].shape.rank > 0 && tensors[i].shape.d[0] == -1;
        uint8_t* out = static_cast<uint8_t*>(addresses[i]) + (batched ? itemBytes[i] * static_cast<size_t>(item) : 0);
        if (match != nullptr) {
          if (match->items[i].size() != itemBytes[i]) throw NativeError("simulated engine: recorded output '" + tensors[i].name + "' has the wrong size", "ERR_ENGINE_INVALID");
          std::memcpy(out, match->items[i].data(), itemBytes[i]);
          continue;
        }
        const size_t size = ElementSize(tensors[i].type);
        const size_t count = size == 0 ? 0 : itemBytes[i] / size;
        for (size_t k = 0; k < count; ++k) {
          uint64_t x = SplitMix(seed + (i + 1) * 0x9E3779B97F4A7C15ULL + k);
          switch (tensors[i].type) {
            case rt::DType::kFloat: {
              float v = static_cast<float>(x >> 40) / 16777216.0F;
              std::memcpy(out + k * 4, &v, 4);
              break;
            }
            case rt::DType::kInt32: {
              int32_t v = static_cast<int32_t>(x % 80);
              std::memcpy(out + k * 4, &v, 4);
              break;
            }
            case rt::DType::kInt64: {
              int64_t v = static_cast<int64_t>(x % 80);
              std::memcpy(out + k * 8, &v, 8);
              break;
            }
            case rt::DType::kBool: out[k] = static_cast<uint8_t>(x & 1); break;
            case rt::DType::kInt8: case rt::DType::kUInt8: out[k] = static_cast<uint8_t>(x % 80); break;
            default: std::memset(out + k * size, 0, size); break;
          }
        }
      }
    }
  });
  return true;
}

// --- build ---

rt::BuildOutput SimRuntime::Build(const BuildOptions& options, rt::BuildMonitor& monitor) {
  faults_.Hit("build", "ERR_TENSORRT");
  rt::BuildOutput output;
  output.version = Version();
  auto cancelled = [&monitor] {
    if (monitor.Cancelled()) throw NativeError("the engine build was cancelled", "ERR_CANCELLED");
  };
  monitor.Phase(0, "Parsing ONNX", "", 0, 0);
  EngineData engine;
  engine.tensors = ReadOnnxIo(options.onnxPath);
  monitor.Phase(2, "Parsing ONNX", "", 0, 0);
  bool dynamic = false;
  for (const rt::TensorInfo& t : engine.tensors) {
    if (t.type == rt::DType::kOther) {
      throw NativeError("tensor '" + t.name + "' has ONNX element type " + std::to_string(t.rawType) + ", which the simulated runtime does not support", "ERR_MODEL_INVALID");
    }
    for (int32_t axis = 1; axis < t.shape.rank; ++axis) {
      if (t.shape.d[axis] < 0 && t.isInput) {
        throw NativeError("input '" + t.name + "' has a dynamic axis " + std::to_string(axis) + "; only the batch axis may be dynamic", "ERR_MODEL_INVALID");
      }
    }
    dynamic = dynamic || (t.isInput && t.shape.rank > 0 && t.shape.d[0] < 0);
  }
  if (!dynamic && options.maxBatch > 1) {
    throw NativeError("the graph has a fixed batch size; export it with a dynamic batch axis to build for batch " + std::to_string(options.maxBatch), "ERR_MODEL_INVALID");
  }
  engine.minBatch = dynamic ? options.minBatch : 1;
  engine.optBatch = dynamic ? options.optBatch : 1;
  engine.maxBatch = dynamic ? options.maxBatch : 1;
  engine.deviceName = "Simulated GPU " + std::to_string(CurrentDevice());

  // Timing cache: a cache made on another device is rejected; the build starts with an empty one
  // (and writes a fresh file) instead of failing every build from now on.
  if (!options.timingCachePath.empty()) {
    std::ifstream in(options.timingCachePath, std::ios::binary);
    if (in) {
      std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (content != "DEIMV2SIMTIMING " + engine.deviceName) {
        output.warnings.push_back("timing cache " + options.timingCachePath + " was made on another device or runtime: starting with an empty cache");
      }
    }
  }

  std::string recording = options.recordingPath;
  if (recording.empty() && std::getenv("DEIMV2_SIM_RECORDING") != nullptr) recording = std::getenv("DEIMV2_SIM_RECORDING");
  if (!recording.empty()) {
    monitor.Phase(0, "Reading recording", "", 0, 0);
    std::vector<rt::TensorInfo> recorded;
    ReadRecording(recording, &recorded, &engine.records);
    if (recorded.size() != engine.tensors.size()) {
      throw NativeError("recording " + recording + " has " + std::to_string(recorded.size()) + " tensors, the model " + std::to_string(engine.tensors.size()), "ERR_INVALID_ARGUMENT");
    }
    for (size_t i = 0; i < recorded.size(); ++i) {
      const rt::TensorInfo& a = recorded[i];
      rt::TensorInfo& b = engine.tensors[i];
      bool same = a.name == b.name && a.isInput == b.isInput && a.type == b.type && a.shape.rank == b.shape.rank;
      for (int32_t axis = 1; same && axis < a.shape.rank; ++axis) {
        // Output dims the graph leaves symbolic (TensorRT infers them) come from the recorded run.
        if (b.shape.d[axis] < 0 && !b.isInput) b.shape.d[axis] = a.shape.d[axis];
        same = a.shape.d[axis] == b.shape.d[axis];
      }
      if (!same) {
        throw NativeError("recording " + recording + ": tensor " + std::to_string(i) + " ('" + a.name + "' " + DTypeName(a.type) +
                              ") does not match the model's '" + b.name + "' " + DTypeName(b.type),
                          "ERR_INVALID_ARGUMENT");
      }
    }
    monitor.Phase(2, "Reading recording", "", 0, 0);
  }
  // Without a recording, symbolic output dims beyond the batch axis get DEIMV2_SIM_QUERIES (default
  // 300, the query count of the DEIMv2 exports); axis 0 of every tensor stays the batch.
  for (rt::TensorInfo& t : engine.tensors) {
    for (int32_t axis = 0; axis < t.shape.rank; ++axis) {
      if (t.shape.d[axis] >= 0) continue;
      if (axis == 0) {
        if (!dynamic) t.shape.d[0] = 1;
        continue;
      }
      t.shape.d[axis] = std::max(1, EnvInt("DEIMV2_SIM_QUERIES", 300));
    }
  }
  const int32_t steps = 4;
  monitor.Phase(0, "Building engine", "", 0, steps);
  for (int32_t step = 0; step < steps; ++step) {
    cancelled();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    monitor.Phase(1, "Building engine", "", step, 0);
  }
  cancelled();
  monitor.Phase(2, "Building engine", "", 0, 0);
  output.engine = SerializeEngine(engine);
  if (!options.timingCachePath.empty()) {
    // As the TensorRT adapter does: a temporary file renamed into place when whole.
    const std::string temporary = options.timingCachePath + ".partial";
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << "DEIMV2SIMTIMING " << engine.deviceName;
    out.close();
    if (!out || std::rename(temporary.c_str(), options.timingCachePath.c_str()) != 0) std::remove(temporary.c_str());
  }
  return output;
}

}  // namespace

Stats CurrentStats() { return Instance()->Snapshot(); }
void MarkJsThread() { Instance()->MarkJsThread(); }

}  // namespace sim

namespace rt {
std::unique_ptr<GpuRuntime> MakeSimulatedRuntime() {
  // The runtime is a process-wide singleton (its registries must see every allocation); the
  // returned object forwards to it.
  struct Forward : GpuRuntime {
    GpuRuntime& s = *sim::Instance();
    const char* Name() const override { return "simulated"; }
    std::string Version() override { return s.Version(); }
    std::vector<DeviceInfo> Devices(std::string* e) override { return s.Devices(e); }
    bool KernelRuns(int32_t d, std::string* w) override { return s.KernelRuns(d, w); }
    void SetDevice(int32_t d) override { s.SetDevice(d); }
    void* DeviceAlloc(size_t b) override { return s.DeviceAlloc(b); }
    void DeviceFree(void* p) noexcept override { s.DeviceFree(p); }
    void* PinnedAlloc(size_t b) override { return s.PinnedAlloc(b); }
    void PinnedFree(void* p) noexcept override { s.PinnedFree(p); }
    Stream CreateStream() override { return s.CreateStream(); }
    void DestroyStream(Stream x) noexcept override { s.DestroyStream(x); }
    Event CreateEvent() override { return s.CreateEvent(); }
    void DestroyEvent(Event x) noexcept override { s.DestroyEvent(x); }
    void RecordEvent(Event e, Stream x) override { s.RecordEvent(e, x); }
    void WaitEvent(Event e) override { s.WaitEvent(e); }
    void DrainStream(Stream x) noexcept override { s.DrainStream(x); }
    void CopyToDevice(void* d, const void* h, size_t b, Stream x) override { s.CopyToDevice(d, h, b, x); }
    void CopyToHost(void* h, const void* d, size_t b, Stream x) override { s.CopyToHost(h, d, b, x); }
    void Preprocess(const PreprocessPlan& p, const uint8_t* a, uint8_t* b, float* c, Stream x) override { s.Preprocess(p, a, b, c, x); }
    Graph CaptureGraph(Stream x, const std::function<bool()>& w, std::string* why) override { return s.CaptureGraph(x, w, why); }
    void LaunchGraph(Graph g, Stream x) override { s.LaunchGraph(g, x); }
    void DestroyGraph(Graph g) noexcept override { s.DestroyGraph(g); }
    std::unique_ptr<Engine> Deserialize(const std::vector<char>& b, const std::string& p) override { return s.Deserialize(b, p); }
    BuildOutput Build(const BuildOptions& o, BuildMonitor& m) override { return s.Build(o, m); }
  };
  return std::make_unique<Forward>();
}
}  // namespace rt
}  // namespace deimv2

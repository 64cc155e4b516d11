// The runtime chosen for this process, and the teardown thread.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "runtime/gpu_runtime.h"

namespace deimv2 {
namespace rt {

namespace {

// Both runtimes live for the whole process (leaked on purpose: teardown work may still run on the
// release thread while static destructors run at exit).
GpuRuntime* Real() {
  static GpuRuntime* real = MakeTensorRtRuntime().release();
  return real;
}
GpuRuntime* Simulated() {
  static GpuRuntime* simulated = MakeSimulatedRuntime().release();
  return simulated;
}
std::atomic<bool> useSimulated{false};

class ReleaseThread {
 public:
  void Post(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_) {
      std::thread([this] { Run(); }).detach();
      started_ = true;
    }
    tasks_.push_back(std::move(task));
    ready_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      try {
        task();
      } catch (...) {
        // teardown cannot report; it must not end the process either
      }
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool started_ = false;
};

}  // namespace

GpuRuntime& Active() { return useSimulated.load() ? *Simulated() : *Real(); }

void Select(const std::string& name) {
  if (name == "simulated") {
    useSimulated.store(true);
  } else if (name == "tensorrt") {
    useSimulated.store(false);
  } else {
    throw NativeError("Expected 'tensorrt' or 'simulated' for the GPU runtime but received '" + name + "'",
                      "ERR_INVALID_ARGUMENT");
  }
}

void DeferRelease(std::function<void()> task) noexcept {
  static ReleaseThread* thread = new ReleaseThread();
  try {
    thread->Post(std::move(task));
  } catch (...) {
    // Out of memory for the queue: run it here rather than leak or throw from a finalizer.
    try {
      task();
    } catch (...) {
    }
  }
}

}  // namespace rt
}  // namespace deimv2

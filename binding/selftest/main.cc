// deimv2-gpu-selftest: the CUDA implementation of the GPU runtime (binding/cuda/cuda_runtime.cc)
// and the preprocessing kernel (binding/preprocess.cu) on a real GPU, checked against the host build
// of the same kernel source (binding/preprocess_kernel.h, which the simulated runtime runs in CI and
// which CI proves equal to the CPU path's imageToTensor). One line per check: "ok ..." or "FAIL ...";
// exit status 0 when every check passed, 1 otherwise, 2 when no GPU can be used.
//
// Images: synthetic fixtures of several sizes (deterministic patterns), plus any binary PPM (P6)
// files given on the command line. Each is resized stretch and letterbox into 320 and 640 planes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cuda/cuda_runtime.h"

namespace {

using deimv2::PreprocessPlan;
using deimv2::ResamplePass;
namespace rt = deimv2::rt;

// The runtime's CUDA half alone: no engines, no builder.
class SelfTestRuntime : public deimv2::cuda::CudaRuntime {
 public:
  const char* Name() const override { return "cuda-selftest"; }
  std::string Version() override { return "selftest"; }
  std::unique_ptr<rt::Engine> Deserialize(const std::vector<char>&, const std::string&) override {
    throw deimv2::NativeError("no engines in the self-test", "ERR_UNSUPPORTED");
  }
  rt::BuildOutput Build(const deimv2::BuildOptions&, rt::BuildMonitor&) override {
    throw deimv2::NativeError("no builder in the self-test", "ERR_UNSUPPORTED");
  }
};

int failures = 0;

void Report(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

struct Image {
  std::string name;
  int32_t width = 0;
  int32_t height = 0;
  std::vector<uint8_t> rgb;
};

Image Synthetic(int32_t width, int32_t height, uint32_t seed) {
  Image image{"synthetic " + std::to_string(width) + "x" + std::to_string(height), width, height, {}};
  image.rgb.resize(static_cast<size_t>(width) * height * 3);
  uint32_t state = seed;
  for (int32_t y = 0; y < height; ++y) {
    for (int32_t x = 0; x < width; ++x) {
      state = state * 1664525U + 1013904223U;
      uint8_t* p = &image.rgb[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>((x * 255) / std::max(1, width - 1));   // gradients, edges and noise
      p[1] = static_cast<uint8_t>(((x / 7 + y / 5) % 2) * 200 + (state >> 28));
      p[2] = static_cast<uint8_t>(state >> 24);
    }
  }
  return image;
}

bool ReadPpm(const std::string& path, Image* image) {
  std::ifstream file(path, std::ios::binary);
  std::string magic;
  int max = 0;
  file >> magic >> image->width >> image->height >> max;
  file.get();
  if (!file || magic != "P6" || max != 255 || image->width <= 0 || image->height <= 0) return false;
  image->name = path;
  image->rgb.resize(static_cast<size_t>(image->width) * image->height * 3);
  file.read(reinterpret_cast<char*>(image->rgb.data()), static_cast<std::streamsize>(image->rgb.size()));
  return static_cast<bool>(file);
}

// PIL's bilinear precompute_coeffs (support widened by the scale), in fixed point with 22 fraction
// bits, laid out as the kernel reads it: outSize (first, count) pairs, then outSize x taps weights.
std::vector<int32_t> Table(int32_t inSize, int32_t outSize, int32_t* taps) {
  const double scale = static_cast<double>(inSize) / outSize;
  const double filterScale = std::max(scale, 1.0);
  const double support = 1.0 * filterScale;
  *taps = static_cast<int32_t>(std::ceil(support)) * 2 + 1;
  std::vector<int32_t> table(static_cast<size_t>(outSize) * 2 + static_cast<size_t>(outSize) * *taps, 0);
  for (int32_t xx = 0; xx < outSize; ++xx) {
    const double center = (xx + 0.5) * scale;
    int32_t xmin = std::max(static_cast<int32_t>(center - support + 0.5), 0);
    int32_t xmax = std::min(static_cast<int32_t>(center + support + 0.5), inSize) - xmin;
    std::vector<double> k(static_cast<size_t>(*taps), 0.0);
    double total = 0;
    for (int32_t x = 0; x < xmax; ++x) {
      double t = (x + xmin - center + 0.5) / filterScale;
      double w = std::fabs(t) < 1.0 ? 1.0 - std::fabs(t) : 0.0;
      k[static_cast<size_t>(x)] = w;
      total += w;
    }
    table[static_cast<size_t>(xx) * 2] = xmin;
    table[static_cast<size_t>(xx) * 2 + 1] = xmax;
    for (int32_t x = 0; x < xmax; ++x) {
      double w = total != 0 ? k[static_cast<size_t>(x)] / total : 0;
      table[static_cast<size_t>(outSize) * 2 + static_cast<size_t>(xx) * *taps + x] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << 22) : 0.5 + w * (1 << 22));
    }
  }
  return table;
}

// One image through the GPU kernel and the host build; bit for bit.
void CheckKernel(SelfTestRuntime& gpu, rt::Stream stream, rt::Event done, const Image& image, int32_t side, bool letterbox) {
  int32_t outW = side, outH = side, offX = 0, offY = 0;
  if (letterbox) {
    const double scale = std::min(static_cast<double>(side) / image.width, static_cast<double>(side) / image.height);
    outW = std::max(1, static_cast<int32_t>(image.width * scale));
    outH = std::max(1, static_cast<int32_t>(image.height * scale));
    offX = (side - outW) / 2;
    offY = (side - outH) / 2;
  }
  int32_t hTaps = 0, vTaps = 0;
  std::vector<int32_t> h = Table(image.width, outW, &hTaps), v = Table(image.height, outH, &vTaps);
  std::vector<float> lut(768);
  for (int c = 0; c < 3; ++c) for (int i = 0; i < 256; ++i) lut[static_cast<size_t>(c * 256 + i)] = static_cast<float>(i) / 255.0F * (1.0F + 0.25F * c) - 0.1F * c;
  const size_t tableWords = lut.size() + h.size() + v.size();
  const size_t planeFloats = 3 * static_cast<size_t>(side) * side;
  const size_t scratchBytes = static_cast<size_t>(image.height) * outW * 3;
  const std::string what = image.name + " -> " + (letterbox ? "letterbox " : "stretch ") + std::to_string(side);
  try {
    auto* hostTables = static_cast<int32_t*>(gpu.PinnedAlloc(tableWords * 4));
    auto* hostFrame = static_cast<uint8_t*>(gpu.PinnedAlloc(image.rgb.size()));
    auto* hostOut = static_cast<float*>(gpu.PinnedAlloc(planeFloats * 4));
    std::memcpy(hostTables, lut.data(), lut.size() * 4);
    std::memcpy(hostTables + lut.size(), h.data(), h.size() * 4);
    std::memcpy(hostTables + lut.size() + h.size(), v.data(), v.size() * 4);
    std::memcpy(hostFrame, image.rgb.data(), image.rgb.size());
    auto* devTables = static_cast<int32_t*>(gpu.DeviceAlloc(tableWords * 4));
    auto* devFrame = static_cast<uint8_t*>(gpu.DeviceAlloc(image.rgb.size()));
    auto* devScratch = static_cast<uint8_t*>(gpu.DeviceAlloc(scratchBytes));
    auto* devOut = static_cast<float*>(gpu.DeviceAlloc(planeFloats * 4));
    std::fill(hostOut, hostOut + planeFloats, std::nanf(""));
    gpu.CopyToDevice(devOut, hostOut, planeFloats * 4, stream);  // NaN first: an unwritten float cannot pass
    gpu.CopyToDevice(devTables, hostTables, tableWords * 4, stream);
    gpu.CopyToDevice(devFrame, hostFrame, image.rgb.size(), stream);

    auto plan = [&](const int32_t* tables, const float* lutAt) {
      PreprocessPlan p;
      p.srcWidth = image.width;
      p.srcHeight = image.height;
      p.srcStride = image.width * 3;
      p.horizontal = ResamplePass{tables, tables + 2 * outW, hTaps, outW};
      p.vertical = ResamplePass{tables + h.size(), tables + h.size() + 2 * outH, vTaps, outH};
      p.planeWidth = side;
      p.planeHeight = side;
      p.offsetX = offX;
      p.offsetY = offY;
      p.lut = lutAt;
      return p;
    };
    gpu.Preprocess(plan(devTables + lut.size(), reinterpret_cast<const float*>(devTables)), devFrame, devScratch, devOut, stream);
    gpu.CopyToHost(hostOut, devOut, planeFloats * 4, stream);
    gpu.RecordEvent(done, stream);
    gpu.WaitEvent(done);

    std::vector<float> expected(planeFloats, std::nanf(""));
    std::vector<uint8_t> scratch(scratchBytes);
    std::vector<int32_t> tables(h);
    tables.insert(tables.end(), v.begin(), v.end());
    deimv2::kernel::RunOnHost(plan(tables.data(), lut.data()), image.rgb.data(), scratch.data(), expected.data());
    size_t differ = 0;
    for (size_t i = 0; i < planeFloats; ++i) differ += std::memcmp(&expected[i], &hostOut[i], 4) != 0;
    Report(differ == 0, "kernel = host build, bit for bit: " + what + (differ ? " (" + std::to_string(differ) + " floats differ)" : ""));

    for (void* p : {static_cast<void*>(devTables), static_cast<void*>(devFrame), static_cast<void*>(devScratch), static_cast<void*>(devOut)}) gpu.DeviceFree(p);
    for (void* p : {static_cast<void*>(hostTables), static_cast<void*>(hostFrame), static_cast<void*>(hostOut)}) gpu.PinnedFree(p);
  } catch (const std::exception& e) {
    Report(false, "kernel " + what + ": " + e.what());
  }
}

// Graph capture of a copy + kernel, replayed after the input changed: the replay must compute the new input.
void CheckGraph(SelfTestRuntime& gpu, rt::Stream stream, rt::Event done) {
  try {
    const size_t n = 1 << 20;
    auto* pinnedA = static_cast<uint8_t*>(gpu.PinnedAlloc(n));
    auto* pinnedB = static_cast<uint8_t*>(gpu.PinnedAlloc(n));
    auto* device = gpu.DeviceAlloc(n);
    for (size_t i = 0; i < n; ++i) pinnedA[i] = static_cast<uint8_t>(i * 7);
    std::string why;
    rt::Graph graph = gpu.CaptureGraph(stream, [&] {
      gpu.CopyToDevice(device, pinnedA, n, stream);
      gpu.CopyToHost(pinnedB, device, n, stream);
      return true;
    }, &why);
    Report(graph != nullptr, "graph capture of async copies" + (why.empty() ? std::string() : ": " + why));
    if (graph != nullptr) {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < n; ++i) pinnedA[i] = static_cast<uint8_t>(i * 7 + round);
        std::memset(pinnedB, 0, n);
        gpu.LaunchGraph(graph, stream);
        gpu.RecordEvent(done, stream);
        gpu.WaitEvent(done);
        Report(std::memcmp(pinnedA, pinnedB, n) == 0, "graph replay " + std::to_string(round + 1) + " copies the current pinned data");
      }
      gpu.DestroyGraph(graph);
    }
    gpu.DeviceFree(device);
    gpu.PinnedFree(pinnedA);
    gpu.PinnedFree(pinnedB);
  } catch (const std::exception& e) {
    Report(false, std::string("graph capture and replay: ") + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  SelfTestRuntime gpu;
  std::string error;
  std::vector<rt::DeviceInfo> devices = gpu.Devices(&error);
  if (devices.empty()) {
    std::printf("FAIL no CUDA device: %s\n", error.empty() ? "none found" : error.c_str());
    return 2;
  }
  for (const auto& d : devices) Report(true, "device " + std::to_string(d.index) + ": " + d.name + " (sm " + d.computeCapability + ")");
  try {
    gpu.SetDevice(0);
    std::string why;
    const bool runs = gpu.KernelRuns(0, &why);
    Report(runs, "the preprocessing kernel has an image for device 0" + (why.empty() ? std::string() : ": " + why));
    if (!runs) return 1;
    rt::Stream stream = gpu.CreateStream();
    rt::Event done = gpu.CreateEvent();
    Report(true, "stream (non-blocking) and event (blocking sync) created");

    // Pinned memory and async copies both ways, ordered on one stream, waited for with an event.
    const size_t n = 64 << 20;
    auto* up = static_cast<uint8_t*>(gpu.PinnedAlloc(n));
    auto* back = static_cast<uint8_t*>(gpu.PinnedAlloc(n));
    void* device = gpu.DeviceAlloc(n);
    for (size_t i = 0; i < n; ++i) up[i] = static_cast<uint8_t>(i ^ (i >> 9));
    std::memset(back, 0, n);
    gpu.CopyToDevice(device, up, n, stream);
    gpu.CopyToHost(back, device, n, stream);
    gpu.RecordEvent(done, stream);
    gpu.WaitEvent(done);
    Report(std::memcmp(up, back, n) == 0, "64 MiB pinned -> device -> pinned, async on one stream, event wait");
    gpu.DeviceFree(device);
    gpu.PinnedFree(up);
    gpu.PinnedFree(back);

    std::vector<Image> images = {Synthetic(640, 480, 1), Synthetic(333, 517, 2), Synthetic(1920, 1080, 3), Synthetic(17, 9, 4), Synthetic(320, 320, 5)};
    for (int i = 1; i < argc; ++i) {
      Image image;
      if (ReadPpm(argv[i], &image)) images.push_back(std::move(image));
      else Report(false, std::string("read ") + argv[i] + " (expected a binary PPM, P6, maxval 255)");
    }
    for (const Image& image : images) {
      for (int32_t side : {320, 640}) {
        for (bool letterbox : {false, true}) CheckKernel(gpu, stream, done, image, side, letterbox);
      }
    }
    CheckGraph(gpu, stream, done);
    gpu.DestroyEvent(done);
    gpu.DestroyStream(stream);
  } catch (const std::exception& e) {
    Report(false, e.what());
  }
  std::printf("%s: %d check(s) failed\n", failures == 0 ? "PASS" : "FAIL", failures);
  return failures == 0 ? 0 : 1;
}

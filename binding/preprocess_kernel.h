// The preprocessing arithmetic, ONE source for the CUDA kernels (binding/preprocess.cu, compiled by
// nvcc for the GPU) and for the host (the simulated runtime and the GPU self-test's reference):
// decoded uint8 RGB frame -> normalised float32 NCHW tensor, resized exactly as the CPU path
// (src/image/tensor.ts) does: PIL's BILINEAR with the support widened by the scale, fixed-point
// coefficients (22 fraction bits), the horizontal pass first into a uint8 intermediate, then the
// vertical pass. The coefficient tables and the uint8 -> float table come from JS
// (src/backends/tensorrt/frames.ts), so both builds reproduce the CPU path bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define DEIMV2_HD __host__ __device__ __forceinline__
#else
#define DEIMV2_HD inline
#endif

namespace deimv2 {

// One resampling pass (PIL's precompute_coeffs output, converted to fixed point).
struct ResamplePass {
  const int32_t* bounds = nullptr;  // [outSize * 2]: first input index and tap count per output
  const int32_t* coeffs = nullptr;  // [outSize * taps]: fixed-point weights, 22 fraction bits
  int32_t taps = 0;                 // table row length (the widest support)
  int32_t outSize = 0;
};

struct PreprocessPlan {
  int32_t srcWidth = 0;
  int32_t srcHeight = 0;
  int32_t srcStride = 0;        // bytes per source row (>= srcWidth * 3)
  ResamplePass horizontal;      // srcWidth -> outWidth
  ResamplePass vertical;        // srcHeight -> outHeight
  int32_t planeWidth = 0;       // the tensor's W and H (>= the resized size: letterbox leaves a border)
  int32_t planeHeight = 0;
  int32_t offsetX = 0;          // where the resized image goes in the plane (letterbox), else 0
  int32_t offsetY = 0;
  const float* lut = nullptr;   // [3 * 256]: the float each uint8 becomes, per channel
};

namespace kernel {

constexpr int32_t kPrecisionBits = 32 - 8 - 2;  // PIL's Resample.c PRECISION_BITS

DEIMV2_HD uint8_t Clip8(int32_t value) {
  // PIL: clip8(in) = in >> PRECISION_BITS clamped to 0..255 (the value already holds the rounding half)
  const int32_t shifted = value >> kPrecisionBits;
  return static_cast<uint8_t>(shifted < 0 ? 0 : (shifted > 255 ? 255 : shifted));
}

// The plan's geometry fits its plane and its source rows.
DEIMV2_HD bool PlanFits(const PreprocessPlan& plan) {
  return plan.horizontal.outSize + plan.offsetX <= plan.planeWidth &&
         plan.vertical.outSize + plan.offsetY <= plan.planeHeight && plan.srcStride >= plan.srcWidth * 3;
}

// Letterbox: the resized image leaves part of the plane to fill with black.
DEIMV2_HD bool NeedsBorder(const PreprocessPlan& plan) {
  return plan.offsetX != 0 || plan.offsetY != 0 || plan.horizontal.outSize != plan.planeWidth ||
         plan.vertical.outSize != plan.planeHeight;
}

// Horizontal pass, one (row y, output column x), all three channels: src -> scratch (srcHeight x outWidth x 3).
DEIMV2_HD void HorizontalPixel(const uint8_t* src, int32_t srcStride, const ResamplePass& pass, uint8_t* scratch,
                               int32_t x, int32_t y) {
  const int32_t first = pass.bounds[x * 2];
  const int32_t count = pass.bounds[x * 2 + 1];
  const int32_t* k = pass.coeffs + static_cast<size_t>(x) * pass.taps;
  const uint8_t* row = src + static_cast<size_t>(y) * srcStride;
  int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
  for (int32_t i = 0; i < count; ++i) {
    const uint8_t* pixel = row + (first + i) * 3;
    r += pixel[0] * k[i];
    g += pixel[1] * k[i];
    b += pixel[2] * k[i];
  }
  uint8_t* out = scratch + (static_cast<size_t>(y) * pass.outSize + x) * 3;
  out[0] = Clip8(r);
  out[1] = Clip8(g);
  out[2] = Clip8(b);
}

// Vertical pass and normalisation, one output pixel (x, y) of the resized image, three planes.
DEIMV2_HD void VerticalPixel(const uint8_t* scratch, int32_t width, const ResamplePass& pass, const float* lut,
                             int32_t planeWidth, int32_t planeHeight, int32_t offsetX, int32_t offsetY, float* out,
                             int32_t x, int32_t y) {
  const int32_t first = pass.bounds[y * 2];
  const int32_t count = pass.bounds[y * 2 + 1];
  const int32_t* k = pass.coeffs + static_cast<size_t>(y) * pass.taps;
  int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
  for (int32_t i = 0; i < count; ++i) {
    const uint8_t* pixel = scratch + (static_cast<size_t>(first + i) * width + x) * 3;
    r += pixel[0] * k[i];
    g += pixel[1] * k[i];
    b += pixel[2] * k[i];
  }
  const size_t plane = static_cast<size_t>(planeWidth) * planeHeight;
  const size_t at = static_cast<size_t>(y + offsetY) * planeWidth + (x + offsetX);
  out[at] = lut[Clip8(r)];
  out[plane + at] = lut[256 + Clip8(g)];
  out[2 * plane + at] = lut[512 + Clip8(b)];
}

// Letterbox border, one plane position: outside [left, right) x [top, bottom) it gets channel c's black.
DEIMV2_HD void BorderPixel(const float* lut, int32_t planeWidth, int32_t planeHeight, int32_t left, int32_t top,
                           int32_t right, int32_t bottom, float* out, int32_t x, int32_t y) {
  if (x >= left && x < right && y >= top && y < bottom) return;
  const size_t plane = static_cast<size_t>(planeWidth) * planeHeight;
  const size_t at = static_cast<size_t>(y) * planeWidth + x;
  out[at] = lut[0];
  out[plane + at] = lut[256];
  out[2 * plane + at] = lut[512];
}

// The whole preprocessing on the host, in the kernels' order (border, horizontal, vertical): what the
// simulated runtime runs and what the GPU self-test compares the real kernel with.
inline void RunOnHost(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out) {
  if (NeedsBorder(plan)) {
    for (int32_t y = 0; y < plan.planeHeight; ++y) {
      for (int32_t x = 0; x < plan.planeWidth; ++x) {
        BorderPixel(plan.lut, plan.planeWidth, plan.planeHeight, plan.offsetX, plan.offsetY,
                    plan.offsetX + plan.horizontal.outSize, plan.offsetY + plan.vertical.outSize, out, x, y);
      }
    }
  }
  for (int32_t y = 0; y < plan.srcHeight; ++y) {
    for (int32_t x = 0; x < plan.horizontal.outSize; ++x) HorizontalPixel(src, plan.srcStride, plan.horizontal, scratch, x, y);
  }
  for (int32_t y = 0; y < plan.vertical.outSize; ++y) {
    for (int32_t x = 0; x < plan.horizontal.outSize; ++x) {
      VerticalPixel(scratch, plan.horizontal.outSize, plan.vertical, plan.lut, plan.planeWidth, plan.planeHeight,
                    plan.offsetX, plan.offsetY, out, x, y);
    }
  }
}

}  // namespace kernel
}  // namespace deimv2

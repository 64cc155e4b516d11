#include "preprocess.h"

namespace deimv2 {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's Resample.c PRECISION_BITS

__device__ __forceinline__ uint8_t Clip8(int32_t value) {
  // PIL: clip8(in) = in >> PRECISION_BITS clamped to 0..255 (the value already holds the rounding half)
  int32_t shifted = value >> kPrecisionBits;
  return static_cast<uint8_t>(shifted < 0 ? 0 : (shifted > 255 ? 255 : shifted));
}

// Horizontal pass: one thread per (row, output column), all three channels.
__global__ void HorizontalPass(const uint8_t* __restrict__ src, int32_t srcStride, int32_t srcHeight,
                               ResamplePass pass, uint8_t* __restrict__ scratch) {
  const int32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= pass.outSize || y >= srcHeight) return;
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

// Vertical pass and normalisation: one thread per output pixel, writing the three planes.
__global__ void VerticalPass(const uint8_t* __restrict__ scratch, int32_t width, ResamplePass pass,
                             const float* __restrict__ lut, int32_t planeWidth, int32_t planeHeight, int32_t offsetX,
                             int32_t offsetY, float* __restrict__ out) {
  const int32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= width || y >= pass.outSize) return;
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

// Letterbox border: every plane position outside the resized rectangle gets channel c's black.
__global__ void FillBorder(const float* __restrict__ lut, int32_t planeWidth, int32_t planeHeight, int32_t left,
                           int32_t top, int32_t right, int32_t bottom, float* __restrict__ out) {
  const int32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= planeWidth || y >= planeHeight) return;
  if (x >= left && x < right && y >= top && y < bottom) return;
  const size_t plane = static_cast<size_t>(planeWidth) * planeHeight;
  const size_t at = static_cast<size_t>(y) * planeWidth + x;
  out[at] = lut[0];
  out[plane + at] = lut[256];
  out[2 * plane + at] = lut[512];
}

}  // namespace

cudaError_t EnqueuePreprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out,
                              cudaStream_t stream) {
  if (plan.horizontal.outSize + plan.offsetX > plan.planeWidth || plan.vertical.outSize + plan.offsetY > plan.planeHeight ||
      plan.srcStride < plan.srcWidth * 3) {
    return cudaErrorInvalidValue;
  }
  const dim3 block(32, 8);
  if (plan.offsetX != 0 || plan.offsetY != 0 || plan.horizontal.outSize != plan.planeWidth ||
      plan.vertical.outSize != plan.planeHeight) {
    const dim3 planeGrid((plan.planeWidth + block.x - 1) / block.x, (plan.planeHeight + block.y - 1) / block.y);
    FillBorder<<<planeGrid, block, 0, stream>>>(plan.lut, plan.planeWidth, plan.planeHeight, plan.offsetX, plan.offsetY,
                                                 plan.offsetX + plan.horizontal.outSize,
                                                 plan.offsetY + plan.vertical.outSize, out);
  }
  const dim3 horizontalGrid((plan.horizontal.outSize + block.x - 1) / block.x, (plan.srcHeight + block.y - 1) / block.y);
  HorizontalPass<<<horizontalGrid, block, 0, stream>>>(src, plan.srcStride, plan.srcHeight, plan.horizontal, scratch);
  const dim3 verticalGrid((plan.horizontal.outSize + block.x - 1) / block.x, (plan.vertical.outSize + block.y - 1) / block.y);
  VerticalPass<<<verticalGrid, block, 0, stream>>>(scratch, plan.horizontal.outSize, plan.vertical, plan.lut,
                                                    plan.planeWidth, plan.planeHeight, plan.offsetX, plan.offsetY, out);
  return cudaGetLastError();
}

}  // namespace deimv2

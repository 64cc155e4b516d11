// GPU preprocessing: decoded uint8 RGB frame -> normalised float32 NCHW tensor, resized exactly as the
// CPU path (src/image/tensor.ts) resizes: PIL's BILINEAR with the support widened by the scale,
// fixed-point coefficients (22 fraction bits), the horizontal pass first into a uint8 intermediate,
// then the vertical pass. The coefficient tables and the uint8 -> float table come from JS, computed
// by the same code as the CPU path, so the kernel reproduces it bit for bit instead of re-deriving it.
// Frames then cross PCIe as 1 byte per value instead of 4.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace deimv2 {

// One resampling pass (PIL's precompute_coeffs output, converted to fixed point).
struct ResamplePass {
  const int32_t* bounds = nullptr;  // device, [outSize * 2]: first input index and tap count per output
  const int32_t* coeffs = nullptr;  // device, [outSize * taps]: fixed-point weights, 22 fraction bits
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
  const float* lut = nullptr;   // device, [3 * 256]: the float each uint8 becomes, per channel
};

// Enqueues both passes on `stream`: src (device, RGB interleaved) -> scratch (device, srcHeight *
// outWidth * 3 bytes) -> out (device, 3 planes of planeHeight * planeWidth floats). When the resized
// image does not cover the plane (letterbox), the border is first filled with the value black (0)
// becomes, lut[c * 256], as the CPU path fills it. Returns the launch status.
cudaError_t EnqueuePreprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out,
                              cudaStream_t stream);

}  // namespace deimv2

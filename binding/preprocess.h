// The CUDA launch of the preprocessing kernels (binding/preprocess.cu); the arithmetic is
// binding/preprocess_kernel.h, shared with the host build. Included only by the CUDA runtime.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "preprocess_kernel.h"

namespace deimv2 {

// Enqueues border fill (letterbox), horizontal and vertical passes on `stream`: src (device, RGB
// interleaved) -> scratch (device, srcHeight * outWidth * 3 bytes) -> out (device, 3 planes of
// planeHeight * planeWidth floats). Returns the launch status of these launches only (never an
// earlier error left on the thread by other work): cudaErrorInvalidValue for a plan that does not fit.
cudaError_t EnqueuePreprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out,
                              cudaStream_t stream);

// Whether the kernels have an image the current device can run (cubin for its architecture, or PTX
// the driver can JIT): cudaSuccess, else cudaErrorNoKernelImageForDevice / cudaErrorInvalidDeviceFunction.
cudaError_t PreprocessKernelStatus();

}  // namespace deimv2

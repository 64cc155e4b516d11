// The preprocessing kernels: one thread per pixel running binding/preprocess_kernel.h's arithmetic.
#include "preprocess.h"

namespace deimv2 {

namespace {

__global__ void HorizontalPass(const uint8_t* __restrict__ src, int32_t srcStride, int32_t srcHeight,
                               ResamplePass pass, uint8_t* __restrict__ scratch) {
  const int32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= pass.outSize || y >= srcHeight) return;
  kernel::HorizontalPixel(src, srcStride, pass, scratch, x, y);
}

__global__ void VerticalPass(const uint8_t* __restrict__ scratch, int32_t width, ResamplePass pass,
                             const float* __restrict__ lut, int32_t planeWidth, int32_t planeHeight, int32_t offsetX,
                             int32_t offsetY, float* __restrict__ out) {
  const int32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= width || y >= pass.outSize) return;
  kernel::VerticalPixel(scratch, width, pass, lut, planeWidth, planeHeight, offsetX, offsetY, out, x, y);
}

__global__ void FillBorder(const float* __restrict__ lut, int32_t planeWidth, int32_t planeHeight, int32_t left,
                           int32_t top, int32_t right, int32_t bottom, float* __restrict__ out) {
  const int32_t x = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= planeWidth || y >= planeHeight) return;
  kernel::BorderPixel(lut, planeWidth, planeHeight, left, top, right, bottom, out, x, y);
}

}  // namespace

cudaError_t PreprocessKernelStatus() {
  cudaFuncAttributes attributes{};
  cudaError_t status = cudaFuncGetAttributes(&attributes, HorizontalPass);
  if (status == cudaSuccess) status = cudaFuncGetAttributes(&attributes, VerticalPass);
  if (status == cudaSuccess) status = cudaFuncGetAttributes(&attributes, FillBorder);
  if (status != cudaSuccess) static_cast<void>(cudaGetLastError());  // not sticky: leave no stale error behind
  return status;
}

cudaError_t EnqueuePreprocess(const PreprocessPlan& plan, const uint8_t* src, uint8_t* scratch, float* out,
                              cudaStream_t stream) {
  if (!kernel::PlanFits(plan)) return cudaErrorInvalidValue;
  // A stale error from earlier work on this thread must not be blamed on these launches: take it
  // first (launch errors are not sticky), then read only what the launches below leave.
  static_cast<void>(cudaGetLastError());
  const dim3 block(32, 8);
  if (kernel::NeedsBorder(plan)) {
    const dim3 planeGrid((plan.planeWidth + block.x - 1) / block.x, (plan.planeHeight + block.y - 1) / block.y);
    FillBorder<<<planeGrid, block, 0, stream>>>(plan.lut, plan.planeWidth, plan.planeHeight, plan.offsetX, plan.offsetY,
                                                 plan.offsetX + plan.horizontal.outSize,
                                                 plan.offsetY + plan.vertical.outSize, out);
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
  }
  const dim3 horizontalGrid((plan.horizontal.outSize + block.x - 1) / block.x, (plan.srcHeight + block.y - 1) / block.y);
  HorizontalPass<<<horizontalGrid, block, 0, stream>>>(src, plan.srcStride, plan.srcHeight, plan.horizontal, scratch);
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) return status;
  const dim3 verticalGrid((plan.horizontal.outSize + block.x - 1) / block.x, (plan.vertical.outSize + block.y - 1) / block.y);
  VerticalPass<<<verticalGrid, block, 0, stream>>>(scratch, plan.horizontal.outSize, plan.vertical, plan.lut,
                                                    plan.planeWidth, plan.planeHeight, plan.offsetX, plan.offsetY, out);
  return cudaGetLastError();
}

}  // namespace deimv2

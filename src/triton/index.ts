/** Triton model repositories from DEIMv2 engines (tensorrt_plan) and ONNX graphs (onnxruntime_onnx). */
export { tritonConfig, configText, checkModelName, DEFAULT_QUEUE_DELAY_US } from './config.js';
export type { TritonTensor, TritonModelConfig, TritonTensorConfig, TritonConfigOptions, TritonDataType, TritonPlatform } from './config.js';
export { writeTritonPlan, type TritonPlanOptions, type PlanBuildInfo, type EngineIo } from './plan.js';
export { writeTritonOnnx, onnxTensors, DEFAULT_ONNX_MAX_BATCH, type TritonOnnxOptions } from './onnx.js';
export { checkRepositoryTarget, type RepositoryResult, type RepositoryPaths, type RepositoryTarget } from './repository.js';
export { defaultModelName } from './names.js';
export { tritonReleasesFor, TRITON_TRTLLM_TENSORRT } from './tensorrt-releases.js';

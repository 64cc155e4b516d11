/**
 * Which Triton release ships which TensorRT: a plan deserializes only in the TensorRT version that
 * built it, so the model folder's README names the releases to use.
 *
 * Facts from Triton's release compatibility matrix (triton-inference-server/server,
 * docs/introduction/compatibility.md, as of its 26.07 row), which lists the TensorRT of the
 * `-trtllm-python-py3` containers. The plain `-py3` containers can carry another TensorRT; NVIDIA's
 * Frameworks Support Matrix lists those.
 */

export const SUPPORT_MATRIX_URL = 'https://docs.nvidia.com/deeplearning/frameworks/support-matrix/index.html';
export const TRITON_COMPATIBILITY_URL = 'https://github.com/triton-inference-server/server/blob/main/docs/introduction/compatibility.md';

/** Triton release -> TensorRT version of its trtllm-python-py3 container. */
export const TRITON_TRTLLM_TENSORRT: Readonly<Record<string, string>> = Object.freeze({
  '24.05': '10.0.1.6', '24.06': '10.0.1', '24.07': '10.1.0', '24.08': '10.3.0', '24.09': '10.4.0', '24.10': '10.4.0',
  '24.11': '10.6.0', '24.12': '10.7.0', '25.01': '10.8.0.43', '25.02': '10.8.0.43', '25.03': '10.9.0.34',
  '25.04': '10.9.0.34', '25.05': '10.9.0.34', '25.06': '10.10.0.31', '25.07': '10.10.0.31', '25.08': '10.11.0.33',
  '25.09': '10.11.0.33', '25.10': '10.11.0.33', '25.11': '10.13.3.9', '25.12': '10.13.3.9', '26.01': '10.13.3.9',
  '26.02': '10.13.3.9', '26.03': '10.14.1.48', '26.04': '10.14.1.48', '26.05': '10.14.1.48', '26.06': '10.14.1.48',
  '26.07': '10.14.1.48',
});

/** major.minor.patch: what a plan needs to match. */
export function tensorrtRelease(version: string): string {
  return version.split('.').slice(0, 3).join('.');
}

/** The Triton releases whose trtllm-python-py3 container has the same TensorRT major.minor.patch. */
export function tritonReleasesFor(tensorrtVersion: string): string[] {
  const wanted = tensorrtRelease(tensorrtVersion);
  return Object.entries(TRITON_TRTLLM_TENSORRT).filter(([, v]) => tensorrtRelease(v) === wanted).map(([release]) => release);
}

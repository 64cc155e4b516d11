/**
 * COCO bounding-box evaluation equal to pycocotools' COCOeval, and the helpers the `eval` and
 * `compare` commands use. For src/index.ts to re-export: `export * from './eval/index.js'`.
 *
 * @example
 * import { readGroundTruth, readResults, evaluateCoco, formatSummary } from 'deimv2';
 * const gt = await readGroundTruth('instances_val2017.json');
 * console.log(formatSummary(evaluateCoco(gt, await readResults('results.json', gt)).lines));
 */
export { readGroundTruth, readResults, readResultsBytes, parseGroundTruth, parseResults, parseResultsFile, readJsonFile } from './coco-dataset.js';
export type { GroundTruth, Detections, CocoImage } from './coco-dataset.js';
export { evaluateCoco, matchDetections, accumulate, summarize, defaultParams, perCategoryAp } from './cocoeval.js';
export type { EvalParams, CocoEvalResult, Accumulated, MatchTable, SummaryLine } from './cocoeval.js';
export { evaluateJson, evaluateResultsBytes, namedStats, STAT_NAMES } from './metrics.js';
export type { JsonEvaluation, StatName } from './metrics.js';
export { formatSummary, formatSummaryLine, formatPerClass } from './summary-format.js';
export { toCocoResults, writeCocoResults } from './results-writer.js';
export type { CocoResult } from './results-writer.js';
export { detectImages, findAnnotatedImages, selectImages } from './detect-images.js';
export type { AnnotatedImage, DetectImagesRun } from './detect-images.js';
export { detectionAgreement } from './agreement.js';
export type { Agreement } from './agreement.js';

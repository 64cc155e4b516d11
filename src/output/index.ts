/** Output safety: one plan of every path a run writes, atomic writes, printable names. */
export { checkOutputs, ensureDirectorySync, planOutputs } from './plan.js';
export type { OutputKind, OutputPlanRequest, OutputRequest, PlannedOutput } from './plan.js';
export { AtomicFile, removeTemporaryFiles, settleWrites, temporaryPathFor, writeFileAtomic, writeFileAtomicSync } from './atomic.js';
export { printable } from './printable.js';

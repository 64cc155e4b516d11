/** Multi-object tracking: ByteTrack, counting lines and zones, track files. */
export { ByteTracker, TRACKER_DEFAULTS, resolveTrackerOptions, checkDetection } from './tracker.js';
export type { TrackerOptions, TrackerInput, Track } from './tracker.js';
export { linearAssignment } from './assignment.js';
export type { Assignment } from './assignment.js';

/** Multi-object tracking: ByteTrack, counting lines and zones, track files. */
export { ByteTracker, TRACKER_DEFAULTS, resolveTrackerOptions, checkDetection } from './tracker.js';
export type { TrackerOptions, TrackerInput, Track } from './tracker.js';
export { TrackSession, formatTrackSummary } from './session.js';
export type { TrackSessionOptions, TrackedDetection, TrackedFrame, FrameCounts, LineCrossing, TrackSummary, LineSummary, ZoneSummary, DwellEntry } from './session.js';
export { parseLine, parseZone, insidePolygon } from './geometry.js';
export type { CountLine, Zone } from './geometry.js';
export { readDetectionsJsonl, motLines } from './io.js';
export type { DetectionFrame } from './io.js';
export { TRACK_OPTION_TABLE } from './options.js';
export type { TrackOptionRow } from './options.js';
export { linearAssignment } from './assignment.js';
export type { Assignment } from './assignment.js';

/**
 * The smallest Matroska stream that carries raw RGB frames with their own timestamps, written
 * to the encoder's pipe: ffmpeg's rawvideo input has no timestamps (one frame every 1/fps), so a
 * variable-rate source would come out at a constant rate. Each frame is one Cluster (its
 * Timestamp in nanoseconds: TimestampScale 1) holding one SimpleBlock. Every element size is
 * written as an 8-byte EBML number, so a header's length never depends on its content.
 */

/** An EBML number of 8 bytes: 0x01 then 7 bytes of value. */
function size8(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  b[0] = 0x01;
  return b;
}

function element(id: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(id, 'hex'), size8(payload.length), payload]);
}

function uint(id: string, value: number | bigint, bytes = 8): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(value));
  return element(id, b.subarray(8 - bytes));
}

/**
 * EBML header, Segment (size unknown: the stream ends with the pipe), Info and one raw RGB video
 * track whose frames last `frameNs` unless the next comes sooner (the last frame's duration, as in
 * a constant-rate file: audio is cut at the video's end).
 */
export function mkvHeader(width: number, height: number, frameNs: number): Buffer {
  const ebml = element('1a45dfa3', Buffer.concat([uint('4286', 1, 1), uint('42f7', 1, 1), uint('42f2', 4, 1), uint('42f3', 8, 1), element('4282', Buffer.from('matroska')), uint('4287', 4, 1), uint('4285', 2, 1)]));
  const segment = Buffer.from('1853806701ffffffffffffff', 'hex');
  const info = element('1549a966', Buffer.concat([uint('2ad7b1', 1, 4), element('4d80', Buffer.from('deimv2')), element('5741', Buffer.from('deimv2'))]));
  const video = element('e0', Buffer.concat([uint('b0', width, 4), uint('ba', height, 4), element('2eb524', Buffer.from('RGB\x18', 'latin1'))]));
  const track = element('ae', Buffer.concat([uint('d7', 1, 1), uint('73c5', 1, 1), uint('83', 1, 1), element('86', Buffer.from('V_UNCOMPRESSED')), uint('23e383', Math.max(1, Math.round(frameNs))), video]));
  return Buffer.concat([ebml, segment, info, element('1654ae6b', track)]);
}

/** Cluster and SimpleBlock header of one frame of `frameBytes` bytes at `ns` nanoseconds; the frame's bytes follow it. */
export function mkvFrameHeader(ns: bigint, frameBytes: number): Buffer {
  const timestamp = uint('e7', ns);
  const blockHeader = Buffer.from([0x81, 0x00, 0x00, 0x80]); // track 1, relative time 0, keyframe
  const blockSize = blockHeader.length + frameBytes;
  const clusterSize = timestamp.length + 1 + 8 + blockSize;
  return Buffer.concat([Buffer.from('1f43b675', 'hex'), size8(clusterSize), timestamp, Buffer.from('a3', 'hex'), size8(blockSize), blockHeader]);
}

/*
 * Pillow-exact BILINEAR resize kernels for WebAssembly SIMD128, bit-identical to the TypeScript
 * path in ../pil-resize.ts and ../tensor.ts (which stays the reference and the fallback).
 *
 * The weight tables are built in TypeScript (axisWeights): every output index has `span` taps
 * starting at start[i], fixed-point weights with 22 fraction bits. Each output value is
 * clip8((2^21 + sum(pixel * weight)) >> 22); sums fit in int32 (255 * 2^22 + rounding < 2^31).
 * Saturating narrows (i32 -> i16 -> u8) perform the clip to 0..255 for free.
 *
 * Memory is owned by the TypeScript side, which lays out its buffers in this module's linear
 * memory and passes offsets. Buffers read or written 16 bytes at a time have 16 spare bytes
 * after them, so vector loads/stores that overrun a row's end touch only padding or data that
 * is rewritten afterwards.
 *
 * Build: scripts/build-wasm.sh (clang --target=wasm32 -O3 -msimd128 -nostdlib).
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define PRECISION_BITS 22
#define ROUNDING_BIAS (1 << (PRECISION_BITS - 1))

/* Four bytes at p widened to four int32 lanes (unaligned load). */
static inline v128_t load4_u8_as_i32(const uint8_t *p) {
  uint32_t word;
  __builtin_memcpy(&word, p, 4);
  v128_t v = wasm_u32x4_splat(word);
  return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(v));
}

/* Four int32 sums -> four clipped bytes in the low 32 bits. */
static inline uint32_t finish4(v128_t acc) {
  v128_t shifted = wasm_i32x4_shr(acc, PRECISION_BITS);
  v128_t halves = wasm_i16x8_narrow_i32x4(shifted, shifted);
  v128_t bytes = wasm_u8x16_narrow_i16x8(halves, halves);
  return wasm_u32x4_extract_lane(bytes, 0);
}

/*
 * Horizontal pass: source rows [rowFirst, rowEnd) of an interleaved image with `channels` (1, 3
 * or 4) to `outWidth` RGB pixels per row, written to dst (row r at (r - rowFirst) * outWidth * 3).
 * Gray is replicated to three channels, alpha is dropped. dst needs 1 spare byte at its end
 * (each RGB pixel is stored as 4 bytes, the 4th overwritten by the next pixel).
 */
void horizontal_pass(const uint8_t *src, int width, int channels, int rowFirst, int rowEnd,
                     int outWidth, int span, const int32_t *start, const int32_t *weights,
                     uint8_t *dst) {
  const int srcStride = width * channels;
  const v128_t bias = wasm_i32x4_splat(ROUNDING_BIAS);
  for (int y = rowFirst; y < rowEnd; y++) {
    const uint8_t *row = src + (intptr_t)y * srcStride;
    if (channels == 1) {
      for (int x = 0; x < outWidth; x++) {
        const uint8_t *p = row + start[x];
        const int32_t *w = weights + x * span;
        int32_t s = ROUNDING_BIAS;
        for (int t = 0; t < span; t++) s += p[t] * w[t];
        s >>= PRECISION_BITS;
        uint8_t v = s > 255 ? 255 : s < 0 ? 0 : (uint8_t)s;
        dst[0] = v;
        dst[1] = v;
        dst[2] = v;
        dst += 3;
      }
      continue;
    }
    if (span == 4) {
      const int c2 = 2 * channels, c3 = 3 * channels;
      for (int x = 0; x < outWidth; x++) {
        const uint8_t *p = row + start[x] * channels;
        const int32_t *w = weights + x * 4;
        v128_t acc = wasm_i32x4_add(bias, wasm_i32x4_mul(load4_u8_as_i32(p), wasm_i32x4_splat(w[0])));
        acc = wasm_i32x4_add(acc, wasm_i32x4_mul(load4_u8_as_i32(p + channels), wasm_i32x4_splat(w[1])));
        acc = wasm_i32x4_add(acc, wasm_i32x4_mul(load4_u8_as_i32(p + c2), wasm_i32x4_splat(w[2])));
        acc = wasm_i32x4_add(acc, wasm_i32x4_mul(load4_u8_as_i32(p + c3), wasm_i32x4_splat(w[3])));
        uint32_t rgbx = finish4(acc);
        __builtin_memcpy(dst, &rgbx, 4);
        dst += 3;
      }
      continue;
    }
    for (int x = 0; x < outWidth; x++) {
      const uint8_t *p = row + start[x] * channels;
      const int32_t *w = weights + x * span;
      v128_t acc = bias;
      for (int t = 0; t < span; t++, p += channels) {
        acc = wasm_i32x4_add(acc, wasm_i32x4_mul(load4_u8_as_i32(p), wasm_i32x4_splat(w[t])));
      }
      uint32_t rgbx = finish4(acc);
      __builtin_memcpy(dst, &rgbx, 4);
      dst += 3;
    }
  }
}

/* acc[0..3] += 16 bytes at p, widened to int32, times w. */
static inline void accumulate16(v128_t acc[4], const uint8_t *p, v128_t w) {
  v128_t v = wasm_v128_load(p);
  v128_t lo = wasm_u16x8_extend_low_u8x16(v);
  v128_t hi = wasm_u16x8_extend_high_u8x16(v);
  acc[0] = wasm_i32x4_add(acc[0], wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(lo), w));
  acc[1] = wasm_i32x4_add(acc[1], wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(lo), w));
  acc[2] = wasm_i32x4_add(acc[2], wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(hi), w));
  acc[3] = wasm_i32x4_add(acc[3], wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(hi), w));
}

/*
 * Vertical pass fused with the 8-bit -> float conversion. `temp` holds the horizontally resized
 * rows (rowBytes = outWidth * 3 bytes each, the first being source row rowFirst). Output row y
 * is computed 16 bytes at a time into `rowBuffer` (rowBytes + 16 bytes), then each value is
 * looked up in `table` (3 x 256 floats, per channel) and written to three packed planes of
 * outWidth x outHeight floats at `planes`.
 */
void vertical_pass_to_planes(const uint8_t *temp, int rowBytes, int rowFirst, int outHeight,
                             int span, const int32_t *start, const int32_t *weights,
                             const float *table, uint8_t *rowBuffer, float *planes) {
  const int outWidth = rowBytes / 3;
  const int plane = outWidth * outHeight;
  const v128_t bias = wasm_i32x4_splat(ROUNDING_BIAS);
  for (int y = 0; y < outHeight; y++) {
    const uint8_t *base = temp + (intptr_t)(start[y] - rowFirst) * rowBytes;
    const int32_t *w = weights + y * span;
    for (int i = 0; i < rowBytes; i += 16) {
      v128_t acc[4] = {bias, bias, bias, bias};
      const uint8_t *p = base + i;
      for (int t = 0; t < span; t++, p += rowBytes) accumulate16(acc, p, wasm_i32x4_splat(w[t]));
      v128_t lo = wasm_i16x8_narrow_i32x4(wasm_i32x4_shr(acc[0], PRECISION_BITS), wasm_i32x4_shr(acc[1], PRECISION_BITS));
      v128_t hi = wasm_i16x8_narrow_i32x4(wasm_i32x4_shr(acc[2], PRECISION_BITS), wasm_i32x4_shr(acc[3], PRECISION_BITS));
      wasm_v128_store(rowBuffer + i, wasm_u8x16_narrow_i16x8(lo, hi));
    }
    float *r = planes + y * outWidth;
    float *g = r + plane;
    float *b = g + plane;
    const uint8_t *q = rowBuffer;
    for (int x = 0; x < outWidth; x++, q += 3) {
      r[x] = table[q[0]];
      g[x] = table[256 + q[1]];
      b[x] = table[512 + q[2]];
    }
  }
}

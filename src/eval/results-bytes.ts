/**
 * A COCO results file read straight from its bytes into Detections, without JSON.parse: the
 * common shape `[{"image_id": 1, "category_id": 2, "bbox": [x, y, w, h], "score": 0.9}, ...]`
 * (any key order and whitespace, other keys with plain values), which is most of `deimv2 eval`'s
 * time on a large file otherwise (the text, half a million objects, the garbage collector).
 *
 * It gives exactly what JSON.parse + parseResults give, or undefined: anything else (another
 * shape, an escape in a key, a duplicate key, invalid JSON, an entry parseResults refuses) is
 * left to that path, which then gives its result or its error, so nothing changes but the speed.
 * Numbers are read as JSON.parse reads them: up to 15 digits with a power of ten up to 22 by one
 * correctly rounded multiplication or division of two exact doubles (Clinger's fast path, the
 * same double), others by Number() of their text.
 *
 * @example
 * const columns = parseResultsBytes(bytes, gt) ?? undefined; // undefined: use JSON.parse + parseResults
 */

/** What the reader needs of the ground truth (GroundTruth has it). */
export interface ResultsIndex {
  imageIndexById: ReadonlyMap<number, number>;
  categoryIndexById: ReadonlyMap<number, number>;
}

/** Detections' columns (coco-dataset.ts adds the source). */
export interface ResultColumns {
  count: number;
  imageIndex: Uint32Array;
  categoryIndex: Uint32Array;
  xywh: Float64Array;
  area: Float64Array;
  score: Float64Array;
}

/** 10^0 .. 10^22: every one an exact double. */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const BACKSLASH = 0x5c;

/** The fields parseResults reads, by key. */
const IMAGE_ID = 1;
const CATEGORY_ID = 2;
const BBOX = 4;
const SCORE = 8;
const ALL_FIELDS = IMAGE_ID | CATEGORY_ID | BBOX | SCORE;
const KEYS: ReadonlyArray<[number, string]> = [[IMAGE_ID, 'image_id'], [CATEGORY_ID, 'category_id'], [BBOX, 'bbox'], [SCORE, 'score']];
const KEY_FIELDS = KEYS.map(([field]) => field);
const KEY_NAMES = KEYS.map(([, name]) => Uint8Array.from(name, (ch) => ch.charCodeAt(0)));

/** The reader gave up: the file is left to JSON.parse + parseResults. */
const NOT_PLAIN = new Error('not a plain results file');

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/** A cursor over the bytes; reads past the end give -1. */
class Reader {
  pos = 0;
  readonly end: number;
  constructor(readonly b: Uint8Array) {
    this.end = b.length;
  }

  at(p: number): number {
    return p < this.end ? this.b[p]! : -1;
  }

  /** Skips JSON whitespace; returns the next byte (-1 at the end). */
  ws(): number {
    const { b, end } = this;
    let p = this.pos;
    while (p < end) {
      const c = b[p]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        this.pos = p;
        return c;
      }
      p++;
    }
    this.pos = p;
    return -1;
  }

  expect(c: number): void {
    if (this.ws() !== c) throw NOT_PLAIN;
    this.pos++;
  }

  /** After whitespace, a JSON number, as JSON.parse gives it. */
  number(): number {
    this.ws();
    const start = this.pos;
    let p = start;
    let c = this.at(p);
    const negative = c === MINUS;
    if (negative) c = this.at(++p);
    let mantissa = 0;
    let digits = 0;
    if (c === ZERO) {
      c = this.at(++p);
      digits++;
    } else if (c > ZERO && c <= NINE) {
      do {
        mantissa = mantissa * 10 + (c - ZERO);
        digits++;
        c = this.at(++p);
      } while (isDigit(c));
    } else {
      throw NOT_PLAIN;
    }
    let exponent = 0;
    if (c === DOT) {
      c = this.at(++p);
      if (!isDigit(c)) throw NOT_PLAIN;
      const from = p;
      do {
        mantissa = mantissa * 10 + (c - ZERO);
        digits++;
        c = this.at(++p);
      } while (isDigit(c));
      exponent = from - p;
    }
    if (c === 0x65 || c === 0x45) {
      c = this.at(++p);
      let sign = 1;
      if (c === MINUS || c === PLUS) {
        if (c === MINUS) sign = -1;
        c = this.at(++p);
      }
      if (!isDigit(c)) throw NOT_PLAIN;
      const from = p;
      let e = 0;
      do {
        e = e * 10 + (c - ZERO);
        c = this.at(++p);
      } while (isDigit(c));
      // Many exponent digits: the slow path below reads it (e stays exact far beyond that).
      exponent += sign * (p - from > 6 ? 1e9 : e);
    }
    this.pos = p;
    // Within 15 digits the mantissa is an exact integer below 2^53; with |exponent| <= 22 the
    // power of ten is exact too, and one IEEE operation rounds correctly: the double JSON.parse gives.
    if (digits <= 15 && exponent >= -22 && exponent <= 22) {
      const v = exponent >= 0 ? mantissa * POW10[exponent]! : mantissa / POW10[-exponent]!;
      return negative ? -v : v;
    }
    return Number(Buffer.from(this.b.buffer, this.b.byteOffset + start, p - start).toString('latin1'));
  }

  /** After whitespace, a string without escapes or control bytes (else the reader gives up): its first byte's offset and its length. */
  plainString(): number {
    const { b, end } = this;
    if (this.ws() !== QUOTE) throw NOT_PLAIN;
    const start = this.pos + 1;
    let p = start;
    for (;;) {
      if (p >= end) throw NOT_PLAIN;
      const c = b[p]!;
      if (c === QUOTE) break;
      if (c === BACKSLASH || c < 0x20) throw NOT_PLAIN;
      p++;
    }
    this.pos = p + 1;
    return p - start;
  }

  /** A key: which field it is (0: another one). */
  key(): number {
    const n = this.plainString();
    const start = this.pos - 1 - n;
    for (let f = 0; f < KEYS.length; f++) {
      const name = KEY_NAMES[f]!;
      if (name.length !== n) continue;
      let i = 0;
      while (i < n && this.b[start + i] === name[i]) i++;
      if (i === n) return KEY_FIELDS[f]!;
    }
    return 0;
  }

  /** Skips a plain value of a key parseResults does not read: a number, a string without escapes, true, false or null. */
  skipPlainValue(): void {
    const c = this.ws();
    if (c === QUOTE) {
      this.plainString();
    } else if (c === MINUS || isDigit(c)) {
      this.number();
    } else {
      for (const word of ['true', 'false', 'null']) {
        let i = 0;
        while (i < word.length && this.at(this.pos + i) === word.charCodeAt(i)) i++;
        if (i === word.length) {
          this.pos += i;
          return;
        }
      }
      throw NOT_PLAIN;
    }
  }
}

/** Growable columns, trimmed at the end to one entry per result (as parseResults sizes them). */
function grow<T extends Float64Array | Uint32Array>(a: T, n: number): T {
  const bigger = new (a.constructor as new (n: number) => T)(n);
  bigger.set(a);
  return bigger;
}

/**
 * parseResults of a results file's bytes, or undefined where that is not plain (see above).
 * `skipImageIds` as in parseResults.
 */
export function parseResultsBytes(bytes: Uint8Array, gt: ResultsIndex, options: { skipImageIds?: ReadonlySet<number> } = {}): ResultColumns | undefined {
  try {
    return read(new Reader(bytes), gt, options.skipImageIds);
  } catch (e) {
    if (e === NOT_PLAIN) return undefined;
    throw e;
  }
}

function read(r: Reader, gt: ResultsIndex, skipImageIds: ReadonlySet<number> | undefined): ResultColumns | undefined {
  r.expect(OPEN_ARRAY);
  // An empty list is an error of parseResults: left to it.
  if (r.ws() === CLOSE_ARRAY) return undefined;
  // About 90 bytes a result in a typical file; grown when short.
  let capacity = Math.max(16, Math.ceil(r.b.length / 64));
  let imageIndex = new Uint32Array(capacity);
  let categoryIndex = new Uint32Array(capacity);
  let xywh = new Float64Array(4 * capacity);
  let area = new Float64Array(capacity);
  let score = new Float64Array(capacity);
  let entries = 0;
  let count = 0;
  for (;;) {
    r.expect(OPEN_OBJECT);
    let seen = 0;
    let imageId = 0, categoryId = 0, s = 0, x = 0, y = 0, w = 0, h = 0;
    if (r.ws() === CLOSE_OBJECT) return undefined;
    for (;;) {
      const field = r.key();
      r.expect(COLON);
      // A duplicate key (JSON.parse keeps the last) is left to JSON.parse.
      if ((seen & field) !== 0) return undefined;
      seen |= field;
      if (field === 0) {
        r.skipPlainValue();
      } else if (field === BBOX) {
        r.expect(OPEN_ARRAY);
        x = r.number();
        r.expect(COMMA);
        y = r.number();
        r.expect(COMMA);
        w = r.number();
        r.expect(COMMA);
        h = r.number();
        r.expect(CLOSE_ARRAY);
      } else {
        const v = r.number();
        if (field === IMAGE_ID) imageId = v;
        else if (field === CATEGORY_ID) categoryId = v;
        else s = v;
      }
      const c = r.ws();
      r.pos++;
      if (c === CLOSE_OBJECT) break;
      if (c !== COMMA) return undefined;
    }
    // What parseResults would refuse (a field missing, not in the annotations, not finite) is left to it, for its message.
    if (seen !== ALL_FIELDS) return undefined;
    entries++;
    const image = gt.imageIndexById.get(imageId);
    if (image === undefined && skipImageIds?.has(imageId)) {
      // Passed over, as parseResults does.
    } else {
      const category = gt.categoryIndexById.get(categoryId);
      if (image === undefined || category === undefined) return undefined;
      if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(w) || !Number.isFinite(h) || !Number.isFinite(s)) return undefined;
      if (count === capacity) {
        capacity *= 2;
        imageIndex = grow(imageIndex, capacity);
        categoryIndex = grow(categoryIndex, capacity);
        xywh = grow(xywh, 4 * capacity);
        area = grow(area, capacity);
        score = grow(score, capacity);
      }
      const j = count++;
      imageIndex[j] = image;
      categoryIndex[j] = category;
      const o = 4 * j;
      xywh[o] = x;
      xywh[o + 1] = y;
      xywh[o + 2] = w;
      xywh[o + 3] = h;
      area[j] = w * h;
      score[j] = s;
    }
    const c = r.ws();
    r.pos++;
    if (c === CLOSE_ARRAY) break;
    if (c !== COMMA) return undefined;
  }
  // Only whitespace may follow (else JSON.parse fails: left to it).
  if (r.ws() !== -1) return undefined;
  // One entry per result, as parseResults sizes its columns.
  const n = entries;
  const fit = <T extends Float64Array | Uint32Array>(a: T, len: number): T => (a.length >= len ? (a.subarray(0, len) as T) : grow(a, len));
  return {
    count,
    imageIndex: fit(imageIndex, n),
    categoryIndex: fit(categoryIndex, n),
    xywh: fit(xywh, 4 * n),
    area: fit(area, n),
    score: fit(score, n),
  };
}

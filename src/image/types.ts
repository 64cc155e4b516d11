/** A decoded, upright image: interleaved 8-bit pixels. */
export interface RawImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** 3 (RGB) or 4 (RGBA, alpha ignored); 1 (gray) is accepted by the API and expanded. */
  readonly channels: 1 | 3 | 4;
}

/** Decoded RGB image (channels always 3). */
export interface RgbImage extends RawImage {
  readonly channels: 3;
}

export type ResizeMode = 'stretch' | 'letterbox';

/**
 * How an image was mapped into the square model input. Boxes from the model are in the pixel
 * frame of (`frameWidth`, `frameHeight`), which the model receives as orig_target_sizes; to go
 * back to image pixels: x = (x' - padX) / scale, y = (y' - padY) / scale.
 */
export interface InputTransform {
  readonly mode: ResizeMode;
  readonly imageWidth: number;
  readonly imageHeight: number;
  readonly frameWidth: number;
  readonly frameHeight: number;
  readonly scale: number;
  readonly padX: number;
  readonly padY: number;
}

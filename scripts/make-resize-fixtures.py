#!/usr/bin/python3
"""Golden outputs of Pillow's BILINEAR resize, for test/preprocess.test.ts and scripts/resize-parity.js.

Run with Debian's python3 and its Pillow (apt-get install python3-pil), from the repository root:

  /usr/bin/python3 scripts/make-resize-fixtures.py
      Writes test/fixtures/resize/: for each case, up to two PNGs and an entry in index.json:
        <case>.pil.png   what the official pipeline feeds the model: Pillow decodes the JPEG,
                         .convert('RGB'), resizes (or letterboxes like the official ONNX demo);
        <case>.same.png  Pillow's resize of the pixels sharp decodes (sharp's raw RGB handed to
                         Image.frombytes), which tests the filter alone, without the JPEG decoder
                         differences between sharp and Pillow (not written when it equals
                         <case>.pil.png: index.json names the file each test reads).
      index.json records the Pillow version, each case's image, size, mode, and the sha256 of the
      sharp-decoded input and of both outputs.

  /usr/bin/python3 scripts/make-resize-fixtures.py --raw OUT_DIR SIZE MODE FILE...
      Pillow decode + resize of each FILE to OUT_DIR/<basename>.rgb (raw interleaved RGB bytes).

Images are read from ../shared (or $DEIMV2_SHARED).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

from PIL import Image, __version__ as PIL_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('DEIMV2_SHARED', os.path.join(ROOT, '..', 'shared'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'resize')

# (case name, image path relative to shared/, model input size, resize mode)
CASES = [
    ('example-320', 'images/example.jpg', 320, 'stretch'),
    ('coco-6818-416', 'coco/val2017/000000006818.jpg', 416, 'stretch'),
    ('coco-58636-320', 'coco/val2017/000000058636.jpg', 320, 'stretch'),
    ('coco-6818-320-letterbox', 'coco/val2017/000000006818.jpg', 320, 'letterbox'),
    # Has an embedded ICC profile, which Pillow ignores: the decoder must ignore it too.
    ('coco-37777-320', 'coco/val2017/000000037777.jpg', 320, 'stretch'),
]

# sharp decoding as the package does (src/image/decode.ts): upright, no alpha, 8-bit RGB, and the
# embedded ICC profile ignored, as Pillow's Image.open(f).convert('RGB') ignores it.
SHARP_DECODE = """
import sharp from 'sharp';
import { writeFileSync } from 'node:fs';
const [file, out] = process.argv.slice(1);
const { data, info } = await sharp(file, { ignoreIcc: true }).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
writeFileSync(out, data);
process.stdout.write(JSON.stringify({ width: info.width, height: info.height, channels: info.channels }));
"""


def model_input(im, size, mode):
    """The square model input made from an RGB image, as the official DEIMv2 scripts make it."""
    if mode == 'stretch':
        # The official evaluation: the whole image to size x size.
        return im.resize((size, size), Image.BILINEAR)
    # The official ONNX demo (tools/inference/onnx_inf.py): keep the aspect ratio, int() of the
    # scaled sides, pasted on a black square at floor-halved offsets.
    w, h = im.size
    ratio = min(size / w, size / h)
    new_w, new_h = int(w * ratio), int(h * ratio)
    canvas = Image.new('RGB', (size, size))
    canvas.paste(im.resize((new_w, new_h), Image.BILINEAR), ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def sharp_decode(path, tmp):
    raw = os.path.join(tmp, 'decoded.rgb')
    info = json.loads(subprocess.check_output(['node', '--input-type=module', '-e', SHARP_DECODE, path, raw], cwd=ROOT))
    with open(raw, 'rb') as f:
        data = f.read()
    assert info['channels'] == 3, info
    return Image.frombytes('RGB', (info['width'], info['height']), data), data


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def write_fixtures():
    os.makedirs(OUT, exist_ok=True)
    index = {'pillow': PIL_VERSION, 'filter': 'BILINEAR', 'cases': []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rel, size, mode in CASES:
            path = os.path.join(SHARED, rel)
            official = model_input(Image.open(path).convert('RGB'), size, mode)
            same_input, decoded = sharp_decode(path, tmp)
            same = model_input(same_input, size, mode)
            pil_file, same_file = name + '.pil.png', name + '.same.png'
            # icc_profile=None: Pillow would otherwise copy the JPEG's profile into the PNG, and
            # readers that honour it (sharp) would then not return the bytes Pillow computed.
            official.save(os.path.join(OUT, pil_file), compress_level=9, icc_profile=None)
            if same.tobytes() == official.tobytes():
                # The two decoders agreed on this JPEG: one file serves both tests.
                same_file = pil_file
            else:
                same.save(os.path.join(OUT, same_file), compress_level=9, icc_profile=None)
            index['cases'].append({
                'name': name, 'image': rel, 'size': size, 'mode': mode,
                'pilFile': pil_file, 'sameFile': same_file,
                'imageWidth': same_input.size[0], 'imageHeight': same_input.size[1],
                'sharpDecodedSha256': sha256(decoded),
                'pilSha256': sha256(official.tobytes()),
                'sameSha256': sha256(same.tobytes()),
            })
            print(name, rel, size, mode)
    with open(os.path.join(OUT, 'index.json'), 'w') as f:
        json.dump(index, f, indent=2)
        f.write('\n')


def write_raw(out_dir, size, mode, files):
    os.makedirs(out_dir, exist_ok=True)
    for path in files:
        im = model_input(Image.open(path).convert('RGB'), size, mode)
        with open(os.path.join(out_dir, os.path.basename(path) + '.rgb'), 'wb') as f:
            f.write(im.tobytes())


if __name__ == '__main__':
    if len(sys.argv) >= 2 and sys.argv[1] == '--raw':
        if len(sys.argv) < 6:
            sys.exit('usage: make-resize-fixtures.py --raw OUT_DIR SIZE stretch|letterbox FILE...')
        write_raw(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:])
    else:
        write_fixtures()

#!/usr/bin/python3
"""CMYK fixtures for test/hostile-inputs.test.ts, with Pillow as the oracle.

Run with Debian's python3 and its Pillow (apt-get install python3-pil), from the repository root:

  /usr/bin/python3 scripts/make-hostile-fixtures.py

Writes test/fixtures/hostile/: a 200x150 crop of examples/example.jpg saved as a CMYK JPEG
(cmyk.jpg) and as one with EXIF orientation 6 (cmyk-exif6.jpg, stored rotated so that it displays
upright), and for each what the official pipeline feeds the model: Pillow's
ImageOps.exif_transpose(Image.open(f)).convert('RGB'), as a PNG (<name>.pil.png).
"""
import os
from PIL import Image, ImageOps

out = 'test/fixtures/hostile'
os.makedirs(out, exist_ok=True)
im = Image.open('examples/example.jpg').convert('RGB').crop((100, 20, 300, 170))
cmyk = im.convert('CMYK')
cmyk.save(os.path.join(out, 'cmyk.jpg'), quality=90)
exif = Image.Exif()
exif[0x0112] = 6
cmyk.transpose(Image.ROTATE_90).save(os.path.join(out, 'cmyk-exif6.jpg'), quality=90, exif=exif.tobytes())
for name in ('cmyk.jpg', 'cmyk-exif6.jpg'):
    src = Image.open(os.path.join(out, name))
    ImageOps.exif_transpose(src).convert('RGB').save(os.path.join(out, name + '.pil.png'))
print('Pillow', Image.__version__ if hasattr(Image, '__version__') else '')

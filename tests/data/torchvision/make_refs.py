#!/usr/bin/python3
"""Reference input tensors from torchvision for tests/test_torchvision.c.

Run once, from the repository root, with Debian's python3-torchvision
(0.14.1; torch 1.13, Pillow 9.4):

    /usr/bin/python3 tests/data/torchvision/make_refs.py ../shared

For each photo below it writes <name>.crop64.torch.f32: the image as
torchvision's ImageNet evaluation pipeline prepares it at size 64,

    transforms.Compose([Resize(64), CenterCrop(64), ToTensor(),
                        Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])

(Resize(64) on a PIL image: shorter side to 64 with PIL's bilinear filter,
the other int(64 * long / short); CenterCrop rounds the offsets), which is
what `bottleneck-extract --resize crop --preprocess torch --size 64` claims
to feed the network. Stored as raw little-endian float32 in NHWC order
(1, 64, 64, 3), RGB, like the network's input. The photos: a portrait
(268x440), a small landscape that must be enlarged (73x50), a landscape
with an odd width (499x375).
"""
import os
import sys

import numpy as np
from PIL import Image
from torchvision import transforms

PHOTOS = ["train/cat/cat.10643.jpg", "train/dog/dog.630.jpg", "train/cat/cat.4738.jpg"]
SIZE = 64


def main():
    shared = sys.argv[1]
    out_dir = os.path.dirname(os.path.abspath(__file__))
    prepare = transforms.Compose([
        transforms.Resize(SIZE),
        transforms.CenterCrop(SIZE),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    for rel in PHOTOS:
        with Image.open(os.path.join(shared, "data/catsdogs", rel)) as im:
            t = prepare(im.convert("RGB"))  # (3, 64, 64), float32
        nhwc = np.ascontiguousarray(t.numpy().transpose(1, 2, 0)).astype("<f4")
        name = os.path.splitext(os.path.basename(rel))[0]
        path = os.path.join(out_dir, f"{name}.crop{SIZE}.torch.f32")
        nhwc.tofile(path)
        print(path, nhwc.shape, float(nhwc.min()), float(nhwc.max()))


if __name__ == "__main__":
    main()

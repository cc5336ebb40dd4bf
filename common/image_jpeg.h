/*
 * image_jpeg.h: the direct JPEG path of image.c (internal to image.c).
 *
 * Owns: decoding the plain JPEGs, the common case of a photo dataset, with
 * libjpeg-turbo itself (the decoder libvips calls for JPEG), straight into
 * the resampler. libvips' pipeline around that decoder (loader search,
 * operations, regions) was a third of a decode's CPU (docs/PERFORMANCE.md,
 * *A direct path for plain JPEGs*).
 *
 * It only ever says "decoded" or "not for me": a file it does not take, or
 * one that gives libjpeg any warning or error, goes through libvips from
 * the start, so what is refused and why, and every pixel, stay libvips'
 * (tests/test_image.c compares the two paths byte for byte).
 */
#ifndef BN_IMAGE_JPEG_H
#define BN_IMAGE_JPEG_H

#include "resample.h"

#include <stddef.h>

typedef struct image_jpeg image_jpeg;

/* Read the header of buf if it is a JPEG this path takes: 8-bit YCbCr
 * with 3 components, no Exif segment (its orientation is libvips' to read),
 * decodable without a warning so far. Returns NULL for anything else
 * (including out of memory): the caller uses libvips. *width and *height
 * get the stored size. */
image_jpeg *image_jpeg_open(const void *buf, size_t len, int *width, int *height);

/* Decode every row, top to bottom, into rs (planned for the stored size).
 * Returns 0, or -1 on any libjpeg warning or error: rs then holds part of
 * the image and must be discarded. */
int image_jpeg_rows(image_jpeg *j, bn_resampler *rs);

void image_jpeg_close(image_jpeg *j);

#endif

/*
 * image_jpeg.h: the direct JPEG path of image.c (internal to image.c).
 *
 * Owns: decoding the plain JPEGs, the common case of a photo dataset, with
 * libjpeg-turbo itself (the decoder libvips calls for JPEG), straight into
 * the resampler; and reading their Exif orientation where it is certain to
 * be the one libvips would read. libvips' pipeline around that decoder (loader search,
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
 * with 3 components, no Exif segment or one whose orientation
 * image_jpeg_exif_orientation reads, decodable without a warning so far.
 * Returns NULL for anything else (including out of memory): the caller
 * uses libvips. *width and *height get the stored size, *orientation the
 * Exif orientation (1..8; 1 without Exif), for the caller to apply. */
image_jpeg *image_jpeg_open(const void *buf, size_t len, int *width, int *height, int *orientation);

/* The orientation (1..8) that libvips (through libexif) reads from the
 * APP1 payload p of n bytes ("Exif\0\0" and a TIFF structure), or 0 when
 * this strict reader is not certain to agree: anything but a well-formed
 * header and IFD0, a pointer in IFD0 past the block, a repeated
 * Orientation tag, or one that is not a single SHORT from 1 to 8. Other
 * IFDs are never read, so their damage cannot matter. tests/test_image.c
 * checks the agreement on mutated blocks. */
int image_jpeg_exif_orientation(const unsigned char *p, size_t n);

/* Decode every row, top to bottom, into rs (planned for the stored size).
 * Returns 0, or -1 on any libjpeg warning or error: rs then holds part of
 * the image and must be discarded. */
int image_jpeg_rows(image_jpeg *j, bn_resampler *rs);

void image_jpeg_close(image_jpeg *j);

#endif

/*
 * image.h: one image file -> one network input tensor, with libvips.
 *
 * Pipeline: decode (whatever libvips reads; first frame/page only) -> EXIF
 * autorotate -> flatten alpha (background documented in image.c) -> 8-bit
 * sRGB (grey, CMYK, 16-bit, palette) -> resize -> preprocess -> float HWC.
 *
 * An image that already has the target size is not resampled at all.
 */
#ifndef BN_IMAGE_H
#define BN_IMAGE_H

#include "error.h"
#include <stddef.h>

typedef enum {
    BN_RESIZE_SQUASH, /* Keras default: whole image to size x size, aspect not kept */
    BN_RESIZE_CROP    /* torchvision: shorter side to size, then centre crop */
} bn_resize;

typedef enum {
    BN_PREPROCESS_CAFFE, /* Keras VGG16: BGR, minus (103.939, 116.779, 123.68) */
    BN_PREPROCESS_TORCH  /* RGB/255, minus (0.485,0.456,0.406), over (0.229,0.224,0.225) */
} bn_preprocess;

typedef struct {
    int size; /* output is size x size (224 by default) */
    bn_resize resize;
    bn_preprocess preprocess;
} bn_image_opts;

typedef struct {
    int width, height; /* of the decoded image, after EXIF orientation */
} bn_image_info;

/* Start libvips and set its safety limits (once per process). */
int bn_image_init(const char *argv0, bn_error *err);
void bn_image_shutdown(void);

/* Decode an encoded image held in memory. name is used in error messages only.
 * out receives size*size*3 floats, HWC (y, x, channel), channels in the order
 * the preprocess mode says. */
int bn_image_decode(const void *buf, size_t len, const char *name, const bn_image_opts *opts,
                    float *out, bn_image_info *info, bn_error *err);

/* Read the header only (no pixel decode): dimensions after orientation. */
int bn_image_probe(const void *buf, size_t len, const char *name, bn_image_info *info,
                   bn_error *err);

/* Parse/format option names: "squash"/"crop", "caffe"/"torch". */
int bn_resize_parse(const char *s, bn_resize *out);
int bn_preprocess_parse(const char *s, bn_preprocess *out);
const char *bn_resize_name(bn_resize r);
const char *bn_preprocess_name(bn_preprocess p);

#endif

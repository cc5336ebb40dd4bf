/*
 * image.h: one image file -> one network input tensor, with libvips.
 *
 * Pipeline: decode (whatever libvips reads; first frame/page only) -> EXIF
 * autorotate -> flatten alpha (background documented in image.c) -> 8-bit
 * sRGB (grey, CMYK, 16-bit, palette) -> resize -> preprocess -> float HWC.
 *
 * An image that already has the target size is not resampled at all.
 * Plain JPEGs are decoded by libjpeg-turbo directly (image_jpeg.h), to the
 * same pixels as through libvips.
 */
#ifndef BN_IMAGE_H
#define BN_IMAGE_H

#include "error.h"
#include <stddef.h>
#include <stdint.h>

/* Default decompression-bomb limit: an image whose header declares more
 * pixels (width * height, before any decoding) is refused. The value is
 * PIL's (2 * Image.MAX_IMAGE_PIXELS), the point where PIL raises
 * DecompressionBombError: about 13400 x 13400, ~537 MB as 8-bit RGB. */
#define BN_IMAGE_MAX_PIXELS 178956970ULL

typedef enum {
    BN_RESIZE_SQUASH, /* Keras default: whole image to size x size, aspect not kept */
    BN_RESIZE_CROP    /* torchvision: shorter side to size, then centre crop */
} bn_resize;

typedef enum {
    BN_PREPROCESS_CAFFE, /* Keras VGG16: BGR, minus (103.939, 116.779, 123.68) */
    BN_PREPROCESS_TORCH, /* RGB/255, minus (0.485,0.456,0.406), over (0.229,0.224,0.225) */
    BN_PREPROCESS_CUSTOM /* the fields below: what an ONNX model states or the flags say */
} bn_preprocess;

typedef struct {
    int size; /* output is size x size (224 by default) */
    bn_resize resize;
    bn_preprocess preprocess;
    /* BN_PREPROCESS_CUSTOM only: channel c of the output is
     * (v - mean[c]) / std[c], v the pixel's value in 0-255 (range255) or
     * 0-1, channels in RGB or (bgr) BGR order; mean and std in that order. */
    int bgr, range255;
    float mean[3], std[3];
} bn_image_opts;

typedef struct {
    int width, height; /* of the decoded image, after EXIF orientation */
    int direct_jpeg;   /* 1: decoded by libjpeg-turbo directly (image_jpeg.h), 0: by libvips */
} bn_image_info;

/* Start libvips and set its safety limits (once per process): operation
 * cache off, one libvips worker thread per pipeline, untrusted loaders
 * (ImageMagick, PDF, SVG, JPEG-XL) blocked, libvips warnings silenced (a
 * decode that fails says why through bn_error instead). */
int bn_image_init(const char *argv0, bn_error *err);
/* Shut libvips down; after this no bn_image_* call may be made. */
void bn_image_shutdown(void);

/* Worker threads libvips may use inside one decode (default 1; values < 1
 * mean 1). A program that decodes several images in parallel keeps this at
 * 1; one that decodes one image at a time may raise it. Call before decoding. */
void bn_image_set_threads(int n);

/* Let libvips' untrusted loaders run (default: blocked). They read formats
 * such as BMP, ICO and PSD through ImageMagick, a much larger attack surface
 * than the JPEG/PNG/WebP/TIFF/GIF/HEIF decoders. Call before decoding. */
void bn_image_allow_untrusted(int allow);

/* Decode plain JPEGs (8-bit YCbCr, no Exif or one whose orientation is
 * certain) with libjpeg-turbo directly, the same pixels at a quarter to a
 * third less CPU than libvips (default on); off sends every file through
 * libvips. For tests and benchmarks that compare the two; not synchronised
 * with concurrent decodes. */
void bn_image_set_direct_jpeg(int on);

/* Change the decompression-bomb limit (0 restores BN_IMAGE_MAX_PIXELS).
 * Call before decoding; not synchronised with concurrent decodes. */
void bn_image_set_max_pixels(uint64_t max_pixels);

/* Decode an encoded image held in memory. name is used in error messages only.
 * out receives size*size*3 floats, HWC (y, x, channel), channels in the order
 * the preprocess mode says. info (may be NULL) gets the decoded image's size.
 * Fails with BN_EDECODE and "<name>: <reason>" for an empty, truncated,
 * corrupt or unknown file, or one declaring more than the pixel limit (the
 * header is checked before any pixel is decoded); BN_EINVAL for bad opts.
 * Thread-safe once bn_image_init has run (libvips' error text is global, so
 * two decodes failing at the same instant may see each other's reason). */
int bn_image_decode(const void *buf, size_t len, const char *name, const bn_image_opts *opts,
                    float *out, bn_image_info *info, bn_error *err);

/* Read the header only (no pixel decode): dimensions after orientation.
 * Does not apply the pixel limit (nothing is decoded). */
int bn_image_probe(const void *buf, size_t len, const char *name, bn_image_info *info,
                   bn_error *err);

/* A small preview for people (the report's galleries): the image decoded
 * with shrink-on-load, oriented, in sRGB, fitted inside size x size (aspect
 * kept), encoded as a baseline JPEG (quality 80, metadata stripped) into
 * *jpeg (g_malloc'ed: release with bn_image_free_buffer). Same pixel limit and
 * error messages as bn_image_decode. */
int bn_image_thumbnail_jpeg(const void *buf, size_t len, const char *name, int size, void **jpeg,
                            size_t *jpeg_len, bn_error *err);
void bn_image_free_buffer(void *p);

/* Parse/format option names: "squash"/"crop", "caffe"/"torch" ("custom"
 * is named but not parsed: its values come from the fields).
 * parse returns 0, or BN_EINVAL for an unknown name (out untouched). */
int bn_image_resize_parse(const char *s, bn_resize *out);
int bn_image_preprocess_parse(const char *s, bn_preprocess *out);
const char *bn_image_resize_name(bn_resize r);
const char *bn_image_preprocess_name(bn_preprocess p);

/* The preprocessing of opts in one line for a feature set's record:
 * "caffe", "torch", or e.g. "bgr/0-255/mean=104,117,123/std=1,1,1". */
void bn_image_preprocess_describe(const bn_image_opts *opts, char *out, size_t n);
/* The reverse: sets opts' preprocess fields from such a line; BN_EINVAL if
 * it is not one (opts untouched). */
int bn_image_preprocess_from_description(const char *s, bn_image_opts *opts);

#endif

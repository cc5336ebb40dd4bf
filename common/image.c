/*
 * image.c: one encoded image (bytes in memory) -> one network input tensor,
 * with libvips. Owns libvips start-up and its safety limits, the decode
 * pipeline, the resamplers and the two preprocessing conventions.
 *
 * The pipeline, and why each step is what it is:
 *
 *   load      vips_image_new_from_buffer, sequential access, fail_on=error:
 *             a truncated or corrupt file is a failure with libvips' reason,
 *             never a half-grey picture. First page/frame only (libvips'
 *             default for GIF, TIFF, WebP, HEIF). Plain JPEGs (8-bit YCbCr,
 *             no Exif, or one whose orientation is certain) skip libvips:
 *             image_jpeg.c decodes them with the same libjpeg-turbo,
 *             straight into the resize, and hands anything libjpeg warns
 *             about back to this pipeline.
 *   limit     the header's width * height is checked against the pixel limit
 *             before a single pixel is decoded (decompression bombs).
 *   alpha     dropped, not composited: this is what PIL's convert("RGB")
 *             does, and Keras' load_img and torchvision's ImageFolder both
 *             call it, so transparent images give the pixels (and features)
 *             those frameworks give. Equivalently, "flattened" onto whatever
 *             colour the file stores under transparent pixels (black for most
 *             encoders).
 *   colour    any interpretation (grey, 16-bit, CMYK, LAB, ...) to 8-bit sRGB
 *             with vips_colourspace. CMYK goes through the embedded ICC
 *             profile, or libvips' built-in CMYK profile when there is none
 *             (PIL uses a naive formula instead; colour-managed is what the
 *             picture really looks like). RGB files' ICC profiles are ignored,
 *             as PIL ignores them, so RGB pixels match the frameworks.
 *   resize    squash (Keras): each axis to size independently; crop
 *             (torchvision): shorter side to size, longer side to
 *             int(size * long / short), centre crop with Python's round().
 *             resample.c does it exactly as PIL's BILINEAR resize (the
 *             displayed horizontal axis first), on rows pulled from libvips
 *             strip by strip as the loader decodes them; only the crop
 *             window is computed. An axis already at its target length is
 *             not touched, so a size x size input keeps its exact pixels.
 *             (libvips' own resamplers are both slower here, through float
 *             images, and not PIL's: vips_resize's enlarging step is not
 *             centre-aligned.)
 *   orient    EXIF orientation is applied after the resize, to the small
 *             output, because rotating needs random access and the loader
 *             is sequential. Resizing then rotating equals rotating then
 *             resizing: the passes run in the displayed image's order and
 *             the crop window is mapped back through the orientation.
 *   tensor    float HWC: caffe = BGR minus the ImageNet means (Keras VGG16),
 *             torch = RGB / 255, minus mean, over std (torchvision), both in
 *             float32 arithmetic like the frameworks.
 *
 * Memory stays bounded: libvips decodes a strip of rows at a time (at most
 * IMAGE_STRIP_BYTES), the resampler keeps its sums for the output rows, and
 * only the size x size output is held whole.
 */
#include "image.h"
#include "image_jpeg.h"
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

/* Rows libvips decodes per request: a few MB, whatever the width. */
#define IMAGE_STRIP_BYTES ((size_t)4 << 20)
#define IMAGE_STRIP_ROWS 64

/* Largest accepted output side: far above any network input, small enough
 * that size * size * 3 never overflows an int. */
#define IMAGE_MAX_SIZE 16384

static uint64_t image_max_pixels = BN_IMAGE_MAX_PIXELS;

/* libvips reports loader warnings ("Corrupt JPEG data: 2 extraneous bytes")
 * through GLib's log; library code never prints, and a warning that matters
 * becomes an error under fail_on=error anyway. */
static void image_log_discard(const gchar *domain, GLogLevelFlags level, const gchar *message,
                              gpointer data) {
    (void)domain;
    (void)level;
    (void)message;
    (void)data;
}

int bn_image_init(const char *argv0, bn_error *err) {
    if (VIPS_INIT(argv0 ? argv0 : "bottleneck")) {
        char *why = vips_error_buffer_copy();
        bn_fail(err, BN_EIO, "libvips: cannot start: %s", why && *why ? why : "unknown reason");
        g_free(why);
        return BN_EIO;
    }
    /* The operation cache keeps recent images and their source buffers
     * alive; we never repeat an operation, so it would only hold memory. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_concurrency_set(1);
#if VIPS_MAJOR_VERSION > 8 || (VIPS_MAJOR_VERSION == 8 && VIPS_MINOR_VERSION >= 13)
    /* ImageMagick, PDF, SVG and JPEG-XL loaders are marked untrusted by
     * libvips: not for files nobody has looked at. */
    vips_block_untrusted_set(TRUE);
#endif
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
                      image_log_discard, NULL);
    return BN_OK;
}

void bn_image_shutdown(void) {
    vips_shutdown();
}

void bn_image_set_threads(int n) {
    vips_concurrency_set(n < 1 ? 1 : n);
}

void bn_image_allow_untrusted(int allow) {
#if VIPS_MAJOR_VERSION > 8 || (VIPS_MAJOR_VERSION == 8 && VIPS_MINOR_VERSION >= 13)
    vips_block_untrusted_set(allow ? FALSE : TRUE);
#else
    (void)allow;
#endif
}

void bn_image_set_max_pixels(uint64_t max_pixels) {
    image_max_pixels = max_pixels ? max_pixels : BN_IMAGE_MAX_PIXELS;
}

/* Fail with libvips' pending error text as the reason, folded to one line
 * ("VipsJpeg: Premature end of input file; VipsImage: ..."), and clear it. */
static int image_vips_fail(bn_error *err, const char *name, const char *what) {
    char *text = vips_error_buffer_copy();
    char reason[768];
    size_t n = 0;
    const char *p = text ? text : "";
    while (*p && n + 3 < sizeof reason) {
        if (*p == '\n' || *p == '\r') {
            while (*p == '\n' || *p == '\r')
                p++;
            if (*p && n > 0) {
                reason[n++] = ';';
                reason[n++] = ' ';
            }
            continue;
        }
        reason[n++] = *p++;
    }
    reason[n] = '\0';
    g_free(text);
    if (n == 0)
        return bn_fail(err, BN_EDECODE, "%s: %s", name, what);
    if (strstr(reason, "is blocked"))
        return bn_fail(err, BN_EDECODE,
                       "%s: only an untrusted libvips loader (ImageMagick, PDF, SVG, JPEG-XL) "
                       "reads this file, and those are disabled (%s)",
                       name, reason);
    return bn_fail(err, BN_EDECODE, "%s: %s", name, reason);
}

/* Open the header: nothing is decoded yet. The image refers to buf, which
 * must outlive it. */
static VipsImage *image_open(const void *buf, size_t len, const char *name, bn_error *err) {
    /* libvips' error buffer is the process's, and a decode that succeeds
     * with warnings leaves them there: without this, the next failure's
     * reason would start with another file's warnings. (Another thread's
     * failure being read at this moment then loses its text and says only
     * "decoding failed": rare, and never wrong.) */
    vips_error_clear();
    if (!buf || len == 0) {
        bn_fail(err, BN_EDECODE, "%s: empty file (0 bytes)", name);
        return NULL;
    }
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                               "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!im)
        image_vips_fail(err, name, "not an image libvips can read");
    return im;
}

/* EXIF orientation 1..8 (1 = as stored, 5..8 swap width and height). */
static int image_orientation(VipsImage *im) {
    int o = vips_image_get_orientation(im);
    return o >= 1 && o <= 8 ? o : 1;
}

/* What a caller learns of a stored w x h image of orientation o: its size
 * as displayed. */
static bn_image_info image_info(int w, int h, int o, int direct_jpeg) {
    return (bn_image_info){
        .width = o >= 5 ? h : w, .height = o >= 5 ? w : h, .direct_jpeg = direct_jpeg};
}

int bn_image_probe(const void *buf, size_t len, const char *name, bn_image_info *info,
                   bn_error *err) {
    if (!name)
        name = "(image)";
    VipsImage *im = image_open(buf, len, name, err);
    if (!im)
        return BN_EDECODE;
    if (info)
        *info = image_info(im->Xsize, im->Ysize, image_orientation(im), 0);
    g_object_unref(im);
    return BN_OK;
}

/* in -> 8-bit sRGB with exactly 3 bands: alpha dropped (see the top of the
 * file), then vips_colourspace from whatever the file holds. */
static int image_to_srgb(VipsImage *in, VipsImage **out, const char *name, bn_error *err) {
    VipsImage *t[4] = {NULL, NULL, NULL, NULL};
    VipsImage *x = in;
    int rc = BN_OK;

    int cmyk = vips_image_guess_interpretation(x) == VIPS_INTERPRETATION_CMYK;
    int colour_bands = cmyk ? 4 : x->Bands >= 3 ? 3 : 1;
    if (x->Bands < colour_bands) {
        rc = bn_fail(err, BN_EDECODE, "%s: CMYK image with only %d bands", name, x->Bands);
        goto done;
    }
    if (x->Bands > colour_bands) {
        if (vips_extract_band(x, &t[0], 0, "n", colour_bands, NULL))
            goto vips_failed;
        x = t[0];
    }

    /* Loaders label their output, but not always with a colour space
     * (MULTIBAND, FOURIER, ...): relabel those by band count and format. */
    VipsInterpretation interp = vips_image_guess_interpretation(x);
    switch (interp) {
    case VIPS_INTERPRETATION_B_W:
    case VIPS_INTERPRETATION_GREY16:
    case VIPS_INTERPRETATION_sRGB:
    case VIPS_INTERPRETATION_RGB16:
    case VIPS_INTERPRETATION_scRGB:
    case VIPS_INTERPRETATION_CMYK:
    case VIPS_INTERPRETATION_LAB:
    case VIPS_INTERPRETATION_LABS:
    case VIPS_INTERPRETATION_LCH:
    case VIPS_INTERPRETATION_CMC:
    case VIPS_INTERPRETATION_XYZ:
    case VIPS_INTERPRETATION_YXY:
    case VIPS_INTERPRETATION_HSV: break;
    default:
        if (colour_bands == 1)
            interp = x->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_GREY16
                                                      : VIPS_INTERPRETATION_B_W;
        else
            interp = x->BandFmt == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_RGB16
                                                      : VIPS_INTERPRETATION_sRGB;
        break;
    }
    /* 16-bit data labelled as 8-bit would be clipped, not scaled. */
    if (x->BandFmt == VIPS_FORMAT_USHORT && interp == VIPS_INTERPRETATION_sRGB)
        interp = VIPS_INTERPRETATION_RGB16;
    if (x->BandFmt == VIPS_FORMAT_USHORT && interp == VIPS_INTERPRETATION_B_W)
        interp = VIPS_INTERPRETATION_GREY16;
    if (interp != x->Type) {
        if (vips_copy(x, &t[1], "interpretation", interp, NULL))
            goto vips_failed;
        x = t[1];
    }
    if (vips_colourspace(x, &t[2], VIPS_INTERPRETATION_sRGB, NULL))
        goto vips_failed;
    x = t[2];
    if (x->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast(x, &t[3], VIPS_FORMAT_UCHAR, NULL))
            goto vips_failed;
        x = t[3];
    }
    if (x->Bands != 3) {
        rc = bn_fail(err, BN_EDECODE, "%s: cannot convert a %d-band image to RGB", name, x->Bands);
        goto done;
    }
    *out = x;
    g_object_ref(x);
    goto done;

vips_failed:
    rc = image_vips_fail(err, name, "colour conversion failed");
done:
    for (int i = 0; i < 4; i++)
        if (t[i])
            g_object_unref(t[i]);
    return rc;
}

/* The crop rectangle (left, top, size x size) chosen in the displayed
 * (oriented) image of ow x oh pixels, mapped to the stored image's
 * coordinates for EXIF orientation o. */
static void image_unorient_rect(int o, int ow, int oh, int left, int top, int size, int *x,
                                int *y) {
    int sw = o >= 5 ? oh : ow, sh = o >= 5 ? ow : oh; /* stored width, height */
    switch (o) {
    case 2: *x = sw - left - size, *y = top; break;             /* mirrored */
    case 3: *x = sw - left - size, *y = sh - top - size; break; /* rotated 180 */
    case 4: *x = left, *y = sh - top - size; break;             /* flipped */
    case 5: *x = top, *y = left; break;                         /* transposed */
    case 6: *x = top, *y = sh - left - size; break;             /* rotated 90 cw */
    case 7: *x = sw - top - size, *y = sh - left - size; break; /* transversed */
    case 8: *x = sw - top - size, *y = left; break;             /* rotated 270 cw */
    default: *x = left, *y = top; break;
    }
}

/* HWC uint8 RGB -> HWC float, n pixels. Float32 arithmetic, operation for
 * operation as Keras' preprocess_input and torchvision's ToTensor + Normalize
 * do it, so equal pixels give bitwise equal tensors. */
static void image_preprocess(const unsigned char *rgb, size_t n, const bn_image_opts *o,
                             float *out) {
    bn_preprocess p = o->preprocess;
    if (p == BN_PREPROCESS_CUSTOM) {
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) {
                float v = (float)rgb[i * 3 + (o->bgr ? 2 - c : c)];
                v = o->range255 ? v : v / 255.0f;
                out[i * 3 + c] = (v - o->mean[c]) / o->std[c];
            }
    } else if (p == BN_PREPROCESS_CAFFE) {
        for (size_t i = 0; i < n; i++) {
            const unsigned char *px = rgb + i * 3;
            out[i * 3 + 0] = (float)px[2] - 103.939f;
            out[i * 3 + 1] = (float)px[1] - 116.779f;
            out[i * 3 + 2] = (float)px[0] - 123.68f;
        }
    } else {
        const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                out[i * 3 + c] = ((float)rgb[i * 3 + c] / 255.0f - mean[c]) / std[c];
    }
}

/* in (size x size x 3, as stored) -> out as displayed for EXIF orientation
 * o: displayed pixel (dx, dy) is stored pixel (sx, sy). */
static void image_orient(const unsigned char *in, int size, int o, unsigned char *out) {
    const int m = size - 1;
    for (int dy = 0; dy < size; dy++)
        for (int dx = 0; dx < size; dx++) {
            int sx, sy;
            switch (o) {
            case 2: sx = m - dx, sy = dy; break;
            case 3: sx = m - dx, sy = m - dy; break;
            case 4: sx = dx, sy = m - dy; break;
            case 5: sx = dy, sy = dx; break;
            case 6: sx = dy, sy = m - dx; break;
            case 7: sx = m - dy, sy = m - dx; break;
            case 8: sx = m - dy, sy = dx; break;
            default: sx = dx, sy = dy; break;
            }
            memcpy(out + ((size_t)dy * size + dx) * 3, in + ((size_t)sy * size + sx) * 3, 3);
        }
}

/* Pull every row of x (8-bit) from libvips, top to bottom, a strip at a time,
 * into the resampler. All rows are decoded, even those the crop window does
 * not need: a file corrupt near its end fails as it would in PIL. Returns 0,
 * or -1 with the libvips error set. */
static int image_stream_rows(VipsImage *x, bn_resampler *rs) {
    VipsRegion *region = vips_region_new(x);
    if (!region)
        return -1;
    size_t line = VIPS_IMAGE_SIZEOF_LINE(x);
    int strip = line ? (int)(IMAGE_STRIP_BYTES / line) : IMAGE_STRIP_ROWS;
    strip = strip < 1 ? 1 : strip > IMAGE_STRIP_ROWS ? IMAGE_STRIP_ROWS : strip;
    for (int y = 0; y < x->Ysize; y += strip) {
        VipsRect r = {0, y, x->Xsize, x->Ysize - y < strip ? x->Ysize - y : strip};
        if (vips_region_prepare(region, &r)) {
            g_object_unref(region);
            return -1;
        }
        for (int i = 0; i < r.height; i++)
            bn_resampler_push(rs, (const uint8_t *)VIPS_REGION_ADDR(region, 0, y + i));
    }
    g_object_unref(region);
    return 0;
}

/* The decompression-bomb and side limits, on the stored size (from the
 * header, before any pixel is decoded). */
static int image_check_size(int w, int h, const char *name, bn_error *err) {
    if ((uint64_t)w * (uint64_t)h > image_max_pixels)
        return bn_fail(err, BN_EDECODE,
                       "%s: %dx%d image has more than %llu pixels (decompression bomb limit)", name,
                       w, h, (unsigned long long)image_max_pixels);
    if (w > BN_RESAMPLE_MAX_SIDE || h > BN_RESAMPLE_MAX_SIDE)
        return bn_fail(err, BN_EDECODE, "%s: %dx%d image: sides longer than %d pixels are refused",
                       name, w, h, BN_RESAMPLE_MAX_SIDE);
    return BN_OK;
}

/* The resampler's plan for a stored w x h image of orientation o: target
 * lengths of the stored (not yet oriented) axes, and the window of that
 * target the network gets. */
static int image_plan(int w, int h, int o, const bn_image_opts *opts, const char *name,
                      bn_resample_plan *plan, bn_error *err) {
    const int size = opts->size;
    int tw = size, th = size, left = 0, top = 0;
    if (opts->resize == BN_RESIZE_CROP) {
        int shorter = w < h ? w : h, longer = w < h ? h : w;
        double along = (double)size * (double)longer / (double)shorter;
        if (along > BN_RESAMPLE_MAX_SIDE)
            return bn_fail(err, BN_EDECODE,
                           "%s: %dx%d image is too elongated to scale its shorter side to %d", name,
                           w, h, size);
        if (w < h)
            th = (int)along;
        else
            tw = (int)along;
        int ow = o >= 5 ? th : tw, oh = o >= 5 ? tw : th; /* displayed */
        /* torchvision's center_crop: int(round((h - size) / 2.0)), round
         * half to even like rint() in the default rounding mode. */
        image_unorient_rect(o, ow, oh, (int)rint((ow - size) / 2.0), (int)rint((oh - size) / 2.0),
                            size, &left, &top);
    }
    /* PIL resizes the displayed image horizontally first; for orientations
     * that swap the axes that is the stored vertical axis. */
    *plan = (bn_resample_plan){w, h, 3, tw, th, left, top, size, size, o < 5, BN_RESAMPLE_AUTO};
    return BN_OK;
}

/* The resampler holds every row: its output, oriented and preprocessed,
 * into out. */
static int image_output(bn_resampler *rs, int o, const bn_image_opts *opts, const char *name,
                        float *out, bn_error *err) {
    const int size = opts->size;
    size_t n = (size_t)size * size;
    unsigned char *pixels = malloc(n * 3 * (o != 1 ? 2 : 1));
    if (!pixels)
        return bn_fail(err, BN_ENOMEM, "%s: out of memory for a %dx%d image", name, size, size);
    bn_resampler_finish(rs, pixels);
    if (o != 1)
        image_orient(pixels, size, o, pixels + n * 3);
    image_preprocess(pixels + (o != 1 ? n * 3 : 0), n, opts, out);
    free(pixels);
    return BN_OK;
}

static int image_direct_jpeg = 1;

void bn_image_set_direct_jpeg(int on) {
    image_direct_jpeg = on != 0;
}

/* The direct path (image_jpeg.c) for a plain JPEG: BN_OK or one of our own
 * errors (limits), or IMAGE_DECLINED when the file is not for it, libjpeg
 * had anything to say or an allocation of the path failed, and libvips must
 * decode it from the start (the same pixels: tests/test_oom.c checks it). */
#define IMAGE_DECLINED (-1)
static int image_decode_jpeg(const void *buf, size_t len, const char *name,
                             const bn_image_opts *opts, float *out, bn_image_info *info,
                             bn_error *err) {
    int w, h, o, rc;
    image_jpeg *j = image_jpeg_open(buf, len, &w, &h, &o);
    if (!j)
        return IMAGE_DECLINED;
    bn_resample_plan plan;
    bn_resampler *rs = NULL;
    if ((rc = image_check_size(w, h, name, err)) ||
        (rc = image_plan(w, h, o, opts, name, &plan, err)))
        goto done;
    if (bn_resampler_new(&plan, name, &rs, NULL) || image_jpeg_rows(j, rs)) {
        rc = IMAGE_DECLINED;
        goto done;
    }
    if (!(rc = image_output(rs, o, opts, name, out, err)) && info)
        *info = image_info(w, h, o, 1);
done:
    bn_resampler_free(rs);
    image_jpeg_close(j);
    return rc;
}

int bn_image_decode(const void *buf, size_t len, const char *name, const bn_image_opts *opts,
                    float *out, bn_image_info *info, bn_error *err) {
    VipsImage *im = NULL, *rgb = NULL;
    bn_resampler *rs = NULL;
    int rc = BN_OK;

    if (!name)
        name = "(image)";
    if (!opts || !out)
        return bn_fail(err, BN_EINVAL, "%s: bn_image_decode: no options or output", name);
    if (opts->size < 1 || opts->size > IMAGE_MAX_SIZE)
        return bn_fail(err, BN_EINVAL, "%s: image size %d out of range 1..%d", name, opts->size,
                       IMAGE_MAX_SIZE);
    if (opts->resize != BN_RESIZE_SQUASH && opts->resize != BN_RESIZE_CROP)
        return bn_fail(err, BN_EINVAL, "%s: unknown resize mode %d", name, (int)opts->resize);
    if (opts->preprocess == BN_PREPROCESS_CUSTOM)
        for (int c = 0; c < 3; c++)
            if (!(opts->std[c] != 0.0f) || !isfinite(opts->std[c]) || !isfinite(opts->mean[c]))
                return bn_fail(err, BN_EINVAL, "%s: preprocessing std must be non-zero and finite",
                               name);
    if (opts->preprocess != BN_PREPROCESS_CAFFE && opts->preprocess != BN_PREPROCESS_TORCH &&
        opts->preprocess != BN_PREPROCESS_CUSTOM)
        return bn_fail(err, BN_EINVAL, "%s: unknown preprocess mode %d", name,
                       (int)opts->preprocess);

    if (image_direct_jpeg &&
        (rc = image_decode_jpeg(buf, len, name, opts, out, info, err)) != IMAGE_DECLINED)
        return rc;

    if (!(im = image_open(buf, len, name, err)))
        return BN_EDECODE;
    const int w = im->Xsize, h = im->Ysize, o = image_orientation(im);
    if ((rc = image_check_size(w, h, name, err)))
        goto done;
    if (info)
        *info = image_info(w, h, o, 0);

    bn_resample_plan plan;
    if ((rc = image_to_srgb(im, &rgb, name, err)) ||
        (rc = image_plan(w, h, o, opts, name, &plan, err)) ||
        (rc = bn_resampler_new(&plan, name, &rs, err)))
        goto done;
    if (image_stream_rows(rgb, rs)) {
        rc = image_vips_fail(err, name, "decoding failed");
        goto done;
    }
    rc = image_output(rs, o, opts, name, out, err);
done:
    bn_resampler_free(rs);
    if (rgb)
        g_object_unref(rgb);
    g_object_unref(im);
    return rc;
}

int bn_image_thumbnail_jpeg(const void *buf, size_t len, const char *name, int size, void **jpeg,
                            size_t *jpeg_len, bn_error *err) {
    *jpeg = NULL;
    *jpeg_len = 0;
    if (!name)
        name = "(image)";
    if (size < 1 || size > IMAGE_MAX_SIZE)
        return bn_fail(err, BN_EINVAL, "%s: thumbnail size %d out of range 1..%d", name, size,
                       IMAGE_MAX_SIZE);
    /* The header first: the pixel limit holds before anything is decoded. */
    VipsImage *im = image_open(buf, len, name, err);
    if (!im)
        return BN_EDECODE;
    uint64_t pixels = (uint64_t)im->Xsize * (uint64_t)im->Ysize;
    g_object_unref(im);
    if (pixels > image_max_pixels)
        return bn_fail(err, BN_EDECODE,
                       "%s: image has %llu pixels, more than %llu (decompression bomb limit)", name,
                       (unsigned long long)pixels, (unsigned long long)image_max_pixels);
    VipsImage *t = NULL, *rgb = NULL;
    /* vips_thumbnail_buffer shrinks while loading (JPEG: by 2, 4, 8 in the
     * decoder) and applies the EXIF orientation. */
    if (vips_thumbnail_buffer((void *)buf, len, &t, size, "height", size, NULL))
        return image_vips_fail(err, name, "decoding failed");
    int rc = image_to_srgb(t, &rgb, name, err);
    g_object_unref(t);
    if (rc)
        return rc;
    if (vips_jpegsave_buffer(rgb, jpeg, jpeg_len, "Q", 80, "strip", TRUE, NULL))
        rc = image_vips_fail(err, name, "JPEG encoding failed");
    g_object_unref(rgb);
    return rc;
}

void bn_image_free_buffer(void *p) {
    g_free(p);
}

int bn_image_resize_parse(const char *s, bn_resize *out) {
    if (s && strcmp(s, "squash") == 0)
        *out = BN_RESIZE_SQUASH;
    else if (s && strcmp(s, "crop") == 0)
        *out = BN_RESIZE_CROP;
    else
        return BN_EINVAL;
    return BN_OK;
}

int bn_image_preprocess_parse(const char *s, bn_preprocess *out) {
    if (s && strcmp(s, "caffe") == 0)
        *out = BN_PREPROCESS_CAFFE;
    else if (s && strcmp(s, "torch") == 0)
        *out = BN_PREPROCESS_TORCH;
    else
        return BN_EINVAL;
    return BN_OK;
}

const char *bn_image_resize_name(bn_resize r) {
    return r == BN_RESIZE_CROP ? "crop" : "squash";
}

const char *bn_image_preprocess_name(bn_preprocess p) {
    return p == BN_PREPROCESS_TORCH ? "torch" : p == BN_PREPROCESS_CUSTOM ? "custom" : "caffe";
}

int bn_image_preprocess_from_description(const char *s, bn_image_opts *opts) {
    bn_image_opts o = *opts;
    if (s && bn_image_preprocess_parse(s, &o.preprocess) == BN_OK) {
        *opts = o;
        return BN_OK;
    }
    char order[4], range[6];
    if (!s ||
        sscanf(s, "%3[rgb]/%5[-0-9]/mean=%f,%f,%f/std=%f,%f,%f", order, range, &o.mean[0],
               &o.mean[1], &o.mean[2], &o.std[0], &o.std[1], &o.std[2]) != 8 ||
        (strcmp(order, "rgb") && strcmp(order, "bgr")) ||
        (strcmp(range, "0-255") && strcmp(range, "0-1")))
        return BN_EINVAL;
    o.preprocess = BN_PREPROCESS_CUSTOM;
    o.bgr = !strcmp(order, "bgr");
    o.range255 = !strcmp(range, "0-255");
    *opts = o;
    return BN_OK;
}

void bn_image_preprocess_describe(const bn_image_opts *o, char *out, size_t n) {
    if (o->preprocess != BN_PREPROCESS_CUSTOM) {
        snprintf(out, n, "%s", bn_image_preprocess_name(o->preprocess));
        return;
    }
    snprintf(out, n, "%s/%s/mean=%g,%g,%g/std=%g,%g,%g", o->bgr ? "bgr" : "rgb",
             o->range255 ? "0-255" : "0-1", o->mean[0], o->mean[1], o->mean[2], o->std[0],
             o->std[1], o->std[2]);
}

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
 *             default for GIF, TIFF, WebP, HEIF).
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
 *             Each axis is resampled the way PIL's BILINEAR resize does it,
 *             the displayed horizontal axis first (image_resize_axis); an
 *             axis already at its target length is not touched, so a
 *             size x size input keeps its exact pixels.
 *   orient    EXIF orientation is applied after the resize, on the small
 *             image held in memory, because rotating needs random access and
 *             the loader is sequential. Resizing then rotating equals
 *             rotating then resizing: the squash target is square and the
 *             crop rectangle is mapped back through the orientation.
 *   tensor    float HWC: caffe = BGR minus the ImageNet means (Keras VGG16),
 *             torch = RGB / 255, minus mean, over std (torchvision), both in
 *             float32 arithmetic like the frameworks.
 *
 * Memory stays bounded: libvips evaluates the chain lazily, strip by strip,
 * and only the final size x size image (or the resized one, for oriented
 * files) is held whole, plus the output of the first resize pass when the
 * second one shrinks a lot (at most IMAGE_MAX_INTERMEDIATE).
 */
#include "image.h"

#include <math.h>
#include <string.h>
#include <vips/vips.h>

/* Largest image held in memory between the two resize passes (bytes). */
#define IMAGE_MAX_INTERMEDIATE ((uint64_t)64 << 20)

/* Largest shrink factor handed to vips_reduce in one go (its mask grows with
 * the factor). Beyond it an integer box shrink comes first; only extreme
 * inputs (a 30000 pixel wide strip to 224) get there. */
#define IMAGE_MAX_REDUCE 100.0

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

int bn_image_probe(const void *buf, size_t len, const char *name, bn_image_info *info,
                   bn_error *err) {
    if (!name)
        name = "(image)";
    VipsImage *im = image_open(buf, len, name, err);
    if (!im)
        return BN_EDECODE;
    int swap = image_orientation(im) >= 5;
    if (info) {
        info->width = swap ? im->Ysize : im->Xsize;
        info->height = swap ? im->Xsize : im->Ysize;
    }
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

/* Resample one axis of in (8-bit) to n pixels the way PIL's BILINEAR resize
 * does, which is what Keras (load_img) and torchvision (Resize on PIL
 * images) use:
 * - shrinking convolves with a triangle filter stretched by the shrink factor
 *   (antialiased): vips_reduce with the linear kernel is that filter;
 * - enlarging interpolates linearly between the two nearest pixel centres,
 *   centres aligned (output x samples input (x + 0.5) / scale - 0.5), edge
 *   pixels repeated: vips_affine with the bilinear interpolator and those
 *   offsets;
 * - both in float, rounded half up to 8 bits after the pass, as PIL rounds
 *   between its two passes. On 8-bit input libvips uses 12-bit fixed-point
 *   weights that do not sum to one: shrinking by 20 dims the image by ~1.5%.
 * Measured on the 6 photos of ../shared/reference (224x224 from 150x149 to
 * 499x375): mean abs difference to PIL 0.026 grey levels, at most 2 inside
 * the image and 6 on its outermost rows and columns, where PIL renormalises
 * the clipped filter and libvips repeats the edge pixels instead. vips_resize
 * itself is much further off (linear kernel: mean 1.7, max 91; its other
 * kernels are worse): its enlarging step is not centre-aligned.
 * A box shrink comes first only for shrink factors above IMAGE_MAX_REDUCE.
 * Returns a new reference, or NULL with the libvips error set. */
static VipsImage *image_resize_axis(VipsImage *in, int horizontal, int n) {
    int from = horizontal ? in->Xsize : in->Ysize;
    VipsImage *t[5] = {NULL, NULL, NULL, NULL, NULL}, *x = in, *out = NULL;

    if (n == from) {
        g_object_ref(in);
        return in;
    }
    if (vips_cast(x, &t[0], VIPS_FORMAT_FLOAT, NULL))
        goto done;
    x = t[0];
    if (n < from) {
        double shrink = (double)from / n;
        if (shrink > IMAGE_MAX_REDUCE) {
            int box = (int)(shrink / (IMAGE_MAX_REDUCE / 2));
            if (horizontal ? vips_shrinkh(x, &t[1], box, NULL) : vips_shrinkv(x, &t[1], box, NULL))
                goto done;
            x = t[1];
            from = horizontal ? x->Xsize : x->Ysize;
            shrink = (double)from / n;
        }
        if (horizontal ? vips_reduceh(x, &t[2], shrink, "kernel", VIPS_KERNEL_LINEAR, NULL)
                       : vips_reducev(x, &t[2], shrink, "kernel", VIPS_KERNEL_LINEAR, NULL))
            goto done;
    } else {
        double scale = (double)n / from;
        int w = horizontal ? n : x->Xsize, h = horizontal ? x->Ysize : n;
        VipsInterpolate *bilinear = vips_interpolate_new("bilinear");
        VipsArrayInt *area = vips_array_int_newv(4, 0, 0, w, h);
        int r =
            horizontal
                ? vips_affine(x, &t[2], scale, 0.0, 0.0, 1.0, "interpolate", bilinear, "idx", 0.5,
                              "odx", -0.5, "oarea", area, "extend", VIPS_EXTEND_COPY, NULL)
                : vips_affine(x, &t[2], 1.0, 0.0, 0.0, scale, "interpolate", bilinear, "idy", 0.5,
                              "ody", -0.5, "oarea", area, "extend", VIPS_EXTEND_COPY, NULL);
        vips_area_unref(VIPS_AREA(area));
        g_object_unref(bilinear);
        if (r)
            goto done;
    }
    /* floor(v + 0.5): the filter weights are non-negative, so v is in
     * 0..255 and the cast needs no clipping. */
    if (vips_linear1(t[2], &t[3], 1.0, 0.5, NULL) || vips_floor(t[3], &t[4], NULL) ||
        vips_cast(t[4], &out, VIPS_FORMAT_UCHAR, NULL))
        goto done;
    if ((horizontal ? out->Xsize : out->Ysize) != n) {
        vips_error("bottleneck", "resampled to %d pixels instead of %d",
                   horizontal ? out->Xsize : out->Ysize, n);
        g_object_unref(out);
        out = NULL;
    }
done:
    for (int i = 0; i < 5; i++)
        if (t[i])
            g_object_unref(t[i]);
    return out;
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
static void image_preprocess(const unsigned char *rgb, size_t n, bn_preprocess p, float *out) {
    if (p == BN_PREPROCESS_CAFFE) {
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

int bn_image_decode(const void *buf, size_t len, const char *name, const bn_image_opts *opts,
                    float *out, bn_image_info *info, bn_error *err) {
    enum { NT = 8 };
    VipsImage *t[NT] = {NULL};
    VipsImage *x;
    unsigned char *pixels = NULL;
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
    if (opts->preprocess != BN_PREPROCESS_CAFFE && opts->preprocess != BN_PREPROCESS_TORCH)
        return bn_fail(err, BN_EINVAL, "%s: unknown preprocess mode %d", name,
                       (int)opts->preprocess);

    if (!(x = t[0] = image_open(buf, len, name, err)))
        return BN_EDECODE;
    const int size = opts->size;
    const int w = x->Xsize, h = x->Ysize, o = image_orientation(x);
    if ((uint64_t)w * (uint64_t)h > image_max_pixels) {
        rc = bn_fail(err, BN_EDECODE,
                     "%s: %dx%d image has more than %llu pixels (decompression bomb limit)", name,
                     w, h, (unsigned long long)image_max_pixels);
        goto done;
    }
    if (info) {
        info->width = o >= 5 ? h : w;
        info->height = o >= 5 ? w : h;
    }

    if ((rc = image_to_srgb(x, &t[1], name, err)))
        goto done;
    x = t[1];

    /* Target lengths of the stored (not yet oriented) axes. */
    int tw = size, th = size;
    if (opts->resize == BN_RESIZE_CROP) {
        int shorter = w < h ? w : h, longer = w < h ? h : w;
        int along = (int)((double)size * (double)longer / (double)shorter);
        if (w < h)
            th = along;
        else
            tw = along;
    }
    /* PIL resizes the displayed image horizontally first; for orientations
     * that swap the axes that is the stored vertical axis. */
    int first_horizontal = o < 5;
    int second_from = first_horizontal ? h : w, second_to = first_horizontal ? th : tw;
    if (!(x = t[2] = image_resize_axis(x, first_horizontal, first_horizontal ? tw : th)))
        goto vips_failed;
    /* A strong shrink of the second axis asks the first pass for tall (or
     * wide) regions at a time: shrink x strip height lines at the full input
     * width, which for an 8000x6000 JPEG at 64 costs 125 MB (275 MB in crop
     * mode). Running the first pass to the end into memory, strip by strip,
     * costs only its small output and gives the same pixels. */
    if (second_from > 2 * second_to &&
        (uint64_t)x->Xsize * x->Ysize * x->Bands <= IMAGE_MAX_INTERMEDIATE) {
        if (!(x = t[7] = vips_image_copy_memory(x)))
            goto vips_failed;
    }
    if (!(x = t[3] = image_resize_axis(x, !first_horizontal, second_to)))
        goto vips_failed;

    if (opts->resize == BN_RESIZE_CROP && (tw != size || th != size)) {
        int ow = o >= 5 ? th : tw, oh = o >= 5 ? tw : th; /* displayed */
        /* torchvision's center_crop: int(round((h - size) / 2.0)), round
         * half to even like rint() in the default rounding mode. */
        int left = (int)rint((ow - size) / 2.0), top = (int)rint((oh - size) / 2.0);
        int cx, cy;
        image_unorient_rect(o, ow, oh, left, top, size, &cx, &cy);
        if (vips_extract_area(x, &t[4], cx, cy, size, size, NULL))
            goto vips_failed;
        x = t[4];
    }

    if (o != 1) {
        /* Rotation reads its input out of order: hold the small resized
         * image in memory, then orient it. */
        if (!(x = t[5] = vips_image_copy_memory(x)))
            goto vips_failed;
        if (vips_autorot(x, &t[6], NULL))
            goto vips_failed;
        x = t[6];
    }

    /* Decoding happens here: errors in the pixel data surface now. */
    size_t bytes = 0;
    if (!(pixels = vips_image_write_to_memory(x, &bytes)))
        goto vips_failed;
    if (x->Xsize != size || x->Ysize != size || bytes != (size_t)size * size * 3) {
        rc = bn_fail(err, BN_EDECODE, "%s: internal error: pipeline gave %dx%d, expected %dx%d",
                     name, x->Xsize, x->Ysize, size, size);
        goto done;
    }
    image_preprocess(pixels, (size_t)size * size, opts->preprocess, out);
    goto done;

vips_failed:
    rc = image_vips_fail(err, name, "decoding failed");
done:
    g_free(pixels);
    for (int i = NT - 1; i >= 0; i--)
        if (t[i])
            g_object_unref(t[i]);
    return rc;
}

int bn_resize_parse(const char *s, bn_resize *out) {
    if (s && strcmp(s, "squash") == 0)
        *out = BN_RESIZE_SQUASH;
    else if (s && strcmp(s, "crop") == 0)
        *out = BN_RESIZE_CROP;
    else
        return BN_EINVAL;
    return BN_OK;
}

int bn_preprocess_parse(const char *s, bn_preprocess *out) {
    if (s && strcmp(s, "caffe") == 0)
        *out = BN_PREPROCESS_CAFFE;
    else if (s && strcmp(s, "torch") == 0)
        *out = BN_PREPROCESS_TORCH;
    else
        return BN_EINVAL;
    return BN_OK;
}

const char *bn_resize_name(bn_resize r) {
    return r == BN_RESIZE_CROP ? "crop" : "squash";
}

const char *bn_preprocess_name(bn_preprocess p) {
    return p == BN_PREPROCESS_TORCH ? "torch" : "caffe";
}

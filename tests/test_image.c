/*
 * test_image.c: the image module (common/image.c) on real photos from
 * ../shared and on images this test generates with libvips for the odd
 * formats and the bad inputs.
 *
 * - <name>.224.png decoded with caffe preprocessing equals <name>.input.f32
 *   (no resampling, so bitwise);
 * - the JPEGs of the 6 reference cases, squashed to 224, against PIL's
 *   bilinear resize (<name>.input.f32): bitwise equal, every pixel;
 * - crop geometry, EXIF orientation (all 8), alpha, 16-bit, grey, CMYK,
 *   palette, WebP, multi-page TIFF, animated GIF, 1x1, 10000x10;
 * - bad inputs: each fails with one line "<name>: <reason>", with no large
 *   allocation.
 */
#include "check.h"
#include "image.h"
#include "resample.h"
#include "support.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <vips/vips.h>

static const char *cases[] = {"cat.1000",  "cat.10005", "cat.10014",
                              "dog.10000", "dog.10004", "dog.10006"};
static const double caffe_mean[3] = {103.939, 116.779, 123.68}; /* B, G, R */

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static bn_image_opts opts(int size, bn_resize r, bn_preprocess p) {
    bn_image_opts o = {.size = size, .resize = r, .preprocess = p};
    return o;
}

/* RGB value (0..255 as float) of pixel (x, y) from a caffe tensor. */
static double caffe_rgb(const float *t, int size, int x, int y, int c) {
    return t[((size_t)y * size + x) * 3 + (2 - c)] + caffe_mean[2 - c];
}

/* The largest difference between a decoded size x size tensor t (caffe
 * order and mean) and the colours fn paints at the same pixels. */
static double worst_vs_fill(const float *t, int size, int (*fn)(int, int, int, void *)) {
    double worst = 0;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
            for (int c = 0; c < 3; c++)
                worst = fmax(worst, fabs(caffe_rgb(t, size, x, y, c) - fn(x, y, c, NULL)));
    return worst;
}

/* Decode with caffe preprocessing; on failure print the error. */
static int decode(const void *buf, size_t len, const char *name, int size, bn_resize r, float **out,
                  bn_image_info *info) {
    bn_error err = {0};
    bn_image_opts o = opts(size, r, BN_PREPROCESS_CAFFE);
    *out = malloc((size_t)size * size * 3 * sizeof(float));
    int rc = bn_image_decode(buf, len, name, &o, *out, info, &err);
    if (rc)
        fprintf(stderr, "decode %s: %s\n", name, err.msg);
    return rc;
}

/* Max abs difference between a caffe tensor and an RGB value everywhere in
 * the rectangle [x0, x1) x [y0, y1). */
static double rect_diff(const float *t, int size, int x0, int y0, int x1, int y1,
                        const int rgb[3]) {
    double worst = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            for (int c = 0; c < 3; c++) {
                double d = fabs(caffe_rgb(t, size, x, y, c) - rgb[c]);
                if (d > worst)
                    worst = d;
            }
    return worst;
}

/* A w x h uchar image with `bands` bands filled by fn(x, y, band). */
static VipsImage *make_image(int w, int h, int bands, int (*fn)(int, int, int, void *), void *ctx) {
    unsigned char *px = malloc((size_t)w * h * bands);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int b = 0; b < bands; b++)
                px[((size_t)y * w + x) * bands + b] = (unsigned char)fn(x, y, b, ctx);
    VipsImage *im =
        vips_image_new_from_memory_copy(px, (size_t)w * h * bands, w, h, bands, VIPS_FORMAT_UCHAR);
    free(px);
    if (!im)
        vips_error_exit("make_image");
    return im;
}

static int fill_solid(int x, int y, int b, void *ctx) {
    (void)x, (void)y;
    return ((const int *)ctx)[b];
}

/* Save with a libvips saver ("png", "jpeg", ...) into a g_malloc'd buffer. */
#define SAVE(fn, im, buf, len, ...)                                                                \
    do {                                                                                           \
        void *save_b_ = NULL;                                                                      \
        size_t save_n_ = 0;                                                                        \
        if (vips_##fn##save_buffer(im, &save_b_, &save_n_, __VA_ARGS__))                           \
            vips_error_exit(#fn "save");                                                           \
        *(buf) = save_b_;                                                                          \
        *(len) = save_n_;                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */

static void test_names(void) {
    bn_resize r = BN_RESIZE_CROP;
    bn_preprocess p = BN_PREPROCESS_TORCH;
    CHECK_INT(bn_image_resize_parse("squash", &r), 0);
    CHECK_INT(r, BN_RESIZE_SQUASH);
    CHECK_INT(bn_image_resize_parse("crop", &r), 0);
    CHECK_INT(r, BN_RESIZE_CROP);
    CHECK_INT(bn_image_resize_parse("Crop", &r), BN_EINVAL);
    CHECK_INT(bn_image_resize_parse(NULL, &r), BN_EINVAL);
    CHECK_INT(r, BN_RESIZE_CROP);
    CHECK_INT(bn_image_preprocess_parse("caffe", &p), 0);
    CHECK_INT(p, BN_PREPROCESS_CAFFE);
    CHECK_INT(bn_image_preprocess_parse("torch", &p), 0);
    CHECK_INT(p, BN_PREPROCESS_TORCH);
    CHECK_INT(bn_image_preprocess_parse("tf", &p), BN_EINVAL);
    CHECK_STR(bn_image_resize_name(BN_RESIZE_SQUASH), "squash");
    CHECK_STR(bn_image_resize_name(BN_RESIZE_CROP), "crop");
    CHECK_STR(bn_image_preprocess_name(BN_PREPROCESS_CAFFE), "caffe");
    CHECK_STR(bn_image_preprocess_name(BN_PREPROCESS_TORCH), "torch");
}

/* <name>.224.png needs no resize: the tensor must equal the reference. */
static void test_reference_png(void) {
    char rel[256];
    for (int i = 0; i < 6; i++) {
        size_t len, rlen;
        snprintf(rel, sizeof rel, "reference/%s.224.png", cases[i]);
        unsigned char *png = read_all(shared_path(rel), &len);
        snprintf(rel, sizeof rel, "reference/%s.input.f32", cases[i]);
        float *ref = (float *)read_all(shared_path(rel), &rlen);
        CHECK_INT(rlen, 224 * 224 * 3 * sizeof(float));
        float *t;
        bn_image_info info = {0};
        CHECK_INT(decode(png, len, cases[i], 224, BN_RESIZE_SQUASH, &t, &info), 0);
        CHECK_INT(info.width, 224);
        CHECK_INT(info.height, 224);
        size_t same = 0;
        double worst = 0;
        for (size_t k = 0; k < 224 * 224 * 3; k++) {
            same += memcmp(&t[k], &ref[k], sizeof(float)) == 0;
            double d = fabs((double)t[k] - ref[k]);
            if (d > worst)
                worst = d;
        }
        printf("reference %s.224.png: %zu/%d values bitwise equal, max diff %g\n", cases[i], same,
               224 * 224 * 3, worst);
        CHECK_MSG(worst <= 1e-6, "%s: max diff %g", cases[i], worst);
        free(png);
        free(ref);
        free(t);
    }
}

/* The original JPEGs, squashed to 224, against PIL's bilinear resize: the
 * reference input was made by PIL from the same files, and resample.c is
 * PIL's algorithm, so every value must be bitwise equal (libjpeg-turbo
 * decodes the same pixels in both). Any other resampler fails here: libvips'
 * own kernels are off by means of 1.7 to 4.9 grey levels. */
static void test_reference_jpeg(void) {
    char rel[256];
    double all_sum = 0, all_max = 0, all_inner = 0;
    for (int i = 0; i < 6; i++) {
        size_t len, rlen;
        snprintf(rel, sizeof rel, "data/catsdogs/train/%.3s/%s.jpg", cases[i], cases[i]);
        unsigned char *jpg = read_all(shared_path(rel), &len);
        snprintf(rel, sizeof rel, "reference/%s.input.f32", cases[i]);
        float *ref = (float *)read_all(shared_path(rel), &rlen);
        float *t, *tv;
        bn_image_info info = {0}, vinfo = {0};
        CHECK_INT(decode(jpg, len, cases[i], 224, BN_RESIZE_SQUASH, &t, &info), 0);
        CHECK_MSG(info.direct_jpeg == 1, "%s: not decoded by the direct JPEG path", cases[i]);
        /* libvips gives the same bytes */
        bn_image_set_direct_jpeg(0);
        CHECK_INT(decode(jpg, len, cases[i], 224, BN_RESIZE_SQUASH, &tv, &vinfo), 0);
        bn_image_set_direct_jpeg(1);
        CHECK_INT(vinfo.direct_jpeg, 0);
        CHECK_MSG(!memcmp(t, tv, 224 * 224 * 3 * sizeof *t), "%s: direct path != libvips",
                  cases[i]);
        free(tv);
        double sum = 0, worst = 0, inner = 0;
        for (size_t k = 0; k < 224 * 224 * 3; k++) {
            double d = fabs((double)t[k] - ref[k]);
            int x = (int)(k / 3 % 224), y = (int)(k / 3 / 224);
            sum += d;
            worst = fmax(worst, d);
            if (x > 0 && x < 223 && y > 0 && y < 223)
                inner = fmax(inner, d);
        }
        double mean = sum / (224 * 224 * 3);
        printf("squash %s.jpg vs PIL bilinear: mean abs diff %.3f, max %.0f (%.0f inside)\n",
               cases[i], mean, worst, inner);
        CHECK_MSG(worst == 0, "%s: mean abs diff %.3f, max %.0f (%.0f inside): not PIL's pixels",
                  cases[i], mean, worst, inner);
        all_sum += sum;
        all_max = fmax(all_max, worst);
        all_inner = fmax(all_inner, inner);
        free(jpg);
        free(ref);
        free(t);
    }
    printf("squash vs PIL bilinear, 6 photos: mean abs diff %.3f, max %.0f (%.0f inside)\n",
           all_sum / (6.0 * 224 * 224 * 3), all_max, all_inner);
}

/* probe: header dimensions as MANIFEST.tsv lists them. */
/* Rows of the shared photos' MANIFEST.tsv (path, label, sha256, width,
 * height; the header skipped): every every-th data row from the first, at
 * most max. Returns how many were read. */
typedef struct {
    char rel[480];
    int w, h;
} manifest_row;

static int manifest_read(manifest_row *rows, int max, int every) {
    FILE *f = fopen(shared_path("data/catsdogs/MANIFEST.tsv"), "r");
    CHECK(f != NULL);
    if (!f)
        return 0;
    char line[2048];
    int n = 0, k = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        char label[64], sha[80];
        if (sscanf(line, "%479s %63s %79s %d %d", rows[n].rel, label, sha, &rows[n].w,
                   &rows[n].h) != 5)
            continue; /* the header */
        if (k++ % every == 0)
            n++;
    }
    fclose(f);
    return n;
}

static void test_probe_manifest(void) {
    static manifest_row rows[40];
    int n = manifest_read(rows, 40, 1);
    CHECK_INT(n, 40);
    for (int i = 0; i < n; i++) {
        size_t len;
        char path[600];
        snprintf(path, sizeof path, "data/catsdogs/%.479s", rows[i].rel);
        unsigned char *buf = read_all(shared_path(path), &len);
        bn_image_info info = {0};
        bn_error err = {0};
        CHECK_INT(bn_image_probe(buf, len, rows[i].rel, &info, &err), 0);
        CHECK_INT(info.width, rows[i].w);
        CHECK_INT(info.height, rows[i].h);
        free(buf);
    }
}

/* 400x200: left quarter red, middle half green, right quarter blue. */
static int fill_bands(int x, int y, int b, void *ctx) {
    int vertical = *(int *)ctx;
    int pos = vertical ? y : x;
    int colour = pos < 100 ? 0 : pos < 300 ? 1 : 2;
    return b == colour ? 255 : 0;
}

static void test_crop_geometry(void) {
    const int green[3] = {0, 255, 0}, red[3] = {255, 0, 0}, blue[3] = {0, 0, 255};
    for (int vertical = 0; vertical <= 1; vertical++) {
        VipsImage *im =
            make_image(vertical ? 200 : 400, vertical ? 400 : 200, 3, fill_bands, &vertical);
        void *png;
        size_t len;
        SAVE(png, im, &png, &len, NULL);
        float *t;
        bn_image_info info;
        /* Shorter side already 200: nothing is resampled, the crop keeps
         * exactly the green middle. */
        CHECK_INT(decode(png, len, "bands.png", 200, BN_RESIZE_CROP, &t, &info), 0);
        CHECK_INT(info.width, vertical ? 200 : 400);
        CHECK_NEAR(rect_diff(t, 200, 0, 0, 200, 200, green), 0, 1e-4);
        free(t);
        /* Resampled to 64: the interior is green; the outer two lines see a
         * little red or blue through the filter, but stay mostly green. */
        CHECK_INT(decode(png, len, "bands.png", 64, BN_RESIZE_CROP, &t, &info), 0);
        if (vertical)
            CHECK_NEAR(rect_diff(t, 64, 0, 2, 64, 62, green), 0, 1);
        else
            CHECK_NEAR(rect_diff(t, 64, 2, 0, 62, 64, green), 0, 1);
        for (int k = 0; k < 64; k++) {
            int x0 = vertical ? k : 0, y0 = vertical ? 0 : k;
            int x1 = vertical ? k : 63, y1 = vertical ? 63 : k;
            CHECK(caffe_rgb(t, 64, x0, y0, 1) > 128 && caffe_rgb(t, 64, x0, y0, 0) < 128);
            CHECK(caffe_rgb(t, 64, x1, y1, 1) > 128 && caffe_rgb(t, 64, x1, y1, 2) < 128);
        }
        free(t);
        /* Squash keeps all three bands, 16 of 64 lines each for red/blue. */
        CHECK_INT(decode(png, len, "bands.png", 64, BN_RESIZE_SQUASH, &t, &info), 0);
        if (vertical) {
            CHECK_NEAR(rect_diff(t, 64, 0, 0, 64, 14, red), 0, 1);
            CHECK_NEAR(rect_diff(t, 64, 0, 18, 64, 46, green), 0, 1);
            CHECK_NEAR(rect_diff(t, 64, 0, 50, 64, 64, blue), 0, 1);
        } else {
            CHECK_NEAR(rect_diff(t, 64, 0, 0, 14, 64, red), 0, 1);
            CHECK_NEAR(rect_diff(t, 64, 18, 0, 46, 64, green), 0, 1);
            CHECK_NEAR(rect_diff(t, 64, 50, 0, 64, 64, blue), 0, 1);
        }
        free(t);
        g_free(png);
        g_object_unref(im);
    }
}

/* A 300x200 picture, blue with a red block at the top left (x < 60, y < 40). */
static int fill_corner(int x, int y, int b, void *ctx) {
    (void)ctx;
    int red = x < 60 && y < 40;
    return b == 0 ? (red ? 255 : 0) : b == 2 ? (red ? 0 : 255) : 0;
}

/* Orientation 6 ("rotate 90 clockwise to display"): width and height swap,
 * and the stored top-left corner is displayed at the top right. */
static void test_orientation6(void) {
    VipsImage *im = make_image(300, 200, 3, fill_corner, NULL), *tagged;
    if (vips_copy(im, &tagged, NULL))
        vips_error_exit("copy");
    vips_image_set_int(tagged, VIPS_META_ORIENTATION, 6);
    void *jpg;
    size_t len;
    SAVE(jpeg, tagged, &jpg, &len, "Q", 95, NULL);
    bn_image_info info = {0};
    bn_error err = {0};
    CHECK_INT(bn_image_probe(jpg, len, "o6.jpg", &info, &err), 0);
    CHECK_INT(info.width, 200);
    CHECK_INT(info.height, 300);
    float *t;
    CHECK_INT(decode(jpg, len, "o6.jpg", 100, BN_RESIZE_SQUASH, &t, &info), 0);
    CHECK_INT(info.width, 200);
    CHECK_INT(info.height, 300);
    /* Displayed 200x300, red at x >= 160, y < 60; squashed to 100x100:
     * x >= 80, y < 20. */
    const int red[3] = {255, 0, 0}, blue[3] = {0, 0, 255};
    CHECK_NEAR(rect_diff(t, 100, 84, 0, 100, 17, red), 0, 12);
    CHECK_NEAR(rect_diff(t, 100, 0, 0, 76, 100, blue), 0, 12);
    CHECK_NEAR(rect_diff(t, 100, 0, 23, 100, 100, blue), 0, 12);
    free(t);
    g_free(jpg);
    g_object_unref(tagged);
    g_object_unref(im);
}

/* A pattern that any one-pixel shift changes: 5x5 cells of varied colours. */
static int fill_cells(int x, int y, int b, void *ctx) {
    (void)ctx;
    int cell = (x / 5) * 7 + (y / 5) * 13 + b * 5;
    return (cell * 37) % 256;
}

/* All 8 EXIF orientations, both resize modes: decoding the tagged JPEG
 * equals decoding the same pixels rotated beforehand by libvips and stored
 * untagged (lossless PNG). The odd sizes make the crop offsets round. */
static void test_orientations(void) {
    VipsImage *im = make_image(301, 187, 3, fill_cells, NULL);
    for (int o = 1; o <= 8; o++) {
        VipsImage *tagged, *loaded, *rotated;
        if (vips_copy(im, &tagged, NULL))
            vips_error_exit("copy");
        vips_image_set_int(tagged, VIPS_META_ORIENTATION, o);
        void *jpg, *png;
        size_t jlen, plen;
        SAVE(jpeg, tagged, &jpg, &jlen, "Q", 90, NULL);
        if (!(loaded = vips_image_new_from_buffer(jpg, jlen, "", NULL)) ||
            vips_autorot(loaded, &rotated, NULL))
            vips_error_exit("autorot");
        SAVE(png, rotated, &png, &plen, NULL);
        for (int mode = 0; mode < 2; mode++) {
            bn_resize r = mode ? BN_RESIZE_CROP : BN_RESIZE_SQUASH;
            float *a, *b;
            bn_image_info ia, ib;
            CHECK_INT(decode(jpg, jlen, "tagged.jpg", 96, r, &a, &ia), 0);
            CHECK_INT(decode(png, plen, "rotated.png", 96, r, &b, &ib), 0);
            CHECK_INT(ia.width, ib.width);
            CHECK_INT(ia.height, ib.height);
            CHECK_INT(ia.width, o >= 5 ? 187 : 301);
            double worst = 0, sum = 0;
            for (size_t k = 0; k < 96 * 96 * 3; k++) {
                double d = fabs((double)a[k] - b[k]);
                sum += d;
                if (d > worst)
                    worst = d;
            }
            /* Resizing before or after the rotation rounds differently:
             * libvips' vertical and horizontal reducers differ by up to 3
             * levels. A crop one pixel off would cost a mean of ~20. */
            CHECK_MSG(worst <= 6 && sum / (96 * 96 * 3) < 0.5,
                      "orientation %d %s: max %.1f mean %.3f", o, bn_image_resize_name(r), worst,
                      sum / (96 * 96 * 3));
            free(a);
            free(b);
        }
        g_free(jpg);
        g_free(png);
        g_object_unref(rotated);
        g_object_unref(loaded);
        g_object_unref(tagged);
    }
    g_object_unref(im);
}

/* RGB from x, y; alpha 0 on the left half, a ramp on the right. */
static int fill_rgba(int x, int y, int b, void *ctx) {
    (void)ctx;
    if (b == 3)
        return x < 16 ? 0 : x * 8;
    return (x * 7 + y * 3 + b * 50) % 256;
}

static void test_alpha(void) {
    VipsImage *im = make_image(32, 32, 4, fill_rgba, NULL);
    void *png;
    size_t len;
    SAVE(png, im, &png, &len, NULL);
    float *t;
    CHECK_INT(decode(png, len, "rgba.png", 32, BN_RESIZE_SQUASH, &t, NULL), 0);
    /* Alpha is dropped, as PIL's convert("RGB") does: the stored colours. */
    double worst = worst_vs_fill(t, 32, fill_rgba);
    CHECK_NEAR(worst, 0, 1e-4);
    free(t);
    g_free(png);
    g_object_unref(im);

    /* Grey + alpha. */
    int ga[2] = {77, 10};
    im = make_image(8, 8, 2, fill_solid, ga);
    SAVE(png, im, &png, &len, NULL);
    CHECK_INT(decode(png, len, "ga.png", 8, BN_RESIZE_SQUASH, &t, NULL), 0);
    const int grey[3] = {77, 77, 77};
    CHECK_NEAR(rect_diff(t, 8, 0, 0, 8, 8, grey), 0, 1e-4);
    free(t);
    g_free(png);
    g_object_unref(im);
}

static int fill_gradient(int x, int y, int b, void *ctx) {
    (void)ctx;
    return (x * 5 + y * 3 + b * 80) % 256;
}

/* 16-bit PNG, RGB and grey: 8-bit value v stored as v * 257 decodes to v. */
static void test_16bit(void) {
    for (int bands = 1; bands <= 3; bands += 2) {
        VipsImage *im = make_image(40, 30, bands, fill_gradient, NULL), *wide, *tagged;
        if (vips_linear1(im, &wide, 257.0, 0.0, NULL) ||
            vips_cast(wide, &tagged, VIPS_FORMAT_USHORT, NULL))
            vips_error_exit("16-bit");
        g_object_unref(wide);
        if (vips_copy(tagged, &wide, "interpretation",
                      bands == 1 ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_RGB16, NULL))
            vips_error_exit("copy");
        void *png;
        size_t len;
        SAVE(png, wide, &png, &len, "bitdepth", 16, NULL);
        CHECK_INT(((unsigned char *)png)[24], 16); /* IHDR bit depth */
        float *t;
        bn_image_info info;
        CHECK_INT(decode(png, len, "deep.png", 40, BN_RESIZE_CROP, &t, &info), 0);
        CHECK_INT(info.width, 40);
        CHECK_INT(info.height, 30);
        free(t);
        /* 30x40 -> crop 30 keeps columns 5..34 untouched. */
        CHECK_INT(decode(png, len, "deep.png", 30, BN_RESIZE_CROP, &t, &info), 0);
        double worst = 0;
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 30; x++)
                for (int c = 0; c < 3; c++)
                    worst = fmax(worst, fabs(caffe_rgb(t, 30, x, y, c) -
                                             fill_gradient(x + 5, y, bands == 1 ? 0 : c, NULL)));
        CHECK_MSG(worst < 1e-4, "%d bands: max diff %g", bands, worst);
        free(t);
        g_free(png);
        g_object_unref(wide);
        g_object_unref(tagged);
        g_object_unref(im);
    }
}

static void test_grey_jpeg(void) {
    VipsImage *im = make_image(64, 48, 1, fill_gradient, NULL);
    void *jpg;
    size_t len;
    SAVE(jpeg, im, &jpg, &len, "Q", 98, NULL);
    float *t;
    CHECK_INT(decode(jpg, len, "grey.jpg", 32, BN_RESIZE_SQUASH, &t, NULL), 0);
    double spread = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            double r = caffe_rgb(t, 32, x, y, 0);
            spread = fmax(spread, fabs(r - caffe_rgb(t, 32, x, y, 1)));
            spread = fmax(spread, fabs(r - caffe_rgb(t, 32, x, y, 2)));
        }
    CHECK_NEAR(spread, 0, 1e-4); /* R = G = B */
    free(t);
    CHECK_INT(decode(jpg, len, "grey.jpg", 48, BN_RESIZE_CROP, &t, NULL), 0);
    double worst = 0;
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 48; x++)
            worst = fmax(worst, fabs(caffe_rgb(t, 48, x, y, 1) - fill_gradient(x + 8, y, 0, NULL)));
    CHECK_MSG(worst <= 6, "grey JPEG max diff %g", worst);
    free(t);
    g_free(jpg);
    g_object_unref(im);
}

/* Four colour patches, converted to CMYK with libvips' CMYK profile and
 * saved as JPEG with that profile embedded, and without any profile. */
static int fill_patches(int x, int y, int b, void *ctx) {
    (void)ctx;
    static const int patch[4][3] = {
        {190, 90, 80}, {90, 150, 100}, {100, 110, 160}, {128, 128, 128}};
    return patch[(y / 16) * 2 + x / 16][b];
}

static void test_cmyk(void) {
    VipsImage *im = make_image(32, 32, 3, fill_patches, NULL), *srgb, *cmyk;
    if (vips_copy(im, &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, NULL) ||
        vips_icc_export(srgb, &cmyk, "output_profile", "cmyk", NULL))
        vips_error_exit("icc_export");
    CHECK_INT(cmyk->Bands, 4);
    for (int with_icc = 1; with_icc >= 0; with_icc--) {
        VipsImage *x;
        if (vips_copy(cmyk, &x, NULL))
            vips_error_exit("copy");
        if (!with_icc)
            vips_image_remove(x, VIPS_META_ICC_NAME);
        CHECK_INT(vips_image_get_typeof(x, VIPS_META_ICC_NAME) != 0, with_icc);
        void *jpg;
        size_t len;
        SAVE(jpeg, x, &jpg, &len, "Q", 100, NULL);
        VipsImage *back = vips_image_new_from_buffer(jpg, len, "", NULL);
        CHECK(back && back->Bands == 4 && back->Type == VIPS_INTERPRETATION_CMYK);
        if (back)
            g_object_unref(back);
        float *t;
        CHECK_INT(decode(jpg, len, "cmyk.jpg", 32, BN_RESIZE_SQUASH, &t, NULL), 0);
        /* Patch centres come back near their colours (the CMYK profile's
         * gamut and the JPEG cost a few levels). */
        double worst = 0;
        for (int p = 0; p < 4; p++) {
            int cx = (p % 2) * 16 + 8, cy = (p / 2) * 16 + 8;
            for (int c = 0; c < 3; c++)
                worst =
                    fmax(worst, fabs(caffe_rgb(t, 32, cx, cy, c) - fill_patches(cx, cy, c, NULL)));
        }
        printf("CMYK JPEG %s ICC profile: max patch diff %.1f\n", with_icc ? "with" : "without",
               worst);
        CHECK_MSG(worst <= 12, "CMYK %s ICC: max diff %g", with_icc ? "with" : "without", worst);
        free(t);
        g_free(jpg);
        g_object_unref(x);
    }
    g_object_unref(cmyk);
    g_object_unref(srgb);
    g_object_unref(im);
}

static void test_palette(void) {
    VipsImage *im = make_image(32, 32, 3, fill_patches, NULL);
    void *png;
    size_t len;
    SAVE(png, im, &png, &len, "palette", TRUE, NULL);
    CHECK_INT(((unsigned char *)png)[25], 3); /* IHDR colour type 3: palette */
    float *t;
    CHECK_INT(decode(png, len, "palette.png", 32, BN_RESIZE_SQUASH, &t, NULL), 0);
    double worst = worst_vs_fill(t, 32, fill_patches);
    CHECK_MSG(worst <= 1, "palette max diff %g", worst);
    free(t);
    g_free(png);
    g_object_unref(im);
}

static void test_webp(void) {
    VipsImage *im = make_image(48, 48, 3, fill_gradient, NULL);
    void *webp;
    size_t len;
    SAVE(webp, im, &webp, &len, "lossless", TRUE, NULL);
    CHECK(len > 12 && memcmp((char *)webp + 8, "WEBP", 4) == 0);
    float *t;
    CHECK_INT(decode(webp, len, "x.webp", 48, BN_RESIZE_SQUASH, &t, NULL), 0);
    double worst = worst_vs_fill(t, 48, fill_gradient);
    CHECK_NEAR(worst, 0, 1e-4);
    free(t);
    g_free(webp);
    g_object_unref(im);
}

/* A multi-page image: page 0 red, page 1 green, page 2 blue, each 24x16. */
static VipsImage *make_pages(void) {
    static const int colours[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    VipsImage *page[3], *joined, *out;
    for (int i = 0; i < 3; i++)
        page[i] = make_image(24, 16, 3, fill_solid, (void *)colours[i]);
    if (vips_arrayjoin(page, &joined, 3, "across", 1, NULL) ||
        vips_copy(joined, &out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL))
        vips_error_exit("arrayjoin");
    vips_image_set_int(out, VIPS_META_PAGE_HEIGHT, 16);
    for (int i = 0; i < 3; i++)
        g_object_unref(page[i]);
    g_object_unref(joined);
    return out;
}

static void test_multipage(void) {
    VipsImage *pages = make_pages();
    const int red[3] = {255, 0, 0};
    for (int gif = 0; gif <= 1; gif++) {
        void *buf;
        size_t len;
        if (gif)
            SAVE(gif, pages, &buf, &len, NULL);
        else
            SAVE(tiff, pages, &buf, &len, NULL);
        VipsImage *all = vips_image_new_from_buffer(buf, len, "", "n", -1, NULL);
        CHECK(all != NULL);
        if (all) {
            CHECK_INT(vips_image_get_n_pages(all), 3);
            g_object_unref(all);
        }
        const char *name = gif ? "anim.gif" : "pages.tif";
        float *t;
        bn_image_info info;
        CHECK_INT(decode(buf, len, name, 16, BN_RESIZE_CROP, &t, &info), 0);
        CHECK_INT(info.width, 24);
        CHECK_INT(info.height, 16); /* one page, not the strip of three */
        CHECK_MSG(rect_diff(t, 16, 0, 0, 16, 16, red) <= 2, "%s: first page is not red", name);
        free(t);
        g_free(buf);
    }
    g_object_unref(pages);
}

/* PIL's BILINEAR resampling of one line of n values to m (a triangle filter
 * stretched by the shrink factor, weights clipped at the edges and
 * renormalised), in double precision. */
static void pil_bilinear(const double *in, int n, double *out, int m) {
    double scale = (double)n / m, filterscale = scale > 1 ? scale : 1;
    double support = filterscale;
    for (int i = 0; i < m; i++) {
        double center = (i + 0.5) * scale, sum = 0, wsum = 0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > n)
            hi = n;
        for (int j = lo; j < hi; j++) {
            double d = fabs((j - center + 0.5) / filterscale);
            double wt = d < 1 ? 1 - d : 0;
            sum += wt * in[j];
            wsum += wt;
        }
        out[i] = sum / wsum;
    }
}

static void test_tiny_and_extreme(void) {
    int colour[3] = {12, 200, 99};
    VipsImage *im = make_image(1, 1, 3, fill_solid, colour);
    void *png;
    size_t len;
    SAVE(png, im, &png, &len, NULL);
    float *t;
    for (int mode = 0; mode < 2; mode++) {
        CHECK_INT(
            decode(png, len, "1x1.png", 32, mode ? BN_RESIZE_CROP : BN_RESIZE_SQUASH, &t, NULL), 0);
        CHECK_NEAR(rect_diff(t, 32, 0, 0, 32, 32, colour), 0, 1e-4);
        free(t);
    }
    g_free(png);
    g_object_unref(im);

    /* 10000x10 and 10x10000 horizontal/vertical ramps 0..255. */
    for (int tall = 0; tall <= 1; tall++) {
        int w = tall ? 10 : 10000, h = tall ? 10000 : 10;
        unsigned char *px = malloc((size_t)w * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                px[(size_t)y * w + x] = (unsigned char)((tall ? y : x) * 256 / 10000);
        im = vips_image_new_from_memory_copy(px, (size_t)w * h, w, h, 1, VIPS_FORMAT_UCHAR);
        free(px);
        SAVE(png, im, &png, &len, NULL);
        bn_image_info info;
        CHECK_INT(decode(png, len, "strip.png", 32, BN_RESIZE_SQUASH, &t, &info), 0);
        CHECK_INT(info.width, w);
        CHECK_INT(info.height, h);
        /* Squash: the ramp shrunk as PIL would (computed here in double),
         * the same along the other axis (stretched from 10 equal pixels). */
        double ramp[10000], want[32], worst = 0;
        for (int k = 0; k < 10000; k++)
            ramp[k] = k * 256 / 10000;
        pil_bilinear(ramp, 10000, want, 32);
        for (int i = 0; i < 32; i++)
            for (int j = 0; j < 32; j++) {
                double v = caffe_rgb(t, 32, tall ? j : i, tall ? i : j, 1);
                worst = fmax(worst, fabs(v - want[i]));
            }
        CHECK_MSG(worst <= 1, "squash strip %d: max diff %g", tall, worst);
        free(t);
        /* Crop: the middle 10 source pixels of the ramp, 127 or 128. */
        CHECK_INT(decode(png, len, "strip.png", 32, BN_RESIZE_CROP, &t, NULL), 0);
        double lo = 255, hi = 0;
        for (size_t k = 0; k < 32 * 32; k++) {
            lo = fmin(lo, t[k * 3 + 1] + caffe_mean[1]);
            hi = fmax(hi, t[k * 3 + 1] + caffe_mean[1]);
        }
        CHECK_MSG(lo >= 127 - 1e-3 && hi <= 128 + 1e-3, "crop strip %d: %g..%g", tall, lo, hi);
        free(t);
        g_free(png);
        g_object_unref(im);
    }

    /* 40000x3: a shrink of 1250 on one axis (2,500 taps per output pixel). */
    {
        int w = 40000, h = 3;
        unsigned char *px = malloc((size_t)w * h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                px[(size_t)y * w + x] = (unsigned char)(x * 256 / w);
        im = vips_image_new_from_memory_copy(px, (size_t)w * h, w, h, 1, VIPS_FORMAT_UCHAR);
        free(px);
        SAVE(png, im, &png, &len, NULL);
        CHECK_INT(decode(png, len, "wide.png", 32, BN_RESIZE_SQUASH, &t, NULL), 0);
        double *ramp = malloc(w * sizeof(double)), want[32], worst = 0;
        for (int k = 0; k < w; k++)
            ramp[k] = k * 256 / w;
        pil_bilinear(ramp, w, want, 32);
        for (int i = 0; i < 32; i++)
            worst = fmax(worst, fabs(caffe_rgb(t, 32, i, 16, 1) - want[i]));
        CHECK_MSG(worst <= 1, "40000x3: max diff %g", worst);
        free(ramp);
        free(t);
        g_free(png);
        g_object_unref(im);
    }
}

/* resample.c directly: a window of the target equals the same pixels of the
 * whole resize (the centre crop relies on it), for shrinking, enlarging and
 * mixed axes, in both pass orders; the two orders differ by rounding between
 * the passes only; bad plans fail with a message naming the image. */
static uint8_t *resample_all(const bn_resample_plan *p, const uint8_t *in) {
    bn_resampler *r = NULL;
    bn_error err = {0};
    CHECK_INT(bn_resampler_new(p, "rnd", &r, &err), 0);
    if (!r)
        return NULL;
    uint8_t *out = malloc((size_t)p->win_w * p->win_h * p->bands);
    for (int y = 0; y < p->height; y++)
        bn_resampler_push(r, in + (size_t)y * p->width * p->bands);
    bn_resampler_finish(r, out);
    bn_resampler_free(r);
    return out;
}

static void test_resample_window(void) {
    const int w = 97, h = 61, bands = 3;
    uint8_t *in = malloc((size_t)w * h * bands);
    uint32_t s = 12345;
    for (size_t k = 0; k < (size_t)w * h * bands; k++) {
        s = s * 1103515245u + 12345u;
        in[k] = (uint8_t)(s >> 23);
    }
    const int targets[][2] = {{40, 30}, {150, 100}, {40, 100}, {97, 20}, {33, 61}};
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        int tw = targets[t][0], th = targets[t][1];
        for (int order = 0; order <= 1; order++) {
            bn_resample_plan full = {w, h, bands, tw, th, 0, 0, tw, th, order, 0};
            uint8_t *all = resample_all(&full, in);
            if (!all)
                continue;
            int windows[][4] = {{0, 0, 7, 5}, {tw - 9, th - 4, 9, 4}, {tw / 3, th / 2, 11, 3}};
            for (int k = 0; k < 3; k++) {
                bn_resample_plan p = full;
                p.win_x = windows[k][0], p.win_y = windows[k][1];
                p.win_w = windows[k][2], p.win_h = windows[k][3];
                uint8_t *part = resample_all(&p, in);
                size_t diff = 0;
                for (int y = 0; part && y < p.win_h; y++)
                    diff += memcmp(part + (size_t)y * p.win_w * bands,
                                   all + ((size_t)(p.win_y + y) * tw + p.win_x) * bands,
                                   (size_t)p.win_w * bands) != 0;
                CHECK_MSG(part && diff == 0, "%dx%d order %d window %d: %zu rows differ", tw, th,
                          order, k, diff);
                free(part);
            }
            if (order == 1) {
                bn_resample_plan other = full;
                other.rows_first = 0;
                uint8_t *cols = resample_all(&other, in);
                int worst = 0;
                for (size_t k = 0; cols && k < (size_t)tw * th * bands; k++)
                    worst = abs(cols[k] - all[k]) > worst ? abs(cols[k] - all[k]) : worst;
                CHECK_MSG(worst <= 1, "%dx%d: the pass orders differ by %d", tw, th, worst);
                free(cols);
            }
            free(all);
        }
    }
    free(in);

    bn_resampler *r = NULL;
    bn_error err = {0};
    bn_resample_plan wide = {BN_RESAMPLE_MAX_SIDE + 1, 1, 3, 8, 8, 0, 0, 8, 8, 1, 0};
    CHECK_INT(bn_resampler_new(&wide, "wide.png", &r, &err), BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "wide.png: 1000001x1 image") != NULL, "message: %s", err.msg);
    bn_resample_plan outside = {10, 10, 3, 8, 8, 4, 0, 8, 8, 1, 0};
    CHECK_INT(bn_resampler_new(&outside, "w.png", &r, &err), BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "out of range") != NULL, "message: %s", err.msg);
    CHECK(r == NULL);
}

/* Torch preprocessing of a solid (255, 128, 0) image, by hand:
 * R (255/255 - 0.485) / 0.229 = 2.2489083, G (128/255 - 0.456) / 0.224 =
 * 0.2051821, B (0 - 0.406) / 0.225 = -1.8044444. Channels stay RGB. */
static void test_torch(void) {
    int colour[3] = {255, 128, 0};
    VipsImage *im = make_image(8, 8, 3, fill_solid, colour);
    void *png;
    size_t len;
    SAVE(png, im, &png, &len, NULL);
    float t[8 * 8 * 3];
    bn_image_opts o = opts(8, BN_RESIZE_SQUASH, BN_PREPROCESS_TORCH);
    bn_error err = {0};
    CHECK_INT(bn_image_decode(png, len, "solid.png", &o, t, NULL, &err), 0);
    for (int k = 0; k < 64; k++) {
        CHECK_NEAR(t[k * 3 + 0], 2.2489083, 1e-5);
        CHECK_NEAR(t[k * 3 + 1], 0.2051821, 1e-5);
        CHECK_NEAR(t[k * 3 + 2], -1.8044444, 1e-5);
    }
    /* The same image in caffe mode: B, G, R minus the means. */
    o.preprocess = BN_PREPROCESS_CAFFE;
    CHECK_INT(bn_image_decode(png, len, "solid.png", &o, t, NULL, &err), 0);
    CHECK_NEAR(t[0], 0 - 103.939, 1e-4);
    CHECK_NEAR(t[1], 128 - 116.779, 1e-4);
    CHECK_NEAR(t[2], 255 - 123.68, 1e-4);
    g_free(png);
    g_object_unref(im);
}

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* One bad input: a BN_EDECODE error, one line, naming the file. */
static void expect_failure(const void *buf, size_t len, const char *name, const char *why,
                           const char *must_say) {
    float *t = malloc(64 * 64 * 3 * sizeof(float));
    bn_image_opts o = opts(64, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE);
    bn_error err = {0};
    int rc = bn_image_decode(buf, len, name, &o, t, NULL, &err);
    printf("bad input %-14s -> %s\n", why, err.msg);
    CHECK_MSG(rc == BN_EDECODE, "%s: rc %d", why, rc);
    CHECK_INT(err.code, BN_EDECODE);
    size_t n = strlen(name);
    CHECK_MSG(strncmp(err.msg, name, n) == 0 && strncmp(err.msg + n, ": ", 2) == 0 &&
                  strlen(err.msg) > n + 5,
              "%s: message \"%s\"", why, err.msg);
    CHECK_MSG(strchr(err.msg, '\n') == NULL, "%s: message has a newline", why);
    if (must_say)
        CHECK_MSG(strstr(err.msg, must_say) != NULL, "%s: \"%s\" does not say \"%s\"", why, err.msg,
                  must_say);
    free(t);
}

static void test_bad_inputs(void) {
    long rss0 = max_rss_kb();
    size_t len, plen;
    unsigned char *jpg = read_all(shared_path("data/catsdogs/train/cat/cat.1000.jpg"), &len);
    unsigned char *png = read_all(shared_path("reference/cat.1000.224.png"), &plen);

    expect_failure(jpg, 0, "empty.jpg", "zero bytes", "0 bytes");
    expect_failure(jpg, len / 2, "half.jpg", "truncated JPEG", NULL);
    expect_failure(png, plen / 2, "half.png", "truncated PNG", NULL);

    unsigned char noise[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        s = s * 1103515245u + 12345u;
        noise[i] = (unsigned char)(s >> 16);
    }
    expect_failure(noise, sizeof noise, "noise.jpg", "random bytes", NULL);
    const char *text = "This is not an image.\nIt is a text file with a .png name.\n";
    expect_failure(text, strlen(text), "notes.png", "text", NULL);

    unsigned char bomb[128];
    size_t blen = support_png_declaring(bomb, 100000, 100000);
    expect_failure(bomb, blen, "bomb.png", "100000^2 PNG", "decompression bomb");
    /* The header itself is valid: probe reads it without decoding. */
    bn_image_info info = {0};
    bn_error err = {0};
    CHECK_INT(bn_image_probe(bomb, blen, "bomb.png", &info, &err), 0);
    CHECK_INT(info.width, 100000);
    CHECK_INT(info.height, 100000);
    /* ... and a small PNG built the same way decodes: the bomb was refused
     * for its size, not for the hand-made file. */
    blen = support_png_declaring(bomb, 1, 1);
    float t1[4 * 4 * 3];
    bn_image_opts o = opts(4, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE);
    CHECK_INT(bn_image_decode(bomb, blen, "one.png", &o, t1, NULL, &err), 0);
    CHECK_NEAR(t1[0], -103.939, 1e-4);

    /* A configurable limit. */
    bn_image_set_max_pixels(224 * 224 - 1);
    expect_failure(png, plen, "cat.1000.224.png", "over the limit", "decompression bomb");
    bn_image_set_max_pixels(0);
    float *t;
    CHECK_INT(decode(png, plen, "cat.1000.224.png", 224, BN_RESIZE_SQUASH, &t, NULL), 0);
    free(t);

    /* A name with a newline still gives one line (the newline folded). */
    CHECK_INT(bn_image_decode(text, strlen(text), "two\nlines.png", &o, t1, NULL, &err),
              BN_EDECODE);
    CHECK_MSG(strncmp(err.msg, "two lines.png: ", 15) == 0 && !strchr(err.msg, '\n'), "\"%s\"",
              err.msg);
    /* The error path truncates too; bad options are BN_EINVAL. */
    o.size = 0;
    CHECK_INT(bn_image_decode(png, plen, "x.png", &o, t1, NULL, &err), BN_EINVAL);

    long grown = max_rss_kb() - rss0;
    printf("bad inputs: peak RSS grew by %ld kB\n", grown);
    CHECK_MSG(grown < 64 * 1024, "peak RSS grew by %ld kB", grown);
    free(jpg);
    free(png);
}

/* Concurrent decodes (as a program decoding in several threads does) and
 * libvips' own worker threads give the same tensors as one decode at a
 * time. */
typedef struct {
    unsigned char *buf[6];
    size_t len[6];
    float *want[6];
    int mismatches;
} threads_ctx;

static void *decode_all(void *arg) {
    threads_ctx *c = arg;
    float *t = malloc(96 * 96 * 3 * sizeof(float));
    bn_image_opts o = opts(96, BN_RESIZE_CROP, BN_PREPROCESS_TORCH);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 6; i++) {
            bn_error err = {0};
            if (bn_image_decode(c->buf[i], c->len[i], cases[i], &o, t, NULL, &err) ||
                memcmp(t, c->want[i], 96 * 96 * 3 * sizeof(float)) != 0)
                __atomic_add_fetch(&c->mismatches, 1, __ATOMIC_RELAXED);
        }
    free(t);
    return NULL;
}

static void test_threads(void) {
    threads_ctx c = {.mismatches = 0};
    char rel[256];
    bn_image_opts o = opts(96, BN_RESIZE_CROP, BN_PREPROCESS_TORCH);
    bn_error err = {0};
    for (int i = 0; i < 6; i++) {
        snprintf(rel, sizeof rel, "data/catsdogs/train/%.3s/%s.jpg", cases[i], cases[i]);
        c.buf[i] = read_all(shared_path(rel), &c.len[i]);
        c.want[i] = malloc(96 * 96 * 3 * sizeof(float));
        CHECK_INT(bn_image_decode(c.buf[i], c.len[i], cases[i], &o, c.want[i], NULL, &err), 0);
    }
    pthread_t th[3];
    for (int k = 0; k < 3; k++)
        pthread_create(&th[k], NULL, decode_all, &c);
    for (int k = 0; k < 3; k++)
        pthread_join(th[k], NULL);
    CHECK_INT(c.mismatches, 0);
    bn_image_set_threads(2);
    decode_all(&c);
    bn_image_set_threads(1);
    CHECK_INT(c.mismatches, 0);
    for (int i = 0; i < 6; i++) {
        free(c.buf[i]);
        free(c.want[i]);
    }
}

/* BMP is read only by libvips' ImageMagick loader, which is blocked unless
 * the program allows untrusted loaders. Skipped if this libvips cannot write
 * BMP (no ImageMagick module). */
static void test_untrusted(void) {
    int colour[3] = {10, 20, 30};
    VipsImage *im = make_image(8, 8, 3, fill_solid, colour);
    void *bmp = NULL;
    size_t len = 0;
    bn_image_allow_untrusted(1); /* the saver is untrusted too */
    int rc = vips_magicksave_buffer(im, &bmp, &len, "format", "BMP", NULL);
    bn_image_allow_untrusted(0);
    if (rc) {
        vips_error_clear();
        printf("no ImageMagick in this libvips: BMP test skipped\n");
        g_object_unref(im);
        return;
    }
    CHECK(len > 2 && memcmp(bmp, "BM", 2) == 0);
    expect_failure(bmp, len, "old.bmp", "BMP (blocked)", "disabled");
    bn_error err = {0};
    float t[8 * 8 * 3];
    bn_image_opts o = opts(8, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE);
    bn_image_allow_untrusted(1);
    CHECK_INT(bn_image_decode(bmp, len, "old.bmp", &o, t, NULL, &err), 0);
    bn_image_allow_untrusted(0);
    CHECK_NEAR(rect_diff(t, 8, 0, 0, 8, 8, colour), 0, 1e-4);
    g_free(bmp);
    g_object_unref(im);
}

/* ------------------------------------------------------------------ */
/* The direct JPEG path (common/image_jpeg.c) against libvips: the same
 * bytes for every photo it takes, and the files it must leave to libvips
 * (Exif, grey, truncated, corrupt data) decoded, or refused, exactly as
 * libvips alone does. */

/* Decode buf both ways at (size, resize, preprocess): same return code,
 * same error text or the same bytes and size. Returns the direct path's
 * info.direct_jpeg (-1 on a mismatch). */
static int both_paths(const void *buf, size_t len, const char *name, int size, bn_resize r,
                      bn_preprocess p) {
    bn_image_opts o = opts(size, r, p);
    size_t n = (size_t)size * size * 3;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    bn_image_info ia = {0}, ib = {0};
    bn_error ea = {0}, eb = {0};
    int ra = bn_image_decode(buf, len, name, &o, a, &ia, &ea);
    bn_image_set_direct_jpeg(0);
    int rb = bn_image_decode(buf, len, name, &o, b, &ib, &eb);
    bn_image_set_direct_jpeg(1);
    int same = ra == rb && ib.direct_jpeg == 0;
    if (same && ra)
        same = strcmp(ea.msg, eb.msg) == 0;
    else if (same)
        same = ia.width == ib.width && ia.height == ib.height && !memcmp(a, b, n * sizeof *a);
    CHECK_MSG(same, "%s at %d: direct path rc %d (%s) %dx%d, libvips rc %d (%s) %dx%d", name, size,
              ra, ea.msg, ia.width, ia.height, rb, eb.msg, ib.width, ib.height);
    free(a);
    free(b);
    return same ? ia.direct_jpeg : -1;
}

/* jpg with APP1 segments right after SOI: payloads pl[i] of pn[i] bytes. */
static unsigned char *with_app1(const unsigned char *jpg, size_t len, int count,
                                const unsigned char *const *pl, const size_t *pn, size_t *out_len) {
    size_t extra = 0;
    for (int i = 0; i < count; i++)
        extra += 4 + pn[i];
    unsigned char *o = malloc(len + extra), *q = o + 2;
    memcpy(o, jpg, 2);
    for (int i = 0; i < count; i++) {
        size_t seg = 2 + pn[i]; /* the length field counts itself */
        *q++ = 0xFF, *q++ = 0xE1, *q++ = (unsigned char)(seg >> 8), *q++ = (unsigned char)seg;
        memcpy(q, pl[i], pn[i]);
        q += pn[i];
    }
    memcpy(q, jpg + 2, len - 2);
    *out_len = len + extra;
    return o;
}

/* Decode jpg with the given APP1 payloads both ways: the result of
 * both_paths (1: the direct path took it). */
static int exif_case(const unsigned char *jpg, size_t len, int count,
                     const unsigned char *const *pl, const size_t *pn, int size, bn_resize r) {
    size_t n;
    unsigned char *f = with_app1(jpg, len, count, pl, pn, &n);
    int d = both_paths(f, n, "exif.jpg", size, r, BN_PREPROCESS_CAFFE);
    free(f);
    return d;
}

/* Exif: the orientations the direct path reads, and the blocks it must
 * leave to libvips, each giving what libvips alone gives. Then mutated
 * blocks: whatever the direct path takes must agree with libexif's
 * reading of it, through libvips. */
static void test_direct_exif(const unsigned char *photo, size_t photo_len) {
    unsigned char b[512], b2[512];
    const unsigned char *pl[2] = {b, b2};
    size_t pn[2];
    enum { SHORT = 3, LONG = 4, ASCII = 2 };
    for (int be = 0; be <= 1; be++)
        for (int o = 1; o <= 8; o++) {
            support_tiff_entry e[] = {{0x0112, SHORT, 1, (uint32_t)o}};
            pn[0] = support_exif_block(b, be, e, 1, 0, NULL, 0);
            CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 1);
            CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 48, BN_RESIZE_SQUASH), 1);
        }
    /* Other tags only, or Orientation only in IFD1 (the thumbnail's): as
     * stored. An Exif IFD pointer past the block: libexif skips it. */
    {
        const unsigned char make[] = "Maker";
        support_tiff_entry e[] = {{0x010F, ASCII, 6, 26}};
        pn[0] = support_exif_block(b, 0, e, 1, 0, make, sizeof make);
        CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 1);
        unsigned char ifd1[18] = {1, 0, 0x12, 1, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
        pn[0] = support_exif_block(b, 0, e, 1, 26 + sizeof make, NULL, 0);
        memcpy(b + pn[0], make, sizeof make);
        memcpy(b + pn[0] + sizeof make, ifd1, sizeof ifd1);
        pn[0] += sizeof make + sizeof ifd1;
        CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 1);
        /* after Orientation, as IFDs are sorted; before it (libexif
         * 0.6.24 stops there), libvips' */
        support_tiff_entry f[] = {{0x0112, SHORT, 1, 6}, {0x8769, LONG, 1, 60000}};
        pn[0] = support_exif_block(b, 1, f, 2, 0, NULL, 0);
        CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 0);
        support_tiff_entry g[] = {{0x8769, LONG, 1, 60000}, {0x0112, SHORT, 1, 6}};
        pn[0] = support_exif_block(b, 1, g, 2, 0, NULL, 0);
        CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 0);
    }
    /* Left to libvips: values out of range (libvips: 1), other formats,
     * counts or repeats, an IFD0 longer than the block, two Exif segments,
     * a bare "Exif", no TIFF header. */
    const support_tiff_entry odd[][2] = {
        {{0x0112, SHORT, 1, 0}},
        {{0x0112, SHORT, 1, 9}},
        {{0x0112, LONG, 1, 6}},
        {{0x0112, SHORT, 2, 6}},
        {{0x0112, SHORT, 1, 6}, {0x0112, SHORT, 1, 3}},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        pn[0] = support_exif_block(b, (int)i & 1, odd[i], odd[i][1].tag ? 2 : 1, 0, NULL, 0);
        CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 0);
    }
    support_tiff_entry six[] = {{0x0112, SHORT, 1, 6}}, three[] = {{0x0112, SHORT, 1, 3}};
    pn[0] = support_exif_block(b, 0, six, 1, 0, NULL, 0);
    b[6 + 8] = 5; /* five entries, one there */
    CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 0);
    pn[0] = support_exif_block(b, 0, six, 1, 0, NULL, 0);
    pn[1] = support_exif_block(b2, 1, three, 1, 0, NULL, 0);
    CHECK_INT(exif_case(photo, photo_len, 2, pl, pn, 64, BN_RESIZE_CROP), 0);
    pn[0] = 4;
    CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 0);
    memcpy(b, "Exif\0\0XX*\0\0\0\0\0", 14);
    pn[0] = 14;
    CHECK_INT(exif_case(photo, photo_len, 1, pl, pn, 64, BN_RESIZE_CROP), 0);
    /* XMP beside the Exif: not Exif, the orientation is still read. */
    pn[0] = support_exif_block(b, 0, three, 1, 0, NULL, 0);
    const char xmp[] = "http://ns.adobe.com/xap/1.0/";
    memcpy(b2, xmp, sizeof xmp);
    pn[1] = sizeof xmp;
    CHECK_INT(exif_case(photo, photo_len, 2, pl, pn, 64, BN_RESIZE_CROP), 1);

    /* Mutations of a block with IFD0 (Make, Orientation 6, an Exif IFD),
     * the Exif IFD and IFD1 (Orientation 8), on a small image: one to four
     * bytes of the TIFF part set to random or telling values. */
    VipsImage *im = make_image(40, 30, 3, fill_gradient, NULL);
    void *small;
    size_t small_len;
    SAVE(jpeg, im, &small, &small_len, "Q", 90, "strip", TRUE, NULL);
    /* libvips' own Exif (written by libexif: resolution, orientation and
     * the tags it fills in), as a phone photo re-saved by libvips has */
    for (int o = 1; o <= 8; o += 5) {
        VipsImage *t;
        void *saved;
        size_t saved_len;
        CHECK(vips_copy(im, &t, NULL) == 0);
        vips_image_set_int(t, VIPS_META_ORIENTATION, o);
        SAVE(jpeg, t, &saved, &saved_len, "Q", 90, NULL);
        CHECK(saved_len > 6 && !memcmp((unsigned char *)saved + 6, "Exif", 4));
        CHECK_INT(both_paths(saved, saved_len, "vips-exif.jpg", 16, BN_RESIZE_SQUASH,
                             BN_PREPROCESS_CAFFE),
                  1);
        g_free(saved);
        g_object_unref(t);
    }
    g_object_unref(im);
    unsigned char base[512];
    /* offsets from the TIFF header: IFD0 8..49, "Maker" 50, Exif IFD 56,
     * IFD1 74 */
    support_tiff_entry e[] = {{0x010F, ASCII, 6, 50}, {0x0112, SHORT, 1, 6}, {0x8769, LONG, 1, 56}};
    support_tiff_entry e2[] = {
        {0x8769, LONG, 1, 56}, {0x010F, ASCII, 6, 50}, {0x0112, SHORT, 1, 6}};
    unsigned char tail[] = {
        'M', 'a', 'k',  'e',  'r', 0,                                      /* 50 */
        1,   0,   0x9A, 0x82, 5,   0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 56 */
        1,   0,   0x12, 1,    3,   0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0}; /* 74 */
    size_t base_len = support_exif_block(base, 0, e, 3, 74, tail, sizeof tail);
    unsigned char base2[512]; /* the Exif IFD pointer before Orientation */
    support_exif_block(base2, 0, e2, 3, 74, tail, sizeof tail);
    const unsigned char telling[] = {0, 1, 3, 4, 6, 8, 9, 0x12, 0x2A, 0x49, 0x4D, 0xFF};
    uint32_t seed = 12345;
    int cases = 2000, taken = 0, agreed = 0;
    for (int i = 0; i < cases; i++) {
        memcpy(b, i & 1 ? base2 : base, base_len);
        int muts = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
        for (int m = 0; m < muts; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = 6 + (seed >> 8) % (base_len - 6);
            seed = seed * 1103515245u + 12345u;
            b[at] = (seed >> 16) & 1 ? telling[(seed >> 8) % sizeof telling]
                                     : (unsigned char)(seed >> 20);
        }
        pn[0] = base_len;
        int d = exif_case(small, small_len, 1, pl, pn, 16, BN_RESIZE_SQUASH);
        agreed += d >= 0;
        taken += d == 1;
    }
    printf("direct JPEG path, mutated Exif: %d of %d blocks taken, %d agree with libvips\n", taken,
           cases, agreed);
    CHECK_INT(agreed, cases);
    CHECK(taken > cases / 4 && taken < cases); /* both ways exercised */
    g_free(small);
}

static void test_direct_jpeg(void) {
    /* Every 20th photo of the shared set (150), three ways each. */
    static manifest_row rows[150];
    int photos = manifest_read(rows, 150, 20), direct = 0;
    for (int i = 0; i < photos; i++) {
        char path[512];
        snprintf(path, sizeof path, "data/catsdogs/%.479s", rows[i].rel);
        size_t len;
        unsigned char *jpg = read_all(shared_path(path), &len);
        int d = both_paths(jpg, len, path, 224, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE);
        d += both_paths(jpg, len, path, 97, BN_RESIZE_CROP, BN_PREPROCESS_TORCH);
        d += both_paths(jpg, len, path, 32, BN_RESIZE_SQUASH, BN_PREPROCESS_TORCH);
        direct += d == 3;
        free(jpg);
    }
    printf("direct JPEG path: %d of %d photos taken, each the same bytes as libvips' at 3 "
           "sizes\n",
           direct, photos);
    CHECK_INT(photos, 150);
    CHECK_INT(direct, photos); /* they are all plain YCbCr JPEGs without Exif */

    size_t len, n;
    unsigned char *jpg = read_all(shared_path("data/catsdogs/train/cat/cat.1000.jpg"), &len);
    test_direct_exif(jpg, len);
    /* Truncated: libjpeg warns (premature end), libvips refuses it. */
    CHECK_INT(both_paths(jpg, len * 6 / 10, "cut.jpg", 64, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE),
              0);
    /* Bytes between the entropy-coded data and EOI: libjpeg-turbo's
     * decoder has read them ahead and says nothing; either way, the same. */
    unsigned char *c = malloc(len + 3);
    CHECK(len > 4 && jpg[len - 2] == 0xFF && jpg[len - 1] == 0xD9);
    memcpy(c, jpg, len - 2);
    memcpy(c + len - 2, "\x12\x34\x56\xFF\xD9", 5);
    CHECK(both_paths(c, len + 3, "junk.jpg", 64, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE) >= 0);
    /* A restart marker in the middle of the scan, which has none: "corrupt
     * JPEG data", a warning to libjpeg, so the direct path leaves it. */
    memcpy(c, jpg, len / 2);
    memcpy(c + len / 2, "\xFF\xD3", 2);
    memcpy(c + len / 2 + 2, jpg + len / 2, len - len / 2);
    CHECK_INT(both_paths(c, len + 2, "rst.jpg", 64, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE), 0);
    free(c);
    /* Grey: one component, libvips' colour conversion. */
    VipsImage *im = make_image(64, 48, 1, fill_solid, (int[]){90, 90, 90});
    void *grey;
    SAVE(jpeg, im, &grey, &n, "Q", 90, NULL);
    CHECK_INT(both_paths(grey, n, "grey.jpg", 32, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE), 0);
    g_free(grey);
    g_object_unref(im);
    /* Not a JPEG, and the magic alone. */
    CHECK_INT(both_paths("\xFF\xD8\xFF", 3, "magic.jpg", 8, BN_RESIZE_SQUASH, BN_PREPROCESS_CAFFE),
              0);
    free(jpg);
}

int main(int argc, char **argv) {
    (void)argc;
    bn_error err = {0};
    if (bn_image_init(argv[0], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_names();
    test_bad_inputs();
    test_reference_png();
    test_reference_jpeg();
    test_direct_jpeg();
    test_probe_manifest();
    test_crop_geometry();
    test_orientation6();
    test_orientations();
    test_alpha();
    test_16bit();
    test_grey_jpeg();
    test_cmyk();
    test_palette();
    test_webp();
    test_multipage();
    test_tiny_and_extreme();
    test_resample_window();
    test_torch();
    test_threads();
    test_untrusted();
    bn_image_shutdown();
    return check_done();
}

/*
 * test_resample.c: resample.c's vector loops (resample_simd.c, AVX2 and
 * AVX-512) give the same bytes as its scalar loops, which test_image holds
 * to PIL's pixels and to the six reference JPEGs bitwise.
 *
 * On real photos of ../shared/data/catsdogs (every 40th of MANIFEST.tsv, plus
 * the smallest and the largest) resized as the extractor resizes them (224 x
 * 224 squash in both pass orders, torchvision's crop window, an enlargement),
 * and on random images of odd sizes (1 to 19 pixels wide and other widths
 * where the vector loops have tails, 1 to 4 bands) resized to shrinks,
 * enlargements and identities with windows: every instruction set this CPU
 * has against the scalar one, memcmp. A CPU without AVX2 has nothing to
 * compare, and says so.
 */
#include "check.h"
#include "image.h"
#include "resample.h"

#include <stdint.h>
#include <vips/vips.h>

static const bn_resample_isa simd_isas[] = {BN_RESAMPLE_AVX2, BN_RESAMPLE_AVX512};
static int compared; /* resizes compared with at least one vector path */

static uint8_t *run(const bn_resample_plan *p, const uint8_t *in) {
    bn_resampler *r = NULL;
    bn_error err = {0};
    int rc = bn_resampler_new(p, "test", &r, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return NULL;
    uint8_t *out = malloc((size_t)p->win_w * p->win_h * p->bands);
    for (int y = 0; y < p->height; y++)
        bn_resampler_push(r, in + (size_t)y * p->width * p->bands);
    bn_resampler_finish(r, out);
    bn_resampler_free(r);
    return out;
}

/* The plan through every vector path against the scalar one. */
static void same_on_every_path(bn_resample_plan p, const uint8_t *in, const char *what) {
    p.isa = BN_RESAMPLE_SCALAR;
    uint8_t *want = run(&p, in);
    size_t n = (size_t)p.win_w * p.win_h * p.bands;
    int any = 0;
    for (size_t s = 0; want && s < sizeof simd_isas / sizeof simd_isas[0]; s++) {
        if (!bn_resample_isa_available(simd_isas[s]))
            continue;
        p.isa = simd_isas[s];
        uint8_t *got = run(&p, in);
        size_t first = n;
        for (size_t k = 0; got && k < n; k++)
            if (got[k] != want[k]) {
                first = k;
                break;
            }
        CHECK_MSG(got && first == n,
                  "%s: %dx%dx%d to %dx%d window %dx%d at %d,%d order %d: %s differs from scalar at "
                  "byte %zu (%d, not %d)",
                  what, p.width, p.height, p.bands, p.out_width, p.out_height, p.win_w, p.win_h,
                  p.win_x, p.win_y, p.rows_first, bn_resample_isa_name(simd_isas[s]), first,
                  got && first < n ? got[first] : -1, first < n ? want[first] : -1);
        free(got);
        any = 1;
    }
    compared += any;
    free(want);
}

/* A photo's RGB pixels, decoded by libvips as image.c decodes them. */
static uint8_t *load_rgb(const char *path, int *w, int *h) {
    VipsImage *im = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, NULL), *rgb;
    CHECK_MSG(im != NULL, "%s: %s", path, vips_error_buffer());
    if (!im)
        return NULL;
    if (vips_colourspace(im, &rgb, VIPS_INTERPRETATION_sRGB, NULL)) {
        g_object_unref(im);
        CHECK_MSG(0, "%s: %s", path, vips_error_buffer());
        return NULL;
    }
    g_object_unref(im);
    size_t len;
    uint8_t *px = vips_image_write_to_memory(rgb, &len);
    *w = rgb->Xsize;
    *h = rgb->Ysize;
    CHECK_INT(len, (size_t)*w * *h * 3);
    g_object_unref(rgb);
    return px;
}

static void photo(const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s", shared_path(rel));
    int w, h;
    uint8_t *px = load_rgb(path, &w, &h);
    if (!px)
        return;
    /* The extractor's default: both axes to 224; upright, and with the axes
     * swapped by EXIF orientation (the vertical pass first). */
    for (int order = 0; order <= 1; order++) {
        bn_resample_plan p = {w, h, 3, 224, 224, 0, 0, 224, 224, order, 0};
        same_on_every_path(p, px, rel);
    }
    /* torchvision: the shorter side to 224, the centre 224 x 224. */
    int tw = w < h ? 224 : (int)(224.0 * w / h), th = w < h ? (int)(224.0 * h / w) : 224;
    bn_resample_plan crop = {w, h, 3, tw, th, (tw - 224) / 2, (th - 224) / 2, 224, 224, 1, 0};
    same_on_every_path(crop, px, rel);
    /* Enlarging, to odd sizes: three times, plus one. */
    bn_resample_plan up = {w, h, 3, 3 * w + 1, 3 * h + 1, w, h, w + 5, h / 2 + 1, 1, 0};
    same_on_every_path(up, px, rel);
    g_free(px);
}

static void photos(void) {
    FILE *f = fopen(shared_path("data/catsdogs/MANIFEST.tsv"), "r");
    CHECK_MSG(f != NULL, "cannot open MANIFEST.tsv");
    if (!f)
        return;
    char line[4096], rel[2048], small[2048] = "", large[2048] = "";
    long row = 0, amin = -1, amax = -1, n = 0;
    while (fgets(line, sizeof line, f)) {
        char relpath[1024];
        int w, h;
        /* relpath, label, sha256, width, height, ... */
        if (sscanf(line, "%1023[^\t]\t%*[^\t]\t%*[^\t]\t%d\t%d", relpath, &w, &h) != 3)
            continue; /* the header */
        snprintf(rel, sizeof rel, "data/catsdogs/%s", relpath);
        long a = (long)w * h;
        if (amin < 0 || a < amin)
            amin = a, snprintf(small, sizeof small, "%s", rel);
        if (a > amax)
            amax = a, snprintf(large, sizeof large, "%s", rel);
        if (row++ % 40 == 0) {
            photo(rel);
            n++;
        }
    }
    fclose(f);
    CHECK_MSG(n >= 50 && *small && *large, "%ld photos from the manifest", n);
    photo(small);
    photo(large);
}

/* Random pixels, odd sizes: the vector loops' tails and the last pixels of a
 * row (which the 3-band horizontal loop leaves to the scalar one). */
static void odd_sizes(void) {
    uint32_t s = 2026;
    const int widths[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 19, 37, 101, 333};
    const int heights[] = {1, 2, 5, 13};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (size_t hi = 0; hi < sizeof heights / sizeof heights[0]; hi++)
            for (int bands = 1; bands <= 4; bands++) {
                int w = widths[wi], h = heights[hi];
                uint8_t *in = malloc((size_t)w * h * bands);
                for (size_t k = 0; k < (size_t)w * h * bands; k++) {
                    s = s * 1103515245u + 12345u;
                    in[k] = (uint8_t)(s >> 23);
                }
                /* Shrink, enlarge, identity on one axis, mixed. */
                const int targets[][2] = {{(w + 2) / 3, (h + 1) / 2},
                                          {2 * w + 1, 3 * h + 2},
                                          {w, 2 * h + 1},
                                          {3 * w + 1, h},
                                          {(w + 1) / 2, 7 * h},
                                          {17, 3}};
                for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
                    int tw = targets[t][0], th = targets[t][1];
                    for (int order = 0; order <= 1; order++) {
                        bn_resample_plan all = {w, h, bands, tw, th, 0, 0, tw, th, order, 0};
                        same_on_every_path(all, in, "random");
                        /* The window's last columns (the row's last pixels). */
                        bn_resample_plan right = all;
                        right.win_x = tw / 2;
                        right.win_w = tw - tw / 2;
                        right.win_y = th - 1;
                        right.win_h = 1;
                        same_on_every_path(right, in, "random, right edge");
                    }
                }
                free(in);
            }
}

static void plans(void) {
    /* AUTO names what it runs; an instruction set out of range is refused
     * with the image's name. */
    const char *name = bn_resample_isa_name(BN_RESAMPLE_AUTO);
    CHECK(!strcmp(name, "scalar") || !strcmp(name, "avx2") || !strcmp(name, "avx512"));
    fprintf(stderr, "resample: this CPU runs %s\n", name);
    bn_resampler *r = NULL;
    bn_error err = {0};
    bn_resample_plan bad = {10, 10, 3, 8, 8, 0, 0, 8, 8, 1, 99};
    CHECK_INT(bn_resampler_new(&bad, "odd.png", &r, &err), BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "odd.png: resampler instruction set 99") != NULL, "message: %s",
              err.msg);
    CHECK(r == NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    bn_error err = {0};
    if (bn_image_init(argv[0], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    plans();
    photos();
    odd_sizes();
    if (bn_resample_isa_available(BN_RESAMPLE_AVX2))
        CHECK_MSG(compared > 1000, "only %d resizes compared", compared);
    else
        fprintf(stderr, "resample: no AVX2 on this CPU: only the scalar loops run here\n");
    fprintf(stderr, "resample: %d resizes compared with the vector loops\n", compared);
    bn_image_shutdown();
    return check_done();
}

/*
 * test_batch.c: a vector depends on its image alone.
 *
 * The shapes users produce: every batch size, every partial last batch,
 * several thread counts, input sizes other than 224. Real photos of
 * ../shared/data/catsdogs (decoded at each size) through VGG16 with the
 * shared weights, for each engine:
 *
 * 1. Reference: each image alone (a batch of one, one thread), and the exact
 *    engine on the same images. Winograd is within 1e-4 relative L2 of the
 *    exact engine (observed: about 4e-6 at block5_pool; the bound is the
 *    extractor's documented accuracy, kept loose enough for other CPUs).
 * 2. Every batch size 1..17 in a network built for 17 (BN_BATCH_NS: only
 *    those listed), with 1, 2 and 3 threads, each batch starting at a
 *    different image so that neighbours change: every output is bitwise
 *    equal (memcmp) to the image alone.
 * 3. The extractor's loop at --batch 1, 3, 5, 6, 7, 8, 12, 16 (BN_BATCH_LOOPS
 *    overrides, e.g. "6 7 8": CI's AddressSanitizer run, where step 2
 *    already tried every partial batch up to 17 and the bytes were compared
 *    in the plain run): a network built for B runs every partial batch
 *    1..B-1 (the crash of version 0.1.0: 6 or 7 images in a network built
 *    for 8 wrote past the workspace): bitwise equal to the image alone again.
 * 4. A property test: random (size, images, batch, threads) drawn from a seed
 *    (BN_PROPERTY_SEED, else the time; printed so that a failure replays),
 *    BN_PROPERTY_DRAWS draws (default 3), each image compared bitwise with
 *    itself alone and with the exact engine.
 *
 * Sizes: 32, 64, 96, 224, 256 (BN_BATCH_SIZES overrides, e.g. "32 64"); an
 * argument "small" runs those up to 96 and the property test, "large" the
 * others (two meson tests, batch and batch_large, that run side by side).
 * The direct engine must be batch independent too: checked the same way at
 * 32 and 64 (its speed makes larger sizes costly). At 224 and 256 each batch
 * size of 2 runs with one of the thread counts, in turn.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "image.h"
#include "support.h"
#include "vgg16.h"
#include "weights.h"

#include <string.h>
#include <time.h>

#define MAXB 17 /* the largest batch tried */
#define NIMG 20 /* distinct photos */

static bn_vgg16_weights weights;

/* NIMG photos from the manifest, decoded at size s (caffe, squash): (NIMG, s, s, 3). */
static float *photos(int s) {
    static char paths[NIMG][4096];
    static int loaded;
    if (!loaded) {
        FILE *f = fopen(shared_path("data/catsdogs/MANIFEST.tsv"), "r");
        if (!f) {
            perror("MANIFEST.tsv");
            exit(1);
        }
        char line[8192];
        int n = 0;
        /* Every 150th photo: cats and dogs, train and validation, many sizes. */
        for (int row = 0; n < NIMG && fgets(line, sizeof line, f); row++) {
            if (row == 0 || row % 150 != 1)
                continue;
            char *tab = strchr(line, '\t');
            if (!tab)
                continue;
            *tab = 0;
            if (snprintf(paths[n], sizeof paths[0], "%s/%.2000s", shared_path("data/catsdogs"),
                         line) < (int)sizeof paths[0])
                n++;
        }
        fclose(f);
        if (n != NIMG) {
            fprintf(stderr, "MANIFEST.tsv: %d photos, need %d\n", n, NIMG);
            exit(1);
        }
        loaded = 1;
    }
    size_t per = (size_t)s * s * 3;
    float *out = malloc(NIMG * per * sizeof *out);
    bn_image_opts o = {.size = s, .resize = BN_RESIZE_SQUASH, .preprocess = BN_PREPROCESS_CAFFE};
    for (int i = 0; i < NIMG; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            perror(paths[i]);
            exit(1);
        }
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)len);
        if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
            perror(paths[i]);
            exit(1);
        }
        fclose(f);
        bn_error err;
        if (bn_image_decode(buf, (size_t)len, paths[i], &o, out + i * per, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        free(buf);
    }
    return out;
}

/* The list in $name, else dflt, copied into buf (n bytes) for strtok_r:
 * BN_BATCH_SIZES and BN_BATCH_LOOPS. */
static void env_list(const char *name, const char *dflt, char *buf, size_t n) {
    const char *env = getenv(name);
    snprintf(buf, n, "%s", env && *env ? env : dflt);
}

/* Images [first, first + n) (mod NIMG) through net: out (n, dim). */
static void run(bn_vgg16 *net, const float *in, int s, int first, int n, float *out) {
    bn_error err;
    int rc = support_net_batch(net, in, NIMG, s, first, n, out, &err);
    CHECK_MSG(rc == BN_OK, "forward of %d images: %s", n, err.msg);
}

/* Each image alone through a network built for one, one thread: (NIMG, dim). */
static float *alone_outputs(bn_conv_engine e, const float *in, int s, size_t dim) {
    bn_cpu_set_threads(1);
    bn_vgg16 *net = support_net(&weights, e, BN_PRECISION_FP32, s, 1);
    float *alone = malloc(NIMG * dim * sizeof *alone);
    for (int i = 0; i < NIMG; i++)
        run(net, in, s, i, 1, alone + i * dim);
    bn_vgg16_free(net);
    return alone;
}

/* Which batch sizes step 2 runs in the network built for MAXB: all of
 * 1..MAXB, or the list in BN_BATCH_NS (CI's sanitizer run: "1 2 7 8 9 12 16
 * 17", the ends and the middle; the first suite compared the bytes of all). */
static void step2_sizes(int *want) {
    char list[256];
    env_list("BN_BATCH_NS", "", list, sizeof list);
    for (int n = 1; n <= MAXB; n++)
        want[n] = list[0] == '\0';
    char *save;
    for (char *tok = strtok_r(list, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
        int n = atoi(tok);
        CHECK_MSG(n >= 1 && n <= MAXB, "BN_BATCH_NS: %s is not a batch size in 1..%d", tok, MAXB);
        if (n >= 1 && n <= MAXB)
            want[n] = 1;
    }
}

/* 2 and 3 of the list above, for one engine at size s. */
static void batches(bn_conv_engine e, const float *in, int s, const float *alone, size_t dim,
                    int all_threads) {
    float *out = malloc((size_t)MAXB * dim * sizeof *out);
    int first = 0, want[MAXB + 1];
    step2_sizes(want);
    for (int t = 1; t <= 3; t++) {
        bn_cpu_set_threads(t);
        bn_vgg16 *net = support_net(&weights, e, BN_PRECISION_FP32, s, MAXB);
        for (int n = 1; n <= MAXB; n++) {
            if (!want[n])
                continue;
            if (!all_threads && (n % 3) + 1 != t) /* at large sizes: each n with one count */
                continue;
            run(net, in, s, first, n, out);
            int bad = support_rows_differ(out, alone, NIMG, first, n, dim);
            CHECK_MSG(bad == 0, "%s size %d threads %d batch %d: %d of %d images differ from alone",
                      bn_conv_engine_name(e), s, t, n, bad, n);
            first = (first + 7) % NIMG;
        }
        bn_vgg16_free(net);
    }
    char list[256];
    env_list("BN_BATCH_LOOPS", "1 3 5 6 7 8 12 16", list, sizeof list);
    int k = 0;
    char *save; /* strtok_r: main is inside a strtok loop of its own */
    for (char *tok = strtok_r(list, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save), k++) {
        int b = atoi(tok), t = 1 + k % 3;
        CHECK_MSG(b >= 1 && b <= MAXB, "BN_BATCH_LOOPS: %s is not a batch size in 1..%d", tok,
                  MAXB);
        if (b < 1 || b > MAXB)
            continue;
        bn_cpu_set_threads(t);
        bn_vgg16 *net = support_net(&weights, e, BN_PRECISION_FP32, s, b);
        for (int n = 1; n <= b; n++) {
            run(net, in, s, first, n, out);
            int bad = support_rows_differ(out, alone, NIMG, first, n, dim);
            CHECK_MSG(bad == 0, "%s size %d --batch %d threads %d, %d images: %d differ from alone",
                      bn_conv_engine_name(e), s, b, t, n, bad);
            first = (first + 5) % NIMG;
        }
        bn_vgg16_free(net);
    }
    free(out);
}

/* Seconds since an arbitrary start: where a size's time goes, printed
 * (CI's sanitizer run budgets it), never checked. */
static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void one_size(int s) {
    size_t dim = (size_t)bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, s);
    float *in = photos(s);
    double t0 = seconds();
    float *wino = alone_outputs(BN_CONV_WINOGRAD, in, s, dim);
    double t1 = seconds();
    float *direct = alone_outputs(BN_CONV_DIRECT, in, s, dim);
    double t2 = seconds();
    double worst = 0;
    for (int i = 0; i < NIMG; i++) {
        double e = support_rel_l2(wino + i * dim, direct + i * dim, dim);
        worst = e > worst ? e : worst;
    }
    printf("size %d: winograd vs direct, worst relative L2 %.2e over %d photos\n", s, worst, NIMG);
    CHECK_MSG(worst <= 1e-4, "size %d: winograd differs from direct by %.2e", s, worst);
    batches(BN_CONV_WINOGRAD, in, s, wino, dim, s <= 96);
    double t3 = seconds();
    if (s <= 64)
        batches(BN_CONV_DIRECT, in, s, direct, dim, 1);
    printf("size %d: %.1f s alone (winograd), %.1f s alone (direct), %.1f s batches (winograd), "
           "%.1f s batches (direct)\n",
           s, t1 - t0, t2 - t1, t3 - t2, seconds() - t3);
    fflush(stdout);
    free(in);
    free(wino);
    free(direct);
}

/* 4: random draws. */
static void property(void) {
    const char *env = getenv("BN_PROPERTY_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    env = getenv("BN_PROPERTY_DRAWS");
    int draws = env && *env ? atoi(env) : 3;
    printf("property test: BN_PROPERTY_SEED=%llu, %d draws\n", (unsigned long long)seed, draws);
    support_seed(seed);
    for (int d = 0; d < draws; d++) {
        int s = 32 * (1 + (int)((support_rnd() + 1) * 4.99f)); /* 32..320 */
        int nimg = 1 + (int)((support_rnd() + 1) * 5.99f);     /* 1..12 */
        int b = 1 + (int)((support_rnd() + 1) * 8.49f);        /* 1..17 */
        int t = 1 + (int)((support_rnd() + 1) * 1.49f);        /* 1..3 */
        printf("  draw %d: size %d, %d images, --batch %d, %d threads\n", d, s, nimg, b, t);
        size_t dim = (size_t)bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, s);
        float *in = photos(s);
        bn_cpu_set_threads(t);
        bn_vgg16 *net = support_net(&weights, BN_CONV_WINOGRAD, BN_PRECISION_FP32, s, b),
                 *ref = support_net(&weights, BN_CONV_DIRECT, BN_PRECISION_FP32, s, 1),
                 *one = support_net(&weights, BN_CONV_WINOGRAD, BN_PRECISION_FP32, s, 1);
        float *out = malloc((size_t)b * dim * sizeof *out), *x = malloc(dim * sizeof *x),
              *y = malloc(dim * sizeof *y);
        for (int i0 = 0; i0 < nimg; i0 += b) {
            int n = nimg - i0 < b ? nimg - i0 : b;
            run(net, in, s, i0, n, out);
            for (int i = 0; i < n; i++) {
                run(one, in, s, i0 + i, 1, x);
                run(ref, in, s, i0 + i, 1, y);
                CHECK_MSG(memcmp(out + i * dim, x, dim * sizeof *x) == 0,
                          "draw %d: image %d differs from itself alone", d, i0 + i);
                double e = support_rel_l2(out + i * dim, y, dim);
                CHECK_MSG(e <= 1e-4, "draw %d: image %d differs from direct by %.2e", d, i0 + i, e);
            }
        }
        free(out);
        free(x);
        free(y);
        free(in);
        bn_vgg16_free(net);
        bn_vgg16_free(ref);
        bn_vgg16_free(one);
    }
}

/* test_batch [small|large]: the sizes up to 96 and the property test, or
 * the sizes above 96 (meson runs the two side by side); all without. */
int main(int argc, char **argv) {
    const char *part = argc > 1 ? argv[1] : "";
    const int small = strcmp(part, "large") != 0, large = strcmp(part, "small") != 0;
    CHECK(support_use_fast_blas(argv) == 0);
    bn_error err;
    if (bn_image_init(argv[0], &err) ||
        bn_weights_load(&weights, shared_path("models/vgg16_random_notop.h5"), &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("winograd engine: %s\n", bn_conv_engine_id(BN_CONV_WINOGRAD));
    char buf[256];
    env_list("BN_BATCH_SIZES", "32 64 96 224 256", buf, sizeof buf);
    char *save;
    for (char *tok = strtok_r(buf, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
        int s = atoi(tok);
        if (s <= 96 ? small : large)
            one_size(s);
    }
    if (small)
        property();
    bn_weights_free(&weights);
    bn_image_shutdown();
    return check_done();
}

/*
 * test_kcache.c: the kernel cache (common/kcache.c) and the start-up paths
 * that use it.
 *
 * 1. The Winograd kernel transform, rewritten to run on the pool's threads
 *    with vector loops, gives exactly the bytes of the loop it replaced
 *    (ref_transform below, the engine's code up to c587cd5), at shapes with
 *    and without padding (cin not a multiple of 16, cout not of 32).
 * 2. The cache: a miss computes and stores; a hit maps the same bytes and the
 *    layer computes the same output bit for bit; a corrupt payload, a
 *    truncated file, a stale entry (another kernel's file under this key's
 *    name) and a damaged header are each rejected and rewritten, never used;
 *    a directory that cannot be written leaves the layer working (same
 *    bytes); an entry another process is writing is left to it, one whose
 *    writer died long ago is replaced; `off` touches nothing.
 * 3. The weights file's remembered SHA-256 equals the one computed, and a
 *    corrupt memo is not believed.
 * 4. The extractor stores the same vector bytes with the cache off, on a
 *    miss and on a hit (VGG16, the shared weights, three photos).
 */
#include "check.h"
#include "conv.h"
#include "conv_internal.h"
#include "cpu.h"
#include "dataset.h"
#include "extractor.h"
#include "hash.h"
#include "image.h"
#include "kcache.h"
#include "store.h"
#include "support.h"
#include "weights.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The engine's transform as it was written before (c587cd5), one (ci, co)
 * pair at a time: U[p][cout/32][cinp][32] in double, rounded once. */
static float *ref_transform(const float *kernel, int cin, int cout) {
    static const double G[8][3] = {
        {1.0, 0.0, 0.0},
        {-2.0 / 9, -2.0 / 9, -2.0 / 9},
        {-2.0 / 9, 2.0 / 9, -2.0 / 9},
        {1.0 / 90, 1.0 / 45, 2.0 / 45},
        {1.0 / 90, -1.0 / 45, 2.0 / 45},
        {32.0 / 45, 16.0 / 45, 8.0 / 45},
        {32.0 / 45, -16.0 / 45, 8.0 / 45},
        {0.0, 0.0, 1.0},
    };
    int cinp = (cin + 15) / 16 * 16, coutp = (cout + 31) / 32 * 32, nblk = coutp / 32;
    float *u = calloc((size_t)64 * cinp * coutp, sizeof(float));
    for (int ci = 0; ci < cin; ci++)
        for (int co = 0; co < cout; co++) {
            double g[3][3], gt[8][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = kernel[((size_t)(ky * 3 + kx) * cin + ci) * cout + co];
            for (int a = 0; a < 8; a++)
                for (int kx = 0; kx < 3; kx++)
                    gt[a][kx] = G[a][0] * g[0][kx] + G[a][1] * g[1][kx] + G[a][2] * g[2][kx];
            for (int a = 0; a < 8; a++)
                for (int b = 0; b < 8; b++) {
                    double s = gt[a][0] * G[b][0] + gt[a][1] * G[b][1] + gt[a][2] * G[b][2];
                    size_t p = (size_t)a * 8 + b;
                    u[((p * nblk + co / 32) * cinp + ci) * 32 + co % 32] = (float)s;
                }
        }
    return u;
}

static size_t u_bytes(int cin, int cout) {
    return (size_t)64 * ((cin + 15) / 16 * 16) * ((cout + 31) / 32 * 32) * sizeof(float);
}

static float *rnd_array(size_t n, float scale) {
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = scale * (2 * support_rnd() - 1);
    return a;
}

/* The last layer's U modulo 2 MiB: 0 for a computed U (aligned_alloc) and
 * for a mapped one (kcache maps at 2 MiB boundaries, for huge pages). */
static uintptr_t packed_align;

/* A Winograd layer on kernel k; its output on `in` (2 images of 13x11) into
 * out, its U copied into u (when not NULL). 0 on success. */
static int layer(const float *k, const float *bias, int cin, int cout, const float *in, float *out,
                 float *u) {
    bn_conv *c;
    bn_error err;
    if (bn_conv_create(&c, BN_CONV_WINOGRAD, cin, cout, k, bias, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        return -1;
    }
    if (u)
        memcpy(u, c->packed, u_bytes(cin, cout));
    packed_align = (uintptr_t)c->packed & (((uintptr_t)2 << 20) - 1);
    void *ws = support_ws_alloc(bn_conv_workspace(c, 2, 13, 11));
    bn_conv_forward(c, in, out, 2, 13, 11, ws);
    free(ws);
    bn_conv_free(c);
    return 0;
}

/* The one entry file of kind winograd-* in dir ("" if not exactly one). */
static const char *entry(const char *dir, const char *prefix) {
    static char path[4096];
    path[0] = '\0';
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix)) && n++ == 0)
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (d)
        closedir(d);
    if (n != 1)
        path[0] = '\0';
    return path;
}

static void flip_byte(const char *path, off_t at) {
    int fd = open(path, O_RDWR);
    unsigned char b = 0;
    CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1);
    b ^= 0x40;
    CHECK(pwrite(fd, &b, 1, at) == 1);
    close(fd);
}

static bn_kcache_stats stats(void) {
    bn_kcache_stats s;
    bn_kcache_get_stats(&s);
    return s;
}

/* ---- 1 and 2 ------------------------------------------------------------------ */

static void test_transform_and_cache(const char *dir) {
    static const int shapes[][2] = {{3, 64}, {20, 40}, {64, 64}, {48, 96}};
    setenv("BOTTLENECK_KERNEL_CACHE", "off", 1);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int cin = shapes[s][0], cout = shapes[s][1];
        float *k = rnd_array((size_t)9 * cin * cout, 0.5f), *bias = rnd_array((size_t)cout, 0.1f);
        float *in = rnd_array((size_t)2 * 13 * 11 * cin, 1.0f);
        float *ref = ref_transform(k, cin, cout), *u = malloc(u_bytes(cin, cout));
        float *out = malloc((size_t)2 * 13 * 11 * cout * sizeof(float));
        for (int threads = 1; threads <= 3; threads += 2) {
            bn_cpu_set_threads(threads);
            CHECK_INT(layer(k, bias, cin, cout, in, out, u), 0);
            CHECK_MSG(memcmp(u, ref, u_bytes(cin, cout)) == 0,
                      "U of %dx%d, %d threads: not the reference transform's bytes", cin, cout,
                      threads);
        }
        free(k);
        free(bias);
        free(in);
        free(ref);
        free(u);
        free(out);
    }
    bn_cpu_set_threads(2);

    /* The cache, on a 64 -> 64 layer. */
    const int cin = 64, cout = 64;
    size_t nout = (size_t)2 * 13 * 11 * cout, ub = u_bytes(cin, cout);
    float *k = rnd_array((size_t)9 * cin * cout, 0.5f), *bias = rnd_array((size_t)cout, 0.1f);
    float *k2 = rnd_array((size_t)9 * cin * cout, 0.5f);
    float *in = rnd_array((size_t)2 * 13 * 11 * cin, 1.0f);
    float *want = malloc(nout * sizeof(float)), *got = malloc(nout * sizeof(float));
    float *uwant = malloc(ub), *ugot = malloc(ub);
    CHECK_INT(layer(k, bias, cin, cout, in, want, uwant), 0); /* cache off */

    char kc[4096], other[4096];
    snprintf(kc, sizeof kc, "%s/kc", dir);
    snprintf(other, sizeof other, "%s/kc-other", dir);
    setenv("BOTTLENECK_KERNEL_CACHE", kc, 1);
    bn_kcache_stats s0 = stats();
    CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0); /* miss: computed, stored */
    bn_kcache_stats s1 = stats();
    CHECK_INT((int)(s1.misses - s0.misses), 1);
    CHECK_INT((int)(s1.stored - s0.stored), 1);
    CHECK_INT((int)(s1.hits - s0.hits), 0);
    CHECK(memcmp(got, want, nout * sizeof(float)) == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s", entry(kc, "winograd-"));
    CHECK_MSG(path[0] != '\0', "one entry in %s", kc);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (size_t)st.st_size == ((size_t)2 << 20) + ub);

    /* A hit: the same U, the same output. */
    memset(ugot, 0, ub);
    CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0);
    bn_kcache_stats s2 = stats();
    CHECK_INT((int)(s2.hits - s1.hits), 1);
    CHECK_INT((int)(s2.stored - s1.stored), 0);
    CHECK(memcmp(ugot, uwant, ub) == 0);
    CHECK(memcmp(got, want, nout * sizeof(float)) == 0);
    CHECK_MSG(packed_align == 0, "mapped U at %#lx past a 2 MiB boundary",
              (unsigned long)packed_align);

    /* Damage, each time rejected (never used), rewritten, then a hit again. */
    for (int kind = 0; kind < 4; kind++) {
        const char *what[] = {"corrupt payload", "truncated", "stale (another kernel's entry)",
                              "damaged header"};
        if (kind == 0) {
            flip_byte(path, (2 << 20) + (off_t)ub / 2);
        } else if (kind == 1) {
            CHECK(truncate(path, st.st_size - 4) == 0);
        } else if (kind == 2) {
            /* an entry made for k2, renamed to k's name */
            setenv("BOTTLENECK_KERNEL_CACHE", other, 1);
            CHECK_INT(layer(k2, bias, cin, cout, in, got, NULL), 0);
            setenv("BOTTLENECK_KERNEL_CACHE", kc, 1);
            CHECK(rename(entry(other, "winograd-"), path) == 0);
        } else {
            flip_byte(path, 20); /* inside the kind string */
        }
        bn_kcache_stats a = stats();
        memset(ugot, 0, ub);
        CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0);
        bn_kcache_stats b = stats();
        CHECK_MSG(b.rejected - a.rejected == 1 && b.hits == a.hits && b.stored - a.stored == 1,
                  "%s: rejected %ld, hits %ld, stored %ld", what[kind], b.rejected - a.rejected,
                  b.hits - a.hits, b.stored - a.stored);
        CHECK_MSG(memcmp(ugot, uwant, ub) == 0, "%s: U differs", what[kind]);
        CHECK_MSG(memcmp(got, want, nout * sizeof(float)) == 0, "%s: output differs", what[kind]);
        CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0);
        CHECK_MSG(stats().hits - b.hits == 1, "%s: rewritten entry is a hit", what[kind]);
        CHECK(memcmp(ugot, uwant, ub) == 0);
    }

    /* Another process writing this entry (its temporary file is fresh):
     * this one goes on without storing; a temporary file left by a killed
     * writer (ten minutes old) is replaced. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(unlink(path) == 0);
    FILE *t = fopen(tmp, "w");
    CHECK(t != NULL);
    if (t)
        fclose(t);
    bn_kcache_stats c0 = stats();
    CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0);
    bn_kcache_stats c1 = stats();
    CHECK_INT((int)(c1.busy - c0.busy), 1);
    CHECK_INT((int)(c1.stored - c0.stored), 0);
    CHECK(access(path, F_OK) != 0);
    CHECK(memcmp(got, want, nout * sizeof(float)) == 0);
    struct timeval old[2] = {{time(NULL) - 601, 0}, {time(NULL) - 601, 0}};
    CHECK(utimes(tmp, old) == 0);
    CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0);
    bn_kcache_stats c2 = stats();
    CHECK_INT((int)(c2.stored - c1.stored), 1);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0);
    CHECK_INT((int)(stats().hits - c2.hits), 1);
    CHECK(memcmp(ugot, uwant, ub) == 0);

    /* A directory that cannot be made (its parent is a file: root may write
     * anywhere else): no cache, same bytes. */
    char blocked[4096];
    snprintf(blocked, sizeof blocked, "%s/file", dir);
    FILE *f = fopen(blocked, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    strncat(blocked, "/kc", sizeof blocked - strlen(blocked) - 1);
    setenv("BOTTLENECK_KERNEL_CACHE", blocked, 1);
    bn_kcache_stats a = stats();
    CHECK_INT(layer(k, bias, cin, cout, in, got, ugot), 0);
    bn_kcache_stats b = stats();
    CHECK_INT((int)(b.failed - a.failed), 1);
    CHECK_INT((int)(b.stored - a.stored), 0);
    CHECK(memcmp(ugot, uwant, ub) == 0);
    CHECK(memcmp(got, want, nout * sizeof(float)) == 0);

    /* off: nothing looked up, nothing written. */
    setenv("BOTTLENECK_KERNEL_CACHE", "off", 1);
    a = stats();
    CHECK_INT(layer(k2, bias, cin, cout, in, got, NULL), 0);
    b = stats();
    CHECK(b.hits == a.hits && b.misses == a.misses && b.stored == a.stored &&
          b.failed == a.failed && b.rejected == a.rejected);
    free(k);
    free(k2);
    free(bias);
    free(in);
    free(want);
    free(got);
    free(uwant);
    free(ugot);
}

/* ---- 3 ---------------------------------------------------------------------- */

static void test_weights_sha(const char *dir) {
    char kc[4096], sha[65];
    snprintf(kc, sizeof kc, "%s/kc-weights", dir);
    setenv("BOTTLENECK_KERNEL_CACHE", kc, 1);
    const char *h5 = shared_path("models/vgg16_random_notop.h5");
    CHECK_INT(bn_hash_sha256_file(h5, sha), 0);
    bn_error err;
    for (int round = 0; round < 3; round++) {
        if (round == 2) /* a memo that lies: its payload's digest no longer matches */
            flip_byte(entry(kc, "sha256-of-file-"), (2 << 20) + 3);
        bn_kcache_stats a = stats();
        bn_vgg16_weights w;
        CHECK_INT(bn_weights_load(&w, h5, &err), BN_OK);
        bn_kcache_stats b = stats();
        CHECK_STR(w.sha256, sha);
        CHECK_MSG(b.hits - a.hits == (round == 1), "round %d: %ld hits", round, b.hits - a.hits);
        CHECK_MSG(b.rejected - a.rejected == (round == 2), "round %d: %ld rejected", round,
                  b.rejected - a.rejected);
        bn_weights_free(&w);
    }
}

/* ---- 4 ---------------------------------------------------------------------- */

/* Extract ds into db; the vectors' bytes in path order into *out (malloc'ed). */
static int extract_vectors(const char *db, const bn_vgg16_weights *w, bn_dataset *ds, char **out,
                           size_t *len) {
    bn_error err;
    bn_store *s = NULL;
    bn_extractor *x = NULL;
    bn_extractor_opts o;
    bn_extractor_opts_default(&o);
    o.image.size = 64;
    o.batch = 2;
    bn_extractor_stats st;
    int rc = bn_store_open(&s, db, BN_STORE_CREATE, &err);
    rc = rc ? rc : bn_extractor_create(&x, s, w, &o, &err);
    rc = rc ? rc : bn_extractor_run(x, ds, NULL, NULL, &st, &err);
    if (rc)
        fprintf(stderr, "extract: %s\n", err.msg);
    *out = NULL;
    *len = 0;
    sqlite3_stmt *q;
    if (!rc && sqlite3_prepare_v2(bn_store_db(s),
                                  "SELECT v.vector FROM images i JOIN vectors v USING (sha256) "
                                  "ORDER BY i.path",
                                  -1, &q, NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            size_t n = (size_t)sqlite3_column_bytes(q, 0);
            *out = realloc(*out, *len + n);
            memcpy(*out + *len, sqlite3_column_blob(q, 0), n);
            *len += n;
        }
        sqlite3_finalize(q);
    }
    bn_extractor_free(x);
    bn_store_close(s);
    return rc;
}

static void test_extractor(const char *dir, const char *argv0) {
    bn_error err;
    CHECK_INT(bn_image_init(argv0, &err), BN_OK);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/ds/cat' '%s/ds/dog' && cd '%s/data/catsdogs/train' && "
             "cp $(ls cat/* | sort | head -2) '%s/ds/cat/' && cp $(ls dog/* | sort | head -1) "
             "'%s/ds/dog/'",
             dir, dir, getenv("BN_SHARED"), dir, dir);
    CHECK_INT(system(cmd), 0);
    bn_dataset ds;
    CHECK_INT(bn_dataset_scan(&ds, support_tmp_path("ds"), &err), BN_OK);
    bn_vgg16_weights w;
    CHECK_INT(bn_weights_load(&w, shared_path("models/vgg16_random_notop.h5"), &err), BN_OK);
    char kc[4096], db[4200];
    snprintf(kc, sizeof kc, "%s/kc-vgg16", dir);
    const char *modes[] = {"off", kc, kc}; /* off, then a miss, then a hit */
    char *want = NULL, *got;
    size_t wlen = 0, glen;
    for (int m = 0; m < 3; m++) {
        setenv("BOTTLENECK_KERNEL_CACHE", modes[m], 1);
        snprintf(db, sizeof db, "%s/v%d.db", dir, m);
        bn_kcache_stats a = stats();
        CHECK_INT(extract_vectors(db, &w, &ds, m ? &got : &want, m ? &glen : &wlen), BN_OK);
        bn_kcache_stats b = stats();
        if (m == 0) {
            CHECK_INT((int)wlen, 3 * 512 * 2 * 2 * 4);
            continue;
        }
        /* one U per Winograd layer: the 13 convolutions, but the first where
         * AUTO gives it to the small engine (conv_small.c: no transform) */
        const long nu = bn_conv_small_fits(3) ? 12 : 13;
        CHECK_MSG(m == 1 ? b.stored - a.stored == nu : b.hits - a.hits == nu,
                  "mode %d: %ld stored, %ld hits", m, b.stored - a.stored, b.hits - a.hits);
        CHECK_MSG(glen == wlen && memcmp(got, want, wlen) == 0,
                  "vectors with the cache (%s) differ from those without", m == 1 ? "miss" : "hit");
        free(got);
    }
    free(want);
    bn_weights_free(&w);
    bn_dataset_free(&ds);
    bn_image_shutdown();
}

int main(int argc, char **argv) {
    (void)argc;
    const char *dir = support_mkdtemp("bn-test-kcache");
    CHECK(dir != NULL);
    support_seed(16);
    test_transform_and_cache(dir);
    test_weights_sha(dir);
    test_extractor(dir, argv[0]);
    support_remove_tree(dir);
    return check_done();
}

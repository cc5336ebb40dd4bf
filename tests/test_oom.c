/*
 * test_oom.c: every allocation of the library failing in turn, SQLite's way.
 *
 * The program is linked with -Wl,--wrap for malloc, calloc, realloc,
 * strdup, strndup and aligned_alloc (tests/meson.build), so every call the
 * library's own code makes (libbottleneck.a is linked in statically) goes
 * through the wrappers below. For each operation, the test runs it with
 * the 1st allocation failing, then the 2nd, and so on until it succeeds
 * without a failure. Each failed run must return an error (not crash, not
 * claim success) and free what it allocated: under the ASan build
 * (-Db_sanitize=address) a double free, a use after free or a leak on any
 * of those paths fails the test; without it, the test still checks the
 * return values. Allocations made inside shared libraries (SQLite, libvips,
 * HDF5, protobuf-c) are not failed: they report their own errors.
 *
 * One thread: the countdown is per process, so the operations run
 * where it is deterministic.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "curves.h"
#include "dataset.h"
#include "error.h"
#include "featureset.h"
#include "graph.h"
#include "image.h"
#include "importer.h"
#include "metrics.h"
#include "npy.h"
#include "onnx.h"
#include "pca.h"
#include "resample.h"
#include "store.h"
#include "strset.h"
#include "support.h"
#include "sweep.h"
#include "train.h"
#include "trainjob.h"
#include "vec.h"
#include "vgg16.h"
#include "weights.h"

#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the wrappers ---------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

static long oom_countdown = -1; /* allocations left before one fails; -1: none fails */
static long oom_failed;         /* allocations failed since the last oom_arm */
/* Set by an operation that succeeded although an allocation failed because
 * it has a second way (the direct JPEG path declines, libvips decodes), and
 * that checked its result is the one it gives with no failure. */
static int oom_same_result;

/* 1: this allocation fails (the countdown reached it). BN_OOM_TRACE=1
 * prints where each failed allocation was called from (addr2line or gdb
 * read the addresses). */
static int oom_now(void) {
    /* (atomic: vec_knn's pool threads allocate too; which of two racing
     * allocations fails is then not fixed, but one does and must be
     * handled) */
    if (__atomic_load_n(&oom_countdown, __ATOMIC_RELAXED) < 0)
        return 0;
    if (__atomic_fetch_sub(&oom_countdown, 1, __ATOMIC_RELAXED) == 0) {
        __atomic_fetch_add(&oom_failed, 1, __ATOMIC_RELAXED);
        if (getenv("BN_OOM_TRACE")) {
            void *frames[40];
            int n = backtrace(frames, 40);
            backtrace_symbols_fd(frames, n, 2);
            fputs("--\n", stderr);
        }
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n) {
    return oom_now() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
    return oom_now() ? NULL : __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
    return oom_now() ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s) {
    return oom_now() ? NULL : __real_strdup(s);
}
char *__wrap_strndup(const char *s, size_t n) {
    return oom_now() ? NULL : __real_strndup(s, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
    return oom_now() ? NULL : __real_aligned_alloc(a, n);
}

/* SQLite's own allocator (sqlite3_config(SQLITE_CONFIG_MALLOC), the fault
 * injection SQLite's tests use): while oom_sqlite is set, SQLite's
 * allocations, and with them the SQL extension's (sqlite3_malloc), count
 * down and fail too. Each block carries its size in front (xSize). */
static int oom_sqlite;

static void *sq_malloc(int n) {
    if (oom_sqlite && oom_now())
        return NULL;
    char *p = __real_malloc((size_t)n + 16);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    return p + 16;
}
static void sq_free(void *p) {
    if (p)
        free((char *)p - 16);
}
static void *sq_realloc(void *p, int n) {
    if (!p)
        return sq_malloc(n);
    if (oom_sqlite && oom_now())
        return NULL;
    char *q = __real_realloc((char *)p - 16, (size_t)n + 16);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof n);
    return q + 16;
}
static int sq_size(void *p) {
    int n;
    memcpy(&n, (char *)p - 16, sizeof n);
    return n;
}
static int sq_roundup(int n) {
    return (n + 7) & ~7;
}
static int sq_init(void *x) {
    (void)x;
    return SQLITE_OK;
}
static void sq_shutdown(void *x) {
    (void)x;
}

static void oom_arm(long k) {
    oom_failed = 0;
    oom_same_result = 0;
    oom_countdown = k;
}

static void oom_disarm(void) {
    oom_countdown = -1;
}

/* An operation's set-up that is not under test (a model load before the
 * graph's own work) runs with the countdown held. */
static long oom_held = -1;
static void oom_countdown_pause(void) {
    oom_held = oom_countdown;
    oom_countdown = -1;
}
static void oom_countdown_resume(void) {
    oom_countdown = oom_held;
}

/* ---- the driver ------------------------------------------------------------ */

/* One operation: 0 done (and cleaned up after itself), else an error code,
 * having freed everything it allocated. */
typedef int oom_op(void *ctx, bn_error *err);

/* Runs op with the k-th allocation failing, k = 0, stride, 2 stride, ...,
 * until a run succeeds with none failed; checks that every failed run said
 * so. Returns how many allocations op makes (to the stride). Operations
 * whose SQLite allocations fail too make tens of thousands: they take every
 * stride-th (a prime, so that the points fall all over them), or every one
 * with BN_OOM_STRIDE=1 (about 4 minutes). */
static long oom_sweep_stride(const char *what, oom_op *op, void *ctx, long stride) {
    const char *e = getenv("BN_OOM_STRIDE");
    if (e && atol(e) >= 1)
        stride = atol(e);
    for (long k = 0;; k += stride) {
        bn_error err = {0};
        oom_arm(k);
        int rc = op(ctx, &err);
        long failed = oom_failed;
        oom_disarm();
        if (!failed) {
            CHECK_MSG(rc == 0, "%s: fails with no allocation failed: %s", what, err.msg);
            if (stride > 1)
                printf("%s: %ld allocations, every %ld-th failed in turn\n", what, k, stride);
            else
                printf("%s: %ld allocations, each failed in turn\n", what, k);
            return k;
        }
        CHECK_MSG(rc != 0 || oom_same_result, "%s: allocation %ld failed but it reports success",
                  what, k + 1);
        if (k > 100000) {
            CHECK_MSG(0, "%s: no end to its allocations", what);
            return k;
        }
    }
}

static long oom_sweep(const char *what, oom_op *op, void *ctx) {
    return oom_sweep_stride(what, op, ctx, 1);
}

/* ---- the operations ---------------------------------------------------------- */

static int op_resampler(void *ctx, bn_error *err) {
    (void)ctx;
    /* both axes resampled, then the vertical one an identity */
    static const bn_resample_plan plans[] = {
        {.width = 500,
         .height = 375,
         .bands = 3,
         .out_width = 256,
         .out_height = 256,
         .win_w = 224,
         .win_h = 224,
         .win_x = 16,
         .win_y = 16},
        {.width = 500,
         .height = 224,
         .bands = 3,
         .out_width = 224,
         .out_height = 224,
         .win_w = 224,
         .win_h = 224},
    };
    for (size_t i = 0; i < sizeof plans / sizeof *plans; i++) {
        bn_resampler *r;
        int rc = bn_resampler_new(&plans[i], "oom.jpg", &r, err);
        if (rc)
            return rc;
        bn_resampler_free(r);
    }
    return 0;
}

static int op_conv(void *ctx, bn_error *err) {
    const float *k = ctx; /* 5x5x8x8 = 1600 floats: enough for every layer here */
    bn_conv *c;
    int rc = bn_conv_create(&c, BN_CONV_WINOGRAD, 8, 8, k, k, err);
    if (rc)
        return rc;
    bn_conv_free(c);
    if ((rc = bn_conv_create(&c, BN_CONV_DIRECT, 8, 8, k, k, err)))
        return rc;
    bn_conv_free(c);
    bn_conv_geom g = {.cin = 8,
                      .cout = 8,
                      .kh = 5,
                      .kw = 5,
                      .sh = 1,
                      .sw = 1,
                      .dh = 1,
                      .dw = 1,
                      .pt = 2,
                      .pl = 2,
                      .pb = 2,
                      .pr = 2,
                      .group = 1,
                      .relu = 1};
    bn_conv_gemm *gc;
    if ((rc = bn_conv_gemm_create(&gc, &g, k, k, err)))
        return rc;
    bn_conv_gemm_free(gc);
    return 0;
}

static int op_strset(void *ctx, bn_error *err) {
    (void)ctx;
    bn_strset s;
    bn_strset_init(&s);
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        if (bn_strset_put(&s, key, i % 3 ? key : NULL)) {
            bn_strset_free(&s);
            return bn_fail(err, BN_ENOMEM, "strset: out of memory");
        }
    }
    int ok = bn_strset_has(&s, "key-7") && !bn_strset_has(&s, "key-200");
    bn_strset_free(&s);
    return ok ? 0 : bn_fail(err, BN_EINVAL, "strset: wrong contents");
}

static int op_dataset(void *ctx, bn_error *err) {
    const char *root = ctx;
    bn_dataset ds;
    int rc = bn_dataset_scan(&ds, root, err);
    if (rc)
        return rc;
    size_t n = ds.n;
    bn_dataset_free(&ds);
    return n == 6 ? 0 : bn_fail(err, BN_EINVAL, "%s: %zu images, expected 6", root, n);
}

static int op_train(void *ctx, bn_error *err) {
    const bn_data *d = ctx;
    bn_train_opts o;
    bn_train_opts_default(&o);
    o.standardize = 1;
    o.max_iter = 20;
    bn_model m;
    int rc = bn_model_init(&m, d->dim, d->k, err);
    if (rc)
        return rc;
    bn_train_info info;
    rc = bn_train(d, NULL, &o, &m, &info, err);
    bn_head h;
    if (rc == BN_OK && (rc = bn_head_from_model(&m, &h, err)) == BN_OK)
        bn_head_free(&h);
    bn_model_free(&m);
    return rc;
}

static int op_curves(void *ctx, bn_error *err) {
    (void)ctx;
    double score[64];
    unsigned char pos[64];
    for (int i = 0; i < 64; i++) {
        score[i] = (double)((i * 37) % 64) / 64.0;
        pos[i] = (unsigned char)(i % 3 == 0);
    }
    bn_curve c;
    int rc = bn_curves_roc(score, pos, 64, &c, NULL, err);
    if (rc)
        return rc;
    bn_curves_free(&c);
    if ((rc = bn_curves_pr(score, pos, 64, &c, NULL, err)))
        return rc;
    bn_curves_free(&c);
    if ((rc = bn_curves_calibration(score, pos, 64, 10, &c, NULL, err)))
        return rc;
    bn_curves_free(&c);
    return 0;
}

typedef struct {
    void *buf;
    size_t len;
} file_ctx;

static int op_onnx(void *ctx, bn_error *err) {
    file_ctx *o = ctx;
    bn_graph *g;
    int rc = bn_onnx_load_buffer(&g, o->buf, o->len, "squeezenet_v1.1.onnx", NULL, err);
    if (rc)
        return rc;
    bn_graph_free(g);
    return 0;
}

/* The loaded SqueezeNet made runnable at 64 x 64 (both engines) and run on
 * one image: the graph's plan, its layers' engines and its buffers. */
static int op_graph(void *ctx, bn_error *err) {
    file_ctx *o = ctx;
    static float in[64 * 64 * 3];
    for (int i = 0; i < 64 * 64 * 3; i++)
        in[i] = (float)((i * 13) % 29) / 29.0f - 0.5f;
    const char *keep = "pool10";
    for (int e = 0; e < 2; e++) {
        bn_graph *g;
        oom_countdown_pause();
        int rc = bn_onnx_load_buffer(&g, o->buf, o->len, "squeezenet_v1.1.onnx", NULL, err);
        oom_countdown_resume();
        if (rc)
            return rc;
        rc = bn_graph_infer(g, 64, 64, err);
        rc = rc ? rc : bn_graph_prepare(g, e ? BN_CONV_AUTO : BN_CONV_DIRECT, 1, &keep, 1, err);
        rc = rc ? rc : bn_graph_run(g, in, 1, err);
        bn_graph_free(g);
        if (rc)
            return rc;
    }
    return 0;
}

/* A photo decoded by libjpeg-turbo directly (out[1]), then by libvips
 * (out[0]). When the direct path runs out of memory it declines and
 * libvips decodes the photo: the same pixels as with no failure, or an
 * error. */
#define DECODE_FLOATS (224 * 224 * 3)
typedef struct {
    const void *buf;
    size_t len;
    float ref[2][DECODE_FLOATS], out[2][DECODE_FLOATS];
} decode_ctx;

static int decode_both(const decode_ctx *d, float (*out)[DECODE_FLOATS], bn_error *err) {
    bn_image_opts opts = {.size = 224};
    int rc = 0;
    for (int direct = 1; direct >= 0 && !rc; direct--) {
        bn_image_set_direct_jpeg(direct);
        rc = bn_image_decode(d->buf, d->len, "cat.jpg", &opts, out[direct], NULL, err);
    }
    bn_image_set_direct_jpeg(1);
    return rc;
}

static int op_decode(void *ctx, bn_error *err) {
    decode_ctx *d = ctx;
    int rc = decode_both(d, d->out, err);
    oom_same_result = !rc && memcmp(d->out, d->ref, sizeof d->out) == 0;
    return rc;
}

typedef struct {
    const float *x;
    const int *y;
    int n, dim;
} rows_ctx;

/* Several C at once on the rows, then in the row space (dim >= 2 rows),
 * standardised. */
static int op_sweep(void *ctx, bn_error *err) {
    const rows_ctx *r = ctx;
    const double Cs[3] = {0.01, 0.1, 1};
    bn_train_opts o;
    bn_train_opts_default(&o);
    o.max_iter = 30;
    for (int space = 0; space < 2; space++) {
        int n = space ? r->dim / 2 : r->n;
        o.standardize = space; /* (the models' mean and scale too) */
        bn_data d = {.dim = r->dim, .k = 2, .nblocks = 1};
        d.block[0] = (bn_block){r->x, r->y, n};
        bn_model m[3]; /* (initialised by the sweep, freed by it on failure) */
        bn_train_info info[3];
        bn_sweep_stats st;
        int rc = bn_sweep_train(&d, &o, Cs, 3, m, info, &st, err);
        for (int i = 0; rc == BN_OK && i < 3; i++)
            bn_model_free(&m[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* The metrics of a prediction (two classes, then three), a PCA of the rows. */
static int op_metrics_pca(void *ctx, bn_error *err) {
    const rows_ctx *r = ctx;
    double proba[60 * 3];
    for (int k = 2; k <= 3; k++) {
        for (int i = 0; i < 60; i++)
            for (int c = 0; c < k; c++)
                proba[i * k + c] = (c == (i * 7) % k ? 2.0 : 1.0) / (k + 1);
        int y[60];
        for (int i = 0; i < 60; i++)
            y[i] = i % k;
        bn_metrics m;
        int rc = bn_metrics_compute(y, proba, 60, k, &m, err);
        if (rc)
            return rc;
        bn_metrics_free(&m);
    }
    bn_pca p;
    int rc = bn_pca_fit(r->x, r->n, r->dim, 2, &p, err);
    if (rc)
        return rc;
    bn_pca_free(&p);
    return 0;
}

/* A .npy written and read back, then imported with an index as a feature
 * set of a new database (ctx: a folder). */
static int op_npy_import(void *ctx, bn_error *err) {
    const char *dir = ctx;
    char npy[1024], tsv[1024], db[1024];
    snprintf(npy, sizeof npy, "%s/m.npy", dir);
    snprintf(tsv, sizeof tsv, "%s/index.tsv", dir);
    snprintf(db, sizeof db, "%s/imported.db", dir);
    remove(db);
    float x[6 * 4];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i / 7.0f;
    int rc = bn_npy_save(npy, x, 6, 4, err);
    if (rc)
        return rc;
    float *back;
    int64_t rows, dim;
    if ((rc = bn_npy_load(npy, &back, &rows, &dim, err)))
        return rc;
    free(back);
    bn_importer_opts o = {.db = db, .name = "elsewhere", .npy = npy, .index = tsv, .quiet = 1};
    bn_importer_result res;
    oom_sqlite = 1;
    rc = bn_importer_run(&o, &res, err);
    oom_sqlite = 0;
    if (rc)
        return rc;
    /* and read back: the training rows, then all of them */
    bn_store *st;
    if ((rc = bn_store_open(&st, db, BN_STORE_READONLY, err)))
        return rc;
    for (int all = 0; all < 2 && !rc; all++) {
        bn_features f;
        rc = bn_featureset_load(st, res.featureset, all ? NULL : "train", &f, err);
        if (!rc && f.n != (all ? 6 : 4))
            rc = bn_fail(err, BN_EINVAL, "%s: %d rows read back", db, f.n);
        if (!rc)
            bn_featureset_free(&f);
    }
    bn_store_close(st);
    oom_same_result = rc == BN_OK; /* every row imported and read back */
    return rc;
}

/* bottleneck-classify train's job on a database of 40 imported vectors
 * (train, validation and test): two candidates, the choice refitted, all
 * stored in one transaction. A failed job must have stored nothing: the
 * sweeps in the database are counted before and after. */
static int count_sweeps(bn_store *st) {
    sqlite3_stmt *q;
    int n = -1;
    if (sqlite3_prepare_v2(bn_store_db(st), "SELECT count(*) FROM sweeps", -1, &q, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
    }
    return n;
}

static int op_trainjob(void *ctx, bn_error *err) {
    bn_store *st = ctx;
    bn_train_opts grid[2];
    for (int i = 0; i < 2; i++) {
        bn_train_opts_default(&grid[i]);
        grid[i].C = i ? 1.0 : 0.01;
    }
    bn_trainjob_opts o = {.select = "accuracy", .grid = grid, .ngrid = 2, .refit = 1};
    oom_countdown_pause();
    int before = count_sweeps(st);
    oom_countdown_resume();
    /* the job before (failed or not) left no transaction open */
    CHECK_MSG(sqlite3_get_autocommit(bn_store_db(st)), "trainjob: a transaction is still open");
    bn_trainjob j;
    oom_sqlite = 1;
    int rc = bn_trainjob_run(st, &o, &j, err);
    oom_sqlite = 0;
    bn_trainjob_free(&j);
    oom_countdown_pause();
    int after = count_sweeps(st);
    oom_countdown_resume();
    CHECK_MSG(before >= 0 && after == before + (rc == BN_OK),
              "trainjob: %d sweeps before, %d after a job that returned %d", before, after, rc);
    oom_same_result = rc == BN_OK && after == before + 1;
    return rc;
}

/* The SQL functions on the imported vectors: element-wise ones, vec_avg,
 * vec_each, vec_knn before and after vec_knn_pack, with SQLite's own
 * allocations failing too. Each run must fail, or give every row as a run
 * with no failure does (SQLite lives through some failed allocations by
 * design: a cache that does not grow): the rows' text is hashed and
 * compared. The pack is undone (ROLLBACK) so that each run starts
 * unpacked. */
typedef struct {
    const char *path;
    uint64_t hash, ref; /* FNV-1a of every value's text, NULL as a marker */
} sql_ctx;

static void fnv(uint64_t *h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ ((const unsigned char *)p)[i]) * 1099511628211u;
}

static int op_sql(void *vctx, bn_error *err) {
    sql_ctx *ctx = vctx;
    const char *path = ctx->path;
    ctx->hash = 14695981039346656037u;
    sqlite3 *db;
    oom_countdown_pause();
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    oom_countdown_resume();
    if (rc != SQLITE_OK)
        return bn_fail(err, BN_EIO, "%s: %s", path, sqlite3_errmsg(db));
    static const char *const sql[] = {
        "SELECT vec_to_json(vec_add(vec_normalize(vector), vec_slice(vector, 0, 8))), "
        "vec_distance_cosine(vector, vec_f16(vector, dtype)), vec_dot(vector, vector) FROM "
        "embeddings",
        "SELECT label, vec_to_json(vec_avg(vector)) FROM embeddings GROUP BY label",
        "SELECT sum(value) FROM embeddings, vec_each(embeddings.vector)",
        "SELECT path, distance FROM vec_knn((SELECT vector FROM embeddings LIMIT 1), 5, 'rows')",
        "BEGIN",
        "SELECT vec_knn_pack('rows')",
        "SELECT path, distance FROM vec_knn((SELECT vector FROM embeddings LIMIT 1), 5, 'rows', "
        "'l2')",
        "ROLLBACK",
    };
    oom_sqlite = 1;
    rc = bn_vec_register(db);
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof sql / sizeof *sql; i++) {
        sqlite3_stmt *q;
        rc = sqlite3_prepare_v2(db, sql[i], -1, &q, NULL);
        while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            rc = SQLITE_OK;
            for (int c = 0; c < sqlite3_column_count(q); c++) {
                const unsigned char *t = sqlite3_column_text(q, c);
                if (!t && sqlite3_column_type(q, c) != SQLITE_NULL) {
                    rc = SQLITE_NOMEM; /* the value's text could not be made */
                    break;
                }
                fnv(&ctx->hash, t ? (const char *)t : "\x01NULL", t ? strlen((const char *)t) : 5);
                fnv(&ctx->hash, "\t", 1);
            }
        }
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        if (rc != SQLITE_OK)
            bn_fail(err, BN_EIO, "%s: %s", sql[i], sqlite3_errmsg(db));
        sqlite3_finalize(q);
    }
    oom_sqlite = 0;
    oom_countdown_pause();
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* (after a failure inside BEGIN) */
    sqlite3_close(db);
    oom_countdown_resume();
    oom_same_result = rc == SQLITE_OK && ctx->hash == ctx->ref;
    return rc == SQLITE_OK ? 0 : BN_EIO;
}

/* VGG16 to block3_pool (the first layer's small engine, the Winograd and
 * direct engines, fused pools; the deeper blocks only repeat them at the
 * cost of their 400 MB of transformed kernels per run) at 32 x 32 for
 * batches of 2, one batch through it (ctx: the weights). */
static int op_vgg16(void *ctx, bn_error *err) {
    const bn_vgg16_weights *w = ctx;
    static float in[2 * 32 * 32 * 3], out[2 * 256];
    for (int i = 0; i < 2 * 32 * 32 * 3; i++)
        in[i] = (float)((i * 7) % 255) - 120.0f;
    const bn_conv_engine engines[2] = {BN_CONV_DIRECT, BN_CONV_AUTO};
    for (int e = 0; e < 2; e++) {
        bn_vgg16 *net;
        int rc = bn_vgg16_create(&net, w, engines[e], 32, 2, BN_LAYER_BLOCK3_POOL, err);
        if (rc)
            return rc;
        rc = bn_vgg16_forward(net, in, 2, BN_LAYER_BLOCK3_POOL, BN_POOLING_AVG, out, err);
        bn_vgg16_free(net);
        if (rc)
            return rc;
    }
    return 0;
}

/* A new database, its schema made and migrated, closed, and opened again
 * read-only. */
static int op_store(void *ctx, bn_error *err) {
    const char *path = ctx;
    char side[1100];
    remove(path);
    snprintf(side, sizeof side, "%s-wal", path);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", path);
    remove(side);
    bn_store *st;
    oom_sqlite = 1;
    int rc = bn_store_open(&st, path, BN_STORE_CREATE, err);
    if (rc == BN_OK) {
        bn_store_close(st);
        rc = bn_store_open(&st, path, BN_STORE_READONLY, err);
    }
    oom_sqlite = 0;
    if (rc)
        return rc;
    /* a success despite a failed allocation must still be the whole schema */
    oom_same_result = bn_store_version(st) == bn_store_latest_version();
    bn_store_close(st);
    return 0;
}

static int op_weights(void *ctx, bn_error *err) {
    bn_vgg16_weights w;
    int rc = bn_weights_load(&w, ctx, err);
    if (rc)
        return rc;
    bn_weights_free(&w);
    return 0;
}

/* ---- main ----------------------------------------------------------------------- */

/* The whole file at path (malloc'ed, *len bytes), or NULL after a failed
 * check. */
static void *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "%s: cannot open", path);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*len);
    int ok = buf && fread(buf, 1, *len, f) == *len;
    CHECK_MSG(ok, "%s: cannot read", path);
    fclose(f);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void touch(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f)
        fclose(f);
}

int main(void) {
    bn_cpu_set_threads(1);
    static const sqlite3_mem_methods sq = {sq_malloc,  sq_free, sq_realloc,  sq_size,
                                           sq_roundup, sq_init, sq_shutdown, NULL};
    CHECK_INT(sqlite3_config(SQLITE_CONFIG_MALLOC, &sq), SQLITE_OK);

    oom_sweep("bn_resampler_new", op_resampler, NULL);

    float *k = malloc(1600 * sizeof *k);
    for (int i = 0; k && i < 1600; i++)
        k[i] = (float)((i * 7919) % 101) / 101.0f - 0.5f;
    oom_sweep("bn_conv_create, bn_conv_gemm_create", op_conv, k);
    free(k);

    oom_sweep("bn_strset_put", op_strset, NULL);
    oom_sweep("bn_curves", op_curves, NULL);

    /* a split layout with a file beside the classes and a link between them */
    const char *root = support_mkdtemp("oom");
    if (root) {
        char p[1024];
        const char *dirs[] = {"train", "train/cat", "train/dog", "validation", "validation/cat"};
        for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
            snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
            mkdir(p, 0755);
        }
        snprintf(p, sizeof p, "%s/train", root);
        touch(p, "notes.txt");
        snprintf(p, sizeof p, "%s/train/cat", root);
        touch(p, "a.jpg");
        touch(p, "b.jpg");
        snprintf(p, sizeof p, "%s/train/dog", root);
        touch(p, "c.jpg");
        touch(p, "d.png");
        snprintf(p, sizeof p, "%s/validation/cat", root);
        touch(p, "e.jpg");
        touch(p, "f.jpg");
        char link[1024];
        snprintf(link, sizeof link, "%s/train/cat/dogs", root);
        snprintf(p, sizeof p, "%s/train/dog", root);
        CHECK(symlink(p, link) == 0);
        oom_sweep("bn_dataset_scan", op_dataset, (void *)root);
        support_remove_tree(root);
    }

    /* two classes, more dims than rows / 2: the sweep on the rows and in
     * the row space */
    {
        enum { SN = 80, SD = 60 };
        float *sx = malloc((size_t)SN * SD * sizeof *sx);
        int *sy = malloc(SN * sizeof *sy);
        if (sx && sy) {
            for (int i = 0; i < SN; i++) {
                sy[i] = i % 2;
                for (int j = 0; j < SD; j++)
                    sx[i * SD + j] = (float)(((i * 29 + j * 11) % 19) - 9) / 5.0f + 0.5f * sy[i];
            }
            rows_ctx r = {sx, sy, SN, SD};
            oom_sweep("bn_sweep_train (rows, row space)", op_sweep, &r);
        }
        free(sx);
        free(sy);
    }

    /* three classes, a few rows: the softmax path and the scaler */
    enum { N = 60, DIM = 12 };
    float *x = malloc((size_t)N * DIM * sizeof *x);
    int *y = malloc(N * sizeof *y);
    if (x && y) {
        for (int i = 0; i < N; i++) {
            y[i] = i % 3;
            for (int j = 0; j < DIM; j++)
                x[i * DIM + j] = (float)(((i * 31 + j * 17) % 23) - 11) / 7.0f + (j == y[i]);
        }
        bn_data d = {.dim = DIM, .k = 3, .nblocks = 1};
        d.block[0] = (bn_block){x, y, N};
        oom_sweep("bn_train (3 classes)", op_train, &d);
        for (int i = 0; i < N; i++)
            y[i] = i % 2;
        d.k = 2;
        oom_sweep("bn_train (2 classes)", op_train, &d);
        rows_ctx rc2 = {x, y, N, DIM};
        oom_sweep("bn_metrics_compute (2, 3 classes), bn_pca_fit", op_metrics_pca, &rc2);
    }
    free(x);
    free(y);

    const char *dir = support_mkdtemp("oomdb");
    if (dir) {
        char db[1024];
        snprintf(db, sizeof db, "%s/oom.db", dir);
        oom_sweep_stride("bn_store_open (create, then read-only)", op_store, db, 53);
        char tsv[1024];
        snprintf(tsv, sizeof tsv, "%s/index.tsv", dir);
        FILE *f = fopen(tsv, "w");
        if (f) {
            fputs("relpath\tlabel\tsplit\tsha256\n", f);
            for (int i = 0; i < 6; i++)
                fprintf(f, "%s/%d.jpg\t%s\t%s\t%064d\n", i % 2 ? "dog" : "cat", i,
                        i % 2 ? "dog" : "cat", i < 4 ? "train" : "validation", i + 1);
            fclose(f);
            oom_sweep_stride("bn_npy_save, bn_npy_load, bn_importer_run, bn_featureset_load",
                             op_npy_import, (void *)dir, 53);
        }
        /* 40 rows for bottleneck-classify train's job */
        char npy[1024], db2[1024];
        snprintf(npy, sizeof npy, "%s/rows.npy", dir);
        snprintf(tsv, sizeof tsv, "%s/rows.tsv", dir);
        snprintf(db2, sizeof db2, "%s/train.db", dir);
        float x[40 * 8];
        for (int i = 0; i < 40; i++)
            for (int j = 0; j < 8; j++)
                x[i * 8 + j] = (float)(((i * 13 + j * 7) % 17) - 8) / 4.0f + (j < 2) * (i % 2);
        bn_error err;
        int rc = bn_npy_save(npy, x, 40, 8, &err);
        CHECK_INT(rc, BN_OK);
        f = fopen(tsv, "w");
        if (f && rc == BN_OK) {
            fputs("relpath\tlabel\tsplit\tsha256\n", f);
            for (int i = 0; i < 40; i++)
                fprintf(f, "%d.jpg\t%s\t%s\t%064d\n", i, i % 2 ? "dog" : "cat",
                        i < 24   ? "train"
                        : i < 32 ? "validation"
                                 : "test",
                        i + 1);
            fclose(f);
            bn_importer_opts io = {.db = db2, .name = "rows", .npy = npy, .index = tsv, .quiet = 1};
            bn_importer_result ir;
            bn_store *st;
            CHECK_INT(rc = bn_importer_run(&io, &ir, &err), BN_OK);
            if (rc == BN_OK && (rc = bn_store_open(&st, db2, 0, &err)) == BN_OK) {
                oom_sweep_stride("bn_trainjob_run (2 candidates, refit, stored)", op_trainjob, st,
                                 7);
                bn_store_close(st);
                sql_ctx sc = {.path = db2};
                CHECK_INT(op_sql(&sc, &err), 0);
                sc.ref = sc.hash;
                oom_sweep("the SQL functions (vec_*, vec_avg, vec_each, vec_knn, vec_knn_pack), "
                          "SQLite's allocations failing too",
                          op_sql, &sc);
            }
            CHECK_INT(rc, BN_OK);
        } else if (f) {
            fclose(f);
        }
        support_remove_tree(dir);
    }

    const char *shared = getenv("BN_SHARED");
    if (shared) {
        char h5[1024];
        snprintf(h5, sizeof h5, "%s/models/vgg16_random_notop.h5", shared);
        oom_sweep("bn_weights_load (VGG16 .h5)", op_weights, h5);
        bn_vgg16_weights w;
        bn_error werr;
        int wrc = bn_weights_load(&w, h5, &werr);
        CHECK_INT(wrc, BN_OK);
        if (wrc == BN_OK) {
            oom_sweep("bn_vgg16_create, _forward (to block3_pool, 32 x 32, direct and auto)",
                      op_vgg16, &w);
            bn_weights_free(&w);
        }

        char path[1024];
        snprintf(path, sizeof path, "%s/models/squeezenet_v1.1.onnx", shared);
        file_ctx o;
        o.buf = read_whole(path, &o.len);
        if (o.buf) {
            oom_sweep("bn_onnx_load_buffer (SqueezeNet)", op_onnx, &o);
            oom_sweep("bn_graph_infer, _prepare, _run (SqueezeNet, 64 x 64, both engines)",
                      op_graph, &o);
        }
        free(o.buf);
        snprintf(path, sizeof path, "%s/data/catsdogs/train/cat/cat.1000.jpg", shared);
        bn_error err;
        size_t len;
        void *buf = read_whole(path, &len);
        decode_ctx *d = malloc(sizeof *d);
        CHECK(d != NULL);
        if (buf && d && bn_image_init("test_oom", &err) == BN_OK) {
            d->buf = buf;
            d->len = len;
            CHECK_INT(decode_both(d, d->ref, &err), BN_OK);
            oom_sweep("bn_image_decode (libjpeg-turbo, libvips)", op_decode, d);
        }
        free(d);
        free(buf);
    }
    return check_done();
}

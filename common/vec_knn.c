/*
 * vec_knn.c: the table-valued function vec_knn(query, k, featureset
 * [, metric]), the k nearest images of one feature set, and
 * vec_knn_pack(featureset), which writes the contiguous copy it reads
 * fastest (docs/SQL.md, docs/PERFORMANCE.md "Search").
 *
 * Owns: the eponymous virtual table vec_knn, its three sources of vectors and
 * its connection cache; exports bn_vec_knn_register and bn_vec_knn_pack
 * (vec.h). The only vec module that knows the bottleneck schema. It reads:
 *   - vector_chunks (schema/007_search.sql) when the feature set is packed:
 *     a few MB of vectors per row, read with sqlite3_blob_read;
 *   - otherwise the rows of `vectors`: SELECT sha256, vector FROM vectors
 *     WHERE featureset = ? (the documented internal query: no join per row);
 *   - and, for the k winners only, their images through images and datasets
 *     by sha256 (the columns the `embeddings` view shows).
 *
 *   SELECT path, label, split, sha256, distance, dataset
 *   FROM vec_knn(query, k, featureset [, metric])
 *   [WHERE split = ? AND label = ? AND path != ? AND sha256 != ? AND dataset = ?]
 *
 * A query has two steps. (1) The distance of the query to every vector of the
 * feature set, by vector (not by image), with the kernels of vec_kernels.c,
 * so every distance is the scalar SQL form's to the last bit. (2) The
 * vectors in increasing (distance, position) order, their images looked up
 * and filtered by the WHERE terms listed, into a heap of the k best (ties by
 * path), until the next vector is farther than the k-th image kept. The WHERE
 * terms are thus applied before ranking, so "the 10 nearest in the train
 * split" and "excluding the query image" mean what they say; vectors whose
 * distance is undefined (cosine of a zero vector, NaNs) are skipped.
 *
 * Where the time goes (10,000 x 1,024 floats, 41 MB, on a fresh connection):
 * walking `vectors` costs about 1 us a row in SQLite's b-tree (a 4 KB vector
 * spans a leaf and an overflow page), which no arithmetic can hide. Packed,
 * the same bytes are a few long overflow chains; with SQLite's memory map on
 * for the scan, reading them is a memcpy. While thread 0 reads (every SQLite
 * call stays on the caller's thread), thread 1 computes (common/pool.h).
 *
 * The connection cache: the second query on a feature set that has not
 * changed loads it into memory (decoded, with norms; up to knn_cache_max()
 * bytes), and later queries rank from there on all threads. It is keyed by
 * (feature set, sqlite3_total_changes, SQLITE_FCNTL_DATA_VERSION): any write
 * by this connection or a commit by another one makes it stale. It is only
 * built outside explicit transactions (a ROLLBACK changes neither number).
 */
#include "f16.h"
#include "pool.h"
#include "vec.h"
#include "vec_internal.h"
/* after vec_internal.h: in the loadable extension its inline sqlite3_exec
 * must go through the host's API table (sqlite3ext.h's macros) */
#include "sql_end.h"

#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The cache's budget: 1 GiB (10,000 VGG16 vectors of 25,088 floats), or half
 * of SQLite's soft heap limit when one is set (PRAGMA soft_heap_limit,
 * sqlite3_soft_heap_limit64). A larger set is streamed for each query. */
#define KNN_CACHE_MAX ((int64_t)1 << 30)

static int64_t knn_cache_max(void) {
    int64_t lim = sqlite3_soft_heap_limit64(-1);
    return lim > 0 && lim / 2 < KNN_CACHE_MAX ? lim / 2 : KNN_CACHE_MAX;
}

/* Vectors per chunk row: about 4 MiB of them (1,024 GoogLeNet vectors, 41
 * VGG16 ones): long sequential reads, few rows. */
#define KNN_CHUNK_BYTES ((int64_t)4 << 20)
/* The piece read at a time: stays in the L2 cache while it is computed. */
#define KNN_PIECE_BYTES ((int64_t)256 << 10)
#define KNN_SLOTS 4
/* Below this many bytes of vectors one thread is quicker than two. */
#define KNN_THREADS_MIN_BYTES ((int64_t)2 << 20)

enum {
    KNN_PATH,
    KNN_LABEL,
    KNN_SPLIT,
    KNN_SHA256,
    KNN_DISTANCE,
    KNN_QUERY,
    KNN_K,
    KNN_FEATURESET,
    KNN_METRIC,
    KNN_DATASET /* last, so that the hidden columns keep their places */
};

/* idxNum bits: which arguments xFilter receives, in this order. */
enum {
    KNN_HAS_QUERY = 1,
    KNN_HAS_K = 2,
    KNN_HAS_FEATURESET = 4,
    KNN_HAS_METRIC = 8,
    KNN_HAS_SPLIT = 16,
    KNN_HAS_LABEL = 32,
    KNN_HAS_NOT_PATH = 64,
    KNN_HAS_NOT_SHA256 = 128,
    KNN_HAS_DATASET = 256,
    KNN_NARGS = 9
};

/* A result row; its strings are its own (sqlite3_malloc'd). */
typedef struct {
    double distance;
    char *path, *label, *split, *sha256, *dataset;
} knn_row;

/* One feature set's vectors in memory: n vectors of dim floats, their
 * squared norms, their sha256 (not terminated). */
typedef struct {
    int64_t fsid, dim, n;
    int changes;      /* sqlite3_total_changes when loaded */
    unsigned version; /* SQLITE_FCNTL_DATA_VERSION when loaded */
    float *vecs;
    double *norm2;
    char *sha;    /* the sha256s: 64 characters each, or as off says */
    int64_t *off; /* vector i's sha256 is sha[off[i], off[i + 1]); NULL: 64 each */
} knn_cache;

typedef struct {
    sqlite3_vtab base;
    sqlite3 *db;
    int pool;        /* holds a reference to the thread pool */
    knn_cache cache; /* valid when cache.vecs */
    /* the last feature set streamed, and the database's state then: a second
     * query on it, unchanged, loads the cache */
    int64_t seen_fsid;
    int seen_changes;
    unsigned seen_version;
} knn_vtab;

typedef struct {
    sqlite3_vtab_cursor base;
    knn_row *rows; /* a max-heap while ranking, sorted ascending after */
    int64_t nrows, cap;
    int64_t pos;
} knn_cursor;

/* The WHERE terms vec_knn applies itself. A NULL value matches nothing, as
 * in SQL. */
typedef struct {
    sqlite3_value *split, *label, *not_path, *not_sha256, *dataset;
} knn_where;

/* A feature set: what the query and the stored vectors must look like. */
typedef struct {
    int64_t id, dim;
    int type; /* BN_VEC_F32 | BN_VEC_F16 */
    char *name;
} knn_fs;

/* The query, ready for the kernels. */
typedef struct {
    int metric;
    const float *q;
    double qn2; /* |q|^2 */
    int64_t dim;
} knn_q;

/* Step 1's result: the distance to each of n vectors (NaN: undefined), and
 * each vector's sha256 (its own, or the cache's; 64 characters each unless
 * off says otherwise: a database written by hand may hold other keys). */
typedef struct {
    double *d;
    const char *sha;
    char *sha_own;
    const int64_t *off; /* as in knn_cache */
    int64_t *off_own;
    int64_t n;
    /* approx: d holds lower bounds, from the packed halves (norm2: |v|^2 of
     * the stored vectors, err: 2 per vector, L2 and L1 of the rounding) */
    int approx;
    double *norm2, *err;
} knn_dists;

/* Where the last query on this thread read its vectors (for tests). */
static _Thread_local int knn_last_source;

int bn_vec_knn_last_source(void) {
    return knn_last_source;
}

static int knn_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                       sqlite3_vtab **out, char **err) {
    (void)aux;
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(path TEXT, label TEXT, split TEXT, "
                                      "sha256 TEXT, distance REAL, query HIDDEN, k HIDDEN, "
                                      "featureset HIDDEN, metric HIDDEN, dataset TEXT)");
    if (rc != SQLITE_OK)
        return rc;
    knn_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->db = db;
    /* two threads: one reads, one computes (more would wait on SQLite). The
     * CPUs from sysconf, not cpu.h: the extension does not link OpenBLAS. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    vt->pool = bn_pool_acquire(cpus >= 2 ? 2 : 1) == 0;
    *out = &vt->base;
    return SQLITE_OK;
}

static void knn_cache_free(knn_cache *c) {
    sqlite3_free(c->vecs);
    sqlite3_free(c->norm2);
    sqlite3_free(c->sha);
    sqlite3_free(c->off);
    memset(c, 0, sizeof *c);
}

static int knn_disconnect(sqlite3_vtab *v) {
    knn_vtab *vt = (knn_vtab *)v;
    knn_cache_free(&vt->cache);
    if (vt->pool)
        bn_pool_release();
    sqlite3_free(vt);
    return SQLITE_OK;
}

static int knn_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
    (void)vt;
    int at[KNN_NARGS];
    for (int j = 0; j < KNN_NARGS; j++)
        at[j] = -1;
    int unusable = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        int bit = -1;
        if (c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
            switch (c->iColumn) {
            case KNN_QUERY: bit = 0; break;
            case KNN_K: bit = 1; break;
            case KNN_FEATURESET: bit = 2; break;
            case KNN_METRIC: bit = 3; break;
            case KNN_SPLIT: bit = 4; break;
            case KNN_LABEL: bit = 5; break;
            case KNN_DATASET: bit = 8; break;
            }
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_NE) {
            if (c->iColumn == KNN_PATH)
                bit = 6;
            else if (c->iColumn == KNN_SHA256)
                bit = 7;
        }
        if (bit < 0)
            continue;
        /* A filter on a visible column is only applied here when it compares
         * as SQLite's own = and != would (BINARY collation); x IN (...) would
         * call xFilter once per value (a top-k per value, concatenated). Both
         * are left to SQLite, after ranking. */
        if (bit >= 4) {
            const char *coll = sqlite3_vtab_collation(info, i);
            if (coll && sqlite3_stricmp(coll, "BINARY") != 0)
                continue;
        }
#if SQLITE_VERSION_NUMBER >= 3038000
        /* (the extension may run in an older host than its headers) */
        if (c->usable && sqlite3_libversion_number() >= 3038000 && sqlite3_vtab_in(info, i, -1))
            continue;
#endif
        if (!c->usable) {
            unusable = 1;
            continue;
        }
        if (at[bit] < 0)
            at[bit] = i;
    }
    /* A plan where an argument or a filter exists but its value is not known
     * yet (a join in the other order) is refused: SQLite then picks an order
     * that binds it, so a filter such as k.path != e.path always applies
     * before ranking, whatever the plan. Arguments absent altogether are
     * reported by xFilter. */
    if (unusable)
        return SQLITE_CONSTRAINT;
    int idx = 0, argv_index = 0;
    for (int j = 0; j < KNN_NARGS; j++) {
        if (at[j] < 0)
            continue;
        idx |= 1 << j;
        info->aConstraintUsage[at[j]].argvIndex = ++argv_index;
        /* The hidden arguments are consumed; the filters are re-checked by
         * SQLite too, which costs nothing and keeps exotic cases exact. */
        info->aConstraintUsage[at[j]].omit = j <= 3;
    }
    info->idxNum = idx;
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == KNN_DISTANCE && !info->aOrderBy[0].desc)
        info->orderByConsumed = 1;
    int complete = (idx & 7) == 7;
    info->estimatedCost = complete ? 1e6 : 1e12;
    info->estimatedRows = complete ? 10 : 1000000;
    return SQLITE_OK;
}

/* Is row a ranked after row b? Larger distance, then larger path. */
static int knn_after(const knn_row *a, const knn_row *b) {
    if (a->distance != b->distance)
        return a->distance > b->distance;
    return strcmp(a->path, b->path) > 0;
}

/* Max-heaps of n elements of `size` bytes at h, ordered by after(a, b) (a
 * ranks after b): the k best rows, and the candidates of knn_select. */
typedef int (*knn_after_fn)(const void *a, const void *b);

static void knn_swap(char *a, char *b, size_t size) {
    char t[64]; /* the largest element: a knn_row */
    _Static_assert(sizeof(knn_row) <= sizeof t, "knn_swap's buffer");
    memcpy(t, a, size);
    memcpy(a, b, size);
    memcpy(b, t, size);
}

static void knn_sift_down(void *heap, size_t size, int64_t n, int64_t i, knn_after_fn after) {
    char *h = heap;
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && after(h + l * size, h + m * size))
            m = l;
        if (r < n && after(h + r * size, h + m * size))
            m = r;
        if (m == i)
            return;
        knn_swap(h + i * size, h + m * size, size);
        i = m;
    }
}

static void knn_sift_up(void *heap, size_t size, int64_t i, knn_after_fn after) {
    char *h = heap;
    while (i > 0 && after(h + i * size, h + (i - 1) / 2 * size)) {
        knn_swap(h + i * size, h + (i - 1) / 2 * size, size);
        i = (i - 1) / 2;
    }
}

static int knn_row_after(const void *a, const void *b) {
    return knn_after(a, b);
}

static char *knn_strdup(const char *s) {
    return s ? sqlite3_mprintf("%s", s) : NULL;
}

static int knn_cmp(const void *pa, const void *pb) {
    const knn_row *a = pa, *b = pb;
    return knn_after(a, b) ? 1 : knn_after(b, a) ? -1 : 0;
}

static int knn_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
    (void)vt;
    knn_cursor *cur = sqlite3_malloc(sizeof *cur);
    if (!cur)
        return SQLITE_NOMEM;
    memset(cur, 0, sizeof *cur);
    *out = &cur->base;
    return SQLITE_OK;
}

static void knn_row_free(knn_row *r) {
    sqlite3_free(r->path);
    sqlite3_free(r->label);
    sqlite3_free(r->split);
    sqlite3_free(r->sha256);
    sqlite3_free(r->dataset);
}

static void knn_reset(knn_cursor *cur) {
    for (int64_t i = 0; i < cur->nrows; i++)
        knn_row_free(&cur->rows[i]);
    sqlite3_free(cur->rows);
    cur->rows = NULL;
    cur->nrows = cur->cap = cur->pos = 0;
}

static int knn_close(sqlite3_vtab_cursor *c) {
    knn_cursor *cur = (knn_cursor *)c;
    knn_reset(cur);
    sqlite3_free(cur);
    return SQLITE_OK;
}

/* Offer an image to the heap of at most k rows; its strings are copied only
 * when it gets in. */
static int knn_offer(knn_cursor *cur, int64_t k, double d, const char *path, const char *label,
                     const char *split, const char *sha256, const char *dataset) {
    knn_row cand = {d, (char *)path, NULL, NULL, NULL, NULL};
    if (cur->nrows == k) {
        if (!knn_after(&cur->rows[0], &cand))
            return SQLITE_OK;
        knn_row_free(&cur->rows[0]);
        cur->rows[0] = cur->rows[--cur->nrows];
        knn_sift_down(cur->rows, sizeof *cur->rows, cur->nrows, 0, knn_row_after);
    }
    if (cur->nrows == cur->cap) {
        int64_t cap = cur->cap ? 2 * cur->cap : 16;
        if (cap > k)
            cap = k;
        knn_row *r = sqlite3_realloc64(cur->rows, (sqlite3_uint64)cap * sizeof *r);
        if (!r)
            return SQLITE_NOMEM;
        cur->rows = r;
        cur->cap = cap;
    }
    cand.path = knn_strdup(path);
    cand.label = knn_strdup(label);
    cand.split = knn_strdup(split);
    cand.sha256 = knn_strdup(sha256);
    cand.dataset = knn_strdup(dataset);
    if (!cand.path || (label && !cand.label) || (split && !cand.split) ||
        (sha256 && !cand.sha256) || (dataset && !cand.dataset)) {
        knn_row_free(&cand);
        return SQLITE_NOMEM;
    }
    cur->rows[cur->nrows++] = cand;
    knn_sift_up(cur->rows, sizeof *cur->rows, cur->nrows - 1, knn_row_after);
    return SQLITE_OK;
}

static int knn_error(knn_cursor *cur, int rc, const char *fmt, ...) {
    sqlite3_vtab *vt = cur->base.pVtab;
    sqlite3_free(vt->zErrMsg);
    va_list ap;
    va_start(ap, fmt);
    vt->zErrMsg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    return rc;
}

/* s = v (SQL =, BINARY): false when either is NULL. */
static int knn_eq(const char *s, sqlite3_value *v) {
    const char *t = (const char *)sqlite3_value_text(v);
    return s && t && strcmp(s, t) == 0;
}

static int knn_keep(const knn_where *w, const char *path, const char *label, const char *split,
                    const char *sha256, const char *dataset) {
    if (w->split && !knn_eq(split, w->split))
        return 0;
    if (w->dataset && !knn_eq(dataset, w->dataset))
        return 0;
    if (w->label && !knn_eq(label, w->label))
        return 0;
    if (w->not_path &&
        (sqlite3_value_type(w->not_path) == SQLITE_NULL || knn_eq(path, w->not_path)))
        return 0;
    if (w->not_sha256 &&
        (sqlite3_value_type(w->not_sha256) == SQLITE_NULL || knn_eq(sha256, w->not_sha256)))
        return 0;
    return 1;
}

/* The feature set named (or numbered) by val. */
static int knn_featureset(knn_cursor *cur, sqlite3 *db, sqlite3_value *val, knn_fs *fs) {
    if (sqlite3_value_type(val) == SQLITE_NULL)
        return knn_error(cur, SQLITE_ERROR, "vec_knn: the feature set is NULL");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, dim, dtype, name FROM featuresets "
                                "WHERE name = ?1 OR id = ?1 ORDER BY name = ?1 DESC LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the feature sets (%s)", sqlite3_errmsg(db));
    sqlite3_bind_value(st, 1, val);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        fs->id = sqlite3_column_int64(st, 0);
        fs->dim = sqlite3_column_int64(st, 1);
        const char *dt = (const char *)sqlite3_column_text(st, 2);
        fs->type = dt && strcmp(dt, "f16") == 0 ? BN_VEC_F16 : BN_VEC_F32;
        fs->name = knn_strdup((const char *)sqlite3_column_text(st, 3));
        rc = fs->name ? SQLITE_OK : SQLITE_NOMEM;
        if (rc == SQLITE_OK && fs->dim <= 0)
            rc = knn_error(cur, SQLITE_ERROR, "vec_knn: feature set '%s' has dimension %lld",
                           fs->name, (long long)fs->dim);
    } else if (rc == SQLITE_DONE) {
        rc = knn_error(cur, SQLITE_ERROR,
                       "vec_knn: no feature set named '%s' (SELECT name FROM featuresets "
                       "lists them)",
                       sqlite3_value_text(val));
    } else {
        rc = knn_error(cur, rc, "vec_knn: cannot read the feature sets (%s)", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

/* The query as dim floats. A BLOB is read by its length against the feature
 * set's dim (4*dim bytes float32, 2*dim float16) unless tagged. */
static int knn_query(knn_cursor *cur, sqlite3_value *val, const knn_fs *fs, bn_vec_t *q) {
    memset(q, 0, sizeof *q);
    int vt = sqlite3_value_type(val);
    if (vt == SQLITE_NULL)
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: the query vector is NULL (did its subquery find a row?)");
    int as = BN_VEC_F32;
    if (vt == SQLITE_BLOB) {
        int64_t bytes = sqlite3_value_bytes(val);
        int sub = (int)sqlite3_value_subtype(val);
        if (sub != BN_VEC_F16 && sub != BN_VEC_F32) {
            if (bytes == 2 * fs->dim)
                as = BN_VEC_F16;
            else if (bytes != 4 * fs->dim)
                return knn_error(cur, SQLITE_ERROR,
                                 "vec_knn: the query vector has %lld bytes, but feature set "
                                 "'%s' has %lld dimensions (%lld bytes as float32, %lld as "
                                 "float16)",
                                 (long long)bytes, fs->name, (long long)fs->dim,
                                 (long long)(4 * fs->dim), (long long)(2 * fs->dim));
        }
    }
    char *err;
    int rc = bn_vec_parse_as(val, as, q, &err);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM || !err)
            return SQLITE_NOMEM;
        rc = knn_error(cur, rc, "vec_knn: query: %s", err);
        sqlite3_free(err);
        return rc;
    }
    if (q->n != fs->dim) {
        rc = knn_error(cur, SQLITE_ERROR,
                       "vec_knn: the query vector has %lld dimensions, but feature set '%s' "
                       "has %lld",
                       (long long)q->n, fs->name, (long long)fs->dim);
        bn_vec_free(q);
    }
    return rc;
}

static int knn_metric(knn_cursor *cur, sqlite3_value *val, int *metric) {
    const char *m = (const char *)sqlite3_value_text(val);
    if (!m || sqlite3_stricmp(m, "cosine") == 0)
        *metric = BN_VEC_COSINE;
    else if (sqlite3_stricmp(m, "l2") == 0)
        *metric = BN_VEC_L2;
    else if (sqlite3_stricmp(m, "l1") == 0)
        *metric = BN_VEC_L1;
    else if (sqlite3_stricmp(m, "dot") == 0)
        *metric = BN_VEC_DOT;
    else
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: unknown metric '%s': expected 'cosine', 'l2', 'l1' or 'dot'", m);
    return SQLITE_OK;
}

/* Distance of the query q (|q|^2 = qn2) to v; vn2 is |v|^2 when known, or
 * negative. NaN when undefined. 'dot' ranks by -dot(q, v). */
static double knn_distance(int metric, const float *q, double qn2, const float *v, double vn2,
                           int64_t dim) {
    switch (metric) {
    case BN_VEC_L2: return sqrt(bn_vec_l2sq(q, v, dim));
    case BN_VEC_L1: return bn_vec_l1(q, v, dim);
    case BN_VEC_DOT: return 0.0 - bn_vec_dot(q, v, dim); /* as SQL's -x: never -0 */
    default:
        if (vn2 >= 0)
            return bn_vec_cosine_from(bn_vec_dot(q, v, dim), qn2, vn2);
        double dot, nv;
        bn_vec_dot_norm(q, v, dim, &dot, &nv);
        return bn_vec_cosine_from(dot, qn2, nv);
    }
}

/* ---------------------------------------------------------------------------
 * Reading: the memory map, the database's state
 * ------------------------------------------------------------------------- */

/* vec.h. Safe for a scan because its own statements and blob handles, the
 * only ones that can hold mapped pages, are closed before the restore. */
sqlite3_int64 bn_vec_mmap_on(sqlite3 *db) {
    sqlite3_stmt *st;
    sqlite3_int64 was = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA main.mmap_size", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        was = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (was != 0)
        return -1;
    /* SQLite caps it at its compile-time SQLITE_MAX_MMAP_SIZE (2 GB). */
    if (sqlite3_exec(db, "PRAGMA main.mmap_size = 1099511627776", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    return 0;
}

void bn_vec_mmap_restore(sqlite3 *db, sqlite3_int64 was) {
    if (was == 0)
        sqlite3_exec(db, "PRAGMA main.mmap_size = 0", NULL, NULL, NULL);
}

/* The database's state: this connection's changes, and the data version
 * (which moves on any commit, this connection's or another's). */
static void knn_stamp(sqlite3 *db, int *changes, unsigned *version) {
    *changes = sqlite3_total_changes(db);
    *version = 0;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, version);
}

static int knn_cache_current(knn_vtab *vt, const knn_fs *fs) {
    int changes;
    unsigned version;
    if (!vt->cache.vecs || vt->cache.fsid != fs->id || vt->cache.dim != fs->dim)
        return 0;
    knn_stamp(vt->db, &changes, &version);
    return changes == vt->cache.changes && version == vt->cache.version;
}

/* ---------------------------------------------------------------------------
 * Step 1: distances, from one of three sources
 * ------------------------------------------------------------------------- */

/* What the metric's kernel gives for the query against n vectors at v (dim
 * floats each): squared L2, L1 or the dot product, through the kernels that
 * score several vectors per read of the query (vec_kernels.c), each the
 * one-vector kernel's value to the bit. */
static void knn_raw_many(const knn_q *Q, const float *v, int64_t n, double *out) {
    switch (Q->metric) {
    case BN_VEC_L2: bn_vec_l2sq_many(Q->q, v, Q->dim, Q->dim, n, out); break;
    case BN_VEC_L1: bn_vec_l1_many(Q->q, v, Q->dim, Q->dim, n, out); break;
    default: bn_vec_dot_many(Q->q, v, Q->dim, Q->dim, n, out); break;
    }
}

/* Distances of the query to n vectors at v (dim floats each); vn2 their
 * squared norms, or NULL. The same values as knn_distance, vector by vector. */
static void knn_block(const knn_q *Q, const float *v, const double *vn2, int64_t n, double *out) {
    if (Q->metric == BN_VEC_COSINE && !vn2) { /* the norms too: one pass per vector */
        for (int64_t i = 0; i < n; i++)
            out[i] = knn_distance(Q->metric, Q->q, Q->qn2, v + i * Q->dim, -1, Q->dim);
        return;
    }
    knn_raw_many(Q, v, n, out);
    for (int64_t i = 0; i < n; i++)
        switch (Q->metric) {
        case BN_VEC_L2: out[i] = sqrt(out[i]); break;
        case BN_VEC_L1: break;
        case BN_VEC_DOT: out[i] = 0.0 - out[i]; break; /* as knn_distance */
        default: out[i] = bn_vec_cosine_from(out[i], Q->qn2, vn2[i]); break;
        }
}

/* n stored vectors (raw BLOB bytes of the feature set's type) as floats:
 * float32 in place when aligned, otherwise copied or decoded into buf. */
static const float *knn_floats(const void *raw, int type, int64_t nfloats, float *buf) {
    if (type == BN_VEC_F16) {
        bn_vec_f16_decode(raw, buf, nfloats);
        return buf;
    }
    if (((uintptr_t)raw & 3) == 0)
        return raw;
    memcpy(buf, raw, (size_t)nfloats * 4);
    return buf;
}

static int knn_dists_alloc(knn_dists *D, int64_t n, int with_sha) {
    memset(D, 0, sizeof *D);
    D->d = sqlite3_malloc64((sqlite3_uint64)(n > 0 ? n : 1) * sizeof *D->d);
    if (with_sha) {
        D->sha_own = sqlite3_malloc64((sqlite3_uint64)(n > 0 ? n : 1) * 64);
        D->sha = D->sha_own;
    }
    D->n = n;
    return D->d && (!with_sha || D->sha_own) ? SQLITE_OK : SQLITE_NOMEM;
}

static void knn_dists_free(knn_dists *D) {
    sqlite3_free(D->d);
    sqlite3_free(D->norm2);
    sqlite3_free(D->err);
    sqlite3_free(D->sha_own);
    sqlite3_free(D->off_own);
    memset(D, 0, sizeof *D);
}

/* --- source 1: the connection cache, on every thread ---------------------- */

typedef struct {
    const knn_q *Q;
    const knn_cache *c;
    double *out;
} knn_cache_job;

static void knn_cache_part(void *arg, int tid, int nth) {
    knn_cache_job *j = arg;
    int64_t n = j->c->n, a = n * tid / nth, b = n * (tid + 1) / nth;
    knn_block(j->Q, j->c->vecs + a * j->c->dim, j->c->norm2 + a, b - a, j->out + a);
}

static int knn_from_cache(knn_vtab *vt, const knn_q *Q, knn_dists *D) {
    const knn_cache *c = &vt->cache;
    int rc = knn_dists_alloc(D, c->n, 0);
    if (rc != SQLITE_OK)
        return rc;
    D->sha = c->sha;
    D->off = c->off;
    knn_cache_job j = {Q, c, D->d};
    int nth = vt->pool && c->n * c->dim * 4 >= KNN_THREADS_MIN_BYTES ? 2 : 1;
    if (nth > 1)
        bn_pool_run(knn_cache_part, &j, nth);
    else
        knn_cache_part(&j, 0, 1);
    return SQLITE_OK;
}

/* --- source 2: the packed chunks, read by thread 0, computed by thread 1 --- */

/* A chunk row of vector_chunks: where it is and what it holds. */
typedef struct {
    sqlite3_int64 rowid;
    int64_t count, first; /* vectors, index of the first */
} knn_chunk;

/* The feature set's chunks, if it is packed and they are whole: count 0..m-1
 * contiguous, their counts adding up to the total each records. Reads the
 * sha256s into D (allocated here); *packed = 0 when there are none. */
static int knn_chunks_list(knn_cursor *cur, sqlite3 *db, const knn_fs *fs, knn_chunk **out,
                           int64_t *nchunks, knn_dists *D, int *packed) {
    *packed = 0;
    *out = NULL;
    *nchunks = 0;
    memset(D, 0, sizeof *D);
    if (sqlite3_table_column_metadata(db, NULL, "vector_chunks", "vectors", NULL, NULL, NULL, NULL,
                                      NULL) != SQLITE_OK)
        return SQLITE_OK; /* a database from before schema 7 */
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, chunk, count, total, sha256s, length(vectors), "
                                "norms, errors FROM vector_chunks WHERE featureset = ?1 "
                                "ORDER BY chunk",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the chunks (%s)", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, fs->id);
    knn_chunk *ch = NULL;
    int64_t n = 0, cap = 0, total = -1, seen = 0;
    int whole = 1;
    int64_t rowbytes = fs->dim * 2; /* halves */
    while (whole && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t count = sqlite3_column_int64(st, 2), t = sqlite3_column_int64(st, 3);
        if (total < 0) {
            total = t;
            if ((rc = knn_dists_alloc(D, total, 1)) != SQLITE_OK)
                break;
            D->approx = 1;
            D->norm2 = sqlite3_malloc64((sqlite3_uint64)(total > 0 ? total : 1) * 8);
            D->err = sqlite3_malloc64((sqlite3_uint64)(total > 0 ? total : 1) * 16);
            if (!D->norm2 || !D->err) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        if (sqlite3_column_int64(st, 1) != n || t != total || count <= 0 || seen + count > total ||
            sqlite3_column_bytes(st, 4) != count * 64 ||
            sqlite3_column_int64(st, 5) != count * rowbytes ||
            sqlite3_column_bytes(st, 6) != count * 8 || sqlite3_column_bytes(st, 7) != count * 16) {
            whole = 0;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            knn_chunk *c2 = sqlite3_realloc64(ch, (sqlite3_uint64)cap * sizeof *c2);
            if (!c2) {
                rc = SQLITE_NOMEM;
                break;
            }
            ch = c2;
        }
        ch[n] = (knn_chunk){sqlite3_column_int64(st, 0), count, seen};
        memcpy(D->sha_own + seen * 64, sqlite3_column_text(st, 4), (size_t)count * 64);
        memcpy(D->norm2 + seen, sqlite3_column_blob(st, 6), (size_t)count * 8);
        memcpy(D->err + 2 * seen, sqlite3_column_blob(st, 7), (size_t)count * 16);
        seen += count;
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW && whole) {
        sqlite3_free(ch);
        knn_dists_free(D);
        return rc == SQLITE_NOMEM
                   ? rc
                   : knn_error(cur, rc, "vec_knn: cannot read the chunks (%s)", sqlite3_errmsg(db));
    }
    if (!whole || n == 0 || seen != total) { /* none, or not whole: read the rows */
        sqlite3_free(ch);
        knn_dists_free(D);
        return SQLITE_OK;
    }
    *out = ch;
    *nchunks = n;
    *packed = 1;
    return SQLITE_OK;
}

typedef struct {
    /* read only */
    sqlite3 *db;
    const knn_q *Q;
    const knn_fs *fs;
    const knn_chunk *ch;
    int64_t nchunks, rowbytes, per_piece;
    double *out;
    const double *norm2, *err;
    /* the ring: slot p % KNN_SLOTS holds piece p's halves */
    unsigned char *slot[KNN_SLOTS];
    int64_t slot_n[KNN_SLOTS], slot_first[KNN_SLOTS];
    _Atomic int64_t slot_done[KNN_SLOTS]; /* the last piece computed from the slot */
    float *fbuf[2];                       /* each thread's decoded floats */
    _Atomic int64_t produced;             /* pieces read */
    _Atomic int64_t claimed;              /* pieces taken by a computing thread */
    _Atomic int64_t completed;            /* pieces computed */
    _Atomic int done;                     /* the reader has read every piece (or failed) */
    int rc;
} knn_pipe;

/* A lower bound of the distance of the query to stored vector v from its
 * halves h: the distance computed on h minus how far rounding can have moved
 * it (Cauchy-Schwarz: |q.v - q.h| <= |q| |v - h|_2; the triangle inequality
 * for L2 and L1), less a margin for the rounding of the arithmetic. NaN: the
 * vector has no distance (a zero vector under cosine); -Inf: it must be
 * checked (its halves overflowed, or it holds NaNs). */
static double knn_lower(const knn_q *Q, double raw, double vn2, const double *err) {
    double a, b; /* raw: the metric's kernel on the halves (knn_raw_many) */
    switch (Q->metric) {
    case BN_VEC_L2:
        a = sqrt(raw);
        b = err[0];
        break;
    case BN_VEC_L1:
        a = raw;
        b = err[1];
        break;
    case BN_VEC_DOT:
        a = -raw;
        b = sqrt(Q->qn2) * err[0];
        break;
    default:
        if (vn2 == 0 || Q->qn2 == 0)
            return NAN; /* undefined, as the exact distance */
        a = bn_vec_cosine_from(raw, Q->qn2, vn2);
        b = err[0] / sqrt(vn2);
        break;
    }
    double lo = a - b - 1e-9 * (1 + fabs(a));
    return isnan(lo) ? -INFINITY : lo;
}

static void knn_pipe_compute(knn_pipe *p, int64_t piece, int tid) {
    int s = (int)(piece % KNN_SLOTS);
    int64_t first = p->slot_first[s], dim = p->Q->dim;
    bn_vec_f16_decode_fast(p->slot[s], p->fbuf[tid], p->slot_n[s] * dim);
    double *out = p->out + first;
    knn_raw_many(p->Q, p->fbuf[tid], p->slot_n[s], out);
    for (int64_t i = 0; i < p->slot_n[s]; i++)
        out[i] = knn_lower(p->Q, out[i], p->norm2[first + i], p->err + 2 * (first + i));
}

static void knn_wait(void) {
    sched_yield();
}

/* Compute the next piece read and not yet taken, if any. Either thread may:
 * on a busy machine the reader does not wait for a computing thread that the
 * scheduler has put aside. */
static int knn_pipe_help(knn_pipe *p, int tid) {
    int64_t c = atomic_load(&p->claimed);
    if (c >= atomic_load(&p->produced) || !atomic_compare_exchange_strong(&p->claimed, &c, c + 1))
        return 0;
    knn_pipe_compute(p, c, tid);
    atomic_store(&p->slot_done[c % KNN_SLOTS], c);
    atomic_fetch_add(&p->completed, 1);
    return 1;
}

/* Thread 0 reads the pieces in order (every SQLite call stays on the
 * caller's thread) and computes when the ring is full or the reading done;
 * thread 1 computes. */
static void knn_pipe_run(void *arg, int tid, int nth) {
    knn_pipe *p = arg;
    (void)nth;
    if (tid != 0) {
        while (!atomic_load(&p->done) || atomic_load(&p->claimed) < atomic_load(&p->produced))
            if (!knn_pipe_help(p, tid))
                knn_wait();
        return;
    }
    sqlite3_blob *blob = NULL;
    int64_t piece = 0;
    int rc = SQLITE_OK;
    for (int64_t c = 0; c < p->nchunks && rc == SQLITE_OK; c++) {
        rc = blob ? sqlite3_blob_reopen(blob, p->ch[c].rowid)
                  : sqlite3_blob_open(p->db, "main", "vector_chunks", "vectors", p->ch[c].rowid, 0,
                                      &blob);
        if (rc == SQLITE_OK && sqlite3_blob_bytes(blob) != p->ch[c].count * p->rowbytes)
            rc = SQLITE_CORRUPT;
        for (int64_t at = 0; rc == SQLITE_OK && at < p->ch[c].count; at += p->per_piece, piece++) {
            int64_t n = p->ch[c].count - at < p->per_piece ? p->ch[c].count - at : p->per_piece;
            int s = (int)(piece % KNN_SLOTS);
            while (atomic_load(&p->slot_done[s]) < piece - KNN_SLOTS) /* slot still in use */
                if (!knn_pipe_help(p, 0))
                    knn_wait();
            rc = sqlite3_blob_read(blob, p->slot[s], (int)(n * p->rowbytes),
                                   (int)(at * p->rowbytes));
            if (rc != SQLITE_OK)
                break;
            p->slot_n[s] = n;
            p->slot_first[s] = p->ch[c].first + at;
            atomic_store(&p->produced, piece + 1);
        }
    }
    if (blob)
        sqlite3_blob_close(blob);
    p->rc = rc;
    atomic_store(&p->done, 1);
    while (knn_pipe_help(p, 0)) /* what is left, then wait for thread 1's last */
        ;
    while (atomic_load(&p->completed) < atomic_load(&p->claimed))
        knn_wait();
}

static int knn_from_chunks(knn_cursor *cur, knn_vtab *vt, const knn_fs *fs, const knn_q *Q,
                           const knn_chunk *ch, int64_t nchunks, knn_dists *D) {
    knn_pipe p;
    memset(&p, 0, sizeof p);
    p.db = vt->db;
    p.Q = Q;
    p.fs = fs;
    p.ch = ch;
    p.nchunks = nchunks;
    p.rowbytes = fs->dim * 2;
    p.per_piece = KNN_PIECE_BYTES / p.rowbytes > 0 ? KNN_PIECE_BYTES / p.rowbytes : 1;
    p.out = D->d;
    p.norm2 = D->norm2;
    p.err = D->err;
    for (int s = 0; s < KNN_SLOTS; s++)
        atomic_store(&p.slot_done[s], (int64_t)s - KNN_SLOTS); /* free */
    int rc = SQLITE_OK;
    for (int s = 0; s < KNN_SLOTS; s++)
        if (!(p.slot[s] = sqlite3_malloc64((sqlite3_uint64)(p.per_piece * p.rowbytes))))
            rc = SQLITE_NOMEM;
    for (int t = 0; t < 2; t++)
        if (!(p.fbuf[t] = sqlite3_malloc64((sqlite3_uint64)(p.per_piece * fs->dim * 4))))
            rc = SQLITE_NOMEM;
    if (rc == SQLITE_OK) {
        int nth = vt->pool && D->n * p.rowbytes >= KNN_THREADS_MIN_BYTES ? 2 : 1;
        if (nth > 1)
            bn_pool_run(knn_pipe_run, &p, nth);
        else
            knn_pipe_run(&p, 0, 1);
        rc = p.rc;
        if (rc != SQLITE_OK && rc != SQLITE_NOMEM)
            rc = knn_error(cur, rc, "vec_knn: cannot read the chunks of feature set '%s' (%s)",
                           fs->name, sqlite3_errstr(rc));
    }
    for (int s = 0; s < KNN_SLOTS; s++)
        sqlite3_free(p.slot[s]);
    for (int t = 0; t < 2; t++)
        sqlite3_free(p.fbuf[t]);
    return rc;
}

/* --- source 3: the rows of `vectors` -------------------------------------- */

/* The first image path of a vector (for messages), or its sha256. */
static char *knn_vector_name(sqlite3 *db, const char *sha) {
    sqlite3_stmt *st;
    char *name = NULL;
    if (sqlite3_prepare_v2(db, "SELECT path FROM images WHERE sha256 = ?1 ORDER BY path LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            name = knn_strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    return name ? name : sqlite3_mprintf("the image with sha256 %s", sha);
}

/* Every vector of the feature set from its rows: distances into D (when Q)
 * and, when keep, the decoded vectors into *keep (n x dim floats, for the
 * cache). */
static int knn_from_rows(knn_cursor *cur, sqlite3 *db, const knn_fs *fs, const knn_q *Q,
                         knn_dists *D, float **keep) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT sha256, vector FROM vectors WHERE featureset = ?1", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, fs->id);
    int64_t n = 0, cap = 0, want = fs->dim * (fs->type == BN_VEC_F16 ? 2 : 4), pool = 0, used = 0;
    float *buf = sqlite3_malloc64((sqlite3_uint64)fs->dim * 4), *vecs = NULL;
    memset(D, 0, sizeof *D);
    D->off_own = sqlite3_malloc64(sizeof *D->off_own);
    if (!buf || !D->off_own)
        rc = SQLITE_NOMEM;
    else
        D->off_own[0] = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *sha = (const char *)sqlite3_column_text(st, 0);
        const void *blob = sqlite3_column_blob(st, 1);
        int64_t bytes = sqlite3_column_bytes(st, 1);
        if (!sha)
            continue; /* NULL: no image can refer to it */
        int64_t len = (int64_t)strlen(sha);
        if (bytes != want || !blob) {
            if (!blob && bytes > 0) {
                rc = SQLITE_NOMEM;
                break;
            }
            char *name = knn_vector_name(db, sha);
            rc = knn_error(cur, SQLITE_ERROR,
                           "vec_knn: the vector of %s in feature set '%s' has %lld bytes, "
                           "expected %lld (%lld dimensions of %s)",
                           name, fs->name, (long long)bytes, (long long)want, (long long)fs->dim,
                           bn_vec_type_name(fs->type));
            sqlite3_free(name);
            break;
        }
        if (n == cap) {
            int64_t ncap = cap ? 2 * cap : 1024;
            double *d = sqlite3_realloc64(D->d, (sqlite3_uint64)ncap * sizeof *d);
            if (d)
                D->d = d;
            int64_t *o = sqlite3_realloc64(D->off_own, (sqlite3_uint64)(ncap + 1) * sizeof *o);
            if (o)
                D->off_own = o;
            float *v = keep ? sqlite3_realloc64(vecs, (sqlite3_uint64)(ncap * fs->dim * 4)) : NULL;
            if (v)
                vecs = v;
            if (!d || !o || (keep && !v)) {
                rc = SQLITE_NOMEM;
                break;
            }
            cap = ncap;
        }
        float *dst = keep ? vecs + n * fs->dim : buf;
        const float *v = knn_floats(blob, fs->type, fs->dim, dst);
        if (keep && v != dst)
            memcpy(dst, v, (size_t)fs->dim * 4);
        if (Q)
            knn_block(Q, v, NULL, 1, D->d + n);
        if (used + len > pool) {
            int64_t npool = 2 * (used + len) + 64 * 1024;
            char *p = sqlite3_realloc64(D->sha_own, (sqlite3_uint64)npool);
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            D->sha_own = p;
            pool = npool;
        }
        memcpy(D->sha_own + used, sha, (size_t)len);
        used += len;
        D->off_own[++n] = used;
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    else if (rc != SQLITE_OK && rc != SQLITE_NOMEM && !cur->base.pVtab->zErrMsg)
        rc = knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_free(buf);
    D->sha = D->sha_own;
    D->off = D->off_own;
    D->n = n;
    if (rc != SQLITE_OK) {
        sqlite3_free(vecs);
        knn_dists_free(D);
        return rc;
    }
    if (keep)
        *keep = vecs;
    return SQLITE_OK;
}

/* Load the feature set into the connection cache, from its rows (the
 * chunks hold halves: they choose candidates, never distances). Leaves the
 * cache empty past the budget. */
static int knn_cache_load(knn_cursor *cur, knn_vtab *vt, const knn_fs *fs) {
    sqlite3 *db = vt->db;
    knn_cache_free(&vt->cache);
    knn_cache c = {0};
    c.fsid = fs->id;
    c.dim = fs->dim;
    knn_stamp(db, &c.changes, &c.version);
    knn_dists D;
    int rc = knn_from_rows(cur, db, fs, NULL, &D, &c.vecs);
    if (rc != SQLITE_OK)
        return rc;
    c.n = D.n;
    c.sha = D.sha_own;
    c.off = D.off_own;
    D.sha_own = NULL;
    D.off_own = NULL;
    knn_dists_free(&D);
    c.norm2 = sqlite3_malloc64((sqlite3_uint64)(c.n > 0 ? c.n : 1) * sizeof *c.norm2);
    if (!c.norm2 || (!c.vecs && c.n > 0))
        rc = SQLITE_NOMEM;
    for (int64_t i = 0; rc == SQLITE_OK && i < c.n; i++)
        c.norm2[i] = bn_vec_dot(c.vecs + i * c.dim, c.vecs + i * c.dim, c.dim);
    if (rc != SQLITE_OK || c.n * c.dim * 4 > knn_cache_max() || !c.vecs) {
        knn_cache_free(&c);
        return rc;
    }
    vt->cache = c;
    return SQLITE_OK;
}

/* ---------------------------------------------------------------------------
 * Step 2: the vectors nearest first, their images, the heap
 * ------------------------------------------------------------------------- */

typedef struct {
    double d;
    int64_t i;
} knn_cand;

static int knn_cand_after(const knn_cand *a, const knn_cand *b) {
    return a->d != b->d ? a->d > b->d : a->i > b->i;
}

static int knn_cand_after_v(const void *a, const void *b) {
    return knn_cand_after(a, b);
}

static int knn_cand_cmp(const void *pa, const void *pb) {
    const knn_cand *a = pa, *b = pb;
    return knn_cand_after(a, b) ? 1 : knn_cand_after(b, a) ? -1 : 0;
}

/* The up to m smallest (distance, index) after *last (all when !last), in
 * order, into out. A max-heap of m: one comparison for most vectors. */
static int64_t knn_select(const knn_dists *D, int64_t m, const knn_cand *last, knn_cand *out) {
    int64_t n = 0;
    for (int64_t i = 0; i < D->n; i++) {
        knn_cand c = {D->d[i], i};
        if (isnan(c.d) || (last && !knn_cand_after(&c, last)))
            continue;
        if (n == m) {
            if (!knn_cand_after(&out[0], &c))
                continue;
            out[0] = c;
            knn_sift_down(out, sizeof *out, n, 0, knn_cand_after_v);
        } else {
            out[n] = c;
            knn_sift_up(out, sizeof *out, n, knn_cand_after_v);
            n++;
        }
    }
    qsort(out, (size_t)n, sizeof *out, knn_cand_cmp);
    return n;
}

/* The images of the vectors, nearest first, filtered, into the heap of k. */
static int knn_rank(knn_cursor *cur, sqlite3 *db, const knn_fs *fs, const knn_q *Q,
                    const knn_dists *D, int64_t k, const knn_where *w) {
    /* Asked, not tried: the schema decides, so that another error in the
     * statement is reported as itself, not taken for an older schema. */
    int has_datasets = sqlite3_table_column_metadata(db, NULL, "images", "dataset", NULL, NULL,
                                                     NULL, NULL, NULL) == SQLITE_OK &&
                       sqlite3_table_column_metadata(db, NULL, "datasets", "name", NULL, NULL, NULL,
                                                     NULL, NULL) == SQLITE_OK;
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(db,
                           has_datasets ? "SELECT i.path, i.label, i.split, d.name FROM images i "
                                          "JOIN datasets d ON d.id = i.dataset WHERE i.sha256 = ?1"
                                        : "SELECT path, label, split, NULL FROM images "
                                          "WHERE sha256 = ?1",
                           -1, &st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the images (%s)", sqlite3_errmsg(db));
    /* From the halves, the candidates' true distances: their stored vectors. */
    sqlite3_stmt *exact = NULL;
    float *buf = NULL;
    if (D->approx) {
        rc = sqlite3_prepare_v2(db,
                                "SELECT vector FROM vectors WHERE featureset = ?1 AND sha256 = ?2",
                                -1, &exact, NULL);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(st);
            return knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
        }
        sqlite3_bind_int64(exact, 1, fs->id);
        if (!(buf = sqlite3_malloc64((sqlite3_uint64)fs->dim * 4)))
            rc = SQLITE_NOMEM;
    }
    int64_t m = k + 16 < D->n ? k + 16 : D->n;
    knn_cand *c = sqlite3_malloc64((sqlite3_uint64)(m > 0 ? m : 1) * sizeof *c), last = {0, 0};
    int have_last = 0, finished = 0;
    if (!c)
        rc = SQLITE_NOMEM;
    while (rc == SQLITE_OK && !finished) {
        int64_t got = knn_select(D, m, have_last ? &last : NULL, c);
        if (got < m || got == 0)
            finished = 1; /* no vector left after these */
        for (int64_t j = 0; j < got && rc == SQLITE_OK; j++) {
            if (cur->nrows == k && c[j].d > cur->rows[0].distance) {
                finished = 1;
                break;
            }
            int64_t at = D->off ? D->off[c[j].i] : c[j].i * 64;
            int64_t len = D->off ? D->off[c[j].i + 1] - at : 64;
            char *sha = sqlite3_malloc64((sqlite3_uint64)len + 1);
            if (!sha) {
                rc = SQLITE_NOMEM;
                break;
            }
            memcpy(sha, D->sha + at, (size_t)len);
            sha[len] = '\0';
            double dist = c[j].d;
            if (exact) {
                sqlite3_bind_text(exact, 2, sha, (int)len, SQLITE_STATIC);
                int xr = sqlite3_step(exact);
                int64_t want = fs->dim * (fs->type == BN_VEC_F16 ? 2 : 4);
                const void *blob = xr == SQLITE_ROW ? sqlite3_column_blob(exact, 0) : NULL;
                if (xr == SQLITE_ROW && blob && sqlite3_column_bytes(exact, 0) == want) {
                    dist = knn_distance(Q->metric, Q->q, Q->qn2,
                                        knn_floats(blob, fs->type, fs->dim, buf), -1, fs->dim);
                } else if (xr == SQLITE_ROW || (xr != SQLITE_DONE)) {
                    char *name = knn_vector_name(db, sha);
                    rc = xr != SQLITE_ROW
                             ? knn_error(cur, xr, "vec_knn: cannot read the vectors (%s)",
                                         sqlite3_errmsg(db))
                             : knn_error(cur, SQLITE_ERROR,
                                         "vec_knn: the vector of %s in feature set '%s' has %lld "
                                         "bytes, expected %lld (%lld dimensions of %s)",
                                         name, fs->name, (long long)sqlite3_column_bytes(exact, 0),
                                         (long long)want, (long long)fs->dim,
                                         bn_vec_type_name(fs->type));
                    sqlite3_free(name);
                } else {
                    dist = NAN; /* gone: cannot happen while the chunks exist */
                }
                sqlite3_reset(exact);
                if (rc != SQLITE_OK || isnan(dist)) {
                    sqlite3_free(sha);
                    continue;
                }
            }
            sqlite3_bind_text(st, 1, sha, (int)len, SQLITE_STATIC);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                rc = SQLITE_OK;
                const char *path = (const char *)sqlite3_column_text(st, 0);
                const char *label = (const char *)sqlite3_column_text(st, 1);
                const char *split = (const char *)sqlite3_column_text(st, 2);
                const char *dataset = (const char *)sqlite3_column_text(st, 3);
                if (!path || !knn_keep(w, path, label, split, sha, dataset))
                    continue;
                if ((rc = knn_offer(cur, k, dist, path, label, split, sha, dataset)) != SQLITE_OK)
                    break;
            }
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
            else if (rc != SQLITE_NOMEM && rc != SQLITE_OK)
                rc = knn_error(cur, rc, "vec_knn: cannot read the images (%s)", sqlite3_errmsg(db));
            sqlite3_reset(st);
            sqlite3_free(sha);
        }
        if (got > 0) {
            last = c[got - 1];
            have_last = 1;
        }
        if (m < D->n) { /* not finished: four times as many next time */
            int64_t nm = m * 4 < D->n ? m * 4 : D->n;
            knn_cand *c2 = sqlite3_realloc64(c, (sqlite3_uint64)nm * sizeof *c2);
            if (!c2)
                rc = SQLITE_NOMEM;
            else {
                c = c2;
                m = nm;
            }
        }
    }
    sqlite3_free(c);
    sqlite3_free(buf);
    sqlite3_finalize(st);
    sqlite3_finalize(exact);
    return rc;
}

/* ---------------------------------------------------------------------------
 * xFilter: one query
 * ------------------------------------------------------------------------- */

/* Step 1 from the best source there is. */
static int knn_distances(knn_cursor *cur, knn_vtab *vt, const knn_fs *fs, const knn_q *Q,
                         knn_dists *D) {
    sqlite3 *db = vt->db;
    if (knn_cache_current(vt, fs)) {
        knn_last_source = BN_VEC_KNN_CACHE;
        return knn_from_cache(vt, Q, D);
    }
    int changes;
    unsigned version;
    knn_stamp(db, &changes, &version);
    sqlite3_int64 mm = bn_vec_mmap_on(db);
    int rc;
    /* The second query on an unchanged set loads the cache (outside
     * explicit transactions only: a ROLLBACK moves neither stamp). */
    if (sqlite3_get_autocommit(db) && vt->seen_fsid == fs->id && vt->seen_changes == changes &&
        vt->seen_version == version) {
        rc = knn_cache_load(cur, vt, fs);
        if (rc == SQLITE_OK && knn_cache_current(vt, fs)) {
            bn_vec_mmap_restore(db, mm);
            knn_last_source = BN_VEC_KNN_CACHE;
            return knn_from_cache(vt, Q, D);
        }
    }
    knn_chunk *ch;
    int64_t nchunks;
    int packed;
    rc = knn_chunks_list(cur, db, fs, &ch, &nchunks, D, &packed);
    knn_last_source = packed ? BN_VEC_KNN_CHUNKS : BN_VEC_KNN_ROWS;
    if (rc == SQLITE_OK && packed)
        rc = knn_from_chunks(cur, vt, fs, Q, ch, nchunks, D);
    else if (rc == SQLITE_OK)
        rc = knn_from_rows(cur, db, fs, Q, D, NULL);
    sqlite3_free(ch);
    bn_vec_mmap_restore(db, mm);
    if (rc != SQLITE_OK) {
        knn_dists_free(D);
        return rc;
    }
    /* A set too large for the cache is not tried again. */
    int fits = D->n * fs->dim * 4 <= knn_cache_max();
    vt->seen_fsid = fits ? fs->id : 0;
    vt->seen_changes = changes;
    vt->seen_version = version;
    return SQLITE_OK;
}

static int knn_filter(sqlite3_vtab_cursor *c, int idx, const char *idx_str, int argc,
                      sqlite3_value **argv) {
    (void)idx_str;
    knn_cursor *cur = (knn_cursor *)c;
    knn_vtab *vt = (knn_vtab *)c->pVtab;
    sqlite3 *db = vt->db;
    knn_reset(cur);

    sqlite3_value *arg[KNN_NARGS] = {0};
    for (int j = 0, a = 0; j < KNN_NARGS && a < argc; j++)
        if (idx & (1 << j))
            arg[j] = argv[a++];
    if (!arg[0] || !arg[1] || !arg[2])
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: needs a query vector, k and a feature set: "
                         "SELECT * FROM vec_knn(query, k, featureset [, metric])");

    int kt = sqlite3_value_numeric_type(arg[1]);
    double kd = sqlite3_value_double(arg[1]);
    if ((kt != SQLITE_INTEGER && !(kt == SQLITE_FLOAT && kd == floor(kd))) || kd < 1)
        return knn_error(cur, SQLITE_ERROR, "vec_knn: k must be a positive integer, not %s",
                         kt == SQLITE_NULL ? "NULL" : (const char *)sqlite3_value_text(arg[1]));
    int64_t k = kt == SQLITE_INTEGER ? sqlite3_value_int64(arg[1])
                : kd > 1e15          ? (int64_t)1e15
                                     : (int64_t)kd;

    int metric = BN_VEC_COSINE;
    int rc;
    if (arg[3] && (rc = knn_metric(cur, arg[3], &metric)) != SQLITE_OK)
        return rc;
    knn_where w = {arg[4], arg[5], arg[6], arg[7], arg[8]};

    knn_fs fs = {0};
    if ((rc = knn_featureset(cur, db, arg[2], &fs)) != SQLITE_OK) {
        sqlite3_free(fs.name);
        return rc;
    }
    bn_vec_t q;
    if ((rc = knn_query(cur, arg[0], &fs, &q)) != SQLITE_OK) {
        sqlite3_free(fs.name);
        return rc;
    }
    knn_q Q = {metric, q.f, bn_vec_dot(q.f, q.f, fs.dim), fs.dim};
    knn_dists D;
    memset(&D, 0, sizeof D);
    rc = knn_distances(cur, vt, &fs, &Q, &D);
    if (rc == SQLITE_OK)
        rc = knn_rank(cur, db, &fs, &Q, &D, k, &w);
    knn_dists_free(&D);
    bn_vec_free(&q);
    sqlite3_free(fs.name);
    if (rc != SQLITE_OK) {
        knn_reset(cur);
        return rc;
    }
    if (cur->nrows > 1)
        qsort(cur->rows, (size_t)cur->nrows, sizeof *cur->rows, knn_cmp);
    return SQLITE_OK;
}

static int knn_next(sqlite3_vtab_cursor *c) {
    ((knn_cursor *)c)->pos++;
    return SQLITE_OK;
}

static int knn_eof(sqlite3_vtab_cursor *c) {
    knn_cursor *cur = (knn_cursor *)c;
    return cur->pos >= cur->nrows;
}

static void knn_text(sqlite3_context *ctx, const char *s) {
    if (s)
        sqlite3_result_text(ctx, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_result_null(ctx);
}

static int knn_column(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int col) {
    knn_cursor *cur = (knn_cursor *)c;
    const knn_row *r = &cur->rows[cur->pos];
    switch (col) {
    case KNN_PATH: knn_text(ctx, r->path); break;
    case KNN_LABEL: knn_text(ctx, r->label); break;
    case KNN_SPLIT: knn_text(ctx, r->split); break;
    case KNN_SHA256: knn_text(ctx, r->sha256); break;
    case KNN_DISTANCE: sqlite3_result_double(ctx, r->distance); break;
    case KNN_DATASET: knn_text(ctx, r->dataset); break;
    default: sqlite3_result_null(ctx); break; /* hidden arguments */
    }
    return SQLITE_OK;
}

static int knn_rowid(sqlite3_vtab_cursor *c, sqlite3_int64 *rowid) {
    *rowid = ((knn_cursor *)c)->pos + 1;
    return SQLITE_OK;
}

/* ---------------------------------------------------------------------------
 * vec_knn_pack: write the feature set's chunks
 * ------------------------------------------------------------------------- */

static int pack_fail(char **errmsg, int rc, const char *fmt, ...) {
    if (errmsg) {
        va_list ap;
        va_start(ap, fmt);
        sqlite3_free(*errmsg);
        *errmsg = sqlite3_vmprintf(fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Write the chunks inside the caller's savepoint. */
static int pack_write(sqlite3 *db, int64_t fsid, const char *fsname, int64_t dim, int type,
                      int64_t *packed, char **errmsg) {
    int64_t rowbytes = dim * (type == BN_VEC_F16 ? 2 : 4), total = 0, n = 0, chunk = 0;
    int64_t per = KNN_CHUNK_BYTES / (dim * 2) > 0 ? KNN_CHUNK_BYTES / (dim * 2) : 1;
    sqlite3_stmt *del = NULL, *cnt = NULL, *sel = NULL, *ins = NULL;
    unsigned char *vecs = NULL;
    char *shas = NULL;
    double *norms = NULL, *errs = NULL;
    float *fv = NULL;
    int rc = SQLITE_OK;
    if (sqlite3_prepare_v2(db, "DELETE FROM vector_chunks WHERE featureset = ?1", -1, &del, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT count(*) FROM vectors WHERE featureset = ?1", -1, &cnt,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT sha256, vector FROM vectors WHERE featureset = ?1 "
                           "ORDER BY sha256",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO vector_chunks(featureset, chunk, count, sha256s, "
                           "vectors, norms, errors, total) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                           "?8)",
                           -1, &ins, NULL) != SQLITE_OK) {
        rc = pack_fail(errmsg, sqlite3_errcode(db), "vec_knn_pack: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int64(del, 1, fsid);
    sqlite3_bind_int64(cnt, 1, fsid);
    sqlite3_bind_int64(sel, 1, fsid);
    if (sqlite3_step(del) != SQLITE_DONE || sqlite3_step(cnt) != SQLITE_ROW) {
        rc = pack_fail(errmsg, sqlite3_errcode(db), "vec_knn_pack: %s", sqlite3_errmsg(db));
        goto done;
    }
    total = sqlite3_column_int64(cnt, 0);
    vecs = sqlite3_malloc64((sqlite3_uint64)(per * dim * 2));
    shas = sqlite3_malloc64((sqlite3_uint64)(per * 64));
    norms = sqlite3_malloc64((sqlite3_uint64)(per * 8));
    errs = sqlite3_malloc64((sqlite3_uint64)(per * 16));
    fv = sqlite3_malloc64((sqlite3_uint64)(dim * 4));
    if (!vecs || !shas || !norms || !errs || !fv) {
        rc = pack_fail(errmsg, SQLITE_NOMEM, "vec_knn_pack: out of memory");
        goto done;
    }
    int64_t seen = 0, step;
    while ((step = sqlite3_step(sel)) == SQLITE_ROW || (step == SQLITE_DONE && n > 0)) {
        if (step == SQLITE_ROW) {
            const char *sha = (const char *)sqlite3_column_text(sel, 0);
            const void *blob = sqlite3_column_blob(sel, 1);
            int64_t bytes = sqlite3_column_bytes(sel, 1);
            if (!sha || strlen(sha) != 64) { /* chunks hold 64 characters a key */
                rc = pack_fail(errmsg, SQLITE_ERROR,
                               "vec_knn_pack: feature set '%s' has a vector keyed '%s', not a "
                               "sha256 of 64 hex characters: not packed (vec_knn reads its rows)",
                               fsname, sha ? sha : "NULL");
                goto done;
            }
            if (bytes != rowbytes || !blob) {
                char *name = knn_vector_name(db, sha);
                rc = pack_fail(errmsg, SQLITE_ERROR,
                               "vec_knn_pack: the vector of %s in feature set '%s' has %lld "
                               "bytes, expected %lld (%lld dimensions of %s)",
                               name, fsname, (long long)bytes, (long long)rowbytes, (long long)dim,
                               bn_vec_type_name(type));
                sqlite3_free(name);
                goto done;
            }
            memcpy(shas + n * 64, sha, 64);
            /* the halves, and how far they are from the vector (rounded up) */
            const float *v = knn_floats(blob, type, dim, fv);
            unsigned char *h = vecs + n * dim * 2;
            double e2 = 0, e1 = 0;
            for (int64_t i = 0; i < dim; i++) {
                uint16_t x = bn_f32_to_f16(v[i]);
                h[2 * i] = (unsigned char)(x & 0xff);
                h[2 * i + 1] = (unsigned char)(x >> 8);
                double e = (double)v[i] - (double)bn_f16_to_f32(x);
                e2 += e * e;
                e1 += fabs(e);
            }
            norms[n] = bn_vec_dot(v, v, dim);
            errs[2 * n] = type == BN_VEC_F16 ? 0 : sqrt(e2) * (1 + 1e-9);
            errs[2 * n + 1] = type == BN_VEC_F16 ? 0 : e1 * (1 + 1e-9);
            n++;
            seen++;
        }
        if (n == per || (step == SQLITE_DONE && n > 0)) {
            sqlite3_bind_int64(ins, 1, fsid);
            sqlite3_bind_int64(ins, 2, chunk++);
            sqlite3_bind_int64(ins, 3, n);
            sqlite3_bind_text(ins, 4, shas, (int)(n * 64), SQLITE_STATIC);
            sqlite3_bind_blob64(ins, 5, vecs, (sqlite3_uint64)(n * dim * 2), SQLITE_STATIC);
            sqlite3_bind_blob64(ins, 6, norms, (sqlite3_uint64)(n * 8), SQLITE_STATIC);
            sqlite3_bind_blob64(ins, 7, errs, (sqlite3_uint64)(n * 16), SQLITE_STATIC);
            sqlite3_bind_int64(ins, 8, total);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                rc = pack_fail(errmsg, sqlite3_errcode(db), "vec_knn_pack: %s", sqlite3_errmsg(db));
                goto done;
            }
            sqlite3_reset(ins);
            n = 0;
        }
        if (step == SQLITE_DONE)
            break;
    }
    if (step != SQLITE_DONE) {
        rc = pack_fail(errmsg, sqlite3_errcode(db), "vec_knn_pack: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (seen != total) /* cannot happen inside one transaction */
        rc = pack_fail(errmsg, SQLITE_ERROR, "vec_knn_pack: the vectors changed while packing");
    *packed = seen;
done:
    sqlite3_finalize(del);
    sqlite3_finalize(cnt);
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    sqlite3_free(vecs);
    sqlite3_free(shas);
    sqlite3_free(norms);
    sqlite3_free(errs);
    sqlite3_free(fv);
    return rc;
}

int bn_vec_knn_pack(sqlite3 *db, const char *featureset, int64_t *packed, char **errmsg) {
    int64_t dummy;
    if (!packed)
        packed = &dummy;
    *packed = 0;
    if (errmsg)
        *errmsg = NULL;
    if (!featureset)
        return pack_fail(errmsg, SQLITE_MISUSE, "vec_knn_pack: the feature set is NULL");
    if (sqlite3_table_column_metadata(db, NULL, "vector_chunks", "vectors", NULL, NULL, NULL, NULL,
                                      NULL) != SQLITE_OK)
        return pack_fail(errmsg, SQLITE_ERROR,
                         "vec_knn_pack: this database has no vector_chunks table (schema 7: "
                         "bottleneck-extract or -classify migrates it when they open it)");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, dim, dtype, name FROM featuresets "
                                "WHERE name = ?1 OR id = ?1 ORDER BY name = ?1 DESC LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pack_fail(errmsg, rc, "vec_knn_pack: cannot read the feature sets (%s)",
                         sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, featureset, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return pack_fail(errmsg, SQLITE_ERROR,
                         "vec_knn_pack: no feature set named '%s' (SELECT name FROM featuresets "
                         "lists them)",
                         featureset);
    }
    int64_t id = sqlite3_column_int64(st, 0), dim = sqlite3_column_int64(st, 1);
    const char *dt = (const char *)sqlite3_column_text(st, 2);
    int type = dt && strcmp(dt, "f16") == 0 ? BN_VEC_F16 : BN_VEC_F32;
    char *name = knn_strdup((const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    if (!name)
        return pack_fail(errmsg, SQLITE_NOMEM, "vec_knn_pack: out of memory");
    if (dim <= 0) {
        rc = pack_fail(errmsg, SQLITE_ERROR, "vec_knn_pack: feature set '%s' has dimension %lld",
                       name, (long long)dim);
        sqlite3_free(name);
        return rc;
    }
    /* All or nothing: in a savepoint (a transaction of its own, or nested in
     * the caller's). */
    if ((rc = sqlite3_exec(db, "SAVEPOINT vec_knn_pack", NULL, NULL, NULL)) != SQLITE_OK) {
        rc = pack_fail(errmsg, rc, "vec_knn_pack: %s", sqlite3_errmsg(db));
        sqlite3_free(name);
        return rc;
    }
    rc = pack_write(db, id, name, dim, type, packed, errmsg);
    if (rc != SQLITE_OK) {
        bn_sql_end(db, "ROLLBACK TO vec_knn_pack");
        bn_sql_end(db, "RELEASE vec_knn_pack");
        *packed = 0;
    } else if ((rc = bn_sql_end(db, "RELEASE vec_knn_pack")) != SQLITE_OK) {
        rc = pack_fail(errmsg, rc, "vec_knn_pack: %s", sqlite3_errmsg(db));
        bn_sql_end(db, "ROLLBACK TO vec_knn_pack");
        bn_sql_end(db, "RELEASE vec_knn_pack");
        *packed = 0;
    }
    sqlite3_free(name);
    return rc;
}

int bn_vec_knn_pack_stale(sqlite3 *db, int64_t *packed, char **errmsg) {
    int64_t dummy;
    if (!packed)
        packed = &dummy;
    *packed = 0;
    if (errmsg)
        *errmsg = NULL;
    if (sqlite3_table_column_metadata(db, NULL, "vector_chunks", "vectors", NULL, NULL, NULL, NULL,
                                      NULL) != SQLITE_OK)
        return SQLITE_OK; /* a database from before schema 7: nothing to keep packed */
    /* Stale: vectors and no chunks (the triggers dropped them, or none were
     * ever written). One at a time: packing writes. */
    int rc = SQLITE_OK;
    for (;;) {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(db,
                                "SELECT CAST(f.id AS TEXT) FROM featuresets f"
                                " WHERE EXISTS (SELECT 1 FROM vectors v WHERE v.featureset = f.id)"
                                " AND NOT EXISTS (SELECT 1 FROM vector_chunks c"
                                " WHERE c.featureset = f.id) ORDER BY f.id LIMIT 1",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
            return pack_fail(errmsg, rc, "vec_knn_pack: cannot read the feature sets (%s)",
                             sqlite3_errmsg(db));
        char *id = NULL;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && !(id = knn_strdup((const char *)sqlite3_column_text(st, 0))))
            rc = SQLITE_NOMEM;
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return SQLITE_OK;
        if (rc == SQLITE_NOMEM)
            return pack_fail(errmsg, rc, "vec_knn_pack: out of memory");
        if (rc != SQLITE_ROW)
            return pack_fail(errmsg, rc, "vec_knn_pack: cannot read the feature sets (%s)",
                             sqlite3_errmsg(db));
        int64_t k = 0;
        rc = bn_vec_knn_pack(db, id, &k, errmsg);
        sqlite3_free(id);
        *packed += k;
        if (rc != SQLITE_OK || k == 0) /* k == 0: it would be found again */
            break;
    }
    return rc;
}

/* vec_knn_pack(featureset): the number of vectors packed. */
static void fn_vec_knn_pack(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    char *err = NULL;
    int64_t n = 0;
    int rc = bn_vec_knn_pack(sqlite3_context_db_handle(ctx),
                             (const char *)sqlite3_value_text(argv[0]), &n, &err);
    if (rc == SQLITE_OK)
        sqlite3_result_int64(ctx, n);
    else if (rc == SQLITE_NOMEM)
        sqlite3_result_error_nomem(ctx);
    else
        sqlite3_result_error(ctx, err ? err : sqlite3_errstr(rc), -1);
    sqlite3_free(err);
}

static sqlite3_module knn_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: no CREATE VIRTUAL TABLE ... USING vec_knn */
    .xConnect = knn_connect,
    .xBestIndex = knn_best_index,
    .xDisconnect = knn_disconnect,
    .xDestroy = knn_disconnect,
    .xOpen = knn_open,
    .xClose = knn_close,
    .xFilter = knn_filter,
    .xNext = knn_next,
    .xEof = knn_eof,
    .xColumn = knn_column,
    .xRowid = knn_rowid,
};

#ifndef SQLITE_DIRECTONLY
#define SQLITE_DIRECTONLY 0x000080000
#endif

int bn_vec_knn_register(sqlite3 *db) {
    int rc = sqlite3_create_module_v2(db, "vec_knn", &knn_module, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    /* It writes: never from a trigger or a view (SQLITE_DIRECTONLY). */
    return sqlite3_create_function_v2(db, "vec_knn_pack", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL,
                                      fn_vec_knn_pack, NULL, NULL, NULL);
}

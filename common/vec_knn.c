/*
 * vec_knn.c: the table-valued function vec_knn(query, k, featureset
 * [, metric]), the k nearest images of one feature set (docs/SQL.md).
 *
 * Owns: the eponymous virtual table vec_knn, its scan and its cache; exports
 * bn_vec_knn_register. The only vec module that knows the bottleneck schema.
 */
#include "vec_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * vec_knn: top-k nearest neighbours of a query within one feature set.
 *
 *   SELECT path, label, split, sha256, distance, dataset
 *   FROM vec_knn(query, k, featureset [, metric])
 *   [WHERE split = ? AND label = ? AND path != ? AND sha256 != ? AND dataset = ?]
 *
 * Scans the feature set's vectors (the embeddings view's rows) with one
 * prepared statement, computes each distance in C and keeps the k best in a
 * max-heap; rows come out by increasing distance (ties by path). The WHERE
 * terms listed are applied before ranking, so "the 10 nearest in the train
 * split" and "excluding the query image" mean what they say. Rows whose
 * distance is undefined (cosine of a zero vector, NaNs) are skipped.
 *
 * In a join (vec_knn(e.vector, ...) for every row e) SQLite calls xFilter
 * again and again on one cursor. From the second call on, the cursor keeps
 * the feature set's vectors in memory, decoded, with their norms (up to
 * knn_cache_max() bytes; larger sets are streamed each time), for as long
 * as neither this connection nor another one has changed the database.
 * ------------------------------------------------------------------------- */

#define KNN_CACHE_MAX ((int64_t)512 << 20)

/* The cache's budget: KNN_CACHE_MAX, or half of SQLite's soft heap limit
 * when one is set (PRAGMA soft_heap_limit, sqlite3_soft_heap_limit64). */
static int64_t knn_cache_max(void) {
    int64_t lim = sqlite3_soft_heap_limit64(-1);
    return lim > 0 && lim / 2 < KNN_CACHE_MAX ? lim / 2 : KNN_CACHE_MAX;
}

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

/* A result row. Strings are the row's own copies when owned (streaming),
 * otherwise borrowed from the cursor's cache. */
typedef struct {
    double distance;
    const char *path, *label, *split, *sha256, *dataset;
    int owned;
} knn_row;

/* A cached vector's image and norm; its floats are in knn_cursor.vecs. */
typedef struct {
    char *path, *label, *split, *sha256, *dataset;
    double norm2;
} knn_item;

typedef struct {
    sqlite3_vtab base;
    sqlite3 *db;
} knn_vtab;

typedef struct {
    sqlite3_vtab_cursor base;
    knn_row *rows; /* a max-heap while scanning, sorted ascending after */
    int64_t nrows, cap;
    int64_t pos;
    int64_t scans; /* xFilter calls so far */
    /* the cache: nitems vectors of feature set c_fsid (c_dim floats each) */
    int c_valid;
    int64_t c_fsid, c_dim;
    int c_changes;
    unsigned c_version;
    int64_t c_nofit; /* id of a feature set found too large to keep, or 0 */
    knn_item *items;
    float *vecs;
    int64_t nitems;
} knn_cursor;

/* The WHERE terms vec_knn applies itself. A NULL value matches nothing, as
 * in SQL. */
typedef struct {
    sqlite3_value *split, *label, *not_path, *not_sha256, *dataset;
} knn_where;

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
    *out = &vt->base;
    return SQLITE_OK;
}

static int knn_disconnect(sqlite3_vtab *vt) {
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
    if (r->owned) {
        sqlite3_free((char *)r->path);
        sqlite3_free((char *)r->label);
        sqlite3_free((char *)r->split);
        sqlite3_free((char *)r->sha256);
        sqlite3_free((char *)r->dataset);
    }
}

static void knn_reset(knn_cursor *cur) {
    for (int64_t i = 0; i < cur->nrows; i++)
        knn_row_free(&cur->rows[i]);
    sqlite3_free(cur->rows);
    cur->rows = NULL;
    cur->nrows = cur->cap = cur->pos = 0;
}

static void knn_cache_free(knn_cursor *cur) {
    for (int64_t i = 0; i < cur->nitems; i++) {
        sqlite3_free(cur->items[i].path);
        sqlite3_free(cur->items[i].label);
        sqlite3_free(cur->items[i].split);
        sqlite3_free(cur->items[i].sha256);
        sqlite3_free(cur->items[i].dataset);
    }
    sqlite3_free(cur->items);
    sqlite3_free(cur->vecs);
    cur->items = NULL;
    cur->vecs = NULL;
    cur->nitems = 0;
    cur->c_valid = 0;
}

static int knn_close(sqlite3_vtab_cursor *c) {
    knn_cursor *cur = (knn_cursor *)c;
    knn_reset(cur);
    knn_cache_free(cur);
    sqlite3_free(cur);
    return SQLITE_OK;
}

/* Is row a ranked after row b? Larger distance, then larger path. */
static int knn_after(const knn_row *a, const knn_row *b) {
    if (a->distance != b->distance)
        return a->distance > b->distance;
    return strcmp(a->path, b->path) > 0;
}

static void knn_sift_down(knn_row *h, int64_t n, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && knn_after(&h[l], &h[m]))
            m = l;
        if (r < n && knn_after(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        knn_row t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void knn_sift_up(knn_row *h, int64_t i) {
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!knn_after(&h[i], &h[p]))
            return;
        knn_row t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static char *knn_strdup(const char *s) {
    return s ? sqlite3_mprintf("%s", s) : NULL;
}

/* Offer a candidate to the heap of at most k rows. With copy, the strings
 * are copied, and only when the candidate gets in. */
static int knn_offer(knn_cursor *cur, int64_t k, double d, const char *path, const char *label,
                     const char *split, const char *sha256, const char *dataset, int copy) {
    knn_row cand = {d, path, label, split, sha256, dataset, 0};
    if (cur->nrows == k) {
        if (!knn_after(&cur->rows[0], &cand))
            return SQLITE_OK;
        knn_row_free(&cur->rows[0]);
        cur->rows[0] = cur->rows[--cur->nrows];
        knn_sift_down(cur->rows, cur->nrows, 0);
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
    if (copy) {
        cand.owned = 1;
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
    }
    cur->rows[cur->nrows++] = cand;
    knn_sift_up(cur->rows, cur->nrows - 1);
    return SQLITE_OK;
}

static int knn_cmp(const void *pa, const void *pb) {
    const knn_row *a = pa, *b = pb;
    return knn_after(a, b) ? 1 : knn_after(b, a) ? -1 : 0;
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

/* A feature set: what the query and the stored vectors must look like. */
typedef struct {
    int64_t id, dim;
    int type; /* BN_VEC_F32 | BN_VEC_F16 */
    char *name;
} knn_fs;

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
    case BN_VEC_DOT: return -bn_vec_dot(q, v, dim);
    default:
        if (vn2 >= 0)
            return bn_vec_cosine_from(bn_vec_dot(q, v, dim), qn2, vn2);
        double dot, nv;
        bn_vec_dot_norm(q, v, dim, &dot, &nv);
        return bn_vec_cosine_from(dot, qn2, nv);
    }
}

/* The feature set's (image, vector, dataset name) rows, in a prepared
 * statement. A database from before datasets (schema version 2, read by
 * the loadable extension) has none: NULL. */
static int knn_prepare(knn_cursor *cur, sqlite3 *db, const knn_fs *fs, sqlite3_stmt **st) {
    /* Asked, not tried: the schema decides, so that another error in the
     * statement is reported as itself, not taken for an older schema. */
    int has_datasets = sqlite3_table_column_metadata(db, NULL, "images", "dataset", NULL, NULL,
                                                     NULL, NULL, NULL) == SQLITE_OK &&
                       sqlite3_table_column_metadata(db, NULL, "datasets", "name", NULL, NULL, NULL,
                                                     NULL, NULL) == SQLITE_OK;
    int rc = SQLITE_ERROR;
    if (has_datasets)
        rc = sqlite3_prepare_v2(db,
                                "SELECT i.path, i.label, i.split, v.sha256, v.vector, d.name "
                                "FROM vectors v JOIN images i ON i.sha256 = v.sha256 "
                                "JOIN datasets d ON d.id = i.dataset "
                                "WHERE v.featureset = ?1",
                                -1, st, NULL);
    if (!has_datasets)
        rc = sqlite3_prepare_v2(db,
                                "SELECT i.path, i.label, i.split, v.sha256, v.vector, NULL "
                                "FROM vectors v JOIN images i ON i.sha256 = v.sha256 "
                                "WHERE v.featureset = ?1",
                                -1, st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    sqlite3_bind_int64(*st, 1, fs->id);
    return SQLITE_OK;
}

/* The current row's vector as dim floats: in place, or decoded into buf. */
static int knn_row_vector(knn_cursor *cur, sqlite3_stmt *st, const knn_fs *fs, float *buf,
                          const float **out) {
    const void *blob = sqlite3_column_blob(st, 4);
    int64_t bytes = sqlite3_column_bytes(st, 4);
    int64_t want = fs->dim * (fs->type == BN_VEC_F16 ? 2 : 4);
    if (bytes != want || !blob) {
        if (!blob && bytes > 0)
            return SQLITE_NOMEM;
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: the vector of %s in feature set '%s' has %lld bytes, "
                         "expected %lld (%lld dimensions of %s)",
                         sqlite3_column_text(st, 0), fs->name, (long long)bytes, (long long)want,
                         (long long)fs->dim, bn_vec_type_name(fs->type));
    }
    if (fs->type == BN_VEC_F16) {
        bn_vec_f16_decode(blob, buf, fs->dim);
        *out = buf;
    } else if (((uintptr_t)blob & 3) == 0) {
        *out = blob;
    } else {
        memcpy(buf, blob, (size_t)bytes);
        *out = buf;
    }
    return SQLITE_OK;
}

static int knn_step_error(knn_cursor *cur, sqlite3 *db, int rc) {
    if (rc == SQLITE_DONE)
        return SQLITE_OK;
    if (rc != SQLITE_OK && rc != SQLITE_NOMEM && !cur->base.pVtab->zErrMsg)
        rc = knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    return rc;
}

/* One pass over the stored rows: the filters first (the vector BLOB is not
 * even read for a row they drop), then the distance, then the heap. */
static int knn_scan(knn_cursor *cur, sqlite3 *db, const knn_fs *fs, const bn_vec_t *q, int64_t k,
                    int metric, const knn_where *w) {
    sqlite3_stmt *st;
    int rc = knn_prepare(cur, db, fs, &st);
    if (rc != SQLITE_OK)
        return rc;
    float *buf = sqlite3_malloc64((sqlite3_uint64)fs->dim * sizeof *buf);
    if (!buf) {
        sqlite3_finalize(st);
        return SQLITE_NOMEM;
    }
    double qn2 = bn_vec_dot(q->f, q->f, fs->dim);
    int filtered = w->split || w->label || w->not_path || w->not_sha256 || w->dataset;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (filtered) {
            const char *path = (const char *)sqlite3_column_text(st, 0);
            if (!path || !knn_keep(w, path, (const char *)sqlite3_column_text(st, 1),
                                   (const char *)sqlite3_column_text(st, 2),
                                   (const char *)sqlite3_column_text(st, 3),
                                   (const char *)sqlite3_column_text(st, 5)))
                continue;
        }
        const float *v;
        if ((rc = knn_row_vector(cur, st, fs, buf, &v)) != SQLITE_OK)
            break;
        double d = knn_distance(metric, q->f, qn2, v, -1, fs->dim);
        if (isnan(d))
            continue;
        /* A row that cannot get into the heap costs no strings. */
        if (cur->nrows == k && d > cur->rows[0].distance)
            continue;
        const char *path = (const char *)sqlite3_column_text(st, 0);
        if (!path)
            continue;
        if ((rc = knn_offer(cur, k, d, path, (const char *)sqlite3_column_text(st, 1),
                            (const char *)sqlite3_column_text(st, 2),
                            (const char *)sqlite3_column_text(st, 3),
                            (const char *)sqlite3_column_text(st, 5), 1)) != SQLITE_OK)
            break;
    }
    rc = knn_step_error(cur, db, rc);
    sqlite3_free(buf);
    sqlite3_finalize(st);
    return rc;
}

/* The database's state: this connection's changes, other connections'
 * commits. A cache is valid while both stay the same. */
static void knn_stamp(sqlite3 *db, int *changes, unsigned *version) {
    *changes = sqlite3_total_changes(db);
    *version = 0;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, version);
}

/* Load every row of the feature set into the cursor's cache. Gives up
 * quietly (c_valid = 0) past knn_cache_max() bytes, and remembers that
 * this set does not fit (c_nofit) until the database changes. */
static int knn_cache_load(knn_cursor *cur, sqlite3 *db, const knn_fs *fs) {
    knn_cache_free(cur);
    int64_t cap = 0, rowbytes = fs->dim * (int64_t)sizeof(float), budget = knn_cache_max();
    int fits = 1;
    /* The number of vectors first (cheap: no vector is read), so that a set
     * far too large is not half-loaded for nothing. */
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(db, "SELECT count(*) FROM vectors WHERE featureset = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, fs->id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) * rowbytes > budget)
        fits = 0;
    sqlite3_finalize(st);
    st = NULL;
    if (fits && (rc = knn_prepare(cur, db, fs, &st)) != SQLITE_OK)
        return rc;
    while (fits && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((cur->nitems + 1) * rowbytes > budget) {
            fits = 0;
            break;
        }
        if (cur->nitems == cap) {
            int64_t ncap = cap ? 2 * cap : 256;
            if (ncap * rowbytes > budget)
                ncap = budget / rowbytes;
            knn_item *it = sqlite3_realloc64(cur->items, (sqlite3_uint64)ncap * sizeof *it);
            if (it)
                cur->items = it;
            float *vs = sqlite3_realloc64(cur->vecs, (sqlite3_uint64)(ncap * rowbytes));
            if (vs)
                cur->vecs = vs;
            if (!it || !vs) {
                rc = SQLITE_NOMEM;
                break;
            }
            cap = ncap;
        }
        float *dst = cur->vecs + cur->nitems * fs->dim;
        const float *v;
        if ((rc = knn_row_vector(cur, st, fs, dst, &v)) != SQLITE_OK)
            break;
        if (v != dst)
            memcpy(dst, v, (size_t)rowbytes);
        knn_item *it = &cur->items[cur->nitems];
        it->path = knn_strdup((const char *)sqlite3_column_text(st, 0));
        it->label = knn_strdup((const char *)sqlite3_column_text(st, 1));
        it->split = knn_strdup((const char *)sqlite3_column_text(st, 2));
        it->sha256 = knn_strdup((const char *)sqlite3_column_text(st, 3));
        it->dataset = knn_strdup((const char *)sqlite3_column_text(st, 5));
        it->norm2 = bn_vec_dot(dst, dst, fs->dim);
        cur->nitems++;
        if (!it->path || (!it->label && sqlite3_column_type(st, 1) != SQLITE_NULL) ||
            (!it->split && sqlite3_column_type(st, 2) != SQLITE_NULL) || !it->sha256 ||
            (!it->dataset && sqlite3_column_type(st, 5) != SQLITE_NULL)) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    rc = fits ? knn_step_error(cur, db, rc) : SQLITE_OK;
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || !fits) {
        knn_cache_free(cur);
        if (!fits) { /* do not try again for this set while nothing changes */
            cur->c_nofit = fs->id;
            cur->c_fsid = fs->id;
            cur->c_dim = fs->dim;
            knn_stamp(db, &cur->c_changes, &cur->c_version);
        }
        return rc;
    }
    cur->c_nofit = 0;
    cur->c_valid = 1;
    cur->c_fsid = fs->id;
    cur->c_dim = fs->dim;
    knn_stamp(db, &cur->c_changes, &cur->c_version);
    return SQLITE_OK;
}

/* Does the cursor's cache (or its "too large" verdict) still describe
 * feature set fs as stored now? */
static int knn_cache_current(knn_cursor *cur, sqlite3 *db, const knn_fs *fs) {
    if (cur->c_fsid != fs->id || cur->c_dim != fs->dim)
        return 0;
    int changes;
    unsigned version;
    knn_stamp(db, &changes, &version);
    return changes == cur->c_changes && version == cur->c_version;
}

static int knn_cache_usable(knn_cursor *cur, sqlite3 *db, const knn_fs *fs) {
    return cur->c_valid && knn_cache_current(cur, db, fs);
}

/* Rank the cached rows: no SQL, no decoding, norms known. */
static int knn_scan_cache(knn_cursor *cur, const bn_vec_t *q, int64_t k, int metric,
                          const knn_where *w) {
    double qn2 = bn_vec_dot(q->f, q->f, cur->c_dim);
    for (int64_t i = 0; i < cur->nitems; i++) {
        const knn_item *it = &cur->items[i];
        if (!knn_keep(w, it->path, it->label, it->split, it->sha256, it->dataset))
            continue;
        double d =
            knn_distance(metric, q->f, qn2, cur->vecs + i * cur->c_dim, it->norm2, cur->c_dim);
        if (isnan(d))
            continue;
        int rc = knn_offer(cur, k, d, it->path, it->label, it->split, it->sha256, it->dataset, 0);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int knn_filter(sqlite3_vtab_cursor *c, int idx, const char *idx_str, int argc,
                      sqlite3_value **argv) {
    (void)idx_str;
    knn_cursor *cur = (knn_cursor *)c;
    sqlite3 *db = ((knn_vtab *)c->pVtab)->db;
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
    /* Second and later calls (a join): rank from memory when it fits. */
    if (cur->scans++ > 0 && !knn_cache_usable(cur, db, &fs) &&
        !(cur->c_nofit == fs.id && knn_cache_current(cur, db, &fs)))
        rc = knn_cache_load(cur, db, &fs);
    if (rc == SQLITE_OK) {
        if (knn_cache_usable(cur, db, &fs))
            rc = knn_scan_cache(cur, &q, k, metric, &w);
        else
            rc = knn_scan(cur, db, &fs, &q, k, metric, &w);
    }
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

int bn_vec_knn_register(sqlite3 *db) {
    return sqlite3_create_module_v2(db, "vec_knn", &knn_module, NULL, NULL);
}

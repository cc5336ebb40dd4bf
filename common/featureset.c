/*
 * featureset.c: loading a feature set's vectors into a dense matrix (see
 * featureset.h).
 *
 * The images in path order, then their vectors (one scan of the feature
 * set's vectors, or each by its key for a small selection), each decoded
 * into its image's row of the matrix, which is then compacted to the images
 * that have one. Labels are interned as sorted indices so callers map them
 * to a run's classes with one lookup per distinct label.
 */
#include "featureset.h"

#include "f16.h"
#include "sql_end.h"
#include "vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strings in strcmp order, NULLs (images without a label) last. */
static int features_cmp_str(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    if (!x || !y)
        return !x - !y;
    return strcmp(x, y);
}

void bn_featureset_free(bn_features *f) {
    if (f->path)
        for (int i = 0; i < f->n; i++)
            free(f->path[i]);
    if (f->labels)
        for (int i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
    free(f->x);
    free(f->image);
    free(f->path);
    free(f->label);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

/* The feature set's name, dim and dtype. */
static int features_info(bn_store *s, int64_t fs, char *name, size_t nname, int *dim, int *is_f16,
                         bn_error *err) {
    bn_featureset row;
    int rc = bn_store_featureset_get(s, fs, &row, err);
    if (rc == BN_OK) {
        snprintf(name, nname, "%s", row.name);
        *dim = row.dim;
        *is_f16 = strcmp(row.dtype, "f16") == 0;
    }
    bn_store_featureset_release(&row);
    return rc;
}

/* "train (2000), validation (1000)": the splits with vectors in fs (in
 * dataset, when not 0). */
static void features_splits_text(bn_store *s, int64_t fs, int64_t dataset, char *out, size_t n) {
    out[0] = '\0';
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT coalesce(i.split, '(none)'), count(*) FROM images i"
                           " JOIN vectors v ON v.sha256 = i.sha256 AND v.featureset = ?1"
                           " WHERE ?2 = 0 OR i.dataset = ?2"
                           " GROUP BY i.split ORDER BY i.split",
                           -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(q, 1, fs);
    sqlite3_bind_int64(q, 2, dataset);
    size_t len = 0;
    while (sqlite3_step(q) == SQLITE_ROW && len + 64 < n)
        len += (size_t)snprintf(out + len, n - len, "%s%s (%d)", len ? ", " : "",
                                (const char *)sqlite3_column_text(q, 0), sqlite3_column_int(q, 1));
    sqlite3_finalize(q);
    if (!len)
        snprintf(out, n, "none");
}

static int features_alloc(bn_features *f, int n, int dim, const char *fsname, bn_error *err) {
    memset(f, 0, sizeof *f);
    f->dim = dim;
    size_t cells = (size_t)n * (size_t)dim;
    f->x = malloc(cells * sizeof *f->x);
    f->image = calloc((size_t)n, sizeof *f->image);
    f->path = calloc((size_t)n, sizeof *f->path);
    f->label = calloc((size_t)n, sizeof *f->label);
    if (!f->x || !f->image || !f->path || !f->label) {
        free(f->x), free(f->image), free(f->path), free(f->label);
        memset(f, 0, sizeof *f);
        return bn_fail(err, BN_ENOMEM,
                       "feature set '%s': out of memory for %d x %d floats (%.0f MB)", fsname, n,
                       dim, (double)cells * 4 / 1e6);
    }
    return BN_OK;
}

/* A BLOB of the right size (f32, or f16 widened) into row i of f->x. */
static void features_decode(bn_features *f, int i, const void *blob, int is_f16) {
    float *row = f->x + (size_t)i * f->dim;
    if (is_f16)
        bn_f16_to_f32_array(blob, row, (size_t)f->dim);
    else
        memcpy(row, blob, (size_t)f->dim * sizeof *row);
}

/* Row i of f->x holds only finite values. */
static int features_finite(const bn_features *f, int i, const char *fsname, const char *path,
                           bn_error *err) {
    const float *row = f->x + (size_t)i * f->dim;
    for (int j = 0; j < f->dim; j++)
        if (!isfinite(row[j]))
            return bn_fail(err, BN_EFORMAT, "feature set '%s': the vector of %s has %s at %d",
                           fsname, path, isnan(row[j]) ? "NaN" : "Inf", j);
    return BN_OK;
}

/* Decode one row's BLOB into f->x row i and check its values. */
static int features_row(bn_features *f, int i, const void *blob, int bytes, int is_f16,
                        const char *fsname, const char *path, bn_error *err) {
    int want = f->dim * (is_f16 ? 2 : 4);
    if (bytes != want)
        return bn_fail(err, BN_EFORMAT,
                       "feature set '%s': the vector of %s has %d bytes, expected %d (%d x %s)",
                       fsname, path, bytes, want, f->dim, is_f16 ? "f16" : "f32");
    features_decode(f, i, blob, is_f16);
    return features_finite(f, i, fsname, path, err);
}

/* Intern the per-row label strings (held in tmp) as sorted indices. */
static int features_labels(bn_features *f, char **tmp, bn_error *err) {
    char **sorted = malloc((size_t)f->n * sizeof *sorted);
    if (!sorted)
        return bn_fail(err, BN_ENOMEM, "features: out of memory");
    memcpy(sorted, tmp, (size_t)f->n * sizeof *sorted);
    qsort(sorted, (size_t)f->n, sizeof *sorted, features_cmp_str);
    int u = 0;
    for (int i = 0; i < f->n; i++)
        if (sorted[i] && (u == 0 || strcmp(sorted[u - 1], sorted[i]) != 0))
            sorted[u++] = sorted[i];
    f->labels = calloc((size_t)u, sizeof *f->labels);
    if (!f->labels) {
        free(sorted);
        return bn_fail(err, BN_ENOMEM, "features: out of memory");
    }
    f->nlabels = u;
    for (int i = 0; i < u; i++)
        if (!(f->labels[i] = strdup(sorted[i]))) {
            free(sorted);
            return bn_fail(err, BN_ENOMEM, "features: out of memory");
        }
    free(sorted);
    for (int i = 0; i < f->n; i++) {
        char **hit =
            tmp[i] ? bsearch(&tmp[i], f->labels, (size_t)u, sizeof *f->labels, features_cmp_str)
                   : NULL;
        f->label[i] = hit ? (int)(hit - f->labels) : -1;
    }
    return BN_OK;
}

int bn_featureset_load(bn_store *s, int64_t fs, const char *split, bn_features *out,
                       bn_error *err) {
    bn_rows rows = {.split = split};
    return bn_featureset_load_rows(s, fs, &rows, out, err);
}

static void features_bind_rows(sqlite3_stmt *q, int64_t fs, const bn_rows *rows) {
    sqlite3_bind_int64(q, 1, fs);
    if (rows->split)
        sqlite3_bind_text(q, 2, rows->split, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, rows->dataset);
    sqlite3_bind_int64(q, 4, rows->held_out);
    sqlite3_bind_int64(q, 5, rows->kept_by);
}

/* The selected images, in path order, before their vectors are read. */
typedef struct {
    int n, cap;
    int64_t *id;
    char **path, **label, **sha; /* owned */
    int *bytes;                  /* the size of each one's vector; 0: none in fs */
} features_sel;

static void features_sel_free(features_sel *t) {
    for (int i = 0; i < t->n; i++)
        free(t->path[i]), free(t->label[i]), free(t->sha[i]);
    free(t->id), free(t->path), free(t->label), free(t->sha), free(t->bytes);
    memset(t, 0, sizeof *t);
}

static int features_sel_add(features_sel *t, sqlite3_stmt *q, bn_error *err) {
    if (t->n == t->cap) {
        int want = t->cap < 1024 ? 1024 : t->cap * 2;
        int64_t *id = realloc(t->id, (size_t)want * sizeof *id);
        t->id = id ? id : t->id;
        char **path = realloc(t->path, (size_t)want * sizeof *path);
        t->path = path ? path : t->path;
        char **label = realloc(t->label, (size_t)want * sizeof *label);
        t->label = label ? label : t->label;
        char **sha = realloc(t->sha, (size_t)want * sizeof *sha);
        t->sha = sha ? sha : t->sha;
        if (!id || !path || !label || !sha)
            return bn_fail(err, BN_ENOMEM, "features: out of memory");
        t->cap = want;
    }
    const char *label = (const char *)sqlite3_column_text(q, 2);
    int i = t->n;
    t->id[i] = sqlite3_column_int64(q, 0);
    t->path[i] = strdup((const char *)sqlite3_column_text(q, 1));
    t->label[i] = label ? strdup(label) : NULL;
    t->sha[i] = strdup((const char *)sqlite3_column_text(q, 3));
    t->n++; /* so that free releases them */
    if (!t->path[i] || (label && !t->label[i]) || !t->sha[i])
        return bn_fail(err, BN_ENOMEM, "features: out of memory");
    return BN_OK;
}

/* Image i's vector (bytes at blob) into row i of f->x: decoded when its size
 * is right; the size is kept in t->bytes[i] for the checks in path order. */
static void features_put(bn_features *f, features_sel *t, int i, const void *blob, int bytes,
                         int is_f16) {
    t->bytes[i] = bytes > 0 ? bytes : -1; /* an empty BLOB is a vector of the wrong size */
    if (bytes == f->dim * (is_f16 ? 2 : 4))
        features_decode(f, i, blob, is_f16);
}

/* qsort_r: image indices by their SHA-256. */
static int features_cmp_sha(const void *a, const void *b, void *sel) {
    const features_sel *t = sel;
    return strcmp(t->sha[*(const int *)a], t->sha[*(const int *)b]);
}

/* The vectors of the selected images, by scanning the feature set's range
 * of `vectors` once and matching each row to the images with its SHA-256
 * (sorted, binary search). Why not each vector by its key: `vectors` is a
 * WITHOUT ROWID table whose 4 KB rows overflow their pages, and SQLite
 * then reads the whole record at every comparison of a descent (perf:
 * sqlite3BtreeIndexMoveto 54% of a load); a scan reads each record once. */
static int features_scan(sqlite3 *db, int64_t fs, bn_features *f, features_sel *t, int is_f16) {
    int *order = malloc((size_t)t->n * sizeof *order);
    sqlite3_stmt *vq = NULL;
    int step = SQLITE_NOMEM;
    if (!order)
        return step;
    for (int i = 0; i < t->n; i++)
        order[i] = i;
    qsort_r(order, (size_t)t->n, sizeof *order, features_cmp_sha, t);
    if ((step = sqlite3_prepare_v2(db, "SELECT sha256, vector FROM vectors WHERE featureset = ?1",
                                   -1, &vq, NULL)) == SQLITE_OK) {
        sqlite3_bind_int64(vq, 1, fs);
        while ((step = sqlite3_step(vq)) == SQLITE_ROW) {
            const char *sha = (const char *)sqlite3_column_text(vq, 0);
            int lo = 0, hi = t->n; /* the first image whose sha is >= this one */
            while (sha && lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (strcmp(t->sha[order[mid]], sha) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (; sha && lo < t->n && strcmp(t->sha[order[lo]], sha) == 0; lo++)
                features_put(f, t, order[lo], sqlite3_column_blob(vq, 1),
                             sqlite3_column_bytes(vq, 1), is_f16);
        }
    }
    sqlite3_finalize(vq);
    free(order);
    return step == SQLITE_DONE ? SQLITE_OK : step;
}

/* The same, each image's vector by its key: for a selection that is a small
 * part of the feature set, where a scan would read mostly other vectors. */
static int features_lookup(sqlite3 *db, int64_t fs, bn_features *f, features_sel *t, int is_f16) {
    sqlite3_stmt *vq = NULL;
    int step = sqlite3_prepare_v2(
        db, "SELECT vector FROM vectors WHERE featureset = ?1 AND sha256 = ?2", -1, &vq, NULL);
    sqlite3_bind_int64(vq, 1, fs);
    for (int i = 0; step == SQLITE_OK && i < t->n; i++) {
        sqlite3_reset(vq);
        sqlite3_bind_text(vq, 2, t->sha[i], -1, SQLITE_STATIC);
        if ((step = sqlite3_step(vq)) == SQLITE_ROW)
            features_put(f, t, i, sqlite3_column_blob(vq, 0), sqlite3_column_bytes(vq, 0), is_f16);
        step = step == SQLITE_ROW || step == SQLITE_DONE ? SQLITE_OK : step;
    }
    sqlite3_finalize(vq);
    return step;
}

/* The images are read sorted (path, id) without their vectors, then their
 * vectors: by one scan of the feature set's vectors when the selection is
 * at least an eighth of the database's images, else each by its key (3,000
 * rows of 1,024 dims in three splits, 21 loads in one process, alternating
 * builds, load average 9-10: 61 ms median against 95-122 by key; best 26
 * against 67). Sorting whole rows made
 * SQLite copy every 4 KB BLOB into a temporary B-tree (spilled to temporary
 * files) and a count(*) first cost one more lookup per row (115 ms of CPU
 * for the same load). The vectors are read through SQLite's memory map, not
 * one pread() per 4 KB page. A savepoint makes both reads one snapshot. */
int bn_featureset_load_rows(bn_store *s, int64_t fs, const bn_rows *rows, bn_features *out,
                            bn_error *err) {
    memset(out, 0, sizeof *out);
    const char *split = rows->split;
    char fsname[256];
    int dim, is_f16;
    int rc = features_info(s, fs, fsname, sizeof fsname, &dim, &is_f16, err);
    if (rc)
        return rc;
    sqlite3 *db = bn_store_db(s);
    sqlite3_int64 mmap_was = bn_vec_mmap_on(db);
    if (sqlite3_exec(db, "SAVEPOINT bn_featureset_load", NULL, NULL, NULL) != SQLITE_OK) {
        bn_vec_mmap_restore(db, mmap_was);
        return bn_store_fail(s, err, "reading vectors");
    }
    features_sel t = {0};
    char **labels = NULL;
    sqlite3_stmt *q = NULL;
    int step, n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT i.id, i.path, i.label, i.sha256 FROM images i"
                           " WHERE (?2 IS NULL OR i.split = ?2) AND (?3 = 0 OR i.dataset = ?3)"
                           " AND (?4 = 0 OR i.id IN (SELECT image FROM holdouts WHERE sweep = ?4))"
                           " AND (?5 = 0 OR i.id NOT IN (SELECT image FROM holdouts"
                           " WHERE sweep = ?5)) ORDER BY i.path, i.id",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = bn_store_fail(s, err, "reading vectors");
        goto out;
    }
    features_bind_rows(q, fs, rows);
    while ((step = sqlite3_step(q)) == SQLITE_ROW)
        if ((rc = features_sel_add(&t, q, err)))
            goto out;
    if (step != SQLITE_DONE) {
        rc = bn_store_fail(s, err, "reading vectors");
        goto out;
    }
    if (t.n > 0) {
        if ((size_t)t.n * (size_t)dim > ((size_t)1 << 34)) {
            rc = bn_fail(err, BN_EINVAL, "feature set '%s': too many rows", fsname);
            goto out;
        }
        t.bytes = calloc((size_t)t.n, sizeof *t.bytes);
        labels = calloc((size_t)t.n, sizeof *labels);
        if (!t.bytes || !labels || (rc = features_alloc(out, t.n, dim, fsname, err))) {
            rc = rc ? rc : bn_fail(err, BN_ENOMEM, "features: out of memory");
            goto out;
        }
        out->dim = dim;
        sqlite3_stmt *cq = NULL;
        int64_t images = 0;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM images", -1, &cq, NULL) == SQLITE_OK &&
            sqlite3_step(cq) == SQLITE_ROW)
            images = sqlite3_column_int64(cq, 0);
        sqlite3_finalize(cq);
        int src = (int64_t)t.n * 8 >= images ? features_scan(db, fs, out, &t, is_f16)
                                             : features_lookup(db, fs, out, &t, is_f16);
        if (src != SQLITE_OK) {
            rc = bn_store_fail(s, err, "reading vectors");
            goto out;
        }
    }
    /* In path order: check each vector, keep the images that have one. */
    for (int i = 0; i < t.n; i++) {
        if (!t.bytes[i])
            continue; /* no vector in this feature set */
        if (t.bytes[i] != dim * (is_f16 ? 2 : 4)) {
            rc = bn_fail(err, BN_EFORMAT,
                         "feature set '%s': the vector of %s has %d bytes, expected %d (%d x %s)",
                         fsname, t.path[i], t.bytes[i] < 0 ? 0 : t.bytes[i], dim * (is_f16 ? 2 : 4),
                         dim, is_f16 ? "f16" : "f32");
            goto out;
        }
        if ((rc = features_finite(out, i, fsname, t.path[i], err)))
            goto out;
        if (n != i)
            memcpy(out->x + (size_t)n * dim, out->x + (size_t)i * dim,
                   (size_t)dim * sizeof *out->x);
        out->image[n] = t.id[i];
        out->path[n] = t.path[i], t.path[i] = NULL;
        labels[n] = t.label[i], t.label[i] = NULL;
        out->n = ++n;
    }
    if (n == 0) {
        char splits[512];
        features_splits_text(s, fs, rows->dataset, splits, sizeof splits);
        if (rows->held_out)
            rc = bn_fail(err, BN_EINVAL,
                         "feature set '%s' has no vectors for the images sweep %lld held out",
                         fsname, (long long)rows->held_out);
        else if (split)
            rc = bn_fail(err, BN_EINVAL,
                         "feature set '%s' has no vectors in split '%s' (splits with vectors: "
                         "%s)",
                         fsname, split, splits);
        else
            rc = bn_fail(err, BN_EINVAL, "feature set '%s' has no vectors", fsname);
        goto out;
    }
    rc = features_labels(out, labels, err);
out:
    sqlite3_finalize(q);
    bn_sql_end(db, "RELEASE bn_featureset_load");
    bn_vec_mmap_restore(db, mmap_was);
    for (int r = 0; labels && r < n; r++)
        free(labels[r]);
    free(labels);
    features_sel_free(&t);
    if (rc)
        bn_featureset_free(out);
    return rc;
}

int bn_featureset_load_images(bn_store *s, int64_t fs, const int64_t *images, int n,
                              bn_features *out, bn_error *err) {
    memset(out, 0, sizeof *out);
    char fsname[256];
    int dim, is_f16;
    int rc = features_info(s, fs, fsname, sizeof fsname, &dim, &is_f16, err);
    if (rc)
        return rc;
    if (n < 1)
        return bn_fail(err, BN_EINVAL, "features: no images given");
    if ((rc = features_alloc(out, n, dim, fsname, err)))
        return rc;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT i.path, i.label, v.vector FROM images i LEFT JOIN vectors v"
                           " ON v.sha256 = i.sha256 AND v.featureset = ?1 WHERE i.id = ?2",
                           -1, &q, NULL) != SQLITE_OK) {
        bn_featureset_free(out);
        return bn_store_fail(s, err, "reading vectors");
    }
    char **labels = calloc((size_t)n, sizeof *labels);
    if (!labels)
        rc = bn_fail(err, BN_ENOMEM, "features: out of memory");
    for (int i = 0; rc == BN_OK && i < n; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, fs);
        sqlite3_bind_int64(q, 2, images[i]);
        int step = sqlite3_step(q);
        out->n = i + 1;
        out->image[i] = images[i];
        if (step == SQLITE_DONE) {
            rc = bn_fail(err, BN_EINVAL, "%s: no image with id %lld", bn_store_path(s),
                         (long long)images[i]);
            break;
        } else if (step != SQLITE_ROW) {
            rc = bn_store_fail(s, err, "reading vectors");
            break;
        }
        out->path[i] = strdup((const char *)sqlite3_column_text(q, 0));
        const unsigned char *label = sqlite3_column_text(q, 1);
        labels[i] = label ? strdup((const char *)label) : NULL;
        if (!out->path[i] || (label && !labels[i]))
            rc = bn_fail(err, BN_ENOMEM, "features: out of memory");
        else if (sqlite3_column_type(q, 2) == SQLITE_NULL)
            rc = bn_fail(err, BN_EINVAL, "feature set '%s' has no vector for %s", fsname,
                         out->path[i]);
        else
            rc = features_row(out, i, sqlite3_column_blob(q, 2), sqlite3_column_bytes(q, 2), is_f16,
                              fsname, out->path[i], err);
    }
    sqlite3_finalize(q);
    if (rc == BN_OK)
        rc = features_labels(out, labels, err);
    for (int r = 0; labels && r < n; r++)
        free(labels[r]);
    free(labels);
    if (rc)
        bn_featureset_free(out);
    return rc;
}

int bn_featureset_encode(const bn_features *f, char *const *classes, int k, int *y,
                         const char *what, bn_error *err) {
    int *map = malloc((size_t)(f->nlabels ? f->nlabels : 1) * sizeof *map);
    if (!map)
        return bn_fail(err, BN_ENOMEM, "features: out of memory");
    for (int l = 0; l < f->nlabels; l++) {
        map[l] = -1;
        for (int c = 0; c < k; c++)
            if (strcmp(f->labels[l], classes[c]) == 0)
                map[l] = c;
        if (map[l] < 0) {
            int row = 0;
            while (row < f->n && f->label[row] != l)
                row++;
            int rc = bn_fail(err, BN_EINVAL,
                             "%s rows have label '%s' (e.g. %s), which is not one of the %d "
                             "classes the model knows",
                             what, f->labels[l], row < f->n ? f->path[row] : "?", k);
            free(map);
            return rc;
        }
    }
    for (int i = 0; i < f->n; i++)
        y[i] = f->label[i] < 0 ? -1 : map[f->label[i]];
    free(map);
    return BN_OK;
}

int bn_featureset_permute(bn_features *f, const int *perm, bn_error *err) {
    size_t rowb = (size_t)f->dim * sizeof *f->x;
    float *tmp = malloc(rowb);
    unsigned char *done = calloc((size_t)f->n, 1);
    int64_t *image = malloc((size_t)f->n * sizeof *image);
    char **path = malloc((size_t)f->n * sizeof *path);
    int *label = malloc((size_t)f->n * sizeof *label);
    if (!tmp || !done || !image || !path || !label) {
        free(tmp), free(done), free(image), free(path), free(label);
        return bn_fail(err, BN_ENOMEM, "features: out of memory");
    }
    /* Rows: follow each cycle of the permutation with one row of scratch. */
    for (int start = 0; start < f->n; start++) {
        if (done[start])
            continue;
        memcpy(tmp, f->x + (size_t)start * f->dim, rowb);
        int j = start;
        for (;;) {
            done[j] = 1;
            int k = perm[j];
            if (k == start) {
                memcpy(f->x + (size_t)j * f->dim, tmp, rowb);
                break;
            }
            memcpy(f->x + (size_t)j * f->dim, f->x + (size_t)k * f->dim, rowb);
            j = k;
        }
    }
    for (int i = 0; i < f->n; i++) {
        image[i] = f->image[perm[i]];
        path[i] = f->path[perm[i]];
        label[i] = f->label[perm[i]];
    }
    memcpy(f->image, image, (size_t)f->n * sizeof *image);
    memcpy(f->path, path, (size_t)f->n * sizeof *path);
    memcpy(f->label, label, (size_t)f->n * sizeof *label);
    free(tmp), free(done), free(image), free(path), free(label);
    return BN_OK;
}

int bn_featureset_split_tail(bn_features *f, int keep, bn_features *tail, bn_error *err) {
    int m = f->n - keep;
    char fsname[] = "holdout";
    int rc = features_alloc(tail, m > 0 ? m : 1, f->dim, fsname, err);
    if (rc)
        return rc;
    tail->n = m;
    tail->labels = calloc((size_t)(f->nlabels ? f->nlabels : 1), sizeof *tail->labels);
    if (!tail->labels) {
        bn_featureset_free(tail);
        return bn_fail(err, BN_ENOMEM, "features: out of memory");
    }
    tail->nlabels = f->nlabels;
    for (int l = 0; l < f->nlabels; l++)
        if (!(tail->labels[l] = strdup(f->labels[l]))) {
            bn_featureset_free(tail);
            return bn_fail(err, BN_ENOMEM, "features: out of memory");
        }
    memcpy(tail->x, f->x + (size_t)keep * f->dim, (size_t)m * f->dim * sizeof *f->x);
    for (int i = 0; i < m; i++) {
        tail->image[i] = f->image[keep + i];
        tail->path[i] = f->path[keep + i]; /* the strings change hands */
        tail->label[i] = f->label[keep + i];
        f->path[keep + i] = NULL;
    }
    f->n = keep;
    return BN_OK;
}

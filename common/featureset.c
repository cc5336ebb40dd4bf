/*
 * featureset.c: loading a feature set's vectors into a dense matrix (see
 * featureset.h).
 *
 * The images in path order, then each one's vector by its key, decoded
 * into its row of a matrix grown by half as needed. Labels are interned as sorted indices so
 * callers map them to a run's classes with one lookup per distinct label.
 */
#include "featureset.h"

#include "f16.h"
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

/* Decode one row's BLOB into f->x row i and check its values. */
static int features_row(bn_features *f, int i, const void *blob, int bytes, int is_f16,
                        const char *fsname, const char *path, bn_error *err) {
    int want = f->dim * (is_f16 ? 2 : 4);
    if (bytes != want)
        return bn_fail(err, BN_EFORMAT,
                       "feature set '%s': the vector of %s has %d bytes, expected %d (%d x %s)",
                       fsname, path, bytes, want, f->dim, is_f16 ? "f16" : "f32");
    float *row = f->x + (size_t)i * f->dim;
    if (is_f16)
        bn_f16_to_f32_array(blob, row, (size_t)f->dim);
    else
        memcpy(row, blob, (size_t)bytes);
    for (int j = 0; j < f->dim; j++)
        if (!isfinite(row[j]))
            return bn_fail(err, BN_EFORMAT, "feature set '%s': the vector of %s has %s at %d",
                           fsname, path, isnan(row[j]) ? "NaN" : "Inf", j);
    return BN_OK;
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

/* The images are read sorted (path, id) without their vectors, then each
 * vector by its primary key, skipping images that have none in fs. Sorting
 * whole rows made SQLite copy every 4 KB BLOB into a temporary B-tree
 * (spilled to temporary files), joining from the vectors side read all of
 * the feature set's vectors for each split, and a count(*) first cost one
 * more lookup per row: 2,000 + 500 + 500 rows of 1,024 dims took 115 ms of
 * CPU that way, 36 ms this way. A savepoint makes both reads one snapshot. */
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
    /* The vectors span overflow pages: read from SQLite's memory map, not
     * one pread() per 4 KB page (2,000 + 1,000 rows of 1,024 dims: 17,000
     * preads: 53 ms of loading became 40, 15 rounds, medians). */
    sqlite3_int64 mmap_was = bn_vec_mmap_on(db);
    if (sqlite3_exec(db, "SAVEPOINT bn_featureset_load", NULL, NULL, NULL) != SQLITE_OK) {
        bn_vec_mmap_restore(db, mmap_was);
        return bn_store_fail(s, err, "reading vectors");
    }
    sqlite3_stmt *q = NULL, *vq = NULL;
    char **labels = NULL;
    int i = 0, cap = 0, step;
    if (sqlite3_prepare_v2(db,
                           "SELECT i.id, i.path, i.label, i.sha256 FROM images i"
                           " WHERE (?2 IS NULL OR i.split = ?2) AND (?3 = 0 OR i.dataset = ?3)"
                           " AND (?4 = 0 OR i.id IN (SELECT image FROM holdouts WHERE sweep = ?4))"
                           " AND (?5 = 0 OR i.id NOT IN (SELECT image FROM holdouts"
                           " WHERE sweep = ?5)) ORDER BY i.path, i.id",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT vector FROM vectors WHERE featureset = ?1 AND sha256 = ?2",
                           -1, &vq, NULL) != SQLITE_OK) {
        rc = bn_store_fail(s, err, "reading vectors");
        goto out;
    }
    features_bind_rows(q, fs, rows);
    sqlite3_bind_int64(vq, 1, fs);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        sqlite3_reset(vq);
        sqlite3_bind_value(vq, 2, sqlite3_column_value(q, 3));
        if ((step = sqlite3_step(vq)) == SQLITE_DONE)
            continue; /* no vector in this feature set */
        if (step != SQLITE_ROW) {
            rc = bn_store_fail(s, err, "reading vectors");
            goto out;
        }
        if (i == cap) { /* grow by half: a few copies of the matrix at most */
            int want = cap < 1024 ? 1024 : cap + cap / 2;
            if ((size_t)want * (size_t)dim > ((size_t)1 << 34)) {
                rc = bn_fail(err, BN_EINVAL, "feature set '%s': too many rows", fsname);
                goto out;
            }
            float *x = realloc(out->x, (size_t)want * dim * sizeof *x);
            int64_t *image = realloc(out->image, (size_t)want * sizeof *image);
            char **path = realloc(out->path, (size_t)want * sizeof *path);
            int *label = realloc(out->label, (size_t)want * sizeof *label);
            char **lab = realloc(labels, (size_t)want * sizeof *lab);
            out->x = x ? x : out->x, out->image = image ? image : out->image;
            out->path = path ? path : out->path, out->label = label ? label : out->label;
            labels = lab ? lab : labels;
            if (!x || !image || !path || !label || !lab) {
                rc = bn_fail(err, BN_ENOMEM,
                             "feature set '%s': out of memory for %d x %d floats (%.0f MB)", fsname,
                             want, dim, (double)want * dim * 4 / 1e6);
                goto out;
            }
            cap = want;
        }
        out->dim = dim;
        out->image[i] = sqlite3_column_int64(q, 0);
        out->path[i] = strdup((const char *)sqlite3_column_text(q, 1));
        const unsigned char *label = sqlite3_column_text(q, 2);
        labels[i] = label ? strdup((const char *)label) : NULL;
        out->n = ++i; /* so that free releases the strings so far */
        if (!out->path[i - 1] || (label && !labels[i - 1])) {
            rc = bn_fail(err, BN_ENOMEM, "features: out of memory");
            goto out;
        }
        if ((rc = features_row(out, i - 1, sqlite3_column_blob(vq, 0), sqlite3_column_bytes(vq, 0),
                               is_f16, fsname, out->path[i - 1], err)))
            goto out;
    }
    if (step != SQLITE_DONE) {
        rc = bn_store_fail(s, err, "reading vectors");
        goto out;
    }
    if (i == 0) {
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
    sqlite3_finalize(vq);
    sqlite3_exec(db, "RELEASE bn_featureset_load", NULL, NULL, NULL);
    bn_vec_mmap_restore(db, mmap_was);
    for (int r = 0; labels && r < i; r++)
        free(labels[r]);
    free(labels);
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

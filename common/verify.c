/*
 * verify.c: recompute stored vectors and compare them (verify.h).
 *
 * Owns: reading a feature set's definition back into settings and a
 * network (opened by model_file.h, the very file it was extracted from), the
 * selection of vectors to check, the comparison rule (bitwise for the same
 * engine and version, BN_VERIFY_TOLERANCE otherwise) and the repair writes.
 * Sequential on purpose: verification is rare and I/O-light next to the
 * network, and a plain loop is easy to trust.
 */
#include "verify.h"
#include "precision.h"

#include "f16.h"
#include "graph.h"
#include "hash.h"
#include "image.h"
#include "model_file.h"
#include "vgg16.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One vector to check. */
typedef struct {
    char sha256[65];
    char *path; /* relative to the folder verified, or a whole path (another dataset's) */
    void *blob; /* as stored */
    size_t bytes;
    char engine[32]; /* "" when not recorded */
    int version;
    int slot;  /* row in the batch tensor, -1 when not decoded */
    int whole; /* path is not relative to the folder verified */
    char *rel; /* with whole: the path relative to its dataset, tried under
                * the folder verified when path is not there (a moved folder) */
} vf_item;

typedef struct {
    bn_featureset row; /* the set as stored: its model file, name and layer */
    bn_image_opts image;
    bn_pooling pooling;
    int dim;
    bn_precision precision; /* recomputed in the feature set's own precision */
} vf_def;

/* The feature set's row -> network settings; fails for imports and for
 * settings this version cannot run. Release with vf_definition_free, also
 * after an error. */
static int vf_definition(bn_store *s, int64_t fs, vf_def *d, bn_error *err) {
    memset(d, 0, sizeof *d);
    int rc = bn_store_featureset_get(s, fs, &d->row, err);
    if (rc)
        return rc;
    const bn_featureset *row = &d->row;
    d->image.size = row->size;
    d->dim = row->dim;
    if (!row->source || strcmp(row->source, "extract") != 0)
        return bn_fail(err, BN_EINVAL,
                       "%s: feature set %s was imported, not extracted: nothing to recompute",
                       bn_store_path(s), row->name);
    if (!row->layer || !row->preprocess || !row->dtype ||
        bn_precision_parse(row->precision, &d->precision) ||
        bn_vgg16_pooling_parse(row->pooling, &d->pooling) ||
        bn_image_resize_parse(row->resize, &d->image.resize) ||
        bn_image_preprocess_from_description(row->preprocess, &d->image))
        return bn_fail(err, BN_EINVAL, "%s: feature set %s has settings this version cannot run",
                       bn_store_path(s), row->name);
    return BN_OK;
}

static void vf_definition_free(vf_def *d) {
    bn_store_featureset_release(&d->row);
}

/* The network of feature set d (model_file.h: the very file it was extracted
 * from; VGG16's weights from `weights`, located when NULL), prepared for
 * batches of `batch` with the set's layer kept. */
static int vf_network(const vf_def *d, const char *weights, const bn_verify_opts *o, int batch,
                      bn_graph **out, bn_error *err) {
    const char *tensor = d->row.layer;
    bn_model_file m;
    *out = NULL;
    int rc = bn_model_file_reopen(&d->row, weights, &m, err);
    if (!rc)
        rc = bn_graph_infer(m.g, d->image.size, d->image.size, err);
    if (!rc && (bn_graph_find(m.g, tensor) < 0 ||
                bn_graph_feature_dim(m.g, tensor, (int)d->pooling) != d->dim))
        rc = bn_fail(err, BN_EINVAL, "%s: no tensor %s of %d values (the feature set's layer)",
                     m.path, tensor, d->dim);
    if (!rc) {
        bn_graph_set_precision(m.g, d->precision);
        rc = bn_graph_prepare(m.g, o->engine, batch, &tensor, 1, err);
    }
    if (rc) {
        bn_graph_free(m.g);
        return rc;
    }
    *out = m.g;
    return BN_OK;
}

static char *vf_strdup(const unsigned char *s) {
    return s ? strdup((const char *)s) : NULL;
}

/* The vectors to check: one path per content, in sha256 order (a sample
 * spread over the set, the same on every run), from the dataset at root when
 * it has the content. A content only another dataset holds is read from
 * that dataset's folder (its path made whole), or where predict found it
 * (paths as typed): a database of several datasets is verified whole, not
 * reported as missing files. */
static int vf_select(bn_store *s, int64_t fs, long limit, const char *root, vf_item **out, long *n,
                     bn_error *err) {
    sqlite3_stmt *q = NULL;
    const char *sql = "SELECT v.sha256, v.vector, v.engine, v.engine_version, i.path, d.root"
                      " FROM vectors v"
                      " JOIN images i ON i.id = (SELECT i2.id FROM images i2"
                      "  LEFT JOIN datasets d2 ON d2.id = i2.dataset WHERE i2.sha256 = v.sha256"
                      "  ORDER BY d2.root IS ?3 DESC, i2.path LIMIT 1)"
                      " LEFT JOIN datasets d ON d.id = i.dataset"
                      " WHERE v.featureset = ?1 ORDER BY v.sha256 LIMIT ?2";
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "selecting vectors to verify");
    sqlite3_bind_int64(q, 1, fs);
    sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1);
    /* Several datasets may hold the same content: prefer the path in the one
     * extracted from root (datasets.root is absolute). */
    char *abs = realpath(root, NULL);
    const char *here = abs ? abs : root;
    sqlite3_bind_text(q, 3, here, -1, SQLITE_STATIC);
    long cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *rel = (const char *)sqlite3_column_text(q, 4),
                   *its = (const char *)sqlite3_column_text(q, 5);
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            vf_item *p = realloc(*out, (size_t)cap * sizeof *p);
            if (!p) {
                sqlite3_finalize(q);
                return bn_fail(err, BN_ENOMEM, "out of memory");
            }
            *out = p;
        }
        vf_item *it = &(*out)[(*n)++];
        memset(it, 0, sizeof *it);
        snprintf(it->sha256, sizeof it->sha256, "%s", (const char *)sqlite3_column_text(q, 0));
        it->bytes = (size_t)sqlite3_column_bytes(q, 1);
        it->blob = malloc(it->bytes ? it->bytes : 1);
        if (its && *its && strcmp(its, here) != 0) { /* another dataset's */
            size_t len = strlen(its) + strlen(rel) + 2;
            if ((it->path = malloc(len)))
                snprintf(it->path, len, "%s/%s", its, rel);
            it->whole = 1;
        } else {
            /* a dataset without a folder: predict's files, paths as typed
             * (relative ones to where it ran: here, at best) */
            it->path = vf_strdup((const unsigned char *)rel);
            it->whole = !its || !*its;
        }
        it->rel = it->whole ? vf_strdup((const unsigned char *)rel) : NULL;
        if (!it->blob || !it->path || (it->whole && !it->rel)) {
            sqlite3_finalize(q);
            free(abs);
            return bn_fail(err, BN_ENOMEM, "out of memory");
        }
        memcpy(it->blob, sqlite3_column_blob(q, 1), it->bytes);
        if (sqlite3_column_text(q, 2))
            snprintf(it->engine, sizeof it->engine, "%s", (const char *)sqlite3_column_text(q, 2));
        it->version = sqlite3_column_int(q, 3);
        it->slot = -1;
    }
    sqlite3_finalize(q);
    free(abs);
    return rc == SQLITE_DONE ? BN_OK : bn_store_fail(s, err, "selecting vectors to verify");
}

/* Read root/path whole, check its SHA-256 and decode it into in. */
static int vf_load(const char *root, vf_item *it, const vf_def *d, float *in, bn_verify_stats *st) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s%s%s", it->whole ? "" : root, it->whole ? "" : "/",
                 it->path) >= (int)sizeof path) {
        st->missing++;
        return -1;
    }
    FILE *f = fopen(path, "rb");
    /* not in its own dataset's folder: the folder verified may be that
     * folder, moved; then it is named as found */
    if (!f && it->whole && snprintf(path, sizeof path, "%s/%s", root, it->rel) < (int)sizeof path &&
        (f = fopen(path, "rb"))) {
        free(it->path);
        it->path = it->rel;
        it->rel = NULL;
        it->whole = 0;
    }
    if (!f) {
        st->missing++;
        return -1;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : (size_t)1 << 20;
            unsigned char *p = realloc(buf, cap);
            if (!p)
                break;
            buf = p;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    char sha[65];
    if (!bad)
        bn_hash_sha256_hex(buf, len, sha);
    if (bad) {
        st->unreadable++;
    } else if (strcmp(sha, it->sha256) != 0) {
        st->changed++;
        bad = 1;
    } else {
        bn_error e;
        if (bn_image_decode(buf, len, path, &d->image, in, NULL, &e)) {
            st->unreadable++;
            bad = 1;
        }
    }
    free(buf);
    return bad ? -1 : 0;
}

double bn_verify_rel_l2(const float *a, const float *ref, size_t n) {
    double d2 = 0, r2 = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - ref[i];
        d2 += e * e;
        r2 += (double)ref[i] * ref[i];
    }
    if (!isfinite(d2))
        return INFINITY;
    return r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
}

/* Compare the stored blob with the recomputed vector v (dim floats).
 * scratch: 3 * dim floats (v as f16, then both vectors decoded from f16). */
static double vf_compare(const vf_item *it, const float *v, const vf_def *d, float *scratch,
                         int *identical) {
    int f16 = strcmp(d->row.dtype, "f16") == 0;
    size_t dim = (size_t)d->dim, bytes = dim * (f16 ? sizeof(uint16_t) : sizeof(float));
    const void *mine = v;
    if (f16) {
        bn_f32_to_f16_array(v, (uint16_t *)scratch, dim);
        mine = scratch;
    }
    *identical = it->bytes == bytes && memcmp(it->blob, mine, bytes) == 0;
    if (it->bytes != bytes)
        return INFINITY;
    if (!f16)
        return bn_verify_rel_l2(it->blob, v, dim);
    /* f16: both as the halves decode, so that rounding to f16 is not a difference */
    bn_f16_to_f32_array(it->blob, scratch + dim, dim);
    bn_f16_to_f32_array(mine, scratch + 2 * dim, dim);
    return bn_verify_rel_l2(scratch + dim, scratch + 2 * dim, dim);
}

/* Forward the decoded items of one batch, compare, repair. */
static int vf_batch(bn_store *s, bn_graph *net, int64_t fs, const vf_def *d, vf_item *items, long n,
                    int ncomp, const float *in, float *out, float *scratch, const bn_verify_opts *o,
                    bn_verify_report report, void *ctx, bn_verify_stats *st, bn_error *err) {
    if (ncomp == 0)
        return BN_OK;
    int rc = bn_graph_run(net, in, ncomp, err);
    if (!rc)
        rc = bn_graph_features(net, d->row.layer, (int)d->pooling, ncomp, out, err);
    if (rc)
        return rc;
    const char *engine = bn_graph_engine_id(net);
    int began = 0;
    for (long k = 0; k < n; k++) {
        vf_item *it = &items[k];
        if (it->slot < 0)
            continue;
        const float *v = out + (size_t)it->slot * d->dim;
        int identical;
        double rel = vf_compare(it, v, d, scratch, &identical);
        int must_match = strcmp(it->engine, engine) == 0 && it->version == BN_CONV_ENGINE_VERSION;
        st->checked++;
        st->worst = rel > st->worst ? rel : st->worst;
        if (identical) {
            st->identical++;
            continue;
        }
        if (!must_match && rel <= BN_VERIFY_TOLERANCE) {
            st->close++;
            continue;
        }
        st->differ++;
        if (report)
            report(ctx, it->path, rel, it->engine[0] ? it->engine : "not recorded");
        if (!o->repair)
            continue;
        if (!began && bn_store_begin(s, err))
            return BN_EDB;
        began = 1;
        bn_store_set_engine(s, engine, BN_CONV_ENGINE_VERSION);
        if ((rc = bn_store_put_vector(s, fs, it->sha256, v, d->dim, d->row.dtype, err))) {
            bn_store_rollback(s);
            return rc;
        }
        st->repaired++;
    }
    if (began && bn_store_commit(s, err))
        return BN_EDB;
    return BN_OK;
}

int bn_verify_run(bn_store *s, int64_t featureset, const char *root, const char *weights,
                  const bn_verify_opts *o, bn_verify_report report, bn_verify_progress progress,
                  void *ctx, bn_verify_stats *st, bn_error *err) {
    memset(st, 0, sizeof *st);
    vf_def d;
    int rc = vf_definition(s, featureset, &d, err);
    if (rc) {
        vf_definition_free(&d);
        return rc;
    }
    int batch = o->batch > 0 ? o->batch : 8;
    bn_graph *net = NULL;
    if (d.precision != BN_PRECISION_FP32 && !bn_conv_winograd_has_precision(d.precision))
        rc = bn_fail(err, BN_EINVAL,
                     "feature set '%s' was extracted in %s, which this CPU cannot run: verify "
                     "it on a CPU that can",
                     d.row.name, bn_precision_name(d.precision));
    if (!rc)
        rc = vf_network(&d, weights, o, batch, &net, err);
    /* --conv direct on a bf16 set would judge (and repair) its vectors with
     * FP32 ones: precisions never mix in a feature set. */
    if (!rc && d.precision != BN_PRECISION_FP32 &&
        !strstr(bn_graph_engine_id(net), bn_precision_name(d.precision)))
        rc = bn_fail(err, BN_EINVAL,
                     "feature set '%s' was extracted in %s: verify it with --conv auto or "
                     "winograd, which recompute in %s",
                     d.row.name, bn_precision_name(d.precision), bn_precision_name(d.precision));
    if (rc) {
        bn_graph_free(net);
        vf_definition_free(&d);
        return rc;
    }
    vf_item *items = NULL;
    long n = 0;
    size_t per = (size_t)d.image.size * d.image.size * 3;
    float *in = malloc((size_t)batch * per * sizeof *in);
    float *out = malloc((size_t)batch * d.dim * sizeof *out);
    float *scratch = malloc(3 * (size_t)d.dim * sizeof(float));
    if (!in || !out || !scratch)
        rc = bn_fail(err, BN_ENOMEM, "out of memory for batch %d at size %d", batch, d.image.size);
    if (!rc)
        rc = vf_select(s, featureset, o->sample, root, &items, &n, err);
    st->total = n;
    for (long k0 = 0; !rc && k0 < n;) {
        int ncomp = 0;
        long k = k0;
        for (; k < n && ncomp < batch; k++)
            if (vf_load(root, &items[k], &d, in + (size_t)ncomp * per, st) == 0)
                items[k].slot = ncomp++;
        rc = vf_batch(s, net, featureset, &d, items + k0, k - k0, ncomp, in, out, scratch, o,
                      report, ctx, st, err);
        k0 = k;
        if (progress)
            progress(ctx, st);
    }
    for (long k = 0; k < n; k++) {
        free(items[k].path);
        free(items[k].rel);
        free(items[k].blob);
    }
    free(items);
    free(in);
    free(out);
    free(scratch);
    bn_graph_free(net);
    vf_definition_free(&d);
    return rc;
}

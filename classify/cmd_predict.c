/*
 * cmd_predict.c: `bottleneck-classify predict`: apply a run's stored head.
 *
 * To a stored split (or every image with a vector): probabilities for every
 * row, stored in `predictions` (one transaction), metrics when every label is
 * one of the run's classes.
 *
 * To image files and folders: a file whose content is already stored (an
 * image of a dataset with a vector in the run's feature set, found by its
 * SHA-256 whatever path it is typed with) is that image; the others go
 * through the shared extract pipeline (extractor.h) with the feature set's
 * own settings and the weights it was extracted with, into the dataset
 * 'predicted' (paths as typed; labels from class folders, FOLDER/cat/x.jpg,
 * else none). Then each image's class and probability is printed (in path
 * order) and stored; metrics when some images have labels. Files that cannot
 * be decoded are reported (and recorded in `failures`) and the exit status
 * is 3.
 */
#include "classify.h"
#include "cpu.h"

#include "dataset.h"
#include "datasets.h"
#include "extractor.h"
#include "featureset.h"
#include "hash.h"
#include "image.h"
#include "model_file.h"
#include "precision.h"
#include "progress.h"
#include "vgg16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* An image of a dataset other than 'predicted' whose content is sha256 and
 * that has a vector in fs (0 if none): the stored image a typed path names. */
static int64_t stored_image(bn_store *s, int64_t fs, int64_t files_ds, const char *sha256) {
    sqlite3_stmt *q;
    int64_t id = 0;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT i.id FROM images i JOIN vectors v ON v.sha256 = i.sha256"
                           " AND v.featureset = ?1 WHERE i.sha256 = ?2 AND i.dataset != ?3"
                           " ORDER BY i.dataset, i.path LIMIT 1",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, fs);
        sqlite3_bind_text(q, 2, sha256, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 3, files_ds);
        if (sqlite3_step(q) == SQLITE_ROW)
            id = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return id;
}

/* The image row of path in dataset, with content sha256 (the file as it is
 * now: a row for what the path held before is not this image) and a vector
 * in fs; 0 if none. */
static int64_t image_with_vector(bn_store *s, int64_t fs, int64_t dataset, const char *path,
                                 const char *sha256) {
    sqlite3_stmt *q;
    int64_t id = 0;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT i.id FROM images i JOIN vectors v ON v.sha256 = i.sha256"
                           " AND v.featureset = ?1 WHERE i.dataset = ?2 AND i.path = ?3"
                           " AND i.sha256 = ?4",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, fs);
        sqlite3_bind_int64(q, 2, dataset);
        sqlite3_bind_text(q, 3, path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 4, sha256, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW)
            id = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return id;
}

static void failure_reason(bn_store *s, int64_t dataset, const char *path, char *out, size_t n) {
    sqlite3_stmt *q;
    snprintf(out, n, "%s: no vector could be computed", path);
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT reason FROM failures WHERE dataset = ?1 AND path = ?2", -1, &q,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, dataset);
        sqlite3_bind_text(q, 2, path, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW) {
            /* Decoder reasons usually start with the path already. */
            const char *r = (const char *)sqlite3_column_text(q, 0);
            if (strncmp(r, path, strlen(path)) == 0)
                snprintf(out, n, "%s", r);
            else
                snprintf(out, n, "%s: %s", path, r);
        }
        sqlite3_finalize(q);
    }
}

static void extract_progress(void *ctx, const bn_extractor_stats *st) {
    bn_progress_update(ctx, st->images);
}

static int run_missing(const cl_opts *o, int64_t fs, const bn_featureset *f, bn_extractor *x,
                       bn_dataset *ds, bn_error *err);

/* Run the extract pipeline over the items of ds that lack a vector. */
static int extract_missing(const cl_opts *o, bn_store *s, int64_t fs, const bn_featureset *f,
                           bn_dataset *ds, int missing, int *vips_started, bn_error *err) {
    if (!f->source || strcmp(f->source, "extract") != 0)
        return bn_fail(err, BN_EINVAL,
                       "feature set '%s' was imported: vectors for new images cannot be computed "
                       "here (%d of the given images have none); import them, or predict stored "
                       "images",
                       f->name, missing);
    bn_extractor_opts eo;
    bn_extractor_opts_default(&eo);
    eo.image.size = f->size;
    if (!f->layer || !f->pooling || !f->resize || !f->preprocess || !f->dtype ||
        bn_vgg16_pooling_parse(f->pooling, &eo.pooling) ||
        bn_image_resize_parse(f->resize, &eo.image.resize) ||
        bn_image_preprocess_from_description(f->preprocess, &eo.image) ||
        bn_precision_parse(f->precision, &eo.precision) || eo.precision == BN_PRECISION_FAST)
        return bn_fail(err, BN_EINVAL, "feature set '%s': settings this build does not know",
                       f->name);
    if (eo.precision != BN_PRECISION_FP32 && !bn_conv_winograd_has_precision(eo.precision))
        return bn_fail(err, BN_EINVAL,
                       "feature set '%s' was extracted in %s, which this CPU cannot run: predict "
                       "new images on a CPU that can (%d of the given images have no vector; "
                       "images that have one predict here)",
                       f->name, bn_precision_name(eo.precision), missing);
    eo.dtype = f->dtype;
    eo.tensor = f->layer;
    /* Buffers for the images there are, not for a batch of 8: a fresh
     * process pays for every page it first touches (docs/PERFORMANCE.md,
     * Start-up). The batch size never changes a vector. */
    if (missing > 0 && missing < eo.batch)
        eo.batch = missing;
    int rc = bn_image_init(o->argv0, err);
    if (rc)
        return rc;
    *vips_started = 1;
    if (o->threads > 0)
        bn_cpu_set_threads(o->threads);
    /* the very file extract used (model_file.h): another would give other vectors */
    bn_model_file m;
    if ((rc = bn_model_file_reopen(f, o->weights, &m, err)))
        return rc;
    bn_extractor_model em = {.model = f->model,
                             .sha256 = m.sha256,
                             .format = m.format,
                             .path = strcmp(m.format, "onnx") ? NULL : f->model_path};
    bn_extractor *x = NULL;
    if ((rc = bn_extractor_create_graph(&x, s, m.g, &em, &eo, err)))
        return rc;
    return run_missing(o, fs, f, x, ds, err);
}

/* Run x (made from fs's settings) over ds; takes x. */
static int run_missing(const cl_opts *o, int64_t fs, const bn_featureset *f, bn_extractor *x,
                       bn_dataset *ds, bn_error *err) {
    int rc;
    if (bn_extractor_featureset(x) != fs) {
        bn_extractor_free(x);
        return bn_fail(err, BN_EINVAL, "feature set '%s': its settings map to another feature set",
                       f->name);
    }
    bn_progress bar;
    bn_progress_start(&bar, stderr, "extract", "img", (long)ds->n, o->quiet);
    bn_extractor_stats st;
    rc = bn_extractor_run(x, ds, extract_progress, &bar, &st, err);
    bn_progress_finish(&bar);
    bn_extractor_free(x);
    if (rc == BN_OK && !o->quiet)
        fprintf(stderr, "extracted %ld, reused %ld, failed %ld (%.1f s)\n", st.extracted, st.reused,
                st.failed, st.seconds);
    return rc;
}

/* What predict applies the head to: the images (images.id) and, for files
 * given on the command line, the paths as typed and the failures. */
typedef struct {
    int64_t *image;
    char **typed; /* (n) borrowed from the dataset, or NULL for stored rows */
    int n;
    char **failed, **reason; /* (nfailed) owned */
    int nfailed;
} targets;

static void targets_free(targets *t) {
    for (int i = 0; i < t->nfailed; i++)
        free(t->failed[i]), free(t->reason[i]);
    free(t->failed), free(t->reason), free(t->image), free(t->typed);
    memset(t, 0, sizeof *t);
}

/* The files and folders of the command line -> images, extracting the new
 * ones. 0, or the problem in err. */
static int predict_files(const cl_opts *o, bn_store *s, int64_t fs, const bn_featureset *fsr,
                         bn_dataset *ds, targets *t, int *vips_started, bn_error *err) {
    int rc = bn_dataset_from_paths(ds, o->args, o->nargs, err);
    if (rc)
        return rc;
    if (ds->n == 0)
        return bn_fail(err, BN_EINVAL, "no images among the given files and folders");
    bn_dataset_info files;
    if ((rc = bn_datasets_files(s, &files, err)))
        return rc;
    t->image = calloc(ds->n, sizeof *t->image);
    t->typed = calloc(ds->n, sizeof *t->typed);
    t->failed = calloc(ds->n, sizeof *t->failed);
    t->reason = calloc(ds->n, sizeof *t->reason);
    char(*sha)[65] = calloc(ds->n, sizeof *sha); /* "" where the file cannot be read */
    bn_dataset todo = {.root = (char *)"", .id = files.id};
    todo.items = malloc(ds->n * sizeof *todo.items);
    if (!t->image || !t->typed || !t->failed || !t->reason || !sha || !todo.items) {
        free(todo.items);
        free(sha);
        return bn_fail(err, BN_ENOMEM, "out of memory");
    }
    /* By content first: a stored image typed with another path is that image. */
    int missing = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (bn_hash_sha256_file(ds->items[i].path, sha[i]) != 0)
            sha[i][0] = '\0';
        else if ((t->image[i] = stored_image(s, fs, files.id, sha[i])) != 0)
            continue;
        todo.items[todo.n++] = ds->items[i];
        missing += !image_with_vector(s, fs, files.id, ds->items[i].path, sha[i]);
    }
    if (missing)
        rc = extract_missing(o, s, fs, fsr, &todo, missing, vips_started, err);
    free(todo.items);
    for (size_t i = 0; !rc && i < ds->n; i++) {
        if (!t->image[i] &&
            !(t->image[i] = image_with_vector(s, fs, files.id, ds->items[i].path, sha[i]))) {
            char reason[1200];
            failure_reason(s, files.id, ds->items[i].path, reason, sizeof reason);
            t->failed[t->nfailed] = strdup(ds->items[i].path);
            t->reason[t->nfailed] = strdup(reason);
            t->nfailed++;
            continue;
        }
        t->typed[t->n] = ds->items[i].path;
        t->image[t->n++] = t->image[i];
    }
    free(sha);
    if (rc)
        return rc;
    if (t->n == 0)
        return bn_fail(err, BN_EINVAL, "none of the given images could be predicted");
    return BN_OK;
}

/* What predict holds from the run to the output; predict_free releases it. */
typedef struct {
    bn_run r;
    bn_head h;
    bn_featureset fsr;
    int64_t fs; /* the feature set applied: the run's, or --features */
    char fsname[256];
    char where[600]; /* " of dataset 'NAME'" for stored rows */
    bn_features f;
    bn_dataset ds;
    targets t;
    int vips_started;
    double *proba, *lproba; /* (f.n, r.k): every row; the labelled rows */
    int *y, *ly;
    int nl, labelled;
    bn_metrics m;
    char no_metrics[1024]; /* why labelled images got none: a label the run does not know */
} predict_job;

static void predict_free(predict_job *p) {
    free(p->proba);
    free(p->y);
    free(p->lproba);
    free(p->ly);
    targets_free(&p->t);
    bn_featureset_free(&p->f);
    bn_dataset_free(&p->ds);
    bn_store_featureset_release(&p->fsr);
    bn_head_free(&p->h);
    bn_run_free(&p->r);
}

/* The run, its head and the feature set to apply it to (the run's, or
 * --features of the same dim). 0, or -1 with the message printed. */
static int predict_setup(const cl_opts *o, bn_store *s, predict_job *p) {
    bn_error err;
    bn_error_clear(&err);
    if (bn_runs_get(s, o->run, &p->r, &err) || bn_runs_get_head(s, o->run, &p->h, &err)) {
        cl_fail(err.msg);
        return -1;
    }
    p->fs = p->r.featureset;
    snprintf(p->fsname, sizeof p->fsname, "%s", p->r.featureset_name);
    if (o->features) {
        int dim;
        if (bn_store_featureset_pick(s, o->features, &p->fs, &dim, p->fsname, sizeof p->fsname,
                                     &err)) {
            cl_fail(err.msg);
            return -1;
        }
        if (dim != p->h.dim) {
            cl_failf("run %lld was trained on %d-d features ('%s'); feature set '%s' has dim %d",
                     (long long)p->r.id, p->h.dim, p->r.featureset_name, p->fsname, dim);
            return -1;
        }
    }
    if (bn_store_featureset_get(s, p->fs, &p->fsr, &err)) {
        cl_fail(err.msg);
        return -1;
    }
    if (p->fsr.dim != p->h.dim) {
        cl_failf("run %lld: head has dim %d, feature set '%s' dim %d", (long long)p->r.id, p->h.dim,
                 p->fsname, p->fsr.dim);
        return -1;
    }
    return 0;
}

/* The vectors to predict: stored rows (of --dataset, else of the run's
 * dataset), or the files of the command line. 0, or -1 with the message
 * printed. */
static int predict_load(const cl_opts *o, bn_store *s, predict_job *p) {
    bn_error err;
    bn_error_clear(&err);
    if (o->nargs == 0) {
        /* Stored images: of --dataset, else of the run's dataset. */
        bn_dataset_info dsi = {0};
        if (o->dataset && bn_datasets_find(s, o->dataset, &dsi, &err)) {
            cl_fail(err.msg);
            return -1;
        }
        bn_rows rows;
        if (bn_runs_rows(s, &p->r, o->split, &rows, &err)) {
            cl_fail(err.msg);
            return -1;
        }
        if (o->dataset)
            rows.dataset = dsi.id;
        if (bn_featureset_load_rows(s, p->fs, &rows, &p->f, &err)) {
            cl_fail(err.msg);
            return -1;
        }
        if (rows.dataset)
            snprintf(p->where, sizeof p->where, " of dataset '%s'",
                     o->dataset          ? dsi.name
                     : p->r.dataset_name ? p->r.dataset_name
                                         : "?");
        return 0;
    }
    if (predict_files(o, s, p->fs, &p->fsr, &p->ds, &p->t, &p->vips_started, &err)) {
        cl_fail(err.msg);
        return -1;
    }
    for (int i = 0; i < p->t.nfailed; i++)
        fprintf(stderr, "bottleneck-classify: %s\n", p->t.reason[i]);
    if (bn_featureset_load_images(s, p->fs, p->t.image, p->t.n, &p->f, &err)) {
        cl_fail(err.msg);
        return -1;
    }
    return 0;
}

/* Apply the head, compute the metrics, store the predictions (one
 * transaction). 0 (p->m to be freed), or -1 with the message printed. */
static int predict_apply(bn_store *s, predict_job *p) {
    bn_error err;
    bn_error_clear(&err);
    const bn_run *r = &p->r;
    p->proba = malloc((size_t)p->f.n * r->k * sizeof *p->proba);
    p->y = malloc((size_t)p->f.n * sizeof *p->y);
    p->lproba = malloc((size_t)p->f.n * r->k * sizeof *p->lproba);
    p->ly = malloc((size_t)p->f.n * sizeof *p->ly);
    if (!p->proba || !p->y || !p->lproba || !p->ly) {
        cl_fail("out of memory");
        return -1;
    }
    if (bn_head_predict(&p->h, p->f.x, p->f.n, p->proba, &err)) {
        cl_fail(err.msg);
        return -1;
    }
    /* Metrics on the images with a label, when every such label is a class
     * the run knows; images without a label are predictions, not mistakes. */
    bn_error lerr;
    int labelled = bn_featureset_encode(&p->f, r->classes, r->k, p->y, "some", &lerr) == BN_OK;
    if (!labelled)
        snprintf(p->no_metrics, sizeof p->no_metrics, "%s", lerr.msg);
    for (int i = 0; labelled && i < p->f.n; i++)
        if (p->y[i] >= 0) {
            memcpy(p->lproba + (size_t)p->nl * r->k, p->proba + (size_t)i * r->k,
                   (size_t)r->k * sizeof *p->proba);
            p->ly[p->nl++] = p->y[i];
        }
    p->labelled = labelled && p->nl > 0;
    if (p->labelled && bn_metrics_compute(p->ly, p->lproba, p->nl, r->k, &p->m, &err)) {
        cl_fail(err.msg);
        return -1;
    }
    if (bn_store_begin(s, &err) ||
        bn_runs_put_predictions(s, r->id, p->f.image, p->proba, p->f.n, r->k, r->classes, &err) ||
        bn_store_commit(s, &err)) {
        bn_store_rollback(s);
        bn_metrics_free(&p->m);
        cl_fail(err.msg);
        return -1;
    }
    return 0;
}

/* --json: the counts, the metrics and, for files, each prediction and
 * failure. */
static void predict_json(const cl_opts *o, const predict_job *p) {
    const bn_run *r = &p->r;
    const bn_features *f = &p->f;
    printf("{\"run\":%lld,\"featureset\":", (long long)r->id);
    bn_json_string(stdout, p->fsname);
    printf(",\"split\":");
    if (o->split)
        bn_json_string(stdout, o->split);
    else
        printf("null");
    printf(",\"stored\":%d,\"failed\":%d,\"labelled\":%d,\"metrics\":", f->n, p->t.nfailed, p->nl);
    if (p->labelled)
        cl_json_metrics(stdout, &p->m, r->classes, 1);
    else
        printf("null");
    if (o->nargs) {
        printf(",\"predictions\":[");
        for (int i = 0; i < f->n; i++) {
            int best = bn_metrics_argmax(p->proba + (size_t)i * r->k, r->k);
            printf("%s{\"path\":", i ? "," : "");
            bn_json_string(stdout, p->t.typed[i]);
            printf(",\"stored_as\":");
            bn_json_string(stdout, f->path[i]);
            printf(",\"label\":");
            if (f->label[i] >= 0)
                bn_json_string(stdout, f->labels[f->label[i]]);
            else
                printf("null");
            printf(",\"predicted\":");
            bn_json_string(stdout, r->classes[best]);
            printf(",\"probability\":");
            bn_json_number(stdout, p->proba[(size_t)i * r->k + best]);
            printf("}");
        }
        printf("],\"failures\":[");
        for (int i = 0; i < p->t.nfailed; i++) {
            printf("%s{\"path\":", i ? "," : "");
            bn_json_string(stdout, p->t.failed[i]);
            printf(",\"reason\":");
            bn_json_string(stdout, p->t.reason[i]);
            printf("}");
        }
        printf("]");
    }
    printf("}\n");
}

/* The text output: each file's class and probability, the metrics (or a
 * count), and where the predictions are stored. */
static void predict_text(const cl_opts *o, const predict_job *p) {
    const bn_run *r = &p->r;
    int n = p->f.n;
    char title[900];
    snprintf(title, sizeof title, "run %lld on %s%s%s", (long long)r->id,
             o->nargs   ? "the labelled images given"
             : o->split ? o->split
                        : "every image",
             p->where, o->features ? " of " : "");
    if (o->features)
        snprintf(title + strlen(title), sizeof title - strlen(title), "'%s'", p->fsname);
    if (o->nargs)
        for (int i = 0; i < n; i++) {
            int best = bn_metrics_argmax(p->proba + (size_t)i * r->k, r->k);
            printf("%s\t%s\t%.4f\n", p->t.typed[i], r->classes[best],
                   p->proba[(size_t)i * r->k + best]);
        }
    if (p->labelled)
        cl_print_metrics(stdout, title, &p->m, r->classes, 1);
    else if (o->nargs && p->no_metrics[0] && !o->quiet) /* a folder named test1/, say */
        fprintf(stderr, "bottleneck-classify: note: no metrics: %s\n", p->no_metrics);
    else if (!o->nargs)
        printf("%s: %d predictions (some labels are not classes of the run: no metrics)\n", title,
               n);
    if (!o->quiet && p->labelled)
        fprintf(stderr,
                "stored %d predictions of run %lld; the mistakes: sqlite3 %s \"SELECT path, "
                "label, predicted, probability FROM run_predictions WHERE run = %lld AND NOT "
                "correct\"\n",
                n, (long long)r->id, o->db, (long long)r->id);
    else if (!o->quiet)
        fprintf(stderr, "stored %d predictions of run %lld (see the run_predictions view)\n", n,
                (long long)r->id);
}

int cl_predict(const cl_opts *o) {
    bn_store *s;
    if (cl_open(o, 0, &s))
        return CL_EXIT_FATAL;
    int status = CL_EXIT_FATAL;
    predict_job p;
    memset(&p, 0, sizeof p);
    if (!predict_setup(o, s, &p) && !predict_load(o, s, &p) && !predict_apply(s, &p)) {
        if (o->json)
            predict_json(o, &p);
        else
            predict_text(o, &p);
        bn_metrics_free(&p.m);
        status = p.t.nfailed ? CL_EXIT_SOME_FAILED : 0;
    }
    predict_free(&p);
    bn_store_close(s);
    if (p.vips_started)
        bn_image_shutdown();
    return status;
}

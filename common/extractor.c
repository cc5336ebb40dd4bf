/*
 * extractor.c: the extract pipeline (see extractor.h).
 *
 * Three threads, two batch buffers:
 *   reader (reader_main): read each file, sha256, decide skip / reuse /
 *       compute, for the next batch, while the network runs on the current
 *       one; then, once the network is idle, decode the batch's new images
 *       into its tensor together with the decoder thread (decoder_main), and
 *       hand the full batch over;
 *   caller's thread (bn_extractor_run): VGG16 forward on the batch, then one
 *       SQLite transaction for all of its rows.
 * Why decoding waits for the network: the network keeps both cores busy, and
 * a decoder running beside it does not just take its own CPU time away, it
 * stalls the network thread it preempts and, at the next wait, the other one
 * too (measured: 3-4% of the CPU spent decoding made the network 10%
 * slower). Decoding on both cores between forward passes costs only its own
 * time, halved (docs/PERFORMANCE.md).
 * The reader never touches SQLite: what the database holds is loaded into
 * memory sets before the reader starts, and only the reader updates them.
 */
#include "extractor.h"
#include "cpu.h"
#include "precision.h"

#include "conv.h"
#include "hash.h"
#include "progress.h"
#include "strset.h"
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files bigger than this are refused before reading: no image worth a
 * feature vector is this large, and reading it whole would cost the memory. */
#define MAX_FILE_BYTES ((int64_t)512 << 20)

/* Encoded bytes a batch may hold while its images wait to be decoded; a
 * batch closes early rather than hold more (a few huge files). */
#define MAX_PENDING_BYTES ((size_t)64 << 20)

typedef enum { OP_SKIP, OP_REUSE, OP_COMPUTE, OP_FAIL } op_kind;

typedef struct {
    op_kind kind;
    size_t item; /* index into the dataset */
    int slot;    /* OP_COMPUTE: row in the batch tensor */
    int width, height;
    int64_t bytes;
    int has_sha;
    char sha256[65];
    char *reason; /* OP_FAIL */
    /* OP_COMPUTE until decoded: the file's bytes. */
    unsigned char *buf;
    size_t len;
    int pending_of; /* OP_REUSE of a new image in this batch: its op + 1, else 0 */
} op;

typedef struct {
    float *input; /* (batch, S, S, 3) */
    op *ops;
    size_t nops, capops;
    int ncompute;
    int full; /* handed to the consumer */
    int last; /* the reader has nothing more after this one */
} batch;

struct bn_extractor {
    bn_store *store;
    bn_graph *net;
    const char *tensor; /* in net */
    bn_graph *exact;    /* --self-check: the same network, direct engine, one image */
    float *exact_out;
    long batches;
    bn_extractor_opts o;
    int64_t featureset;
    char precision_note[512]; /* bn_extractor_precision_note */
    char fsname[512];
    int dim;
    float *output; /* (batch, dim) */

    /* run state */
    const bn_dataset *ds;
    bn_strset paths;   /* path -> sha256 of the stored image row */
    bn_strset vectors; /* sha256s that have a vector in this feature set */
    batch b[2];
    pthread_mutex_t mu;
    int sync_ready; /* mu and cv initialised */
    pthread_cond_t cv;
    int stop;     /* consumer failed: reader must end */
    int net_busy; /* the network is running: the reader does not decode */
    /* The decoder thread's share of a batch's decoding (under mu): job_gen
     * counts jobs, done_gen the last one the decoder finished. */
    int decoder_on, decoder_quit;
    unsigned job_gen, done_gen;
    batch *job;
    size_t *job_ops; /* op indices of the images to decode, in slot order */
    int job_n;
    _Atomic int job_next;
    pthread_t decoder;
    unsigned char *filebuf;
    size_t filecap;
};

void bn_extractor_opts_default(bn_extractor_opts *o) {
    memset(o, 0, sizeof *o);
    o->image.size = 224;
    o->image.resize = BN_RESIZE_SQUASH;
    o->image.preprocess = BN_PREPROCESS_CAFFE;
    o->layer = BN_LAYER_BLOCK5_POOL;
    o->pooling = BN_POOLING_NONE;
    o->dtype = "f32";
    o->engine = BN_CONV_AUTO;
    o->batch = 8;
}

int bn_extractor_create(bn_extractor **out, bn_store *store, const bn_vgg16_weights *w,
                        const bn_extractor_opts *o, bn_error *err) {
    *out = NULL;
    if (o->image.size < 32 || o->image.size % 32 != 0 || o->image.size > 4096)
        return bn_fail(err, BN_EINVAL, "--size %d: must be a multiple of 32 between 32 and 4096",
                       o->image.size);
    bn_graph *g, *exact = NULL;
    int rc = bn_vgg16_build_graph(&g, w, BN_LAYER_BLOCK5_POOL, err);
    if (rc)
        return rc;
    if (o->self_check > 0 && (rc = bn_vgg16_build_graph(&exact, w, BN_LAYER_BLOCK5_POOL, err))) {
        bn_graph_free(g);
        return rc;
    }
    bn_extractor_model m = {
        .model = "vgg16", .sha256 = w->sha256, .format = "keras-h5", .exact = exact};
    return bn_extractor_create_graph(out, store, g, &m, o, err);
}

int bn_extractor_create_graph(bn_extractor **out, bn_store *store, bn_graph *g,
                              const bn_extractor_model *m, const bn_extractor_opts *o,
                              bn_error *err) {
    *out = NULL;
    int rc = BN_OK;
    if (o->image.size < 1 || o->image.size > 4096)
        rc = bn_fail(err, BN_EINVAL, "--size %d: must be between 1 and 4096", o->image.size);
    else if (o->batch < 1 || o->batch > 1024)
        rc = bn_fail(err, BN_EINVAL, "--batch %d: must be between 1 and 1024", o->batch);
    else if (strcmp(o->dtype, "f32") != 0 && strcmp(o->dtype, "f16") != 0)
        rc = bn_fail(err, BN_EINVAL, "--dtype %s: must be f32 or f16", o->dtype);
    else if (o->self_check > 0 && !m->exact)
        rc = bn_fail(err, BN_EINVAL, "--self-check: no second copy of the network was given");
    else if (o->self_check > 0 && o->precision != BN_PRECISION_FP32)
        rc = bn_fail(err, BN_EINVAL,
                     "--self-check checks against the exact engine to 1e-4: only with "
                     "--precision fp32");
    bn_precision precision = BN_PRECISION_FP32;
    char note[512] = "";
    if (!rc)
        rc = bn_precision_resolve(o->precision, &precision, note, sizeof note, err);
    bn_extractor *x = rc ? NULL : calloc(1, sizeof *x);
    if (!x) {
        bn_graph_free(g);
        bn_graph_free(m->exact);
        return rc ? rc : bn_fail(err, BN_ENOMEM, "out of memory");
    }
    x->net = g;
    x->exact = o->self_check > 0 ? m->exact : NULL;
    if (!x->exact)
        bn_graph_free(m->exact);
    x->store = store;
    x->o = *o;
    x->tensor = o->tensor ? o->tensor : bn_vgg16_layer_name(o->layer);
    x->o.tensor = NULL; /* the caller's string; x->tensor points into the graph below */
    if ((rc = bn_graph_infer(g, o->image.size, o->image.size, err))) {
        bn_extractor_free(x);
        return rc;
    }
    if (bn_graph_tensor_shape(g, 0).c != 3) {
        rc = bn_fail(err, BN_EINVAL, "%s: its input '%s' has %d channels; images have 3", m->model,
                     bn_graph_input_name(g), bn_graph_tensor_shape(g, 0).c);
        bn_extractor_free(x);
        return rc;
    }
    int t = bn_graph_find(g, x->tensor);
    if (t < 0) {
        rc = bn_fail(err, BN_EINVAL,
                     "--layer %s: %s has no tensor of that name (bottleneck-extract layers "
                     "lists them)",
                     x->tensor, m->model);
        bn_extractor_free(x);
        return rc;
    }
    x->tensor = bn_graph_tensor_name(g, t);
    x->dim = bn_graph_feature_dim(g, x->tensor, (int)o->pooling);
    size_t in_floats = (size_t)o->batch * o->image.size * o->image.size * 3;
    x->output = malloc((size_t)o->batch * x->dim * sizeof(float));
    x->b[0].input = malloc(in_floats * sizeof(float));
    x->b[1].input = malloc(in_floats * sizeof(float));
    x->job_ops = malloc((size_t)o->batch * sizeof *x->job_ops);
    if (!x->output || !x->b[0].input || !x->b[1].input || !x->job_ops) {
        bn_extractor_free(x);
        return bn_fail(err, BN_ENOMEM, "out of memory for batch %d at size %d", o->batch,
                       o->image.size);
    }
    snprintf(x->precision_note, sizeof x->precision_note, "%s", note);
    bn_graph_set_precision(g, precision);
    rc = bn_graph_prepare(g, o->engine, o->batch, &x->tensor, 1, err);
    if (!rc && bn_graph_precision(g) != precision)
        snprintf(x->precision_note, sizeof x->precision_note,
                 "fp32: no layer runs in reduced precision here (--precision %s applies to "
                 "the Winograd engine's layers; the direct and small engines are FP32)",
                 bn_precision_name(o->precision));
    if (!rc && x->exact) {
        x->exact_out = malloc((size_t)x->dim * sizeof(float));
        rc = x->exact_out ? bn_graph_infer(x->exact, o->image.size, o->image.size, err)
                          : bn_fail(err, BN_ENOMEM, "out of memory");
        rc = rc ? rc : bn_graph_prepare(x->exact, BN_CONV_DIRECT, 1, &x->tensor, 1, err);
    }
    if (rc) {
        bn_extractor_free(x);
        return rc;
    }
    bn_store_set_engine(store, bn_graph_engine_id(x->net), BN_CONV_ENGINE_VERSION);
    char pre[160];
    bn_image_preprocess_describe(&o->image, pre, sizeof pre);
    bn_featureset fs = {
        .source = "extract",
        .model = m->model,
        .weights_sha256 = m->sha256,
        .layer = x->tensor,
        .pooling = bn_vgg16_pooling_name(o->pooling),
        .resize = bn_image_resize_name(o->image.resize),
        .preprocess = pre,
        .size = o->image.size,
        .dim = x->dim,
        .dtype = o->dtype,
        .model_format = m->format,
        .model_path = m->path,
        .precision = bn_precision_name(bn_graph_precision(x->net)),
    };
    if ((rc = bn_store_featureset_get_or_create(store, &fs, &x->featureset, err))) {
        bn_extractor_free(x);
        return rc;
    }
    bn_featureset row;
    if (bn_store_featureset_get(store, x->featureset, &row, NULL) ==
        BN_OK) /* the name is for messages */
        snprintf(x->fsname, sizeof x->fsname, "%s", row.name);
    bn_store_featureset_release(&row);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->sync_ready = 1;
    *out = x;
    return BN_OK;
}

void bn_extractor_free(bn_extractor *x) {
    if (!x)
        return;
    if (x->sync_ready) {
        pthread_mutex_destroy(&x->mu);
        pthread_cond_destroy(&x->cv);
    }
    bn_graph_free(x->net);
    bn_graph_free(x->exact);
    free(x->exact_out);
    free(x->output);
    for (int i = 0; i < 2; i++) {
        free(x->b[i].input);
        free(x->b[i].ops);
    }
    free(x->filebuf);
    free(x->job_ops);
    free(x);
}

int64_t bn_extractor_featureset(const bn_extractor *x) {
    return x->featureset;
}

const char *bn_extractor_featureset_name(const bn_extractor *x) {
    return x->fsname;
}

int bn_extractor_dim(const bn_extractor *x) {
    return x->dim;
}

const char *bn_extractor_precision(const bn_extractor *x) {
    return bn_precision_name(bn_graph_precision(x->net));
}

const char *bn_extractor_precision_note(const bn_extractor *x) {
    return x->precision_note;
}

/* ---- what the database already holds ------------------------------------ */

static int load_known(bn_extractor *x, bn_error *err) {
    sqlite3 *db = bn_store_db(x->store);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT path, sha256 FROM images WHERE dataset = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return bn_store_fail(x->store, err, "reading stored images");
    sqlite3_bind_int64(q, 1, bn_dataset_id(x->ds));
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (bn_strset_put(&x->paths, (const char *)sqlite3_column_text(q, 0),
                          (const char *)sqlite3_column_text(q, 1))) {
            sqlite3_finalize(q);
            return bn_fail(err, BN_ENOMEM, "out of memory");
        }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return bn_store_fail(x->store, err, "reading stored images");
    if (sqlite3_prepare_v2(db, "SELECT sha256 FROM vectors WHERE featureset = ?1", -1, &q, NULL) !=
        SQLITE_OK)
        return bn_store_fail(x->store, err, "reading stored vectors");
    sqlite3_bind_int64(q, 1, x->featureset);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (bn_strset_put(&x->vectors, (const char *)sqlite3_column_text(q, 0), NULL)) {
            sqlite3_finalize(q);
            return bn_fail(err, BN_ENOMEM, "out of memory");
        }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return bn_store_fail(x->store, err, "reading stored vectors");
    return BN_OK;
}

/* ---- reader thread ------------------------------------------------------- */

static op *push_op(batch *b) {
    if (b->nops == b->capops) {
        size_t cap = b->capops ? 2 * b->capops : 64;
        op *p = realloc(b->ops, cap * sizeof *p);
        if (!p)
            return NULL;
        b->ops = p;
        b->capops = cap;
    }
    op *o = &b->ops[b->nops++];
    memset(o, 0, sizeof *o);
    return o;
}

static void fail_op(op *o, const char *fmt, const char *a, const char *b) {
    o->kind = OP_FAIL;
    size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
    o->reason = malloc(n);
    if (o->reason)
        snprintf(o->reason, n, fmt, a, b ? b : "");
}

/* Read a whole file into x->filebuf. Returns size, -1 with errno, or -2 for
 * something that is not a regular file (a FIFO, device or socket named like
 * an image): opened non-blocking, so a FIFO with no writer cannot hang us. */
static int64_t read_file(bn_extractor *x, const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EISDIR;
        return S_ISDIR(st.st_mode) ? -1 : -2;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return -1;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        fclose(f);
        errno = EFBIG;
        return -1;
    }
    size_t want = (size_t)st.st_size;
    if (want + 1 > x->filecap) {
        unsigned char *p = realloc(x->filebuf, want + 1);
        if (!p) {
            fclose(f);
            errno = ENOMEM;
            return -1;
        }
        x->filebuf = p;
        x->filecap = want + 1;
    }
    size_t got = fread(x->filebuf, 1, want, f);
    int e = ferror(f) ? EIO : 0;
    fclose(f);
    if (e) {
        errno = e;
        return -1;
    }
    return (int64_t)got; /* a file that shrank since fstat: decode what is there */
}

/* Free what an op owns (its reason, its file bytes). */
static void op_release(op *o) {
    free(o->reason);
    free(o->buf);
    o->reason = NULL;
    o->buf = NULL;
}

/* Decide what to do with one item. A new image becomes an OP_COMPUTE that
 * keeps the file's bytes for decode_batch (the bytes that were hashed are the
 * bytes decoded); *pending grows by their size. Returns -1 only when out of
 * memory. */
static int prepare_item(bn_extractor *x, batch *b, size_t i, char *abspath, size_t abscap,
                        size_t *pending) {
    const bn_item *it = &x->ds->items[i];
    op *o = push_op(b);
    if (!o)
        return -1;
    o->item = i;
    if (x->ds->root && x->ds->root[0])
        snprintf(abspath, abscap, "%s/%s", x->ds->root, it->path);
    else
        snprintf(abspath, abscap, "%s", it->path);

    int64_t n = read_file(x, abspath);
    if (n < 0) {
        fail_op(o, "cannot read: %s%s", n == -2 ? "not a regular file" : strerror(errno), NULL);
        return 0;
    }
    o->bytes = n;
    bn_hash_sha256_hex(x->filebuf, (size_t)n, o->sha256);
    o->has_sha = 1;

    const char *stored = bn_strset_get(&x->paths, it->path);
    int known = bn_strset_has(&x->vectors, o->sha256);
    bn_error e;
    bn_image_info info = {0};
    if (known && stored && strcmp(stored, o->sha256) == 0) {
        o->kind = OP_SKIP;
    } else if (known) {
        /* Same content under another path: the vector is there, only the
         * image row is new. The header gives width and height. */
        if (bn_image_probe(x->filebuf, (size_t)n, it->path, &info, &e)) {
            fail_op(o, "%s%s", e.msg, NULL);
            return 0;
        }
        o->kind = OP_REUSE;
    } else {
        /* Same content as a new image earlier in this batch: reuses its
         * vector if it decodes, fails with it if not (finish_batch). */
        for (size_t k = 0; k + 1 < b->nops; k++)
            if (b->ops[k].kind == OP_COMPUTE && strcmp(b->ops[k].sha256, o->sha256) == 0) {
                o->kind = OP_REUSE;
                o->pending_of = (int)k + 1;
                return 0;
            }
        /* The buffer changes hands: read_file allocates the next one. */
        o->kind = OP_COMPUTE;
        o->slot = b->ncompute++;
        o->buf = x->filebuf;
        o->len = (size_t)n;
        x->filebuf = NULL;
        x->filecap = 0;
        *pending += (size_t)n;
        return 0;
    }
    if (bn_strset_put(&x->paths, it->path, o->sha256))
        return -1;
    o->width = info.width;
    o->height = info.height;
    return 0;
}

/* Decode the images of job j = x->job_ops[k] for k taken in turn from
 * x->job_next, into their slots; one that fails becomes an OP_FAIL. Run by
 * the reader and the decoder thread together; each op is touched by exactly
 * one of them. */
static void decode_some(bn_extractor *x) {
    const size_t per = (size_t)x->o.image.size * x->o.image.size * 3;
    batch *b = x->job;
    for (int k; (k = atomic_fetch_add(&x->job_next, 1)) < x->job_n;) {
        op *o = &b->ops[x->job_ops[k]];
        const bn_item *it = &x->ds->items[o->item];
        bn_error e;
        bn_image_info info = {0};
        int rc = bn_image_decode(o->buf, o->len, it->path, &x->o.image,
                                 b->input + (size_t)o->slot * per, &info, &e);
        free(o->buf);
        o->buf = NULL;
        if (rc)
            fail_op(o, "%s%s", e.msg, NULL);
        o->width = info.width;
        o->height = info.height;
    }
}

static void *decoder_main(void *arg) {
    bn_extractor *x = arg;
    unsigned seen = 0;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (x->job_gen == seen && !x->decoder_quit)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->decoder_quit)
            break;
        seen = x->job_gen;
        pthread_mutex_unlock(&x->mu);
        decode_some(x);
        pthread_mutex_lock(&x->mu);
        x->done_gen = seen;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* Decode the batch's new images once the network is idle, on the reader and
 * the decoder thread. */
static void decode_batch(bn_extractor *x, batch *b) {
    int n = 0;
    for (size_t k = 0; k < b->nops; k++)
        if (b->ops[k].kind == OP_COMPUTE)
            x->job_ops[n++] = k;
    if (n == 0)
        return;
    pthread_mutex_lock(&x->mu);
    while (x->net_busy && !x->stop)
        pthread_cond_wait(&x->cv, &x->mu);
    x->job = b;
    x->job_n = n;
    atomic_store(&x->job_next, 0);
    unsigned gen = ++x->job_gen;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    decode_some(x);
    if (x->decoder_on) {
        pthread_mutex_lock(&x->mu);
        while (x->done_gen != gen)
            pthread_cond_wait(&x->cv, &x->mu);
        pthread_mutex_unlock(&x->mu);
    }
}

/* After decoding: the copies of a failed image's content later in the batch
 * fail with it; the decoded images get consecutive slots and enter the sets.
 * Returns -1 only when out of memory. */
static int finish_batch(bn_extractor *x, batch *b) {
    const size_t per = (size_t)x->o.image.size * x->o.image.size * 3;
    int slot = 0;
    for (size_t k = 0; k < b->nops; k++) {
        op *o = &b->ops[k];
        const bn_item *it = &x->ds->items[o->item];
        if (o->kind == OP_COMPUTE) {
            if (o->slot != slot)
                memmove(b->input + (size_t)slot * per, b->input + (size_t)o->slot * per,
                        per * sizeof(float));
            o->slot = slot++;
            /* Later duplicates of this content in the run reuse this vector. */
            if (bn_strset_put(&x->vectors, o->sha256, NULL))
                return -1;
        } else if (o->kind == OP_REUSE && o->pending_of) {
            op *src = &b->ops[o->pending_of - 1];
            if (src->kind == OP_FAIL) {
                /* Its reason, under this file's name. */
                const char *why = src->reason ? src->reason : "out of memory";
                const char *srcpath = x->ds->items[src->item].path;
                size_t n = strlen(srcpath);
                if (strncmp(why, srcpath, n) == 0 && strncmp(why + n, ": ", 2) == 0)
                    why += n + 2;
                fail_op(o, "%s: %s", it->path, why);
                continue;
            }
            o->width = src->width;
            o->height = src->height;
        } else {
            continue;
        }
        if (bn_strset_put(&x->paths, it->path, o->sha256))
            return -1;
    }
    b->ncompute = slot;
    return 0;
}

static void *reader_main(void *arg) {
    bn_extractor *x = arg;
    char abspath[8192];
    size_t i = 0;
    int which = 0;
    /* A batch also closes after many non-compute items, so skips and
     * failures show up in the progress without waiting for new images. */
    size_t max_ops = (size_t)x->o.batch * 4 + 64;
    int computed = 0; /* a batch with an image to compute has been handed over */
    for (;;) {
        batch *b = &x->b[which];
        pthread_mutex_lock(&x->mu);
        while (b->full && !x->stop)
            pthread_cond_wait(&x->cv, &x->mu);
        int stop = x->stop;
        pthread_mutex_unlock(&x->mu);
        if (stop)
            break;
        for (size_t k = 0; k < b->nops; k++)
            op_release(&b->ops[k]);
        b->nops = 0;
        b->ncompute = 0;
        int oom = 0;
        size_t pending = 0;
        /* The run's first computed batch holds one image, so that the
         * first vector is stored (and the progress moves) one image after
         * the start rather than eight; vectors do not depend on batches. */
        int limit = computed ? x->o.batch : 1;
        while (i < x->ds->n && b->ncompute < limit && b->nops < max_ops &&
               pending < MAX_PENDING_BYTES && !oom)
            oom = prepare_item(x, b, i++, abspath, sizeof abspath, &pending) != 0;
        decode_batch(x, b);
        if (!oom)
            oom = finish_batch(x, b) != 0;
        computed = computed || b->ncompute > 0;
        pthread_mutex_lock(&x->mu);
        b->last = i >= x->ds->n || oom;
        b->full = 1;
        if (oom) /* the consumer reports it */
            b->last = 2;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        if (b->last)
            break;
        which ^= 1;
    }
    return NULL;
}

/* ---- consumer: network and database -------------------------------------- */

/* A vector with NaN or infinity is never stored: no photo gives one through
 * a finite network, so it can only come from a defect (or absurd weights),
 * and nothing downstream would flag it. Its image is recorded as a failure
 * instead, and so are copies of it waiting on it in this batch. */
static void refuse_nonfinite(bn_extractor *x, batch *b) {
    for (size_t k = 0; k < b->nops; k++) {
        op *o = &b->ops[k];
        if (o->kind != OP_COMPUTE)
            continue;
        const float *v = x->output + (size_t)o->slot * x->dim;
        int d = 0;
        while (d < x->dim && isfinite(v[d]))
            d++;
        if (d == x->dim)
            continue;
        const char *path = x->ds->items[o->item].path;
        o->kind = OP_FAIL; /* a NULL reason (out of memory) is recorded as such */
        if (asprintf(&o->reason, "%s: the network gave a non-finite value (%s); vector not stored",
                     path, isnan(v[d]) ? "NaN" : "infinity") < 0)
            o->reason = NULL;
        for (size_t c = 0; c < b->nops; c++) {
            op *copy = &b->ops[c];
            if (copy->kind != OP_REUSE || copy->pending_of != (int)k + 1)
                continue;
            copy->kind = OP_FAIL;
            if (asprintf(&copy->reason, "%s: a copy of %s, whose vector was not finite",
                         x->ds->items[copy->item].path, path) < 0)
                copy->reason = NULL;
        }
    }
}

/* --self-check: the batch's first computed image through the exact engine. */
static int self_check(bn_extractor *x, batch *b, bn_extractor_stats *st, bn_error *err) {
    for (size_t k = 0; k < b->nops; k++) {
        const op *o = &b->ops[k];
        if (o->kind != OP_COMPUTE)
            continue;
        size_t per = (size_t)x->o.image.size * x->o.image.size * 3;
        int rc = bn_graph_run(x->exact, b->input + (size_t)o->slot * per, 1, err);
        rc = rc ? rc
                : bn_graph_features(x->exact, x->tensor, (int)x->o.pooling, 1, x->exact_out, err);
        if (rc)
            return rc;
        const float *v = x->output + (size_t)o->slot * x->dim;
        double rel = bn_verify_rel_l2(v, x->exact_out, (size_t)x->dim);
        st->self_checks++;
        if (!(rel <= BN_VERIFY_TOLERANCE))
            return bn_fail(err, BN_EINVAL,
                           "self-check: %s: the %s engine differs from the exact engine by %.3g "
                           "(relative L2, bound %g); this batch was not stored",
                           x->ds->items[o->item].path, bn_graph_engine_id(x->net), rel,
                           BN_VERIFY_TOLERANCE);
        return BN_OK;
    }
    return BN_OK;
}

static int write_batch(bn_extractor *x, batch *b, bn_extractor_stats *st, bn_error *err) {
    if (b->ncompute > 0) {
        double t0 = bn_progress_now();
        pthread_mutex_lock(&x->mu);
        x->net_busy = 1;
        pthread_mutex_unlock(&x->mu);
        int rc = bn_graph_run(x->net, b->input, b->ncompute, err);
        if (!rc)
            rc = bn_graph_features(x->net, x->tensor, (int)x->o.pooling, b->ncompute, x->output,
                                   err);
        pthread_mutex_lock(&x->mu);
        x->net_busy = 0;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        st->network_seconds += bn_progress_now() - t0;
        if (rc)
            return rc;
        refuse_nonfinite(x, b);
        if (x->exact && ++x->batches % x->o.self_check == 0 && (rc = self_check(x, b, st, err)))
            return rc;
    }
    int writes = 0;
    for (size_t k = 0; k < b->nops; k++)
        writes += b->ops[k].kind != OP_SKIP;
    double t_store = bn_progress_now();
    if (writes > 0) {
        if (bn_store_begin(x->store, err))
            return BN_EDB;
        for (size_t k = 0; k < b->nops; k++) {
            op *o = &b->ops[k];
            const bn_item *it = &x->ds->items[o->item];
            int rc = BN_OK;
            if (o->kind == OP_COMPUTE)
                rc = bn_store_put_vector(x->store, x->featureset, o->sha256,
                                         x->output + (size_t)o->slot * x->dim, x->dim, x->o.dtype,
                                         err);
            if (!rc && (o->kind == OP_COMPUTE || o->kind == OP_REUSE))
                rc = bn_store_put_image(x->store, bn_dataset_id(x->ds), it->path, it->label,
                                        it->split, o->sha256, o->width, o->height, o->bytes, err);
            if (!rc && o->kind == OP_FAIL)
                rc = bn_store_put_failure(x->store, bn_dataset_id(x->ds), it->path,
                                          o->has_sha ? o->sha256 : NULL,
                                          o->reason ? o->reason : "out of memory", err);
            if (rc) {
                bn_store_rollback(x->store);
                return rc;
            }
        }
        if (bn_store_commit(x->store, err))
            return BN_EDB;
    }
    st->store_seconds += bn_progress_now() - t_store;
    for (size_t k = 0; k < b->nops; k++) {
        switch (b->ops[k].kind) {
        case OP_SKIP: st->skipped++; break;
        case OP_REUSE: st->reused++; break;
        case OP_COMPUTE: st->extracted++; break;
        case OP_FAIL: st->failed++; break;
        }
    }
    st->images += (long)b->nops;
    return BN_OK;
}

int bn_extractor_run(bn_extractor *x, const bn_dataset *ds, bn_extractor_progress progress,
                     void *ctx, bn_extractor_stats *st, bn_error *err) {
    memset(st, 0, sizeof *st);
    st->total = (long)ds->n;
    double t0 = bn_progress_now();
    x->ds = ds;
    x->stop = 0;
    for (int k = 0; k < 2; k++)
        x->b[k].full = x->b[k].last = 0;
    bn_strset_init(&x->paths);
    bn_strset_init(&x->vectors);
    int rc = load_known(x, err);
    x->net_busy = 0;
    x->decoder_quit = 0;
    x->job_gen = x->done_gen = 0;
    /* The decoder thread only helps: without it the reader decodes alone. */
    x->decoder_on = !rc && ds->n > 0 && bn_cpu_threads() > 1 &&
                    pthread_create(&x->decoder, NULL, decoder_main, x) == 0;
    pthread_t reader;
    if (!rc && ds->n > 0 && pthread_create(&reader, NULL, reader_main, x) != 0)
        rc = bn_fail(err, BN_ENOMEM, "cannot start the reader thread");
    if (!rc && ds->n > 0) {
        int which = 0;
        for (;;) {
            batch *b = &x->b[which];
            double t_wait = bn_progress_now();
            pthread_mutex_lock(&x->mu);
            while (!b->full)
                pthread_cond_wait(&x->cv, &x->mu);
            pthread_mutex_unlock(&x->mu);
            st->wait_seconds += bn_progress_now() - t_wait;
            int last = b->last;
            if (last == 2)
                rc = bn_fail(err, BN_ENOMEM, "out of memory while reading images");
            if (!rc)
                rc = write_batch(x, b, st, err);
            st->seconds = bn_progress_now() - t0;
            if (!rc && progress)
                progress(ctx, st);
            if (!rc && !last && x->o.interrupt && *x->o.interrupt)
                rc = bn_fail(err, BN_EINTR, "interrupted");
            pthread_mutex_lock(&x->mu);
            b->full = 0;
            if (rc)
                x->stop = 1;
            pthread_cond_broadcast(&x->cv);
            pthread_mutex_unlock(&x->mu);
            if (rc || last)
                break;
            which ^= 1;
        }
        pthread_join(reader, NULL);
    }
    if (x->decoder_on) {
        pthread_mutex_lock(&x->mu);
        x->decoder_quit = 1;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        pthread_join(x->decoder, NULL);
        x->decoder_on = 0;
    }
    for (int k = 0; k < 2; k++) {
        for (size_t j = 0; j < x->b[k].nops; j++)
            op_release(&x->b[k].ops[j]);
        x->b[k].nops = 0;
    }
    bn_strset_free(&x->paths);
    bn_strset_free(&x->vectors);
    st->seconds = bn_progress_now() - t0;
    return rc;
}

/*
 * extractor.h: the extract pipeline, shared by bottleneck-extract and
 * bottleneck-classify predict.
 *
 *   files --read+sha256--> skip? reuse? decode --> batch tensor
 *         --network (graph.h)--> vectors --one transaction per batch--> SQLite
 *
 * A reader thread reads, hashes and decodes the next batch while the network
 * runs on the current one (two batch buffers, so memory is bounded by the
 * batch size, not the dataset). What is already stored is loaded once at the
 * start: an image whose path and content are unchanged is skipped, one whose
 * content already has a vector (renamed, copied) gets only its image row.
 * Undecodable files are recorded in `failures` and the run goes on.
 */
#ifndef BN_EXTRACTOR_H
#define BN_EXTRACTOR_H

#include "dataset.h"
#include "error.h"
#include "graph.h"
#include "image.h"
#include "store.h"
#include "vgg16.h"

#include <signal.h>
#include <stdint.h>

typedef struct {
    bn_image_opts image; /* size, resize, preprocess */
    bn_layer layer;      /* VGG16's pool to read, unless tensor is set */
    const char *tensor;  /* any tensor of the graph (ONNX name, or a Keras layer name) */
    bn_pooling pooling;
    const char *dtype; /* "f32" | "f16" */
    bn_conv_engine engine;
    /* --precision: FP32 (default), FAST, BF16 or FP16 (conv.h). Resolved at
     * creation (precision.h); the precision used keys the feature set. */
    bn_precision precision;
    int batch; /* images per forward pass and per transaction */
    /* --self-check N: every N-th batch, one of its images also goes through
     * the exact (direct) engine, and the run stops with an error, that
     * batch uncommitted, if the two differ by more than 1e-4 relative L2.
     * 0: off. A cheap invariant for users who want one: costs about one
     * direct forward (5-10x a fast one) per N batches. */
    int self_check;
    /* When this reads non-zero (a program's signal handler sets it), the run
     * stops after the batch in hand, committed, with BN_EINTR. NULL: never. */
    const volatile sig_atomic_t *interrupt;
} bn_extractor_opts;

/* Defaults: 224, squash, caffe, block5_pool, none, f32, auto, batch 8. */
void bn_extractor_opts_default(bn_extractor_opts *o);

typedef struct {
    long images;            /* items handled so far */
    long total;             /* items in the dataset */
    long extracted;         /* run through the network */
    long reused;            /* content already had a vector: image row only */
    long skipped;           /* already stored and unchanged */
    long failed;            /* recorded in failures (also: vectors with NaN or infinity) */
    long self_checks;       /* images checked against the exact engine (--self-check) */
    double seconds;         /* wall time of the run */
    double network_seconds; /* time inside the network */
    /* The rest of seconds, between forward passes (all on the caller's
     * thread, so seconds is about the sum of the three plus the set-up): */
    double store_seconds; /* writing batches to SQLite (commits, checkpoints) */
    double wait_seconds;  /* waiting for the next batch: reading, decoding */
} bn_extractor_stats;

typedef void (*bn_extractor_progress)(void *ctx, const bn_extractor_stats *st);

typedef struct bn_extractor bn_extractor;

/* Build the network and find or create the feature set for these settings. */
int bn_extractor_create(bn_extractor **out, bn_store *store, const bn_vgg16_weights *w,
                        const bn_extractor_opts *o, bn_error *err);

/* Where a graph came from: names and identifies its feature sets. */
typedef struct {
    const char *model;  /* "vgg16", or the ONNX file's name without .onnx */
    const char *sha256; /* of the model file */
    const char *format; /* "keras-h5" | "onnx" */
    const char *path;   /* the ONNX file (absolute), NULL for the .h5 */
    /* --self-check (o->self_check > 0): a second copy of the graph, built
     * and not inferred, that the extractor runs with the exact engine on
     * one image of every self_check-th batch; taken over like g. */
    struct bn_graph *exact;
} bn_extractor_model;

/* The same for any network: g is built and not yet inferred (onnx.h,
 * bn_vgg16_build_graph); the extractor takes it over, also on failure. The
 * tensor read is o->tensor, else VGG16's o->layer. */
int bn_extractor_create_graph(bn_extractor **out, bn_store *store, struct bn_graph *g,
                              const bn_extractor_model *m, const bn_extractor_opts *o,
                              bn_error *err);
void bn_extractor_free(bn_extractor *x);

int64_t bn_extractor_featureset(const bn_extractor *x);
const char *bn_extractor_featureset_name(const bn_extractor *x);
int bn_extractor_dim(const bn_extractor *x);
/* The precision the network runs in ("fp32", "bf16"), and one line saying
 * why (what `fast` chose on this CPU, or that the direct engine is exact). */
const char *bn_extractor_precision(const bn_extractor *x);
const char *bn_extractor_precision_note(const bn_extractor *x);

/* Process every item of ds (paths relative to ds->root). Per-file problems go
 * to the failures table and the stats; a returned error means the run could
 * not go on (database; BN_EINTR: asked to stop, o->interrupt), with every
 * batch committed before it kept. */
int bn_extractor_run(bn_extractor *x, const bn_dataset *ds, bn_extractor_progress progress,
                     void *ctx, bn_extractor_stats *st, bn_error *err);

#endif

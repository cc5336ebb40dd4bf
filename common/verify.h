/*
 * verify.h: recompute stored vectors from the images still on disk, compare,
 * and optionally replace the ones that differ (bottleneck-extract verify).
 *
 * Why: bottleneck 0.1.0 and earlier could store wrong vectors without a
 * warning (the Winograd engine on partial batches). Their vectors carry no
 * engine (schema/003_provenance.sql); users need to find and repair them.
 *
 * For one extracted feature set, the vectors (one image path per content,
 * `sample` of them in sha256 order, or all) are recomputed with the network
 * the feature set describes: layer, pooling, size, resize, preprocess, dtype,
 * and weights (VGG16's .h5, or the ONNX model) whose SHA-256 must match. A vector recorded as
 * computed by the same engine and version as this run must come out bitwise equal; any other
 * (another engine, the portable build, or not recorded) must be within BN_VERIFY_TOLERANCE relative
 * L2 of the recomputation. Files whose content changed since extraction (SHA-256) or that are gone
 * are counted, not judged. With repair, differing vectors are replaced, engine recorded, one
 * transaction per batch.
 */
#ifndef BN_VERIFY_H
#define BN_VERIFY_H

#include "conv.h"
#include "error.h"
#include "store.h"
#include "weights.h"

#include <stdint.h>

#define BN_VERIFY_TOLERANCE 1e-4

typedef struct {
    long sample; /* at most this many vectors; 0: all */
    int repair;
    int batch;
    bn_conv_engine engine;
} bn_verify_opts;

typedef struct {
    long total;     /* vectors selected */
    long checked;   /* recomputed and compared */
    long identical; /* bitwise equal */
    long close;     /* not bitwise equal, within the tolerance (another engine) */
    long differ;    /* beyond the tolerance, or not bitwise equal where they must be */
    long repaired;
    long missing; /* no file at the path any more */
    long changed; /* the file's content is not the one extracted */
    long unreadable;
    double worst; /* largest relative L2 seen */
} bn_verify_stats;

/* Called once per vector that differs (rel: its relative L2 distance). */
typedef void (*bn_verify_report)(void *ctx, const char *path, double rel, const char *stored_by);
typedef void (*bn_verify_progress)(void *ctx, const bn_verify_stats *st);

/* |a - ref| / |ref| in double (|a - ref| when ref is 0; infinity when not
 * finite): how far a vector is from its reference, as verify and the
 * extractor's --self-check judge it against BN_VERIFY_TOLERANCE. */
double bn_verify_rel_l2(const float *a, const float *ref, size_t n);

/* root: the dataset folder the feature set's images were extracted from.
 * weights: VGG16's weights file for a VGG16 feature set (NULL: located as
 * extract locates them, weights.h); an ONNX feature set is recomputed with
 * the model file recorded with it, which must not have changed (SHA-256). */
int bn_verify_run(bn_store *s, int64_t featureset, const char *root, const char *weights,
                  const bn_verify_opts *o, bn_verify_report report, bn_verify_progress progress,
                  void *ctx, bn_verify_stats *st, bn_error *err);

#endif

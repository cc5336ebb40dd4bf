/*
 * model_file.c: a feature set's network, opened again (model_file.h).
 *
 * VGG16 is built up to block5_pool whatever the set's layer: the set may
 * read any tensor of it (block4_conv3, say), and bn_graph_prepare prunes
 * what the layer does not need, so nothing after it runs.
 */
#include "model_file.h"

#include "graph.h"
#include "onnx.h"
#include "vgg16.h"
#include "weights.h"

#include <stdio.h>
#include <string.h>

/* 0 when the file is the set's (or the set recorded no hash: databases of
 * before schema 003 extracted only VGG16 and said nothing more). */
static int same_file(const bn_featureset *f, const char *sha256) {
    return !f->weights_sha256 || !f->weights_sha256[0] || strcmp(f->weights_sha256, sha256) == 0;
}

static int reopen_onnx(const bn_featureset *f, bn_model_file *out, bn_error *err) {
    if (!f->model_path)
        return bn_fail(err, BN_EINVAL, "feature set '%s' records no model file", f->name);
    bn_onnx_info info;
    int rc = bn_onnx_load(&out->g, f->model_path, &info, err);
    if (rc)
        return rc;
    if (!same_file(f, info.sha256)) {
        bn_graph_free(out->g);
        out->g = NULL;
        return bn_fail(err, BN_EINVAL,
                       "%s has changed since feature set '%s' was extracted from it (SHA-256 "
                       "%.12s..., now %.12s...)",
                       f->model_path, f->name, f->weights_sha256, info.sha256);
    }
    snprintf(out->sha256, sizeof out->sha256, "%s", info.sha256);
    snprintf(out->path, sizeof out->path, "%s", f->model_path);
    out->format = "onnx";
    return BN_OK;
}

static int reopen_vgg16(const bn_featureset *f, const char *weights, bn_model_file *out,
                        bn_error *err) {
    bn_vgg16_weights w;
    int rc = bn_weights_locate(out->path, sizeof out->path, weights, err);
    if (rc || (rc = bn_weights_load(&w, out->path, err)))
        return rc;
    if (!same_file(f, w.sha256))
        rc = bn_fail(err, BN_EINVAL,
                     "%s: not the weights feature set '%s' was extracted with (SHA-256 "
                     "%.12s..., the set's %.12s...): pass that file with --weights",
                     out->path, f->name, w.sha256, f->weights_sha256);
    else
        rc = bn_vgg16_build_graph(&out->g, &w, BN_LAYER_BLOCK5_POOL, err);
    snprintf(out->sha256, sizeof out->sha256, "%s", w.sha256);
    out->format = "keras-h5";
    bn_weights_free(&w);
    return rc;
}

int bn_model_file_reopen(const bn_featureset *f, const char *weights, bn_model_file *out,
                         bn_error *err) {
    memset(out, 0, sizeof *out);
    if (!f->source || strcmp(f->source, "extract") != 0)
        return bn_fail(err, BN_EINVAL, "feature set '%s' was imported: it has no network to run",
                       f->name);
    if (f->model_format && strcmp(f->model_format, "onnx") == 0)
        return reopen_onnx(f, out, err);
    if (f->model_format && strcmp(f->model_format, "keras-h5") != 0)
        return bn_fail(err, BN_EINVAL, "feature set '%s': model format '%s' is not known here",
                       f->name, f->model_format);
    return reopen_vgg16(f, weights, out, err);
}

/*
 * model_file.h: the network a stored feature set was extracted with, opened
 * again (bottleneck-extract verify, bottleneck-classify predict).
 *
 * Owns: where that network's file is (the ONNX file recorded with the set,
 * or VGG16's weights located as extract locates them: --weights, then
 * $BOTTLENECK_WEIGHTS, then the cache), the check that it is the very file
 * the set was extracted from (SHA-256 against featuresets.weights_sha256:
 * another file would give other vectors under the same name), and the one
 * message saying it is not. Everything else about the set (layer, pooling,
 * preprocessing) stays with the caller, who infers and prepares the graph.
 */
#ifndef BN_MODEL_FILE_H
#define BN_MODEL_FILE_H

#include "error.h"
#include "store.h"

struct bn_graph;

typedef struct {
    struct bn_graph *g; /* built, not inferred; the caller takes it over */
    char sha256[65];    /* of the file opened: the set's own */
    char path[4096];    /* the file opened */
    const char *format; /* "onnx" | "keras-h5" */
} bn_model_file;

/* Open extracted feature set f's network. weights: the VGG16 .h5 to use
 * (NULL: located); not used for ONNX sets. Errors: the file missing or
 * unreadable, or not the set's (one line naming the file and both hashes),
 * an imported set (nothing to open). On error out->g is NULL. */
int bn_model_file_reopen(const bn_featureset *f, const char *weights, bn_model_file *out,
                         bn_error *err);

#endif

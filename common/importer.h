/*
 * importer.h: vectors computed elsewhere (another network, another tool) as
 * a .npy matrix and a TSV index, stored as a feature set of their own,
 * attached to the images they describe, keyed by content hash as extracted
 * vectors are. `bottleneck-extract import` is this call plus its options and
 * output; the index's columns and the checks are described in its usage text
 * (extract/import.c) and in README.md.
 */
#ifndef BN_IMPORTER_H
#define BN_IMPORTER_H

#include "error.h"

#include <stdint.h>

typedef struct {
    const char *db;      /* the database, created when missing */
    const char *name;    /* the feature set's name */
    const char *npy;     /* float32 (rows, dim), C order */
    const char *index;   /* TSV: header row, then line i describes row i */
    const char *root;    /* the folder relpath is relative to (hashing); may be NULL */
    const char *model;   /* recorded for the feature set; NULL: name */
    const char *dtype;   /* "f32" (NULL) or "f16" */
    const char *dataset; /* NULL: the database's only one (or a new default) */
    int quiet;           /* no progress bar on stderr */
} bn_importer_opts;

typedef struct {
    int64_t featureset; /* featuresets.id */
    int rows;
    int64_t dim;
    long new_images; /* image rows added; rows - new_images were already stored */
    char dataset[256];
    double seconds;
} bn_importer_result;

/* Check everything, then store every row in one transaction. On failure
 * nothing is stored and err names the file and the problem. */
int bn_importer_run(const bn_importer_opts *o, bn_importer_result *r, bn_error *err);

#endif

/*
 * featureset.h: a feature set's vectors, loaded from the store into one dense
 * float32 matrix for training and prediction.
 *
 * Rows are the images (not the distinct contents) that have a vector in the
 * feature set, selected by split or by path, in path order. Each BLOB is
 * decoded straight into its row (f32 copied, f16 widened), so the matrix is
 * the only copy: 3,000 x 25,088 flattened VGG16 features take 301 MB. Every
 * value is checked: a NaN or Inf, or a BLOB of the wrong length, is an error
 * naming the image.
 */
#ifndef BN_FEATURESET_H
#define BN_FEATURESET_H

#include "error.h"
#include "store.h"

#include <stdint.h>

typedef struct {
    int n, dim;
    float *x;       /* (n, dim) row-major */
    int64_t *image; /* (n) images.id */
    char **path;    /* (n) images.path */
    int *label;     /* (n) index into labels, -1 for an image without a label */
    int nlabels;
    char **labels; /* (nlabels) the distinct labels of these rows, sorted (strcmp) */
} bn_features;

/* Rows of feature set fs whose image is in split (NULL: every image). Zero
 * rows is an error (BN_EINVAL) whose message says which splits do have
 * vectors in this feature set. */
int bn_featureset_load(bn_store *s, int64_t fs, const char *split, bn_features *out, bn_error *err);

/* Which images: every field is a further condition (0 / NULL: none). */
typedef struct {
    int64_t dataset;   /* images of this dataset (datasets.id) */
    const char *split; /* of this split */
    int64_t held_out;  /* held out by this sweep (holdouts table) */
    int64_t kept_by;   /* not held out by this sweep: the rows it trained on */
} bn_rows;

/* As bn_featureset_load, for the images rows selects. */
int bn_featureset_load_rows(bn_store *s, int64_t fs, const bn_rows *rows, bn_features *out,
                            bn_error *err);

/* Rows for the given images (images.id, n of them), in the order given; an
 * image without a vector in fs is an error. */
int bn_featureset_load_images(bn_store *s, int64_t fs, const int64_t *images, int n,
                              bn_features *out, bn_error *err);

void bn_featureset_free(bn_features *f);

/* y[i] = index of row i's label in classes[0..k), -1 for a row without a
 * label; BN_EINVAL naming the first label that is not a class (what =
 * "validation", for the message). */
int bn_featureset_encode(const bn_features *f, char *const *classes, int k, int *y,
                         const char *what, bn_error *err);

/* Reorder the rows in place: new row i is old row perm[i] (perm is a
 * permutation of 0..n-1; it is left unchanged). One row of scratch memory. */
int bn_featureset_permute(bn_features *f, const int *perm, bn_error *err);

/* Move rows [keep, n) of f into *tail (same labels), leaving f with keep rows. */
int bn_featureset_split_tail(bn_features *f, int keep, bn_features *tail, bn_error *err);

#endif

/*
 * npy.h: NumPy .npy files of float32 matrices, the format other tools hand us
 * embeddings in (numpy.save, versions 1.0, 2.0 and 3.0).
 *
 * Only what bottleneck stores is accepted: dtype '<f4' (little-endian
 * float32), two dimensions (rows, dim), C order. Anything else is refused with
 * one line naming the file and what it holds instead ("dtype '<f8' (float64),
 * expected '<f4' (float32)"); the file size must be exactly header + rows*dim*4
 * bytes, so truncated files and wrong shapes are caught before any row is used.
 *
 * Rows can be read in pieces (bounded memory for imports of 25088-d vectors)
 * or all at once.
 */
#ifndef BN_NPY_H
#define BN_NPY_H

#include "error.h"
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char path[512];
    int64_t rows, dim;   /* shape (rows, dim) */
    int64_t data_offset; /* bytes before the first value */
} bn_npy;

/* Open path and check its header against the rules above. */
int bn_npy_open(bn_npy *npy, const char *path, bn_error *err);
void bn_npy_close(bn_npy *npy);

/* Read rows [start, start+count) into out (count x dim floats, row-major). */
int bn_npy_read_rows(bn_npy *npy, int64_t start, int64_t count, float *out, bn_error *err);

/* Open, read everything, close: *data is malloc'ed (rows x dim), the caller frees it. */
int bn_npy_load(const char *path, float **data, int64_t *rows, int64_t *dim, bn_error *err);

/* Write a (rows, dim) float32 matrix as a version 1.0 .npy file, atomically
 * (a temporary file renamed into place). */
int bn_npy_save(const char *path, const float *data, int64_t rows, int64_t dim, bn_error *err);

/* The same, streamed: create writes the header to a temporary file beside
 * path, write_rows appends rows, commit checks that exactly rows were written
 * and renames the file into place; abort (or any failed call) removes it. So
 * path holds a complete file or is untouched. */
typedef struct {
    FILE *f;
    char path[4096], tmp[4200];
    int64_t rows, dim, written;
} bn_npy_writer;

int bn_npy_create(bn_npy_writer *w, const char *path, int64_t rows, int64_t dim, bn_error *err);
int bn_npy_write_rows(bn_npy_writer *w, const float *data, int64_t count, bn_error *err);
int bn_npy_commit(bn_npy_writer *w, bn_error *err);
void bn_npy_abort(bn_npy_writer *w);

#endif

/*
 * store.h: the SQLite database of images, feature sets, vectors and failures.
 *
 * Owns the connection and the schema: opening a database applies any pending
 * migrations from schema/ (PRAGMA user_version says how many are applied) in
 * one transaction, sets WAL mode and a busy timeout, and registers the vector
 * SQL functions (vec.h) on the connection. Every write goes through a
 * transaction the caller brackets with bn_store_begin/commit, so a killed
 * process leaves either a whole batch or none of it.
 *
 * Other modules (runs of classify, imports) use bn_store_db() for their own
 * statements, always with bound parameters.
 */
#ifndef BN_STORE_H
#define BN_STORE_H

#include "error.h"
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bn_store bn_store;

enum {
    BN_STORE_READONLY = 1, /* open for reading only; never migrates */
    BN_STORE_CREATE = 2    /* create the file if it does not exist */
};

int bn_store_open(bn_store **out, const char *path, int flags, bn_error *err);
void bn_store_close(bn_store *s);
sqlite3 *bn_store_db(bn_store *s);
const char *bn_store_path(const bn_store *s);

/* Fails (BN_EINVAL, naming both) when the file a command is about to write,
 * out, is the database itself or its -wal/-shm file, whatever the path it is
 * given by (a link, ./x.db): export --npy or report -o would replace it. */
int bn_store_check_output(const bn_store *s, const char *out, const char *what, bn_error *err);

/* Schema version of the open database, and the one this build knows. */
int bn_store_version(bn_store *s);
int bn_store_latest_version(void);

int bn_store_begin(bn_store *s, bn_error *err); /* BEGIN IMMEDIATE */
int bn_store_commit(bn_store *s, bn_error *err);
void bn_store_rollback(bn_store *s);

/* A feature set's identity. Strings may be NULL where they do not apply
 * (imports have no layer). name is derived when NULL. */
typedef struct {
    const char *name;
    const char *source; /* "extract" | "import" */
    const char *model;  /* "vgg16" */
    const char *weights_sha256;
    const char *layer, *pooling, *resize, *preprocess;
    int size;
    int dim;
    const char *dtype; /* "f32" | "f16" */
    /* "fp32" (NULL means it) | "bf16" | "fp16": the arithmetic of the
     * products (schema/006_precision.sql); part of the key */
    const char *precision;
    /* Not part of the key (weights_sha256 identifies the model): recorded for
     * people and for predict. NULL for imports. */
    const char *model_format; /* "keras-h5" | "onnx" */
    const char *model_path;   /* the ONNX file (absolute); NULL for the .h5 */
} bn_featureset;

/* Find the feature set with exactly these settings, or create it. */
int bn_store_featureset_get_or_create(bn_store *s, const bn_featureset *fs, int64_t *id,
                                      bn_error *err);
/* The inverse: the row of feature set id, every column of the struct, its
 * strings malloc'ed (NULL where the row has NULL); BN_EINVAL if there is no
 * such feature set. Release with bn_store_featureset_release (also after an
 * error: it then holds nothing). */
int bn_store_featureset_get(bn_store *s, int64_t id, bn_featureset *out, bn_error *err);
void bn_store_featureset_release(bn_featureset *fs);
/* Look one up by name or by numeric id given as text; BN_EINVAL if none. */
int bn_store_featureset_find(bn_store *s, const char *name_or_id, int64_t *id, int *dim,
                             char dtype[8], bn_error *err);
/* The feature set a command works on: name_or_id (as _find), or when NULL
 * the database's only one (BN_EINVAL naming them when there are several or
 * none). Its name goes to name (nname bytes). */
int bn_store_featureset_pick(bn_store *s, const char *name_or_id, int64_t *id, int *dim, char *name,
                             size_t nname, bn_error *err);

/* Is there a vector for this content in this feature set? */
int bn_store_has_vector(bn_store *s, int64_t featureset, const char *sha256, int *has,
                        bn_error *err);

/* The stored image row for a path of a dataset (datasets.id), if any: its
 * sha256 (has=0 if none). */
int bn_store_image_sha256(bn_store *s, int64_t dataset, const char *path, char sha256[65], int *has,
                          bn_error *err);

/* Insert or update the image row for path in dataset; label may be NULL (no
 * known class). Clears the path's failure row. */
int bn_store_put_image(bn_store *s, int64_t dataset, const char *path, const char *label,
                       const char *split, const char *sha256, int width, int height, int64_t bytes,
                       bn_error *err);

/* Store a vector of dim floats, converted to dtype ("f32"|"f16"). Replaces any existing. */
int bn_store_put_vector(bn_store *s, int64_t featureset, const char *sha256, const float *v,
                        int dim, const char *dtype, bn_error *err);

/* Which engine computes the vectors put from now on (schema/003_provenance.sql):
 * engine NULL stores NULL. Copied. */
void bn_store_set_engine(bn_store *s, const char *engine, int version);

/* Vectors of extracted feature sets whose engine is not recorded: written by
 * bottleneck 0.1.0 or earlier, whose default engine could store wrong ones. */
int bn_store_unverified(bn_store *s, long *count, bn_error *err);

/* Record (or update) a failure for path in dataset; sha256 may be NULL. A
 * path has an image row or a failure row, never both: this removes the
 * path's image row, and bn_store_put_image clears its failure row. */
int bn_store_put_failure(bn_store *s, int64_t dataset, const char *path, const char *sha256,
                         const char *reason, bn_error *err);

/* Translate the connection's last error into err, naming the database file. */
int bn_store_fail(bn_store *s, bn_error *err, const char *what);

#endif

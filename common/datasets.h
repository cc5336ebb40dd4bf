/*
 * datasets.h: the datasets of a database (schema/005_datasets.sql): several
 * datasets live in one database, each with its own images and failures, so
 * that two folders with the same relative paths never overwrite each other.
 *
 * Owns naming and finding datasets: a dataset is known by its name (default:
 * the name of its root folder) and records its root folder. A fresh or
 * migrated database starts with the dataset 'default' (kind 'default'); the
 * first extract adopts it (older databases' images keep belonging to the
 * folder they came from). Images given to `predict` one by one live in the
 * dataset 'predicted' (kind 'files').
 *
 * Exports bn_datasets_*; every function runs its own statements, bound
 * parameters only.
 */
#ifndef BN_DATASETS_H
#define BN_DATASETS_H

#include "dataset.h"
#include "error.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

#define BN_DATASETS_FILES_NAME "predicted"

typedef struct {
    int64_t id;
    char name[256];
    char kind[16];   /* "default" | "folder" | "import" | "files" */
    char root[4096]; /* "" when none is recorded */
} bn_dataset_info;

/* The default name of the dataset in folder root: the folder's own name
 * (after resolving ".", ".." and trailing slashes). */
int bn_datasets_default_name(const char *root, char *out, size_t n, bn_error *err);

/* The dataset extract stores folder root in (root_abs: its absolute path).
 * name NULL: the folder's name; a dataset of that name extracted from
 * another folder is an error (two folders of the same name are two datasets
 * only when the user says so with a name). An explicit name takes the
 * dataset over: its root becomes root_abs (the folder moved), unless scan
 * (the folder's images; NULL: not checked) shares no relative path with
 * the dataset's stored images and keep_missing is 0: then the folder is not
 * the dataset moved but another one under a reused name, and taking over
 * would remove every stored image (an error naming both folders). A new
 * name adopts the 'default' dataset when there is one, else creates a
 * dataset. Runs its own transaction. */
int bn_datasets_for_folder(bn_store *s, const char *name, const char *root_abs,
                           const bn_dataset *scan, int keep_missing, bn_dataset_info *out,
                           bn_error *err);

/* The dataset named name (or whose id is name as text); BN_EINVAL listing the
 * datasets when there is none. */
int bn_datasets_find(bn_store *s, const char *name, bn_dataset_info *out, bn_error *err);

/* By id; BN_EINVAL when none. */
int bn_datasets_get(bn_store *s, int64_t id, bn_dataset_info *out, bn_error *err);

/* The dataset to train feature set fs on when none is named: the only one
 * (kinds other than 'files') whose images have vectors in fs; BN_EINVAL
 * naming them when there are several, or none. */
int bn_datasets_pick(bn_store *s, int64_t fs, bn_dataset_info *out, bn_error *err);

/* The dataset import stores an index in: name, else the only dataset that
 * is not 'files' ('default' included), else BN_EINVAL. A new name is
 * created with kind 'import' and root root_abs (may be NULL). Runs inside
 * the caller's transaction when there is one. */
int bn_datasets_for_import(bn_store *s, const char *name, const char *root_abs,
                           bn_dataset_info *out, bn_error *err);

/* The 'files' dataset of predict, created when missing. */
int bn_datasets_files(bn_store *s, bn_dataset_info *out, bn_error *err);

#endif

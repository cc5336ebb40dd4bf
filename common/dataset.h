/*
 * dataset.h: find the images of a dataset folder and their labels and splits.
 *
 * Layouts (the Keras image_dataset_from_directory / torchvision ImageFolder
 * conventions):
 *
 *   ROOT/<class>/...images          label = class, split = NULL
 *   ROOT/<split>/<class>/...images  split = train|training|validation|valid|val|test|testing
 *
 * A top-level folder with one of those split names that holds sub-folders is a
 * split; any other top-level folder is a class. Images are found recursively
 * inside a class folder, by extension (case-insensitive); hidden files and
 * folders are skipped; symbolic links are followed, but a folder already
 * visited (a link loop) is not entered twice. Each folder's entries are
 * taken real ones first, then links, each by name: a folder reached both
 * directly and through a link counts under its own name, on any file
 * system. Items are sorted by path so every run sees the same order.
 */
#ifndef BN_DATASET_H
#define BN_DATASET_H

#include "error.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *path;  /* relative to the root, '/' separated */
    char *label; /* class folder name, or NULL (a file given to predict on its own) */
    char *split; /* split folder name, or NULL */
} bn_item;

typedef struct {
    char *root;
    int64_t id; /* the dataset's row in the database (datasets.h); 0: the first one */
    bn_item *items;
    size_t n, cap;
    size_t skipped_files; /* files ignored: not images by extension, or outside any class
                             folder (at the root, beside class folders); = nignored */
    char **ignored;       /* their paths relative to the root, sorted */
    size_t nignored, capignored;
} bn_dataset;

/* Scan root. An empty result is not an error here: callers decide. */
int bn_dataset_scan(bn_dataset *ds, const char *root, bn_error *err);
void bn_dataset_free(bn_dataset *ds);

/* Build a dataset from explicit files and folders (classify predict): a file
 * gets label NULL; a folder is scanned as a dataset root (FOLDER/cat/x.jpg
 * gets label cat, FOLDER/x.jpg label NULL). Paths are the ones given (folder
 * joined with the file's path inside it), tidied ("./a//b" is "a/b"),
 * sorted, each once (a file given twice, or alone and in its folder, is one
 * item, with its class folder's label). */
int bn_dataset_from_paths(bn_dataset *ds, char **paths, int n, bn_error *err);

/* Sharding (bottleneck-extract --shard K/N): the shard, 1..n, that a
 * relative path belongs to: the first 8 bytes of the SHA-256 of the path,
 * big-endian, modulo n, plus one. A function of the path alone, so every
 * machine and every re-run splits a dataset the same way whatever the order
 * the file system lists it in; shards are disjoint and cover everything. */
int bn_dataset_shard_of(const char *path, int n);

/* Keep only the items of shard k of n (1 <= k <= n), in order. */
void bn_dataset_keep_shard(bn_dataset *ds, int k, int n);

/* ds->id, or 1 (the dataset every database starts with) when unset. */
int64_t bn_dataset_id(const bn_dataset *ds);

/* Does this file name look like an image libvips can read? */
int bn_dataset_is_image_name(const char *name);

/* Is this one of the split folder names above (train, validation, ...)? A
 * folder so named that holds images but no sub-folder is a class: the
 * caller may want to say so (Kaggle's train/cat.1.jpg has no class folders). */
int bn_dataset_is_split_name(const char *name);

#endif

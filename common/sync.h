/*
 * sync.h: after an extract, make a dataset's rows describe its folder as it
 * is now.
 *
 * The extract pipeline (extractor.h) adds and updates the image rows of the
 * files it finds; it never sees the files that are gone. bn_sync_begin takes
 * a snapshot of the dataset's rows before the run; bn_sync_finish compares it
 * with the folder scanned and the rows after the run, in one transaction:
 *
 *   a path gone whose content now sits under a new path   moved (same label
 *                                                         and split) or
 *                                                         relabelled
 *   a path gone, its content nowhere new                  removed
 *   a new path, its content not from a gone path          added
 *   a path whose content changed                          changed
 *
 * Gone paths lose their image rows (their vectors stay, keyed by content, so
 * a moved image is never computed again); a moved image's predictions and
 * holdout membership follow it to its new row. Failures of files no longer in
 * the folder are dropped. With keep_missing nothing is removed and nothing
 * paired (extracting a folder in pieces): gone paths are only counted.
 * Runs' recorded metrics are values, never joins, so they stay as trained.
 *
 * The snapshot lives in a TEMP table of the store's connection.
 */
#ifndef BN_SYNC_H
#define BN_SYNC_H

#include "dataset.h"
#include "error.h"
#include "store.h"

#include <stdint.h>

typedef struct {
    long added, moved, relabelled, changed, removed;
    long missing; /* keep_missing: rows of files not found, kept */
} bn_sync_stats;

/* Snapshot the rows of dataset (before the extract run). */
int bn_sync_begin(bn_store *s, int64_t dataset, bn_error *err);

/* Reconcile the dataset with the scan ds (after a successful run). */
int bn_sync_finish(bn_store *s, int64_t dataset, const bn_dataset *ds, int keep_missing,
                   bn_sync_stats *st, bn_error *err);

#endif

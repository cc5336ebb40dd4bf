/*
 * report.h: what the files of `bottleneck-classify report` share.
 *
 *   cmd_report.c      which runs, loading their vectors and probabilities,
 *                     the page: header tables, sections, the file written
 *                     atomically
 *   report_figures.c  the figures: validation curve of a sweep, ROC and
 *                     precision-recall, confusion matrices, calibration and
 *                     probability histograms, the PCA embedding map
 *   report_gallery.c  the most confident mistakes with thumbnails and each
 *                     one's nearest training image
 *
 * Probabilities are not read from the predictions table (a run may have none
 * stored, or old ones): they are recomputed from the run's stored head and
 * the stored vectors of each split, exactly as train computed the stored
 * metrics (bn_head_predict), so the curves agree with the metrics shown.
 */
#ifndef CL_REPORT_H
#define CL_REPORT_H

#include "classify.h"
#include "featureset.h"
#include "plot.h"

/* One split of one run: its rows, true class indices and probabilities. */
typedef struct {
    char *name;
    bn_features f;
    int *y;        /* (f.n) */
    double *proba; /* (f.n, k) */
    int training;  /* the run was trained on this split */
} rep_split;

typedef struct {
    bn_run r;
    bn_head h;
    int nsplits;
    rep_split *split;
    int eval;             /* index of the evaluated split */
    char **metric_splits; /* every split with stored metrics (cv included) */
    int nmetric_splits;
} rep_run;

typedef struct {
    const cl_opts *o;
    bn_store *s;
    int nruns;
    rep_run *run;
    int64_t sweep; /* 0: no validation curve */
    int gallery;   /* most mistakes shown */
    int plots;     /* figures written (ids) */
    /* thumbnails of --images: how many were wanted, and the first that
     * could not be shown (a folder other than the one extracted, say) */
    int thumbs, thumbs_missing;
    char thumb_missing[1400];
} rep_ctx;

/* A short name of run i for legends: "run 3" or "run 3 (googlenet)". */
void rep_run_name(const rep_ctx *c, int i, char *out, size_t n);

/* Sections of the page (each writes an <h2> and its figures). */
int rep_sweep_section(rep_ctx *c, FILE *f, bn_error *err);
int rep_curves_section(rep_ctx *c, FILE *f, bn_error *err);
int rep_confusion_section(rep_ctx *c, FILE *f, bn_error *err);
int rep_calibration_section(rep_ctx *c, FILE *f, bn_error *err);
int rep_embedding_section(rep_ctx *c, FILE *f, bn_error *err);
int rep_gallery_section(rep_ctx *c, FILE *f, bn_error *err);

#endif

/*
 * metrics.h: classification metrics with scikit-learn's definitions.
 *
 * Input: true class indices y (n) in [0, k) and predicted probabilities
 * proba (n x k, row-major, rows summing to 1). The predicted class is the
 * argmax of a row (the first on ties, as numpy.argmax).
 *
 *   accuracy         sklearn.metrics.accuracy_score
 *   precision[c], recall[c], f1[c], support[c]
 *                    precision_recall_fscore_support(average=None), where a
 *                    0/0 ratio is 0 (sklearn's zero_division default)
 *   *_macro          the unweighted mean over the classes present in y or in
 *                    the predictions (sklearn's labels=None behaviour)
 *   roc_auc          binary: roc_auc_score(y, proba[:, 1]); k > 2:
 *                    roc_auc_score(y, proba, multi_class='ovr', average='macro').
 *                    NaN when undefined (a class absent from y)
 *   log_loss         log_loss(y, proba, labels=range(k)): rows clipped to
 *                    [eps, 1-eps] (eps = DBL_EPSILON) and renormalised
 *   confusion        confusion_matrix: k x k, row = actual, column = predicted
 */
#ifndef BN_METRICS_H
#define BN_METRICS_H

#include "error.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n, k;
    double accuracy, log_loss, roc_auc;
    double precision_macro, recall_macro, f1_macro;
    double *precision, *recall, *f1; /* (k) */
    int64_t *support;                /* (k) true rows of each class */
    int64_t *confusion;              /* (k, k): confusion[actual * k + predicted] */
} bn_metrics;

/* Fill m (allocating its arrays; release with bn_metrics_free). n >= 1, k >= 2. */
int bn_metrics_compute(const int *y, const double *proba, int n, int k, bn_metrics *m,
                       bn_error *err);
void bn_metrics_free(bn_metrics *m);

/* Area under the ROC curve of scores for the rows where positive[i] != 0,
 * ties counted half (the trapezoidal rule on the ROC curve). NaN if all rows
 * are positive or none is. */
double bn_metrics_roc_auc(const double *score, const unsigned char *positive, int n, bn_error *err);

/* Index of the largest of v[0..k), the first on ties. */
int bn_metrics_argmax(const double *v, int k);

/* The overall metrics: the one list that selection, sorting, storage and
 * every printer read, in this order: accuracy, log_loss, roc_auc,
 * precision_macro, recall_macro, f1_macro. offset: of the double in
 * bn_metrics. */
#define BN_NMETRICS 6
enum {
    BN_METRIC_ACCURACY,
    BN_METRIC_LOG_LOSS,
    BN_METRIC_ROC_AUC,
    BN_METRIC_PRECISION_MACRO,
    BN_METRIC_RECALL_MACRO,
    BN_METRIC_F1_MACRO
};
typedef struct {
    const char *name;
    size_t offset;
    int higher_is_better; /* 0 for log_loss */
} bn_metrics_def;
extern const bn_metrics_def bn_metrics_defs[BN_NMETRICS];

/* The value of bn_metrics_defs[i] in m. */
double *bn_metrics_at(bn_metrics *m, int i);

/* Overall metrics by name, for selection and sorting. Returns NaN for an
 * unknown name (check with bn_metrics_known). */
double bn_metrics_get(const bn_metrics *m, const char *name);
int bn_metrics_known(const char *name);
/* 1 if larger is better, 0 for log_loss. */
int bn_metrics_higher_is_better(const char *name);

#endif

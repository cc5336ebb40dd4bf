/*
 * metrics.c: accuracy, precision/recall/F1, ROC AUC, log loss and the
 * confusion matrix, as scikit-learn defines them (see metrics.h).
 *
 * Everything is computed in double from the caller's probabilities; the
 * only allocation beyond the result arrays is the sort buffer of ROC AUC.
 */
#include "metrics.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int bn_metrics_argmax(const double *v, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

typedef struct {
    double score;
    unsigned char pos;
} metrics_pair;

static int metrics_pair_cmp(const void *a, const void *b) {
    double x = ((const metrics_pair *)a)->score, y = ((const metrics_pair *)b)->score;
    return (x > y) - (x < y);
}

/* Mann-Whitney form of the AUC: the sum of the positives' ranks (tied
 * scores share their mean rank) equals the trapezoidal area sklearn's
 * roc_curve + auc computes, ties included. */
static int metrics_roc_auc(const double *score, const unsigned char *positive, int n, double *auc,
                           bn_error *err) {
    int64_t npos = 0;
    for (int i = 0; i < n; i++)
        npos += positive[i] != 0;
    int64_t nneg = n - npos;
    *auc = NAN;
    if (npos == 0 || nneg == 0)
        return BN_OK; /* undefined, as in sklearn */
    metrics_pair *p = malloc((size_t)n * sizeof *p);
    if (!p)
        return bn_fail(err, BN_ENOMEM, "roc_auc: out of memory for %d scores", n);
    for (int i = 0; i < n; i++) {
        p[i].score = score[i];
        p[i].pos = positive[i] != 0;
    }
    qsort(p, (size_t)n, sizeof *p, metrics_pair_cmp);
    double rank_sum = 0; /* sum of 1-based ranks of the positives */
    for (int i = 0; i < n;) {
        int j = i;
        int64_t pos_in_tie = 0;
        while (j < n && p[j].score == p[i].score) {
            pos_in_tie += p[j].pos;
            j++;
        }
        double mean_rank = 0.5 * ((double)(i + 1) + (double)j);
        rank_sum += mean_rank * (double)pos_in_tie;
        i = j;
    }
    free(p);
    *auc = (rank_sum - 0.5 * (double)npos * (double)(npos + 1)) / ((double)npos * (double)nneg);
    return BN_OK;
}

double bn_metrics_roc_auc(const double *score, const unsigned char *positive, int n,
                          bn_error *err) {
    double auc;
    return metrics_roc_auc(score, positive, n, &auc, err) ? NAN : auc;
}

void bn_metrics_free(bn_metrics *m) {
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->support);
    free(m->confusion);
    memset(m, 0, sizeof *m);
}

static double metrics_ratio(int64_t a, int64_t b) {
    return b > 0 ? (double)a / (double)b : 0.0;
}

int bn_metrics_compute(const int *y, const double *proba, int n, int k, bn_metrics *m,
                       bn_error *err) {
    memset(m, 0, sizeof *m);
    if (n < 1 || k < 2)
        return bn_fail(err, BN_EINVAL, "metrics: need at least 1 row and 2 classes (n=%d, k=%d)", n,
                       k);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            return bn_fail(err, BN_EINVAL, "metrics: row %d has class %d, outside [0, %d)", i, y[i],
                           k);
    m->n = n;
    m->k = k;
    m->precision = calloc((size_t)k, sizeof *m->precision);
    m->recall = calloc((size_t)k, sizeof *m->recall);
    m->f1 = calloc((size_t)k, sizeof *m->f1);
    m->support = calloc((size_t)k, sizeof *m->support);
    m->confusion = calloc((size_t)k * (size_t)k, sizeof *m->confusion);
    unsigned char *pos = malloc((size_t)n);
    double *score = malloc((size_t)n * sizeof *score);
    if (!m->precision || !m->recall || !m->f1 || !m->support || !m->confusion || !pos || !score) {
        free(pos);
        free(score);
        bn_metrics_free(m);
        return bn_fail(err, BN_ENOMEM, "metrics: out of memory (n=%d, k=%d)", n, k);
    }

    /* Confusion matrix, accuracy, log loss. */
    int64_t correct = 0;
    double loss = 0;
    const double eps = DBL_EPSILON;
    for (int i = 0; i < n; i++) {
        const double *p = proba + (size_t)i * k;
        int pred = bn_metrics_argmax(p, k);
        m->confusion[(size_t)y[i] * k + pred]++;
        correct += pred == y[i];
        double sum = 0;
        for (int j = 0; j < k; j++)
            sum += fmin(fmax(p[j], eps), 1 - eps);
        loss -= log(fmin(fmax(p[y[i]], eps), 1 - eps) / sum);
    }
    m->accuracy = (double)correct / n;
    m->log_loss = loss / n;

    /* Per class, and macro means over the classes seen in y or predictions. */
    int present = 0;
    for (int c = 0; c < k; c++) {
        int64_t tp = m->confusion[(size_t)c * k + c], actual = 0, predicted = 0;
        for (int j = 0; j < k; j++) {
            actual += m->confusion[(size_t)c * k + j];
            predicted += m->confusion[(size_t)j * k + c];
        }
        m->support[c] = actual;
        m->precision[c] = metrics_ratio(tp, predicted);
        m->recall[c] = metrics_ratio(tp, actual);
        double pr = m->precision[c] + m->recall[c];
        m->f1[c] = pr > 0 ? 2 * m->precision[c] * m->recall[c] / pr : 0.0;
        if (actual > 0 || predicted > 0) {
            present++;
            m->precision_macro += m->precision[c];
            m->recall_macro += m->recall[c];
            m->f1_macro += m->f1[c];
        }
    }
    m->precision_macro /= present;
    m->recall_macro /= present;
    m->f1_macro /= present;

    int rc = BN_OK;
    /* ROC AUC: binary on the second column; one-vs-rest macro otherwise,
     * undefined unless every class occurs in y (sklearn raises there). */
    if (k == 2) {
        for (int i = 0; i < n; i++) {
            score[i] = proba[(size_t)i * 2 + 1];
            pos[i] = y[i] == 1;
        }
        rc = metrics_roc_auc(score, pos, n, &m->roc_auc, err);
    } else {
        double sum = 0;
        int defined = 1;
        for (int c = 0; c < k && defined && rc == BN_OK; c++) {
            for (int i = 0; i < n; i++) {
                score[i] = proba[(size_t)i * k + c];
                pos[i] = y[i] == c;
            }
            double auc;
            rc = metrics_roc_auc(score, pos, n, &auc, err);
            if (isnan(auc))
                defined = 0;
            sum += auc;
        }
        m->roc_auc = defined ? sum / k : NAN;
    }
    free(pos);
    free(score);
    if (rc) /* (out of memory: not an undefined AUC) */
        bn_metrics_free(m);
    return rc;
}

const bn_metrics_def bn_metrics_defs[BN_NMETRICS] = {
    {"accuracy", offsetof(bn_metrics, accuracy), 1},
    {"log_loss", offsetof(bn_metrics, log_loss), 0},
    {"roc_auc", offsetof(bn_metrics, roc_auc), 1},
    {"precision_macro", offsetof(bn_metrics, precision_macro), 1},
    {"recall_macro", offsetof(bn_metrics, recall_macro), 1},
    {"f1_macro", offsetof(bn_metrics, f1_macro), 1},
};

static int metrics_index(const char *name) {
    for (int i = 0; i < BN_NMETRICS; i++)
        if (strcmp(name, bn_metrics_defs[i].name) == 0)
            return i;
    return -1;
}

double *bn_metrics_at(bn_metrics *m, int i) {
    return (double *)((char *)m + bn_metrics_defs[i].offset);
}

int bn_metrics_known(const char *name) {
    return metrics_index(name) >= 0;
}

int bn_metrics_higher_is_better(const char *name) {
    int i = metrics_index(name);
    return i < 0 || bn_metrics_defs[i].higher_is_better;
}

double bn_metrics_get(const bn_metrics *m, const char *name) {
    int i = metrics_index(name);
    return i < 0 ? NAN : *bn_metrics_at((bn_metrics *)m, i);
}

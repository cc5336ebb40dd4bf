/*
 * test_metrics: metrics against scikit-learn's on recorded small cases.
 *
 * Reference values from scikit-learn 1.2.1 (Debian python3-sklearn), with
 *
 *   from sklearn.metrics import (accuracy_score, precision_recall_fscore_support,
 *                                roc_auc_score, log_loss, confusion_matrix)
 *   pred = P.argmax(1)
 *   accuracy_score(y, pred)
 *   precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
 *   precision_recall_fscore_support(y, pred, average='macro', zero_division=0)
 *   roc_auc_score(y, P[:, 1])                      # binary
 *   roc_auc_score(y, P, multi_class='ovr', average='macro', labels=labels)
 *   log_loss(y, P, labels=labels)
 *   confusion_matrix(y, pred, labels=labels)
 *
 * on the y and P written below.
 */
#include "check.h"
#include "metrics.h"

static void check_array(const double *got, const double *want, int n, double tol,
                        const char *what) {
    for (int i = 0; i < n; i++)
        CHECK_MSG(fabs(got[i] - want[i]) <= tol, "%s[%d] = %.12g, sklearn %.12g", what, i, got[i],
                  want[i]);
}

int main(void) {
    bn_error err = {0};

    /* Binary, with tied scores (0.4 three times) and a 0.5 row (argmax
     * takes class 0, as sklearn's predict does). */
    {
        int y[10] = {0, 0, 1, 1, 0, 1, 0, 1, 1, 0};
        double p1[10] = {0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.2, 0.9, 0.65, 0.5};
        double P[20];
        for (int i = 0; i < 10; i++)
            P[2 * i] = 1 - p1[i], P[2 * i + 1] = p1[i];
        bn_metrics m;
        CHECK(bn_metrics_compute(y, P, 10, 2, &m, &err) == BN_OK);
        CHECK_NEAR(m.accuracy, 0.8, 1e-12);
        check_array(m.precision, (double[]){0.714285714286, 1.0}, 2, 1e-12, "precision");
        check_array(m.recall, (double[]){1.0, 0.6}, 2, 1e-12, "recall");
        check_array(m.f1, (double[]){0.833333333333, 0.75}, 2, 1e-12, "f1");
        CHECK_INT(m.support[0], 5);
        CHECK_INT(m.support[1], 5);
        CHECK_NEAR(m.precision_macro, 0.857142857143, 1e-12);
        CHECK_NEAR(m.recall_macro, 0.8, 1e-12);
        CHECK_NEAR(m.f1_macro, 0.791666666667, 1e-12);
        CHECK_NEAR(m.roc_auc, 0.8, 1e-12);
        CHECK_NEAR(m.log_loss, 0.476870233450, 1e-12);
        int64_t conf[4] = {5, 0, 2, 3};
        CHECK(memcmp(m.confusion, conf, sizeof conf) == 0);
        CHECK_NEAR(bn_metrics_get(&m, "f1_macro"), 0.791666666667, 1e-12);
        bn_metrics_free(&m);
    }

    /* Three classes: a row with p = 0 for the true class (log loss clips it
     * to eps), ties in every one-vs-rest AUC, a class predicted by nobody
     * correct. */
    {
        int y[8] = {0, 1, 2, 2, 1, 0, 2, 1};
        double P[24] = {0.7, 0.2, 0.1, 0.3, 0.3,  0.4,  0.2, 0.2, 0.6, 0.5, 0.5, 0.0,
                        0.1, 0.8, 0.1, 0.4, 0.35, 0.25, 0.3, 0.3, 0.4, 0.6, 0.1, 0.3};
        bn_metrics m;
        CHECK(bn_metrics_compute(y, P, 8, 3, &m, &err) == BN_OK);
        CHECK_NEAR(m.accuracy, 0.625, 1e-12);
        check_array(m.precision, (double[]){0.5, 1.0, 0.666666666667}, 3, 1e-12, "precision");
        check_array(m.recall, (double[]){1.0, 0.333333333333, 0.666666666667}, 3, 1e-12, "recall");
        check_array(m.f1, (double[]){0.666666666667, 0.5, 0.666666666667}, 3, 1e-12, "f1");
        CHECK_NEAR(m.precision_macro, 0.722222222222, 1e-12);
        CHECK_NEAR(m.recall_macro, 0.666666666667, 1e-12);
        CHECK_NEAR(m.f1_macro, 0.611111111111, 1e-12);
        CHECK_NEAR(m.roc_auc, 0.655555555556, 1e-12);
        CHECK_NEAR(m.log_loss, 5.309179608651, 1e-11);
        int64_t conf[9] = {2, 0, 0, 1, 1, 1, 1, 0, 2};
        CHECK(memcmp(m.confusion, conf, sizeof conf) == 0);
        bn_metrics_free(&m);
    }

    /* A class absent from both truth and predictions: macro averages skip
     * it (sklearn's labels=None), ROC AUC is undefined, log loss still
     * counts it among the labels. */
    {
        int y[5] = {0, 1, 1, 0, 1};
        double P[15] = {0.6, 0.3, 0.1,  0.2,  0.7, 0.1, 0.5, 0.4,
                        0.1, 0.5, 0.25, 0.25, 0.1, 0.8, 0.1};
        bn_metrics m;
        CHECK(bn_metrics_compute(y, P, 5, 3, &m, &err) == BN_OK);
        CHECK_NEAR(m.accuracy, 0.8, 1e-12);
        CHECK_NEAR(m.precision_macro, 0.833333333333, 1e-12);
        CHECK_NEAR(m.recall_macro, 0.833333333333, 1e-12);
        CHECK_NEAR(m.f1_macro, 0.8, 1e-12);
        CHECK_NEAR(m.log_loss, 0.540016406291, 1e-12);
        CHECK(isnan(m.roc_auc));
        bn_metrics_free(&m);
    }

    /* ROC AUC by its definition on a case worked by hand: all positives
     * above all negatives is 1, the reverse 0, all tied 0.5. */
    {
        double s[4] = {0.1, 0.2, 0.3, 0.4};
        unsigned char up[4] = {0, 0, 1, 1}, down[4] = {1, 1, 0, 0}, none[4] = {0};
        double tied[4] = {0.5, 0.5, 0.5, 0.5};
        CHECK_NEAR(bn_metrics_roc_auc(s, up, 4, &err), 1.0, 0);
        CHECK_NEAR(bn_metrics_roc_auc(s, down, 4, &err), 0.0, 0);
        CHECK_NEAR(bn_metrics_roc_auc(tied, up, 4, &err), 0.5, 0);
        CHECK(isnan(bn_metrics_roc_auc(s, none, 4, &err)));
    }

    /* Bad input is an error, not a crash. */
    {
        int y[2] = {0, 3};
        double P[4] = {0.5, 0.5, 0.5, 0.5};
        bn_metrics m;
        CHECK(bn_metrics_compute(y, P, 2, 2, &m, &err) == BN_EINVAL);
        CHECK(strstr(err.msg, "class 3") != NULL);
        CHECK(bn_metrics_compute(y, P, 0, 2, &m, &err) == BN_EINVAL);
        CHECK(bn_metrics_known("log_loss") && !bn_metrics_known("loss"));
        CHECK(!bn_metrics_higher_is_better("log_loss") && bn_metrics_higher_is_better("accuracy"));
    }

    /* The table of overall metrics names each field of bn_metrics once. */
    {
        bn_metrics m = {.accuracy = 1, .log_loss = 2, .roc_auc = 3};
        m.precision_macro = 4, m.recall_macro = 5, m.f1_macro = 6;
        const char *order[BN_NMETRICS] = {"accuracy",        "log_loss",     "roc_auc",
                                          "precision_macro", "recall_macro", "f1_macro"};
        for (int i = 0; i < BN_NMETRICS; i++) {
            CHECK_STR(bn_metrics_defs[i].name, order[i]);
            CHECK(*bn_metrics_at(&m, i) == i + 1);
            CHECK(bn_metrics_get(&m, order[i]) == i + 1);
            CHECK_INT(bn_metrics_defs[i].higher_is_better, i != BN_METRIC_LOG_LOSS);
        }
        CHECK(isnan(bn_metrics_get(&m, "loss")));
    }
    return check_done();
}

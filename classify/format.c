/*
 * format.c: metrics and hyperparameters as readable text and as JSON, for
 * train, show and predict.
 */
#include "classify.h"

#include <math.h>
#include <string.h>

void cl_json_metrics(FILE *f, const bn_metrics *m, char *const *classes, int detail) {
    fprintf(f, "{\"n\":%d", m->n);
    for (int i = 0; i < BN_NMETRICS; i++) {
        fprintf(f, ",\"%s\":", bn_metrics_defs[i].name);
        bn_json_number(f, *bn_metrics_at((bn_metrics *)m, i));
    }
    if (detail) {
        fputs(",\"per_class\":{", f);
        for (int c = 0; c < m->k; c++) {
            if (c)
                fputc(',', f);
            bn_json_string(f, classes[c]);
            fputs(":{\"precision\":", f);
            bn_json_number(f, m->precision[c]);
            fputs(",\"recall\":", f);
            bn_json_number(f, m->recall[c]);
            fputs(",\"f1\":", f);
            bn_json_number(f, m->f1[c]);
            fprintf(f, ",\"support\":%lld}", (long long)m->support[c]);
        }
        fputs("},\"confusion\":[", f);
        for (int a = 0; a < m->k; a++) {
            fputs(a ? ",[" : "[", f);
            for (int p = 0; p < m->k; p++)
                fprintf(f, "%s%lld", p ? "," : "", (long long)m->confusion[(size_t)a * m->k + p]);
            fputc(']', f);
        }
        fputc(']', f);
    }
    fputc('}', f);
}

const char *cl_num(char *buf, size_t n, double v) {
    if (!isfinite(v))
        snprintf(buf, n, "-");
    else if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e5))
        snprintf(buf, n, "%.2g", v);
    else
        snprintf(buf, n, "%.4f", v);
    return buf;
}

static int report_width(char *const *classes, int k, int min) {
    int w = min;
    for (int c = 0; c < k; c++)
        if ((int)strlen(classes[c]) > w)
            w = (int)strlen(classes[c]);
    return w > 40 ? 40 : w;
}

void cl_print_metrics(FILE *f, const char *title, const bn_metrics *m, char *const *classes,
                      int detail) {
    char a[32], b[32], c[32];
    fprintf(f, "%s: accuracy %s, log loss %s, ROC AUC %s", title, cl_num(a, sizeof a, m->accuracy),
            cl_num(b, sizeof b, m->log_loss), cl_num(c, sizeof c, m->roc_auc));
    if (m->n > 0)
        fprintf(f, " (%d rows)", m->n);
    fputc('\n', f);
    if (!detail) {
        fprintf(f, "  macro precision %s, recall %s, F1 %s\n",
                cl_num(a, sizeof a, m->precision_macro), cl_num(b, sizeof b, m->recall_macro),
                cl_num(c, sizeof c, m->f1_macro));
        return;
    }
    int w = report_width(classes, m->k, 7);
    fprintf(f, "  %-*s  %9s  %9s  %9s  %8s\n", w, "class", "precision", "recall", "F1", "support");
    for (int k = 0; k < m->k; k++)
        fprintf(f, "  %-*.*s  %9s  %9s  %9s  %8lld\n", w, w, classes[k],
                cl_num(a, sizeof a, m->precision[k]), cl_num(b, sizeof b, m->recall[k]),
                cl_num(c, sizeof c, m->f1[k]), (long long)m->support[k]);
    fprintf(f, "  %-*s  %9s  %9s  %9s\n", w, "macro", cl_num(a, sizeof a, m->precision_macro),
            cl_num(b, sizeof b, m->recall_macro), cl_num(c, sizeof c, m->f1_macro));
    fprintf(f, "  confusion (rows: actual, columns: predicted)\n");
    int cw = 6;
    for (int k = 0; k < m->k; k++)
        if ((int)strlen(classes[k]) > cw)
            cw = (int)strlen(classes[k]) > 12 ? 12 : (int)strlen(classes[k]);
    fprintf(f, "  %-*s", w, "");
    for (int k = 0; k < m->k; k++)
        fprintf(f, "  %*.*s", cw, cw, classes[k]);
    fputc('\n', f);
    for (int r = 0; r < m->k; r++) {
        fprintf(f, "  %-*.*s", w, w, classes[r]);
        for (int k = 0; k < m->k; k++)
            fprintf(f, "  %*lld", cw, (long long)m->confusion[(size_t)r * m->k + k]);
        fputc('\n', f);
    }
}

void cl_describe_opts(char *out, size_t n, const bn_train_opts *o) {
    size_t len = (size_t)snprintf(out, n, "C=%g", o->C);
    if (o->balanced && len < n)
        len += (size_t)snprintf(out + len, n - len, " balanced");
    if (o->standardize && len < n)
        len += (size_t)snprintf(out + len, n - len, " standardized");
    if (o->solver != BN_SOLVER_LBFGS && len < n)
        len += (size_t)snprintf(out + len, n - len, " %s", bn_solver_name(o->solver));
    if ((o->solver == BN_SOLVER_SGD || o->solver == BN_SOLVER_ADAM) && len < n)
        snprintf(out + len, n - len, " lr=%g batch=%d", o->lr, o->batch_size);
}

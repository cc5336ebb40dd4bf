/*
 * report_figures.c: the report's figures (see report.h): the validation
 * curve of a sweep, ROC and precision-recall curves, confusion matrices,
 * the reliability diagram with the histograms of predicted probabilities,
 * and the PCA map of the evaluated split's vectors.
 *
 * Curves come from common/curves.c (scikit-learn's definitions); the points
 * drawn are the points computed, thinned only past 2,500 points (100,000
 * predictions), where no two kept points are closer than 0.001 on both axes:
 * the area changes by less than 0.001, the picture not at all, and the file
 * stays small.
 */
#include "report.h"

#include "curves.h"
#include "pca.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CURVE_MAX_POINTS 2500
#define MAP_MAX_POINTS 3000
#define PCA_MAX_ROWS 2000

static void fig_open(FILE *f) {
    fputs("<div class=\"figures\">\n", f);
}

static void fig_close(FILE *f) {
    fputs("</div>\n", f);
}

static void fig_id(rep_ctx *c, char *out, size_t n, const char *kind) {
    snprintf(out, n, "%s-%d", kind, ++c->plots);
}

/* ---- the validation curve ----------------------------------------------------------- */

typedef struct {
    int64_t id;
    double C;
    char group[160]; /* the other hyperparameters */
} fig_candidate;

/* The sweep's selection (metric, split, chosen run) and its candidates,
 * ordered by C. */
static int sweep_load(rep_ctx *c, char *select_by, char *select_on, int64_t *chosenp,
                      fig_candidate **out, int *np, bn_error *err) {
    sqlite3 *db = bn_store_db(c->s);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(
            db, "SELECT select_by, select_on, coalesce(chosen, 0) FROM sweeps WHERE id = ?1", -1,
            &q, NULL) != SQLITE_OK)
        return bn_store_fail(c->s, err, "reading the sweep");
    sqlite3_bind_int64(q, 1, c->sweep);
    if (sqlite3_step(q) == SQLITE_ROW) {
        snprintf(select_by, 64, "%s", (const char *)sqlite3_column_text(q, 0));
        snprintf(select_on, 64, "%s", (const char *)sqlite3_column_text(q, 1));
        *chosenp = sqlite3_column_int64(q, 2);
    }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(
            db, "SELECT id FROM runs WHERE sweep = ?1 AND role = 'candidate' ORDER BY C, id", -1,
            &q, NULL) != SQLITE_OK)
        return bn_store_fail(c->s, err, "reading the sweep's runs");
    sqlite3_bind_int64(q, 1, c->sweep);
    int n = 0, cap = 16, rc = BN_OK;
    fig_candidate *cand = malloc((size_t)cap * sizeof *cand);
    while (cand && sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            fig_candidate *t = realloc(cand, (size_t)(cap *= 2) * sizeof *cand);
            if (!t) {
                free(cand);
                cand = NULL;
                break;
            }
            cand = t;
        }
        bn_run r;
        if ((rc = bn_runs_get(c->s, sqlite3_column_int64(q, 0), &r, err)))
            break;
        cand[n].id = r.id;
        cand[n].C = r.opts.C;
        char desc[200];
        cl_describe_opts(desc, sizeof desc, &r.opts);
        const char *rest = strchr(desc, ' '); /* all but "C=..." */
        snprintf(cand[n].group, sizeof cand[n].group, "%s", rest ? rest + 1 : "");
        bn_run_free(&r);
        n++;
    }
    sqlite3_finalize(q);
    *out = cand;
    *np = n;
    return cand ? rc : bn_fail(err, BN_ENOMEM, "report: out of memory");
}

/* The candidates split into at most 8 groups of equal settings but C. */
typedef struct {
    int ngroups, group_of[512];
    const char *groups[8];
} fig_groups;

/* One figure: metric `metric` against C, train and select_on, a line per
 * group, the chosen candidate ringed. x and y have room for n values. */
static int sweep_figure(rep_ctx *c, FILE *f, const fig_candidate *cand, int n, const fig_groups *gr,
                        int64_t chosen, const char *select_on, const char *metric,
                        const char *label, double *x, double *y, bn_error *err) {
    const char *splits[2] = {"train", select_on};
    int ngroups = gr->ngroups, rc = BN_OK;
    const int *group_of = gr->group_of;
    const char *const *groups = gr->groups;
    char id[32], title[96], ylabel[64];
    fig_id(c, id, sizeof id, "sweep");
    snprintf(title, sizeof title, "%s against C", label);
    snprintf(ylabel, sizeof ylabel, "%s", label);
    cl_plot *p = cl_plot_new(id, title);
    if (!p)
        return BN_OK; /* out of memory for the plot: the page goes without it */
    cl_plot_axis(p, 0, "C (inverse L2 strength)", NAN, NAN, 1);
    cl_plot_axis(p, 1, ylabel, NAN, NAN, 0);
    cl_plot_legend(p,
                   strcmp(metric, "log_loss") == 0 ? CL_LEGEND_UPPER_RIGHT : CL_LEGEND_LOWER_RIGHT);
    double chosen_x = NAN, chosen_y = NAN;
    for (int g = 0; g < ngroups; g++)
        for (int si = 0; si < 2; si++) {
            int m = 0;
            for (int i = 0; i < n; i++) {
                if (group_of[i] != g)
                    continue;
                double v;
                int found;
                if ((rc =
                         bn_runs_get_metric(c->s, cand[i].id, splits[si], metric, &v, &found, err)))
                    break;
                if (!found)
                    continue;
                x[m] = cand[i].C;
                y[m] = v;
                m++;
                if (cand[i].id == chosen && si == 1)
                    chosen_x = cand[i].C, chosen_y = v;
            }
            if (m == 0 || rc)
                continue;
            char name[240];
            snprintf(name, sizeof name, "%s%s%s", splits[si], ngroups > 1 ? ", " : "",
                     ngroups > 1 ? groups[g] : "");
            cl_plot_series(p, CL_LINE, name, si == 0 ? 0 : 1, si == 0 ? 1 : 0,
                           si == 0 ? CL_MARK_SQUARE : CL_MARK_CIRCLE, x, y, m);
        }
    if (isfinite(chosen_y)) {
        char name[64];
        snprintf(name, sizeof name, "chosen (run %lld)", (long long)chosen);
        cl_plot_series(p, CL_POINTS, name, 6, 0, CL_MARK_RING, &chosen_x, &chosen_y, 1);
    }
    cl_plot_write(p, f);
    cl_plot_free(p);
    return rc;
}

int rep_sweep_section(rep_ctx *c, FILE *f, bn_error *err) {
    char select_by[64] = "accuracy", select_on[64] = "validation";
    int64_t chosen = 0;
    fig_candidate *cand = NULL;
    int n = 0;
    int rc = sweep_load(c, select_by, select_on, &chosen, &cand, &n, err);
    if (rc || n < 2) {
        free(cand);
        return rc;
    }
    /* distinct groups, in order of first appearance */
    fig_groups gr = {0};
    for (int i = 0; i < n && i < 512; i++) {
        int g = 0;
        while (g < gr.ngroups && strcmp(gr.groups[g], cand[i].group) != 0)
            g++;
        if (g == gr.ngroups && gr.ngroups < 8)
            gr.groups[gr.ngroups++] = cand[i].group;
        gr.group_of[i] = g < 8 ? g : 7;
    }
    fprintf(f,
            "<h2 id=\"sweep\">Sweep %lld: the validation curve</h2>\n<p class=\"note\">Each "
            "metric of the %d candidates against C (log scale), on the training rows and on "
            "<b>",
            (long long)c->sweep, n);
    cl_html_text(f, select_on);
    fputs("</b>; the ring marks the candidate chosen by ", f);
    cl_html_text(f, select_by);
    fputs(".</p>\n", f);
    fig_open(f);
    const char *metrics[4] = {"accuracy", "log_loss", "roc_auc", "f1_macro"};
    const char *labels[4] = {"Accuracy", "Log loss", "ROC AUC", "Macro F1"};
    double *x = malloc(2 * (size_t)n * sizeof *x);
    if (!x) {
        free(cand);
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    }
    for (int mi = 0; mi < 4 && rc == BN_OK; mi++)
        rc = sweep_figure(c, f, cand, n, &gr, chosen, select_on, metrics[mi], labels[mi], x, x + n,
                          err);
    fig_close(f);
    free(x);
    free(cand);
    return rc;
}

/* ---- ROC and precision-recall -------------------------------------------------------- */

/* A plot of two quantities in [0, 1] (rates, probabilities), framed with a
 * small margin so that curves along 0 and 1 stay visible. */
static cl_plot *fig_unit_plot(rep_ctx *c, const char *kind, const char *title, const char *xlabel,
                              const char *ylabel, int legend, const char *diagonal) {
    char id[32];
    fig_id(c, id, sizeof id, kind);
    cl_plot *p = cl_plot_new(id, title);
    if (!p)
        return NULL;
    cl_plot_axis(p, 0, xlabel, -0.02, 1.02, 0);
    cl_plot_axis(p, 1, ylabel, -0.02, 1.02, 0);
    cl_plot_legend(p, legend);
    if (diagonal)
        cl_plot_diagonal(p, diagonal);
    return p;
}

/* The (score, positive) columns of one curve: class cls of split sp. */
static int fig_scores(const rep_run *rr, const rep_split *sp, int cls, double **score,
                      unsigned char **pos, bn_error *err) {
    int n = sp->f.n, k = rr->r.k;
    *score = malloc((size_t)n * sizeof **score);
    *pos = malloc((size_t)n);
    if (!*score || !*pos) {
        free(*score);
        free(*pos);
        return bn_fail(err, BN_ENOMEM, "report: out of memory for %d scores", n);
    }
    for (int i = 0; i < n; i++) {
        (*score)[i] = sp->proba[(size_t)i * k + cls];
        (*pos)[i] = sp->y[i] == cls;
    }
    return BN_OK;
}

/* One curve of the ROC / PR / calibration plots. */
typedef struct {
    int run, split, cls;
    char label[200];
} fig_line;

/* Which curves: per split for one binary run, per run on the evaluated
 * split for several, one-vs-rest per class for more than two classes. */
static int fig_lines(const rep_ctx *c, fig_line *lines, int max, int all_splits) {
    int n = 0;
    for (int i = 0; i < c->nruns; i++) {
        const rep_run *rr = &c->run[i];
        char rname[120];
        rep_run_name(c, i, rname, sizeof rname);
        if (rr->r.k == 2) {
            for (int s = 0; s < rr->nsplits && n < max; s++) {
                if (!(all_splits && c->nruns == 1) && s != rr->eval)
                    continue;
                fig_line *l = &lines[n++];
                l->run = i, l->split = s, l->cls = 1;
                if (c->nruns == 1)
                    snprintf(l->label, sizeof l->label, "%s", rr->split[s].name);
                else
                    snprintf(l->label, sizeof l->label, "%s, %s", rname, rr->split[s].name);
            }
        } else {
            for (int k = 0; k < rr->r.k && n < max; k++) {
                fig_line *l = &lines[n++];
                l->run = i, l->split = rr->eval, l->cls = k;
                snprintf(l->label, sizeof l->label, "%s%s%.60s vs rest", c->nruns > 1 ? rname : "",
                         c->nruns > 1 ? ": " : "", rr->r.classes[k]);
            }
        }
    }
    return n;
}

/* The split and the (score, positive) columns of one line. */
static int fig_line_scores(const rep_ctx *c, const fig_line *l, const rep_split **sp,
                           double **score, unsigned char **pos, bn_error *err) {
    const rep_run *rr = &c->run[l->run];
    *sp = &rr->split[l->split];
    return fig_scores(rr, *sp, l->cls, score, pos, err);
}

static const char *fig_positive(const rep_ctx *c) {
    for (int i = 0; i < c->nruns; i++)
        if (c->run[i].r.k != 2 || strcmp(c->run[i].r.classes[1], c->run[0].r.classes[1]) != 0)
            return NULL;
    return c->run[0].r.classes[1];
}

int rep_curves_section(rep_ctx *c, FILE *f, bn_error *err) {
    fig_line lines[40];
    int nl = fig_lines(c, lines, 40, 1);
    const char *positive = fig_positive(c);
    fputs("<h2 id=\"curves\">ROC and precision-recall curves</h2>\n<p class=\"note\">", f);
    if (positive) {
        fputs("Positive class: <b>", f);
        cl_html_text(f, positive);
        fputs("</b> (the second class in sorted order, as scikit-learn). ", f);
    } else {
        fputs("One-vs-rest: each class against all others. ", f);
    }
    fputs("Points as <code>sklearn.metrics.roc_curve</code> and <code>precision_recall_curve"
          "</code> compute them from the probabilities of the run's head; AUC is the trapezoidal "
          "area, AP the average precision (<code>average_precision_score</code>).</p>\n",
          f);
    fig_open(f);
    cl_plot *roc =
        fig_unit_plot(c, "roc", "ROC curve", "False positive rate", "True positive rate (recall)",
                      CL_LEGEND_LOWER_RIGHT, "chance (AUC 0.5)");
    cl_plot *pr = fig_unit_plot(c, "pr", "Precision-recall curve", "Recall", "Precision",
                                CL_LEGEND_LOWER_LEFT, NULL);
    if (!roc || !pr) {
        cl_plot_free(roc);
        cl_plot_free(pr);
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    }
    int rc = BN_OK;
    for (int i = 0; i < nl && rc == BN_OK; i++) {
        const rep_split *sp;
        double *score;
        unsigned char *pos;
        if ((rc = fig_line_scores(c, &lines[i], &sp, &score, &pos, err)))
            break;
        bn_curve cv;
        double area;
        bn_error skip;
        char name[260];
        if (bn_curves_roc(score, pos, sp->f.n, &cv, &area, &skip) == BN_OK) {
            bn_curves_thin(&cv, 1e-3, CURVE_MAX_POINTS);
            snprintf(name, sizeof name, "%s, AUC %.4f", lines[i].label, area);
            cl_plot_series(roc, CL_LINE, name, i, i % 4, CL_MARK_NONE, cv.x, cv.y, cv.n);
            bn_curves_free(&cv);
        }
        if (bn_curves_pr(score, pos, sp->f.n, &cv, &area, &skip) == BN_OK) {
            bn_curves_thin(&cv, 1e-3, CURVE_MAX_POINTS);
            snprintf(name, sizeof name, "%s, AP %.4f", lines[i].label, area);
            cl_plot_series(pr, CL_STEP, name, i, i % 4, CL_MARK_NONE, cv.x, cv.y, cv.n);
            bn_curves_free(&cv);
        }
        free(score);
        free(pos);
    }
    cl_plot_write(roc, f);
    cl_plot_write(pr, f);
    cl_plot_free(roc);
    cl_plot_free(pr);
    fig_close(f);
    return rc;
}

/* ---- confusion matrices -------------------------------------------------------------- */

int rep_confusion_section(rep_ctx *c, FILE *f, bn_error *err) {
    fputs("<h2 id=\"confusion\">Confusion matrices</h2>\n<p class=\"note\">Rows: the true class; "
          "columns: the predicted class (the most probable). Each cell: the count and its "
          "percentage of the row (the recall of the row's class on the diagonal); the colour "
          "follows the percentage.</p>\n",
          f);
    fig_open(f);
    for (int i = 0; i < c->nruns; i++) {
        const rep_run *rr = &c->run[i];
        bn_metrics m;
        int detail, rc;
        if ((rc = bn_runs_get_metrics(c->s, &rr->r, rr->split[rr->eval].name, &m, &detail, err)))
            return rc;
        if (detail) {
            char id[32], title[200], rname[120];
            fig_id(c, id, sizeof id, "confusion");
            rep_run_name(c, i, rname, sizeof rname);
            snprintf(title, sizeof title, "%s, %s (%d %s)", rname, rr->split[rr->eval].name, m.n,
                     rr->split[rr->eval].training ? "training images" : "images");
            cl_plot_heatmap(f, id, title, rr->r.classes, rr->r.k, m.confusion);
        }
        bn_metrics_free(&m);
    }
    fig_close(f);
    return BN_OK;
}

/* ---- calibration ---------------------------------------------------------------------- */

int rep_calibration_section(rep_ctx *c, FILE *f, bn_error *err) {
    fig_line lines[40];
    int nl = fig_lines(c, lines, 40, 0);
    const char *positive = fig_positive(c);
    fputs("<h2 id=\"calibration\">Calibration</h2>\n<p class=\"note\">Reliability diagram "
          "(<code>sklearn.calibration.calibration_curve</code>, 10 uniform bins, empty bins left "
          "out): within each bin of predicted probability, the fraction of images that truly "
          "belong to the class. A calibrated model lies on the diagonal. Then the histograms of "
          "the predicted probabilities, per true class, on the evaluated split.</p>\n",
          f);
    fig_open(f);
    char id[32], xlabel[160];
    if (positive)
        snprintf(xlabel, sizeof xlabel, "Mean predicted probability of %.40s", positive);
    else
        snprintf(xlabel, sizeof xlabel, "Mean predicted probability of the class");
    cl_plot *p =
        fig_unit_plot(c, "calibration", "Reliability diagram", xlabel, "Fraction of positives",
                      CL_LEGEND_UPPER_LEFT, "perfectly calibrated");
    if (!p)
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    int rc = BN_OK;
    for (int i = 0; i < nl && rc == BN_OK; i++) {
        const rep_split *sp;
        double *score;
        unsigned char *pos;
        if ((rc = fig_line_scores(c, &lines[i], &sp, &score, &pos, err)))
            break;
        bn_curve cv;
        if ((rc = bn_curves_calibration(score, pos, sp->f.n, 10, &cv, NULL, err)) == BN_OK) {
            cl_plot_series(p, CL_LINE, lines[i].label, i, i % 4, CL_MARK_CIRCLE + i % 4, cv.x, cv.y,
                           cv.n);
            bn_curves_free(&cv);
        }
        free(score);
        free(pos);
    }
    cl_plot_write(p, f);
    cl_plot_free(p);
    /* histograms: one per run */
    enum { NB = 20 };
    double edges[NB + 1], counts[NB];
    for (int b = 0; b <= NB; b++)
        edges[b] = (double)b / NB;
    for (int i = 0; i < c->nruns && rc == BN_OK; i++) {
        const rep_run *rr = &c->run[i];
        const rep_split *sp = &rr->split[rr->eval];
        int k = rr->r.k, binary = k == 2;
        char rname[120], title[200];
        rep_run_name(c, i, rname, sizeof rname);
        fig_id(c, id, sizeof id, "histogram");
        snprintf(title, sizeof title, "Predicted probabilities, %s%s%s", c->nruns > 1 ? rname : "",
                 c->nruns > 1 ? ", " : "", sp->name);
        cl_plot *h = cl_plot_new(id, title);
        if (!h)
            return bn_fail(err, BN_ENOMEM, "report: out of memory");
        if (binary)
            snprintf(xlabel, sizeof xlabel, "Predicted probability of %.40s", rr->r.classes[1]);
        else
            snprintf(xlabel, sizeof xlabel, "Predicted probability of the true class");
        cl_plot_axis(h, 0, xlabel, 0, 1, 0);
        cl_plot_axis(h, 1, "Images", NAN, NAN, 0);
        cl_plot_legend(h, CL_LEGEND_UPPER_LEFT);
        for (int cls = 0; cls < k && cls < 12; cls++) {
            memset(counts, 0, sizeof counts);
            int total = 0;
            for (int r = 0; r < sp->f.n; r++) {
                if (sp->y[r] != cls)
                    continue;
                double v = sp->proba[(size_t)r * k + (binary ? 1 : cls)];
                int b = (int)(v * NB);
                counts[b < 0 ? 0 : b >= NB ? NB - 1 : b] += 1;
                total++;
            }
            char name[160];
            snprintf(name, sizeof name, "true %.60s (%d)", rr->r.classes[cls], total);
            cl_plot_series(h, CL_HIST, name, cls, 0, CL_MARK_NONE, edges, counts, NB);
        }
        cl_plot_write(h, f);
        cl_plot_free(h);
    }
    fig_close(f);
    return rc;
}

/* ---- the embedding map ------------------------------------------------------------------ */

int rep_embedding_section(rep_ctx *c, FILE *f, bn_error *err) {
    const rep_run *rr = &c->run[0];
    const rep_split *sp = &rr->split[rr->eval];
    int n = sp->f.n, dim = sp->f.dim, k = rr->r.k;
    if (n < 3)
        return BN_OK;
    /* fit on at most PCA_MAX_ROWS rows, evenly spread over the split */
    int nfit = n < PCA_MAX_ROWS ? n : PCA_MAX_ROWS;
    float *fit = malloc((size_t)nfit * dim * sizeof *fit);
    if (!fit)
        return bn_fail(err, BN_ENOMEM, "report: out of memory for the PCA rows");
    for (int i = 0; i < nfit; i++)
        memcpy(fit + (size_t)i * dim, sp->f.x + (size_t)((int64_t)i * n / nfit) * dim,
               (size_t)dim * sizeof *fit);
    bn_pca pca;
    int rc = bn_pca_fit(fit, nfit, dim, 2, &pca, err);
    free(fit);
    if (rc)
        return rc;
    int nshow = n < MAP_MAX_POINTS ? n : MAP_MAX_POINTS;
    double *px = malloc(4 * (size_t)nshow * sizeof *px);
    int *row = malloc((size_t)nshow * sizeof *row);
    if (!px || !row) {
        free(px);
        free(row);
        bn_pca_free(&pca);
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    }
    double *py = px + nshow, *sx = py + nshow, *sy = sx + nshow;
    int mistakes = 0;
    for (int i = 0; i < nshow; i++) {
        row[i] = (int)((int64_t)i * n / nshow);
        double z[2];
        bn_pca_project(&pca, sp->f.x + (size_t)row[i] * dim, z);
        px[i] = z[0], py[i] = z[1];
    }
    fprintf(f,
            "<h2 id=\"embedding\">Embedding map</h2>\n<p class=\"note\">The %s vectors of "
            "run %lld's feature set projected on their first two principal components (PCA "
            "by LAPACK's symmetric eigensolver, fitted on %d rows), coloured by true class; "
            "rings mark the images the head gets wrong. %d of %d images shown.</p>\n",
            sp->name, (long long)rr->r.id, nfit, nshow, n);
    fig_open(f);
    char id[32], xl[64], yl[64];
    fig_id(c, id, sizeof id, "embedding");
    cl_plot *p = cl_plot_new(id, "Embedding map (PCA)");
    if (!p) {
        free(px);
        free(row);
        bn_pca_free(&pca);
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    }
    snprintf(xl, sizeof xl, "PC1 (%.1f%% of variance)", 100 * pca.ratio[0]);
    snprintf(yl, sizeof yl, "PC2 (%.1f%% of variance)", 100 * pca.ratio[1]);
    cl_plot_axis(p, 0, xl, NAN, NAN, 0);
    cl_plot_axis(p, 1, yl, NAN, NAN, 0);
    cl_plot_legend(p, CL_LEGEND_UPPER_RIGHT);
    for (int cls = 0; cls < k && cls < 16; cls++) {
        int m = 0;
        for (int i = 0; i < nshow; i++)
            if (sp->y[row[i]] == cls)
                sx[m] = px[i], sy[m] = py[i], m++;
        char name[120];
        snprintf(name, sizeof name, "%.60s (%d)", rr->r.classes[cls], m);
        cl_plot_series(p, CL_POINTS, name, cls, 0, CL_MARK_CIRCLE + cls % 4, sx, sy, m);
    }
    for (int i = 0; i < nshow; i++)
        if (bn_metrics_argmax(sp->proba + (size_t)row[i] * k, k) != sp->y[row[i]])
            sx[mistakes] = px[i], sy[mistakes] = py[i], mistakes++;
    char name[64];
    snprintf(name, sizeof name, "mistake (%d)", mistakes);
    cl_plot_series(p, CL_POINTS, name, 6, 0, CL_MARK_RING, sx, sy, mistakes);
    cl_plot_write(p, f);
    cl_plot_free(p);
    fig_close(f);
    free(px);
    free(row);
    bn_pca_free(&pca);
    return BN_OK;
}

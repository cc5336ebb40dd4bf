/*
 * cmd_report.c: `bottleneck-classify report`: one self-contained HTML file
 * (inline SVG figures, JPEG thumbnails as data: URIs, no script, no network)
 * about one run, a sweep, or several runs side by side.
 *
 * This file chooses the runs (--run, --sweep: its final run, --runs: a
 * list; none: the latest sweep), loads each run's head and the vectors of
 * every split it has metrics for, recomputes the probabilities (report.h
 * says why), writes the header tables from the stored values (the numbers
 * `show` prints, formatted by the same cl_num) and calls the section
 * writers. The page goes to a temporary file renamed into place: a report
 * is complete or absent.
 */
#include "report.h"

#include "image.h"
#include "progress.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REP_MAX_RUNS 8

void rep_run_name(const rep_ctx *c, int i, char *out, size_t n) {
    const bn_run *r = &c->run[i].r;
    int same_fs = 1;
    for (int j = 0; j < c->nruns; j++)
        same_fs &= c->run[j].r.featureset == r->featureset;
    if (same_fs)
        snprintf(out, n, "run %lld", (long long)r->id);
    else
        snprintf(out, n, "run %lld (%.40s)", (long long)r->id, r->featureset_name);
}

/* ---- choosing and loading the runs ----------------------------------------------- */

static int64_t rep_query_id(bn_store *s, const char *sql, int64_t arg) {
    sqlite3_stmt *q;
    int64_t v = 0;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, arg);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

/* The run ids to report, from the options. */
static int rep_choose(rep_ctx *c, int64_t *ids, int *n, bn_error *err) {
    const cl_opts *o = c->o;
    *n = 0;
    if (o->runs_list) {
        const char *p = o->runs_list;
        while (*p) {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p || v < 1 || (*end && *end != ','))
                return bn_fail(err, BN_EINVAL, "--runs %s: expected run ids separated by commas",
                               o->runs_list);
            if (*n == REP_MAX_RUNS)
                return bn_fail(err, BN_EINVAL, "--runs %s: at most %d runs in one report",
                               o->runs_list, REP_MAX_RUNS);
            ids[(*n)++] = v;
            p = *end ? end + 1 : end;
        }
        return *n ? BN_OK : bn_fail(err, BN_EINVAL, "--runs: no run ids given");
    }
    if (o->run > 0) {
        ids[(*n)++] = o->run;
        int64_t sw =
            rep_query_id(c->s, "SELECT coalesce(sweep, 0) FROM runs WHERE id = ?1", o->run);
        /* its sweep's validation curve, when there was a choice to make */
        if (sw > 0 && rep_query_id(c->s, "SELECT candidates FROM sweeps WHERE id = ?1", sw) > 1)
            c->sweep = sw;
        return BN_OK;
    }
    int64_t sweep = o->sweep;
    if (sweep <= 0) {
        sweep = rep_query_id(c->s, "SELECT coalesce(max(id), 0) FROM sweeps WHERE ?1", 1);
        if (sweep <= 0)
            return bn_fail(err, BN_EINVAL,
                           "%s has no runs to report: bottleneck-classify train first",
                           bn_store_path(c->s));
    }
    int64_t run =
        rep_query_id(c->s, "SELECT coalesce(final, chosen, 0) FROM sweeps WHERE id = ?1", sweep);
    if (run < 0 || (run == 0 && !rep_query_id(c->s, "SELECT 1 FROM sweeps WHERE id = ?1", sweep)))
        return bn_fail(err, BN_EINVAL, "%s: no sweep %lld", bn_store_path(c->s), (long long)sweep);
    if (run == 0)
        return bn_fail(err, BN_EINVAL, "%s: sweep %lld has no chosen or final run",
                       bn_store_path(c->s), (long long)sweep);
    ids[(*n)++] = run;
    c->sweep = sweep;
    return BN_OK;
}

static void rep_split_free(rep_split *sp) {
    free(sp->name);
    bn_featureset_free(&sp->f);
    free(sp->y);
    free(sp->proba);
}

static void rep_run_free(rep_run *rr) {
    for (int i = 0; i < rr->nsplits; i++)
        rep_split_free(&rr->split[i]);
    free(rr->split);
    for (int i = 0; i < rr->nmetric_splits; i++)
        free(rr->metric_splits[i]);
    free(rr->metric_splits);
    bn_head_free(&rr->h);
    bn_run_free(&rr->r);
}

static int rep_in_list(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

static int rep_load_run(rep_ctx *c, int64_t id, rep_run *rr, bn_error *err) {
    memset(rr, 0, sizeof *rr);
    int rc;
    if ((rc = bn_runs_get(c->s, id, &rr->r, err)))
        return rc;
    if (bn_runs_get_head(c->s, id, &rr->h, err))
        return bn_fail(err, BN_EINVAL,
                       "run %lld has no trained head (a cross-validation candidate): report its "
                       "sweep with --sweep %lld, which shows the final run",
                       (long long)id, (long long)rr->r.sweep);
    if ((rc = bn_runs_get_splits(c->s, id, &rr->metric_splits, &rr->nmetric_splits, err)))
        return rc;
    rr->split = calloc((size_t)rr->nmetric_splits + 1, sizeof *rr->split);
    if (!rr->split)
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    for (int i = 0; i < rr->nmetric_splits; i++) {
        const char *name = rr->metric_splits[i];
        if (strcmp(name, "cv") == 0)
            continue;
        rep_split *sp = &rr->split[rr->nsplits];
        bn_rows rows; /* the run's dataset; 'holdout' and 'all' are rows, not splits */
        if ((rc = bn_runs_rows(c->s, &rr->r, name, &rows, err)) ||
            (rc = bn_featureset_load_rows(c->s, rr->r.featureset, &rows, &sp->f, err)))
            return rc;
        sp->name = strdup(name);
        sp->y = malloc((size_t)sp->f.n * sizeof *sp->y);
        sp->proba = malloc((size_t)sp->f.n * rr->r.k * sizeof *sp->proba);
        rr->nsplits++;
        if (!sp->name || !sp->y || !sp->proba)
            return bn_fail(err, BN_ENOMEM, "report: out of memory for split %s", name);
        if ((rc = bn_featureset_encode(&sp->f, rr->r.classes, rr->r.k, sp->y, name, err)) ||
            (rc = bn_head_predict(&rr->h, sp->f.x, sp->f.n, sp->proba, err)))
            return rc;
        sp->training = rep_in_list(rr->r.train_splits, name);
        if (!c->o->quiet)
            fprintf(stderr, "report: run %lld, %s: %d rows\n", (long long)id, name, sp->f.n);
    }
    if (rr->nsplits == 0)
        return bn_fail(err, BN_EINVAL, "run %lld has no split with stored metrics to report",
                       (long long)id);
    /* The evaluated split: --split, else the first held-out one of
     * validation and test, else the last split. */
    rr->eval = -1;
    for (int i = 0; i < rr->nsplits; i++) {
        if (c->o->split) {
            if (strcmp(rr->split[i].name, c->o->split) == 0)
                rr->eval = i;
        } else if (rr->eval < 0 && !rr->split[i].training &&
                   (strcmp(rr->split[i].name, "validation") == 0 ||
                    strcmp(rr->split[i].name, "test") == 0)) {
            rr->eval = i;
        }
    }
    if (rr->eval < 0) {
        if (c->o->split)
            return bn_fail(err, BN_EINVAL, "run %lld has no metrics on split '%s'", (long long)id,
                           c->o->split);
        rr->eval = rr->nsplits - 1;
    }
    return BN_OK;
}

/* ---- the header tables -------------------------------------------------------------- */

static void rep_td_num(FILE *f, const char *attrs, double v) {
    char b[32];
    fprintf(f, "<td class=\"num\"%s>%s</td>", attrs, cl_num(b, sizeof b, v));
}

/* Every column of the run's featuresets row, whatever columns it has. */
static void rep_featureset_table(rep_ctx *c, FILE *f, int64_t fs) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(c->s), "SELECT * FROM featuresets WHERE id = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(q, 1, fs);
    if (sqlite3_step(q) == SQLITE_ROW) {
        fputs("<table class=\"kv\"><caption>feature set</caption>\n", f);
        for (int i = 0; i < sqlite3_column_count(q); i++) {
            if (sqlite3_column_type(q, i) == SQLITE_NULL)
                continue;
            fputs("<tr><th>", f);
            cl_html_text(f, sqlite3_column_name(q, i));
            fputs("</th><td>", f);
            cl_html_text(f, (const char *)sqlite3_column_text(q, i));
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    sqlite3_finalize(q);
}

/* Images with a vector in the feature set, per split and class. */
static void rep_counts_table(rep_ctx *c, FILE *f, const rep_run *rr) {
    const bn_run *r = &rr->r;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(c->s),
                           "SELECT coalesce(i.split, ''), i.label, count(*) FROM images i"
                           " JOIN vectors v ON v.sha256 = i.sha256 AND v.featureset = ?1"
                           " WHERE ?2 = 0 OR i.dataset = ?2 GROUP BY 1, 2 ORDER BY 1, 2",
                           -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(q, 1, r->featureset);
    sqlite3_bind_int64(q, 2, r->dataset);
    fputs("<table class=\"grid\"><caption>images per split and class</caption>\n<tr><th>split</th>",
          f);
    for (int k = 0; k < r->k; k++) {
        fputs("<th>", f);
        cl_html_text(f, r->classes[k]);
        fputs("</th>", f);
    }
    fputs("<th>other</th><th>total</th></tr>\n", f);
    char split[256] = "";
    int64_t *cnt = calloc((size_t)r->k + 1, sizeof *cnt);
    int have = 0;
    for (int step;;) {
        step = sqlite3_step(q);
        const char *sp = step == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
        if (have && (!sp || strcmp(sp, split) != 0)) {
            int64_t total = 0;
            fputs("<tr><th>", f);
            cl_html_text(f, split[0] ? split : "(none)");
            fputs("</th>", f);
            for (int k = 0; k <= r->k; k++) {
                fprintf(f, "<td class=\"num\" data-split=\"");
                cl_html_text(f, split);
                fputs("\" data-class=\"", f);
                cl_html_text(f, k < r->k ? r->classes[k] : "");
                fprintf(f, "\">%lld</td>", (long long)cnt[k]);
                total += cnt[k];
            }
            fprintf(f, "<td class=\"num\">%lld</td></tr>\n", (long long)total);
            memset(cnt, 0, ((size_t)r->k + 1) * sizeof *cnt);
            have = 0;
        }
        if (!sp || !cnt)
            break;
        snprintf(split, sizeof split, "%s", sp);
        const char *label = (const char *)sqlite3_column_text(q, 1);
        int k = 0;
        while (k < r->k && strcmp(r->classes[k], label) != 0)
            k++;
        cnt[k] += sqlite3_column_int64(q, 2);
        have = 1;
    }
    free(cnt);
    sqlite3_finalize(q);
    fputs("</table>\n", f);
}

static void rep_kv(FILE *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rep_kv(FILE *f, const char *key, const char *fmt, ...) {
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    fprintf(f, "<tr><th>%s</th><td>", key);
    cl_html_text(f, v);
    fputs("</td></tr>\n", f);
}

static void rep_run_table(FILE *f, const rep_run *rr) {
    const bn_run *r = &rr->r;
    const bn_train_opts *o = &r->opts;
    int mb = o->solver == BN_SOLVER_SGD || o->solver == BN_SOLVER_ADAM;
    fputs("<table class=\"kv\"><caption>training</caption>\n", f);
    rep_kv(f, "role", "%s", r->role);
    if (r->sweep)
        rep_kv(f, "sweep", "%lld%s", (long long)r->sweep, r->chosen ? " (chosen)" : "");
    rep_kv(f, "classes", "%d", r->k);
    rep_kv(f, "trained on", "%s (%d rows)%s", r->train_splits, r->n_train,
           r->folds ? ", scored by cross-validation" : "");
    rep_kv(f, "solver", "%s", bn_solver_name(o->solver));
    rep_kv(f, "C", "%g (L2 %g)", o->C, 1 / o->C);
    rep_kv(f, "class_weight", "%s", o->balanced ? "balanced" : "none");
    rep_kv(f, "standardize", "%s", o->standardize ? "yes" : "no");
    if (mb) {
        rep_kv(f, "epochs", "%d", o->epochs);
        rep_kv(f, "lr", "%g", o->lr);
        rep_kv(f, "batch size", "%d", o->batch_size);
        rep_kv(f, "patience", "%d", o->patience);
    } else {
        rep_kv(f, "max_iter", "%d", o->max_iter);
        rep_kv(f, "tol", "%g", o->tol);
    }
    rep_kv(f, "seed", "%llu", (unsigned long long)o->seed);
    rep_kv(f, mb ? "epochs run" : "iterations", "%d, %s", r->info.iterations,
           mb ? (r->info.converged ? "stopped early" : "all epochs")
              : (r->info.converged ? "converged" : "NOT converged"));
    if (isfinite(r->info.objective))
        rep_kv(f, "objective", "%.9g", r->info.objective);
    rep_kv(f, "training time", "%.2f s", r->info.seconds);
    rep_kv(f, "created", "%s", r->created_at);
    if (r->note)
        rep_kv(f, "note", "%s", r->note);
    fputs("</table>\n", f);
}

static const char *const rep_metric_names[] = {"accuracy",        "log_loss",     "roc_auc",
                                               "precision_macro", "recall_macro", "f1_macro"};

/* The stored metrics of every split: the values `show` prints. */
static int rep_metrics_table(rep_ctx *c, FILE *f, const rep_run *rr, bn_error *err) {
    const bn_run *r = &rr->r;
    fputs("<table class=\"grid metrics\"><caption>metrics (stored at training; as "
          "<code>show</code> prints them)</caption>\n<tr><th>split</th>",
          f);
    for (int i = 0; i < 6; i++)
        fprintf(f, "<th>%s</th>", rep_metric_names[i]);
    fputs("<th>rows</th></tr>\n", f);
    int eval_detail = 0;
    bn_metrics eval;
    memset(&eval, 0, sizeof eval);
    for (int i = 0; i < rr->nmetric_splits; i++) {
        bn_metrics m;
        int detail, rc;
        if ((rc = bn_runs_get_metrics(c->s, r, rr->metric_splits[i], &m, &detail, err)))
            return rc;
        fputs("<tr><th>", f);
        cl_html_text(f, rr->metric_splits[i]);
        fputs("</th>", f);
        for (int j = 0; j < 6; j++) {
            char attrs[600];
            snprintf(attrs, sizeof attrs, " data-run=\"%lld\" data-split=\"%s\" data-metric=\"%s\"",
                     (long long)r->id, rr->metric_splits[i], rep_metric_names[j]);
            rep_td_num(f, attrs, bn_metrics_get(&m, rep_metric_names[j]));
        }
        fprintf(f,
                "<td class=\"num\" data-run=\"%lld\" data-split=\"%s\" data-metric=\"n\">%d</td>"
                "</tr>\n",
                (long long)r->id, rr->metric_splits[i], m.n);
        if (detail && strcmp(rr->metric_splits[i], rr->split[rr->eval].name) == 0) {
            eval = m;
            eval_detail = 1;
        } else {
            bn_metrics_free(&m);
        }
    }
    fputs("</table>\n", f);
    if (eval_detail) {
        fputs("<table class=\"grid\"><caption>per class on ", f);
        cl_html_text(f, rr->split[rr->eval].name);
        fputs("</caption>\n<tr><th>class</th><th>precision</th><th>recall</th><th>f1</th>"
              "<th>support</th></tr>\n",
              f);
        for (int k = 0; k < r->k; k++) {
            fputs("<tr><th>", f);
            cl_html_text(f, r->classes[k]);
            fputs("</th>", f);
            const char *names[3] = {"precision", "recall", "f1"};
            const double v[3] = {eval.precision[k], eval.recall[k], eval.f1[k]};
            for (int j = 0; j < 3; j++) {
                char attrs[700];
                snprintf(
                    attrs, sizeof attrs,
                    " data-run=\"%lld\" data-split=\"%s\" data-metric=\"%s\" data-class=\"%d\"",
                    (long long)r->id, rr->split[rr->eval].name, names[j], k);
                rep_td_num(f, attrs, v[j]);
            }
            fprintf(f, "<td class=\"num\">%lld</td></tr>\n", (long long)eval.support[k]);
        }
        fputs("</table>\n", f);
        bn_metrics_free(&eval);
    }
    return BN_OK;
}

/* ---- the page ------------------------------------------------------------------------ */

static const char rep_css[] =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;color:#111;margin:24px auto;"
    "max-width:1180px;padding:0 16px;line-height:1.4}\n"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;border-bottom:1px solid #ccc;"
    "padding-bottom:3px;margin-top:32px}h3{font-size:16px;margin:18px 0 6px}\n"
    "p.meta{color:#444;margin:0 0 12px}p.note{color:#444;font-size:14px;max-width:900px}\n"
    ".tables{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}\n"
    "table{border-collapse:collapse;font-size:13px}caption{text-align:left;font-weight:bold;"
    "padding:2px 0}\n"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3;font-weight:600}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums}\n"
    ".figures{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}\n"
    "svg.plot{border:1px solid #ddd;background:#fff}\n"
    ".gallery{display:flex;flex-wrap:wrap;gap:12px}\n"
    ".card{border:1px solid #ccc;padding:8px;width:356px;font-size:12px;break-inside:avoid}\n"
    ".pair{display:flex;gap:8px}.pair figure{margin:0;width:170px}\n"
    ".pair img,.missing{width:170px;height:170px;object-fit:contain;background:#eee;"
    "display:block}\n"
    ".missing{display:flex;align-items:center;justify-content:center;text-align:center;"
    "color:#555;font-size:12px;border:1px dashed #999;box-sizing:border-box;padding:6px;"
    "word-break:break-all}\n"
    "figcaption{word-break:break-all;margin-top:3px}.wrong{color:#b00020;font-weight:bold}\n"
    "@media "
    "print{body{margin:0;max-width:none}h2{break-after:avoid}svg.plot{break-inside:avoid}}\n";

static int rep_write_page(rep_ctx *c, FILE *f, bn_error *err) {
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    char title[256];
    if (c->nruns > 1) {
        size_t len = (size_t)snprintf(title, sizeof title, "bottleneck report: runs");
        for (int i = 0; i < c->nruns && len < sizeof title; i++)
            len += (size_t)snprintf(title + len, sizeof title - len, "%s %lld", i ? "," : "",
                                    (long long)c->run[i].r.id);
    } else if (c->sweep) {
        snprintf(title, sizeof title, "bottleneck report: sweep %lld, run %lld",
                 (long long)c->sweep, (long long)c->run[0].r.id);
    } else {
        snprintf(title, sizeof title, "bottleneck report: run %lld", (long long)c->run[0].r.id);
    }
    cl_html_text(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", rep_css);
    cl_html_text(f, title);
    fputs("</h1>\n<p class=\"meta\">database <code>", f);
    cl_html_text(f, bn_store_path(c->s));
    fprintf(f, "</code>, written %s by bottleneck-classify " BN_VERSION "</p>\n", when);
    for (int i = 0; i < c->nruns; i++) {
        rep_run *rr = &c->run[i];
        fprintf(f, "<h2 id=\"run-%lld\">Run %lld: ", (long long)rr->r.id, (long long)rr->r.id);
        cl_html_text(f, rr->r.featureset_name);
        fputs("</h2>\n<div class=\"tables\">\n", f);
        rep_featureset_table(c, f, rr->r.featureset);
        rep_run_table(f, rr);
        rep_counts_table(c, f, rr);
        fputs("</div>\n<div class=\"tables\">\n", f);
        int rc = rep_metrics_table(c, f, rr, err);
        if (rc)
            return rc;
        fputs("</div>\n", f);
    }
    int rc;
    if ((c->sweep && (rc = rep_sweep_section(c, f, err))) || (rc = rep_curves_section(c, f, err)) ||
        (rc = rep_confusion_section(c, f, err)) || (rc = rep_calibration_section(c, f, err)) ||
        (rc = rep_embedding_section(c, f, err)) || (rc = rep_gallery_section(c, f, err)))
        return rc;
    fputs("</body>\n</html>\n", f);
    return BN_OK;
}

/* Write the page to a temporary file beside out and rename it into place. */
static int rep_write_file(rep_ctx *c, const char *out, long *bytes, bn_error *err) {
    size_t n = strlen(out) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    snprintf(tmp, n, "%s.tmp.XXXXXX", out);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return bn_fail(err, BN_EIO, "%s: cannot create the report: %s", out, strerror(e));
    }
    /* mkstemp makes the file 0600; a report is for sharing: 0666 less the umask */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return bn_fail(err, BN_ENOMEM, "report: out of memory");
    }
    int rc = rep_write_page(c, f, err);
    if (rc == BN_OK) {
        *bytes = ftell(f);
        if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
            rc = bn_fail(err, BN_EIO, "%s: writing the report failed: %s", out, strerror(errno));
    }
    if (fclose(f) != 0 && rc == BN_OK)
        rc = bn_fail(err, BN_EIO, "%s: writing the report failed: %s", out, strerror(errno));
    if (rc == BN_OK && rename(tmp, out) != 0)
        rc = bn_fail(err, BN_EIO, "%s: cannot rename the report into place: %s", out,
                     strerror(errno));
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

int cl_report(const cl_opts *o) {
    rep_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.gallery = o->gallery;
    if (cl_open(o, 1, &c.s))
        return CL_EXIT_FATAL;
    bn_error err;
    bn_error_clear(&err);
    int64_t ids[REP_MAX_RUNS];
    int n = 0, rc = BN_OK;
    struct stat st;
    if (o->images && stat(o->images, &st) != 0)
        rc = bn_fail(&err, BN_EIO, "--images %s: %s", o->images, strerror(errno));
    else if (o->images && !S_ISDIR(st.st_mode))
        rc = bn_fail(&err, BN_EINVAL, "--images %s: not a folder (the dataset folder)", o->images);
    if (rc == BN_OK)
        rc = rep_choose(&c, ids, &n, &err);
    if (rc == BN_OK) {
        c.run = calloc((size_t)n, sizeof *c.run);
        if (!c.run)
            rc = bn_fail(&err, BN_ENOMEM, "report: out of memory");
    }
    for (int i = 0; i < n && rc == BN_OK; i++) {
        rc = rep_load_run(&c, ids[i], &c.run[i], &err);
        c.nruns++;
    }
    int vips = 0;
    if (rc == BN_OK && (rc = bn_image_init(o->argv0, &err)) == BN_OK)
        vips = 1;
    char outbuf[128];
    const char *out = o->output;
    if (!out) {
        if (n > 1)
            snprintf(outbuf, sizeof outbuf, "report-runs-%lld-%lld.html", (long long)ids[0],
                     (long long)ids[n - 1]);
        else if (c.sweep && !o->run)
            snprintf(outbuf, sizeof outbuf, "report-sweep-%lld.html", (long long)c.sweep);
        else
            snprintf(outbuf, sizeof outbuf, "report-run-%lld.html", (long long)ids[0]);
        out = outbuf;
    }
    long bytes = 0;
    double t0 = bn_progress_now();
    if (rc == BN_OK)
        rc = bn_store_check_output(c.s, out, "report -o", &err);
    if (rc == BN_OK)
        rc = rep_write_file(&c, out, &bytes, &err);
    if (rc == BN_OK) {
        if (o->json) {
            printf("{\"report\":");
            bn_json_string(stdout, out);
            printf(",\"bytes\":%ld,\"runs\":[", bytes);
            for (int i = 0; i < c.nruns; i++)
                printf("%s%lld", i ? "," : "", (long long)c.run[i].r.id);
            printf("],\"sweep\":%lld,\"figures\":%d,\"seconds\":%.2f}\n", (long long)c.sweep,
                   c.plots, bn_progress_now() - t0);
        } else {
            printf("%s\n", out);
            /* Stored paths are relative to the folder extract was given:
             * another folder shows placeholders, which deserve a word. */
            if (!o->quiet && c.thumbs_missing)
                fprintf(stderr,
                        "report: %d of the %d thumbnails not shown (first: %s); --images is the "
                        "folder bottleneck-extract read\n",
                        c.thumbs_missing, c.thumbs, c.thumb_missing);
            if (!o->quiet)
                fprintf(stderr, "report: %d figures, %.1f MB, %.1f s\n", c.plots, bytes / 1e6,
                        bn_progress_now() - t0);
        }
    }
    for (int i = 0; i < c.nruns; i++)
        rep_run_free(&c.run[i]);
    free(c.run);
    bn_store_close(c.s);
    if (vips)
        bn_image_shutdown();
    return rc ? cl_fail(err.msg) : 0;
}

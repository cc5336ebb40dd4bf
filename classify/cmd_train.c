/*
 * cmd_train.c: `bottleneck-classify train`, the program part: the
 * hyperparameter lists parsed into a grid of candidates, the job run by
 * common/trainjob.c (data, grid, selection, refit, storage), and what it did
 * printed as progress on stderr and as tables or JSON on stdout.
 */
#include "classify.h"

#include "progress.h"
#include "trainjob.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CL_MAX_CANDIDATES 10000

typedef struct {
    double *v;
    int n;
} dlist;

/* Reads one item of a comma-separated list into *v; prints the problem and
 * returns CL_EXIT_USAGE when tok is not a valid item. */
typedef int (*item_fn)(const char *tok, const char *flag, const void *arg, double *v);

/* A comma-separated list -> out (n >= 1 values), each item read by item().
 * On failure out is empty (nothing to free) and the exit code is returned. */
static int parse_items(const char *text, const char *flag, item_fn item, const void *arg,
                       dlist *out) {
    out->v = NULL;
    out->n = 0;
    char *copy = strdup(text), *next = copy;
    if (!copy)
        return cl_fail("out of memory");
    int rc = 0;
    /* Every item counts: "1,,2" or "1," is a typo, not the list 1,2. */
    while (next) {
        char *tok = strsep(&next, ",");
        if (!*tok) {
            cl_failf("%s %s: an empty item in the list", flag, text);
            rc = CL_EXIT_USAGE;
            break;
        }
        double v;
        rc = item(tok, flag, arg, &v);
        if (rc)
            break;
        double *p = realloc(out->v, (size_t)(out->n + 1) * sizeof *p);
        if (!p) {
            rc = cl_fail("out of memory");
            break;
        }
        out->v = p;
        out->v[out->n++] = v;
    }
    free(copy);
    if (!rc && out->n == 0)
        rc = cl_failf("%s: empty list", flag);
    if (rc) {
        free(out->v);
        out->v = NULL;
        out->n = 0;
    }
    return rc;
}

/* A positive number; a positive integer up to 1e9 when *(int *)integer. */
static int number_item(const char *tok, const char *flag, const void *integer, double *v) {
    int whole = *(const int *)integer;
    char *end;
    *v = strtod(tok, &end);
    if (!*tok || *end || !(*v > 0) || !isfinite(*v) || (whole && (*v != floor(*v) || *v > 1e9))) {
        cl_failf("%s: '%s' is not a %s", flag, tok, whole ? "positive integer" : "positive number");
        return CL_EXIT_USAGE;
    }
    return 0;
}

/* words[0] -> 0, words[1] -> 1; "no"/"yes" also take false/0 and true/1. */
static int word_item(const char *tok, const char *flag, const void *words, double *v) {
    const char *no = ((const char *const *)words)[0], *yes = ((const char *const *)words)[1];
    if (strcmp(tok, no) == 0 ||
        (strcmp(no, "no") == 0 && (!strcmp(tok, "false") || !strcmp(tok, "0"))))
        *v = 0;
    else if (strcmp(tok, yes) == 0 ||
             (strcmp(yes, "yes") == 0 && (!strcmp(tok, "true") || !strcmp(tok, "1"))))
        *v = 1;
    else {
        cl_failf("%s: '%s': expected %s or %s", flag, tok, no, yes);
        return CL_EXIT_USAGE;
    }
    return 0;
}

/* The option not given: its one default value (bn_train_opts_default's). */
static int default_item(double v, dlist *out) {
    out->n = 0;
    if (!(out->v = malloc(sizeof *out->v)))
        return cl_fail("out of memory");
    out->v[out->n++] = v;
    return 0;
}

/* "0.01,0.1,1" -> values; each must satisfy positive (or >= 1 when integer).
 * text NULL: dflt alone. */
static int parse_list(const char *text, double dflt, const char *flag, int integer, dlist *out) {
    return text ? parse_items(text, flag, number_item, &integer, out) : default_item(dflt, out);
}

/* "none,balanced" or "yes,no" -> 0/1 values; text NULL: dflt alone. */
static int parse_words(const char *text, int dflt, const char *flag, const char *no,
                       const char *yes, dlist *out) {
    const char *const words[2] = {no, yes};
    return text ? parse_items(text, flag, word_item, words, out) : default_item(dflt, out);
}

static void json_candidate(FILE *f, const bn_trainjob *j, const bn_trainjob_candidate *c) {
    fprintf(f, "{\"run\":%lld,\"solver\":\"%s\",\"C\":", (long long)c->run,
            bn_solver_name(c->opts.solver));
    bn_json_number(f, c->opts.C);
    fprintf(f, ",\"class_weight\":\"%s\",\"standardize\":%s",
            c->opts.balanced ? "balanced" : "none", c->opts.standardize ? "true" : "false");
    if (c->opts.solver == BN_SOLVER_SGD || c->opts.solver == BN_SOLVER_ADAM) {
        fputs(",\"lr\":", f);
        bn_json_number(f, c->opts.lr);
        fprintf(f, ",\"batch_size\":%d,\"best_epoch\":%d", c->opts.batch_size, c->info.best_epoch);
    }
    fprintf(f, ",\"iterations\":%d,\"converged\":%s,\"objective\":", c->info.iterations,
            c->info.converged ? "true" : "false");
    bn_json_number(f, c->info.objective);
    fputs(",\"seconds\":", f);
    bn_json_number(f, c->info.seconds);
    fputs(",\"metrics\":{", f);
    if (j->folds) {
        fprintf(f, "\"cv\":{\"n\":%d", c->cv_n);
        for (int i = 0; i < BN_NMETRICS; i++) {
            fprintf(f, ",\"%s\":", bn_metrics_defs[i].name);
            bn_json_number(f, c->cv[i]);
        }
        fputc('}', f);
    } else {
        fprintf(f, "\"%s\":", j->train);
        cl_json_metrics(f, &c->train_m, j->classes, 1);
        if (c->has_valid) {
            fputc(',', f);
            bn_json_string(f, j->valid);
            fputc(':', f);
            cl_json_metrics(f, &c->valid_m, j->classes, 1);
        }
    }
    fputs("}}", f);
}

/* ---- progress on stderr (the job's events) ---- */

static void on_loaded(void *ctx, const bn_trainjob *j, double seconds) {
    (void)ctx;
    fprintf(stderr, "feature set '%s' (id %lld, dim %d), dataset '%s': %s %d rows", j->fsname,
            (long long)j->fs, j->dim, j->ds.name, j->train, j->tr.n);
    if (j->valid)
        fprintf(stderr, ", %s %d", j->valid, j->va.n);
    if (j->test)
        fprintf(stderr, ", %s %d", j->test, j->te.n);
    fprintf(stderr, "; %d classes (%s%s%s); loaded in %.1f s\n", j->k, j->classes[0],
            j->k > 2 ? ", ..., " : ", ", j->classes[j->k - 1], seconds);
}

static void on_swept(void *ctx, const bn_trainjob *j, int n, int f, const bn_sweep_stats *st,
                     double seconds) {
    (void)ctx;
    char fold[32] = "";
    if (f >= 0)
        snprintf(fold, sizeof fold, " (fold %d of %d)", f + 1, j->folds);
    fprintf(stderr,
            "sweep of %d candidates%s: %d passes over the rows (%d in double) on %s%d "
            "columns, %.2f s (setup %.2f s)\n",
            n, fold, st->rounds, st->double_rounds, st->row_space ? "a row space of " : "",
            st->rank, seconds, st->setup_seconds);
}

static int minibatch(const bn_train_opts *t) {
    return t->solver == BN_SOLVER_SGD || t->solver == BN_SOLVER_ADAM;
}

static void on_scored(void *ctx, const bn_trainjob *j, int i) {
    (void)ctx;
    const bn_trainjob_candidate *c = &j->cand[i];
    char desc[160], a[32], b[32];
    cl_describe_opts(desc, sizeof desc, &c->opts);
    fprintf(stderr, "[%d/%d] %s: %s %s %s, log loss %s (%d %s, %.2f s)%s\n", i + 1, j->ncand, desc,
            j->select_on, j->o->select, cl_num(a, sizeof a, c->score),
            cl_num(b, sizeof b, c->score_ll), c->info.iterations,
            minibatch(&c->opts) ? "epochs" : "iterations", c->info.seconds,
            !minibatch(&c->opts) && !c->info.converged ? " (not converged: raise --max-iter)" : "");
}

static void on_refitted(void *ctx, const bn_trainjob *j) {
    (void)ctx;
    fprintf(stderr, "refit on %s: %d %s, %.2f s\n", j->refit_splits, j->refit.info.iterations,
            minibatch(&j->refit.opts) ? "epochs" : "iterations", j->refit.info.seconds);
}

/* ---- the result on stdout ---- */

static void json_string_or_null(FILE *f, const char *s) {
    if (s)
        bn_json_string(f, s);
    else
        fputs("null", f);
}

static void print_json(const bn_trainjob *j) {
    FILE *f = stdout;
    fprintf(f, "{\"sweep\":%lld,\"featureset\":", (long long)j->sweep);
    bn_json_string(f, j->fsname);
    fprintf(f, ",\"featureset_id\":%lld,\"dataset\":", (long long)j->fs);
    bn_json_string(f, j->ds.name);
    fprintf(f, ",\"dim\":%d,\"holdout\":", j->dim);
    bn_json_number(f, j->o->holdout > 0 ? j->o->holdout : NAN);
    fputs(",\"classes\":[", f);
    for (int c = 0; c < j->k; c++) {
        if (c)
            fputc(',', f);
        bn_json_string(f, j->classes[c]);
    }
    fputs("],\"train\":", f);
    bn_json_string(f, j->train);
    fputs(",\"valid\":", f);
    json_string_or_null(f, j->valid);
    fputs(",\"test\":", f);
    json_string_or_null(f, j->test);
    fprintf(f, ",\"folds\":%d,\"select_by\":\"%s\",\"select_on\":", j->folds, j->o->select);
    bn_json_string(f, j->select_on);
    fprintf(f, ",\"seconds\":%.3f,\"candidates\":[", j->seconds);
    for (int i = 0; i < j->ncand; i++) {
        if (i)
            fputc(',', f);
        json_candidate(f, j, &j->cand[i]);
    }
    fprintf(f, "],\"chosen\":%lld,\"final\":%lld,\"final_trained_on\":",
            (long long)j->cand[j->best].run, (long long)j->final->run);
    bn_json_string(f, j->do_refit ? j->refit_splits : j->train);
    fputs(",\"final_metrics\":{", f);
    int comma = 0;
    if (j->final->has_valid) {
        bn_json_string(f, j->valid);
        fputc(':', f);
        cl_json_metrics(f, &j->final->valid_m, j->classes, 1);
        comma = 1;
    }
    if (j->test) {
        if (comma)
            fputc(',', f);
        bn_json_string(f, j->test);
        fputc(':', f);
        cl_json_metrics(f, &j->test_m, j->classes, 1);
    }
    fputs("}}\n", f);
}

/* Candidate c's metric m (bn_metrics_defs) on the split it was chosen on. */
static double shown(const bn_trainjob *j, const bn_trainjob_candidate *c, int m) {
    if (j->folds)
        return c->cv[m];
    return *bn_metrics_at((bn_metrics *)(c->has_valid ? &c->valid_m : &c->train_m), m);
}

static void print_table(const bn_trainjob *j) {
    char a[32], b[32], cc[32], desc[160];
    printf("sweep %lld: %d candidate%s on feature set '%s', chosen by %s on %s\n",
           (long long)j->sweep, j->ncand, j->ncand == 1 ? "" : "s", j->fsname, j->o->select,
           j->select_on);
    printf("  %5s  %-40s  %9s  %9s  %9s  %6s  %8s\n", "run", "hyperparameters", "accuracy",
           "log_loss", "roc_auc", "iters", "seconds");
    for (int i = 0; i < j->ncand; i++) {
        const bn_trainjob_candidate *c = &j->cand[i];
        cl_describe_opts(desc, sizeof desc, &c->opts);
        printf("%c %5lld  %-40.40s  %9s  %9s  %9s  %6d  %8.2f\n", i == j->best ? '*' : ' ',
               (long long)c->run, desc, cl_num(a, sizeof a, shown(j, c, BN_METRIC_ACCURACY)),
               cl_num(b, sizeof b, shown(j, c, BN_METRIC_LOG_LOSS)),
               cl_num(cc, sizeof cc, shown(j, c, BN_METRIC_ROC_AUC)), c->info.iterations,
               c->info.seconds);
    }
    printf("  (metrics on %s; * chosen)\n", j->select_on);
    cl_describe_opts(desc, sizeof desc, &j->final->opts);
    printf("final: run %lld (%s), trained on %s\n", (long long)j->final->run, desc,
           j->do_refit ? j->refit_splits : j->train);
    char title[300];
    if (j->final->has_valid) {
        snprintf(title, sizeof title, "%s%s", j->valid,
                 j->do_refit && j->o->refit ? " (part of the training data)" : "");
        cl_print_metrics(stdout, title, &j->final->valid_m, j->classes, 1);
    }
    if (j->test)
        cl_print_metrics(stdout, j->test, &j->test_m, j->classes, 1);
    if (!j->final->has_valid && !j->test) {
        snprintf(title, sizeof title, "%s (training rows)", j->train);
        cl_print_metrics(stdout, title, &j->final->train_m, j->classes, 1);
    }
    printf("%.1f s in all\n", j->seconds);
}

/* ---- the grid ---- */

/* One candidate per combination of the hyperparameter lists into *grid
 * (*n of them); 0, or the problem printed and the exit code returned. */
static int make_grid(const cl_opts *o, bn_train_opts **grid, int *n) {
    *grid = NULL;
    *n = 0;
    bn_solver solver;
    if (bn_solver_parse(o->solver, &solver)) {
        cl_failf("--solver %s: expected lbfgs, newton, sgd or adam", o->solver);
        return CL_EXIT_USAGE;
    }
    /* An option the solver never reads would be stored with the runs as if
     * it had shaped them. */
    int minibatch = solver == BN_SOLVER_SGD || solver == BN_SOLVER_ADAM;
    if (!minibatch && (o->lr || o->batch_size || o->sgd_only)) {
        cl_failf("%s applies to --solver sgd or adam, not %s",
                 o->lr           ? "--lr"
                 : o->batch_size ? "--batch-size"
                                 : o->sgd_only,
                 o->solver);
        return CL_EXIT_USAGE;
    }
    if (minibatch && o->lbfgs_only) {
        cl_failf("%s applies to --solver lbfgs or newton, not %s (%s stops on --epochs and "
                 "--patience)",
                 o->lbfgs_only, o->solver, o->solver);
        return CL_EXIT_USAGE;
    }
    dlist Cs = {0}, cws = {0}, stds = {0}, lrs = {0}, bss = {0};
    int rc = 0;
    bn_train_opts dflt;
    bn_train_opts_default(&dflt);
    if (parse_list(o->l2 ? o->l2 : o->C, dflt.C, o->l2 ? "--l2" : "--C", 0, &Cs) ||
        parse_words(o->class_weight, dflt.balanced, "--class-weight", "none", "balanced", &cws) ||
        parse_words(o->standardize, dflt.standardize, "--standardize", "no", "yes", &stds) ||
        parse_list(o->lr, dflt.lr, "--lr", 0, &lrs) ||
        parse_list(o->batch_size, dflt.batch_size, "--batch-size", 1, &bss))
        rc = CL_EXIT_USAGE;
    long total = (long)Cs.n * cws.n * stds.n * lrs.n * bss.n;
    if (!rc && total > CL_MAX_CANDIDATES)
        rc = cl_failf("%ld combinations: at most %d per sweep", total, CL_MAX_CANDIDATES);
    if (!rc && !(*grid = calloc((size_t)total, sizeof **grid)))
        rc = cl_fail("out of memory");
    for (int a = 0; !rc && a < Cs.n; a++)
        for (int b = 0; b < cws.n; b++)
            for (int c = 0; c < stds.n; c++)
                for (int d = 0; d < lrs.n; d++)
                    for (int e = 0; e < bss.n; e++) {
                        bn_train_opts *t = &(*grid)[(*n)++];
                        bn_train_opts_default(t);
                        t->solver = solver;
                        t->C = o->l2 ? 1.0 / Cs.v[a] : Cs.v[a];
                        t->balanced = (int)cws.v[b];
                        t->standardize = (int)stds.v[c];
                        t->lr = lrs.v[d];
                        t->batch_size = (int)bss.v[e];
                        t->max_iter = o->max_iter;
                        t->tol = o->tol;
                        t->epochs = o->epochs;
                        t->patience = o->patience;
                        t->seed = o->seed;
                    }
    free(Cs.v), free(cws.v), free(stds.v), free(lrs.v), free(bss.v);
    return rc;
}

int cl_train(const cl_opts *o) {
    bn_train_opts *grid;
    int ngrid, rc = make_grid(o, &grid, &ngrid);
    if (rc)
        return rc;
    /* Options that exclude each other: checked before anything is opened. */
    if (o->holdout > 0 && (o->valid || o->folds)) {
        cl_fail("--holdout makes the validation rows: it goes with neither --valid nor --folds");
        free(grid);
        return CL_EXIT_USAGE;
    }
    bn_store *s = NULL;
    if (cl_open(o, 0, &s)) {
        free(grid);
        return CL_EXIT_FATAL;
    }
    const bn_trainjob_events events = {
        .loaded = on_loaded, .swept = on_swept, .scored = on_scored, .refitted = on_refitted};
    const bn_trainjob_opts jo = {.features = o->features,
                                 .dataset = o->dataset,
                                 .train = o->train,
                                 .valid = o->valid,
                                 .test = o->test,
                                 .select = o->select,
                                 .note = o->note,
                                 .folds = o->folds,
                                 .refit = o->refit,
                                 .holdout = o->holdout,
                                 .seed = o->seed,
                                 .grid = grid,
                                 .ngrid = ngrid,
                                 .events = o->quiet ? NULL : &events};
    bn_trainjob j;
    bn_error err;
    bn_error_clear(&err);
    if (bn_trainjob_run(s, &jo, &j, &err)) {
        rc = cl_fail(err.msg);
    } else if (o->json) {
        print_json(&j);
    } else {
        print_table(&j);
    }
    bn_trainjob_free(&j);
    bn_store_close(s);
    free(grid);
    return rc;
}

/*
 * cmd_runs.c: `bottleneck-classify runs` (one line per stored run, sorted and
 * filtered) and `bottleneck-classify show RUN` (everything about one run).
 */
#include "classify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const cl_opts *o;
    int count;
} list_ctx;

static int list_row(void *ctx, const bn_run *r, const double m[4]) {
    list_ctx *c = ctx;
    char desc[160], a[32], b[32], d[32], e[32];
    cl_describe_opts(desc, sizeof desc, &r->opts);
    if (c->o->json) {
        printf("%s{\"run\":%lld,\"sweep\":%lld,\"role\":\"%s\",\"chosen\":%s,\"created_at\":\"%s\","
               "\"featureset\":",
               c->count ? "," : "", (long long)r->id, (long long)r->sweep, r->role,
               r->chosen ? "true" : "false", r->created_at);
        bn_json_string(stdout, r->featureset_name);
        printf(",\"dataset\":");
        if (r->dataset_name)
            bn_json_string(stdout, r->dataset_name);
        else
            printf("null");
        printf(",\"solver\":\"%s\",\"C\":", bn_solver_name(r->opts.solver));
        bn_json_number(stdout, r->opts.C);
        printf(",\"class_weight\":\"%s\",\"standardize\":%s,\"train_splits\":",
               r->opts.balanced ? "balanced" : "none", r->opts.standardize ? "true" : "false");
        bn_json_string(stdout, r->train_splits);
        printf(",\"seconds\":");
        bn_json_number(stdout, r->info.seconds);
        const char *names[4] = {"accuracy", "log_loss", "roc_auc", "f1_macro"};
        for (int i = 0; i < 4; i++) {
            printf(",\"%s\":", names[i]);
            bn_json_number(stdout, m[i]);
        }
        putchar('}');
    } else {
        /* The feature set last and whole: names differ only at their end
         * (vgg16/block5_pool/none/224/squash/caffe/f32 and .../f16). */
        if (c->count == 0)
            printf("  %5s  %5s  %-20s  %-12s  %-34s  %-9s  %8s  %8s  %8s  %8s  %7s  %s\n", "run",
                   "sweep", "created", "dataset", "hyperparameters", "role", "accuracy", "log_loss",
                   "roc_auc", "f1_macro", "seconds", "featureset");
        printf("%c %5lld  %5lld  %-20s  %-12s  %-34.34s  %-9s  %8s  %8s  %8s  %8s  %7.2f  %s\n",
               r->chosen ? '*' : ' ', (long long)r->id, (long long)r->sweep, r->created_at,
               r->dataset_name ? r->dataset_name : "-", desc, r->role, cl_num(a, sizeof a, m[0]),
               cl_num(b, sizeof b, m[1]), cl_num(d, sizeof d, m[2]), cl_num(e, sizeof e, m[3]),
               r->info.seconds, r->featureset_name);
    }
    c->count++;
    return 0;
}

int cl_runs(const cl_opts *o) {
    bn_store *s;
    if (cl_open(o, 1, &s))
        return CL_EXIT_FATAL;
    bn_error err;
    bn_error_clear(&err);
    /* --dataset NAME is the filter dataset=NAME (a glob, as there). */
    const char *filters[CL_MAX_FILTERS + 1];
    char dataset_filter[600];
    int nfilters = o->nfilters;
    memcpy(filters, o->filters, (size_t)o->nfilters * sizeof *filters);
    if (o->dataset) {
        snprintf(dataset_filter, sizeof dataset_filter, "dataset=%s", o->dataset);
        filters[nfilters++] = dataset_filter;
    }
    bn_runs_query q = {.split = o->split ? o->split : "validation",
                       .sort = o->sort,
                       .filters = filters,
                       .nfilters = nfilters,
                       .limit = o->limit};
    list_ctx c = {.o = o};
    if (o->json)
        printf("{\"split\":\"%s\",\"runs\":[", q.split);
    int rc = bn_runs_list(s, &q, list_row, &c, &err);
    bn_store_close(s);
    if (o->json)
        printf("]}\n");
    if (rc) /* a bad --filter or --sort is a usage error */
        return rc == BN_EINVAL ? (cl_fail(err.msg), CL_EXIT_USAGE) : cl_fail(err.msg);
    if (!o->json) {
        if (c.count == 0)
            printf("no runs%s\n", nfilters ? " match the filters"
                                           : " yet: bottleneck-classify "
                                             "train");
        else
            printf("  (metrics on %s; * chosen in its sweep)\n", q.split);
    }
    return 0;
}

static int64_t count_predictions(bn_store *s, int64_t run) {
    sqlite3_stmt *q;
    int64_t n = 0;
    if (sqlite3_prepare_v2(bn_store_db(s), "SELECT count(*) FROM predictions WHERE run = ?1", -1,
                           &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, run);
        if (sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return n;
}

/* What `show` prints about one run. */
typedef struct {
    bn_store *s;
    long long id;
    const bn_run *r;
    int has_head;
    const bn_head *h;
    const bn_error *herr; /* why there is no head */
    int64_t npred;
    char **splits;
    int nsplits;
} show_run;

/* solver takes epochs (sgd, adam) rather than iterations */
static int show_minibatch(const bn_run *r) {
    return r->opts.solver == BN_SOLVER_SGD || r->opts.solver == BN_SOLVER_ADAM;
}

static int show_json(const show_run *sh, bn_error *err) {
    int rc = BN_OK, mb = show_minibatch(sh->r);
    printf("{\"run\":%lld,\"sweep\":%lld,\"role\":\"%s\",\"chosen\":%s,\"created_at\":\"%s\","
           "\"featureset\":",
           sh->id, (long long)sh->r->sweep, sh->r->role, sh->r->chosen ? "true" : "false",
           sh->r->created_at);
    bn_json_string(stdout, sh->r->featureset_name);
    printf(",\"featureset_id\":%lld,\"dataset\":", (long long)sh->r->featureset);
    if (sh->r->dataset_name)
        bn_json_string(stdout, sh->r->dataset_name);
    else
        printf("null");
    printf(",\"dim\":%d,\"classes\":[", sh->r->dim);
    for (int c = 0; c < sh->r->k; c++) {
        if (c)
            putchar(',');
        bn_json_string(stdout, sh->r->classes[c]);
    }
    printf("],\"train_splits\":");
    bn_json_string(stdout, sh->r->train_splits);
    printf(",\"n_train\":%d,\"folds\":%d,\"solver\":\"%s\",\"C\":", sh->r->n_train, sh->r->folds,
           bn_solver_name(sh->r->opts.solver));
    bn_json_number(stdout, sh->r->opts.C);
    printf(",\"class_weight\":\"%s\",\"standardize\":%s",
           sh->r->opts.balanced ? "balanced" : "none", sh->r->opts.standardize ? "true" : "false");
    if (mb) {
        printf(",\"epochs\":%d,\"lr\":", sh->r->opts.epochs);
        bn_json_number(stdout, sh->r->opts.lr);
        printf(",\"batch_size\":%d,\"patience\":%d", sh->r->opts.batch_size, sh->r->opts.patience);
    } else {
        printf(",\"max_iter\":%d,\"tol\":", sh->r->opts.max_iter);
        bn_json_number(stdout, sh->r->opts.tol);
    }
    printf(",\"seed\":%llu,\"iterations\":%d,\"converged\":%s,\"objective\":",
           (unsigned long long)sh->r->opts.seed, sh->r->info.iterations,
           sh->r->info.converged ? "true" : "false");
    bn_json_number(stdout, sh->r->info.objective);
    printf(",\"seconds\":");
    bn_json_number(stdout, sh->r->info.seconds);
    printf(",\"head\":%s,\"predictions\":%lld,\"note\":", sh->has_head ? "true" : "false",
           (long long)sh->npred);
    if (sh->r->note)
        bn_json_string(stdout, sh->r->note);
    else
        printf("null");
    printf(",\"metrics\":{");
    for (int i = 0; i < sh->nsplits && rc == BN_OK; i++) {
        bn_metrics m;
        int detail;
        if ((rc = bn_runs_get_metrics(sh->s, sh->r, sh->splits[i], &m, &detail, err)))
            break;
        if (i)
            putchar(',');
        bn_json_string(stdout, sh->splits[i]);
        putchar(':');
        cl_json_metrics(stdout, &m, sh->r->classes, detail);
        bn_metrics_free(&m);
    }
    printf("}}\n");
    return rc;
}

static int show_text(const show_run *sh, bn_error *err) {
    int rc = BN_OK, mb = show_minibatch(sh->r);
    printf("run %lld: %s", sh->id, sh->r->role);
    if (sh->r->sweep)
        printf(" in sweep %lld%s", (long long)sh->r->sweep, sh->r->chosen ? ", chosen" : "");
    printf(", %s\n", sh->r->created_at);
    printf("feature set:      %s (id %lld), dim %d\n", sh->r->featureset_name,
           (long long)sh->r->featureset, sh->r->dim);
    printf("dataset:          %s\n", sh->r->dataset_name ? sh->r->dataset_name : "(not recorded)");
    printf("classes:          ");
    for (int c = 0; c < sh->r->k; c++)
        printf("%s%s", c ? ", " : "", sh->r->classes[c]);
    printf("\ntrained on:       %s (%d rows)", sh->r->train_splits, sh->r->n_train);
    if (sh->r->folds)
        printf(", scored by %d-fold cross-validation", sh->r->folds);
    printf("\nhyperparameters:  solver %s, C %g (L2 %g), class_weight %s, standardize %s",
           bn_solver_name(sh->r->opts.solver), sh->r->opts.C, 1 / sh->r->opts.C,
           sh->r->opts.balanced ? "balanced" : "none", sh->r->opts.standardize ? "yes" : "no");
    if (mb)
        printf(", epochs %d, lr %g, batch size %d, patience %d", sh->r->opts.epochs, sh->r->opts.lr,
               sh->r->opts.batch_size, sh->r->opts.patience);
    else
        printf(", max_iter %d, tol %g", sh->r->opts.max_iter, sh->r->opts.tol);
    printf(", seed %llu\n", (unsigned long long)sh->r->opts.seed);
    printf("training:         %d %s, %s", sh->r->info.iterations, mb ? "epochs" : "iterations",
           mb ? (sh->r->info.converged ? "stopped early" : "all epochs")
              : (sh->r->info.converged ? "converged" : "NOT converged (raise --max-iter)"));
    if (isfinite(sh->r->info.objective))
        printf(", objective %.9g", sh->r->info.objective);
    printf(", %.2f s\n", sh->r->info.seconds);
    if (sh->has_head)
        printf("head:             %d output%s x %d%s\n", sh->h->nout, sh->h->nout == 1 ? "" : "s",
               sh->h->dim, sh->h->mean ? ", standardisation folded in" : "");
    else
        printf("head:             none (%s)\n", sh->herr->msg);
    printf("predictions:      %lld stored", (long long)sh->npred);
    if (sh->npred)
        printf(" (SELECT * FROM run_predictions WHERE run = %lld)", sh->id);
    putchar('\n');
    if (sh->r->note)
        printf("note:             %s\n", sh->r->note);
    for (int i = 0; i < sh->nsplits && rc == BN_OK; i++) {
        bn_metrics m;
        int detail;
        if ((rc = bn_runs_get_metrics(sh->s, sh->r, sh->splits[i], &m, &detail, err)))
            break;
        char title[300];
        snprintf(title, sizeof title, "%s%s", sh->splits[i],
                 strcmp(sh->splits[i], "cv") == 0             ? " (mean over the held-out folds)"
                 : strstr(sh->r->train_splits, sh->splits[i]) ? " (training rows)"
                                                              : "");
        cl_print_metrics(stdout, title, &m, sh->r->classes, detail);
        bn_metrics_free(&m);
    }
    return rc;
}

int cl_show(const cl_opts *o) {
    char *end;
    long long id = strtoll(o->args[0], &end, 10);
    if (!*o->args[0] || *end || id < 1)
        return cl_failf("show %s: expected a run id (a positive integer)", o->args[0]);
    bn_store *s;
    if (cl_open(o, 1, &s))
        return CL_EXIT_FATAL;
    bn_error err;
    bn_error_clear(&err);
    bn_run r;
    if (bn_runs_get(s, id, &r, &err)) {
        bn_store_close(s);
        return cl_fail(err.msg);
    }
    bn_head h;
    bn_error herr;
    show_run sh = {.s = s, .id = id, .r = &r, .h = &h, .herr = &herr};
    sh.has_head = bn_runs_get_head(s, id, &h, &herr) == BN_OK;
    int rc = bn_runs_get_splits(s, id, &sh.splits, &sh.nsplits, &err);
    sh.npred = count_predictions(s, id);
    if (rc == BN_OK)
        rc = o->json ? show_json(&sh, &err) : show_text(&sh, &err);
    for (int i = 0; i < sh.nsplits; i++)
        free(sh.splits[i]);
    free(sh.splits);
    if (sh.has_head)
        bn_head_free(&h);
    bn_run_free(&r);
    bn_store_close(s);
    return rc ? cl_fail(err.msg) : 0;
}

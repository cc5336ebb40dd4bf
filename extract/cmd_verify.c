/*
 * cmd_verify.c: the `bottleneck-extract verify` subcommand (cmd_verify.h): options,
 * messages and exit codes; the work is common/verify.c.
 */
#include "cmd_verify.h"
#include "cpu.h"

#include "image.h"
#include "json.h"
#include "progress.h"
#include "store.h"
#include "verify.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char verify_usage[] =
    "usage: bottleneck-extract verify --db FILE [--features NAME|ID] [--sample N | --all]\n"
    "                                 [--repair] [--weights FILE.h5] [--conv ENGINE]\n"
    "                                 [--batch N] [--threads N] [--quiet] [--json] DATASET_DIR\n"
    "\n"
    "Recompute stored vectors from the images in DATASET_DIR (the folder they were\n"
    "extracted from) and compare: bitwise where the same engine and version stored\n"
    "them, within 1e-4 relative L2 otherwise. --repair replaces those that differ.\n"
    "VGG16 feature sets need the weights file (--weights, else found as extract\n"
    "finds it); ONNX ones (--model) use the model file recorded with the set.\n"
    "Default: a sample of 200 vectors (in SHA-256 order); --all checks every one.\n"
    "Exit status: 0 nothing differs (or all repaired); 1 error; 2 usage error;\n"
    "3 some vectors differ (listed) and were not repaired.\n";

/* One vector that differs, for --json (which lists them all). */
typedef struct {
    char *path, *stored_by;
    double rel;
} verify_differ;

typedef struct {
    bn_progress bar;
    int quiet, json, shown;
    verify_differ *differ; /* --json: every one; else none */
    long ndiffer, cap;
    int out_of_memory;
} verify_ctx;

enum { VERIFY_SHOWN = 20 }; /* differing vectors listed on stderr */

static void on_differ(void *ctxp, const char *path, double rel, const char *stored_by) {
    verify_ctx *c = ctxp;
    if (c->json) {
        if (c->ndiffer == c->cap) {
            long cap = c->cap ? 2 * c->cap : 64;
            verify_differ *p = realloc(c->differ, (size_t)cap * sizeof *p);
            if (!p) {
                c->out_of_memory = 1;
                return;
            }
            c->differ = p, c->cap = cap;
        }
        verify_differ *d = &c->differ[c->ndiffer];
        d->path = strdup(path);
        d->stored_by = strdup(stored_by);
        d->rel = rel;
        if (!d->path || !d->stored_by) {
            free(d->path), free(d->stored_by);
            c->out_of_memory = 1;
            return;
        }
        c->ndiffer++;
        return;
    }
    if (!c->quiet && c->shown++ < VERIFY_SHOWN)
        fprintf(stderr, "differs: %s (relative L2 %.3g; stored by %s)\n", path, rel, stored_by);
}

static void on_progress(void *ctxp, const bn_verify_stats *st) {
    verify_ctx *c = ctxp;
    c->bar.total = st->total; /* known once the vectors are selected */
    bn_progress_update(&c->bar, st->checked + st->missing + st->changed + st->unreadable);
}

static int verify_usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "bottleneck-extract verify: ");
    fprintf(stderr, msg, arg);
    fprintf(stderr, "\n%s", verify_usage);
    return 2;
}

/* The only extracted feature set, when --features is not given. */
static int only_featureset(bn_store *s, char *out, size_t n) {
    sqlite3_stmt *q = NULL;
    int count = 0;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT name FROM featuresets WHERE source = 'extract' ORDER BY id", -1,
                           &q, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(q) == SQLITE_ROW)
        if (count++ == 0)
            snprintf(out, n, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return count;
}

/* The command line of `verify`. */
typedef struct {
    const char *db, *features, *weights, *root;
    bn_verify_opts o;
    int threads, all, quiet, json;
} verify_args;

/* The options into *a; -1 to go on, else the exit status (0 after --help,
 * 2 after a usage error). */
static int verify_options(int argc, char **argv, verify_args *a) {
    *a = (verify_args){.o = {.sample = 200, .batch = 8, .engine = BN_CONV_AUTO}};
    int sample_given = 0;
    enum {
        O_DB = 256,
        O_FEAT,
        O_SAMPLE,
        O_ALL,
        O_REPAIR,
        O_W,
        O_CONV,
        O_BATCH,
        O_TH,
        O_Q,
        O_J,
        O_H
    };
    static const struct option opts[] = {
        {"db", required_argument, 0, O_DB},
        {"features", required_argument, 0, O_FEAT},
        {"sample", required_argument, 0, O_SAMPLE},
        {"all", no_argument, 0, O_ALL},
        {"repair", no_argument, 0, O_REPAIR},
        {"weights", required_argument, 0, O_W},
        {"conv", required_argument, 0, O_CONV},
        {"batch", required_argument, 0, O_BATCH},
        {"threads", required_argument, 0, O_TH},
        {"quiet", no_argument, 0, O_Q},
        {"json", no_argument, 0, O_J},
        {"help", no_argument, 0, O_H},
        {0, 0, 0, 0},
    };
    optind = 2;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        char *end = NULL;
        switch (c) {
        case O_DB: a->db = optarg; break;
        case O_FEAT: a->features = optarg; break;
        case O_SAMPLE:
            a->o.sample = strtol(optarg, &end, 10);
            if (!*optarg || *end || a->o.sample < 1)
                return verify_usage_error("--sample %s: expected a positive integer", optarg);
            sample_given = 1;
            break;
        case O_ALL: a->all = 1; break;
        case O_REPAIR: a->o.repair = 1; break;
        case O_W: a->weights = optarg; break;
        case O_CONV:
            if (bn_conv_engine_parse(optarg, &a->o.engine))
                return verify_usage_error("--conv %s: expected auto, direct or winograd", optarg);
            break;
        case O_BATCH:
            a->o.batch = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end || a->o.batch < 1 || a->o.batch > 1024)
                return verify_usage_error("--batch %s: expected 1..1024", optarg);
            break;
        case O_TH:
            a->threads = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end || a->threads < 1)
                return verify_usage_error("--threads %s: expected a positive integer", optarg);
            break;
        case O_Q: a->quiet = 1; break;
        case O_J: a->json = 1; break;
        case 'h':
        case O_H: fputs(verify_usage, stdout); return 0;
        default: return verify_usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (!a->db)
        return verify_usage_error("%s", "--db is required");
    if (a->all && sample_given)
        return verify_usage_error("%s", "--sample and --all exclude each other");
    if (optind != argc - 1)
        return verify_usage_error("%s", "one dataset folder expected (the one extracted from)");
    if (a->all)
        a->o.sample = 0;
    a->root = argv[optind];
    return -1;
}

/* The summary line on stderr, or JSON on stdout. */
static void verify_report(const verify_args *a, const verify_ctx *c, const char *features,
                          const bn_verify_stats *st, int status) {
    if (!a->quiet && !a->json && st->differ > VERIFY_SHOWN)
        fprintf(stderr, "(and %ld more that differ: --json lists them all)\n",
                st->differ - VERIFY_SHOWN);
    if (!a->quiet && !a->json)
        fprintf(stderr,
                "%s: feature set %s: %ld vectors selected, %ld checked: %ld identical, %ld within "
                "1e-4 (another engine), %ld differ%s; %ld files missing, %ld changed since "
                "extraction, %ld unreadable; worst relative L2 %.3g\n",
                a->db, features, st->total, st->checked, st->identical, st->close, st->differ,
                a->o.repair ? " (repaired)" : "", st->missing, st->changed, st->unreadable,
                st->worst);
    if (status == 3 && !a->quiet && !a->json)
        fprintf(stderr, "replace them with: bottleneck-extract verify --repair --db %s%s %s\n",
                a->db, a->all ? " --all" : "", a->root);
    if (!a->json)
        return;
    printf("{\"db\":");
    bn_json_string(stdout, a->db);
    printf(",\"featureset\":");
    bn_json_string(stdout, features);
    printf(",\"selected\":%ld,\"checked\":%ld,\"identical\":%ld,\"close\":%ld,\"differ\":%ld,"
           "\"repaired\":%ld,\"missing\":%ld,\"changed\":%ld,\"unreadable\":%ld,"
           "\"worst_rel_l2\":",
           st->total, st->checked, st->identical, st->close, st->differ, st->repaired, st->missing,
           st->changed, st->unreadable);
    bn_json_number(stdout, st->worst);
    /* which: path (whole when another dataset's), relative L2, who stored it */
    printf(",\"ok\":true,\"differing\":[");
    for (long i = 0; i < c->ndiffer; i++) {
        printf("%s{\"path\":", i ? "," : "");
        bn_json_string(stdout, c->differ[i].path);
        printf(",\"rel_l2\":");
        bn_json_number(stdout, c->differ[i].rel);
        printf(",\"stored_by\":");
        bn_json_string(stdout, c->differ[i].stored_by);
        printf("}");
    }
    printf("]}\n");
}

/* A fatal error: one line on stderr and, with --json, {"ok":false,
 * "error":...} on stdout (as extract, merge and export give). */
static void verify_fatal(int json, const char *msg) {
    fprintf(stderr, "bottleneck-extract verify: %s\n", msg);
    if (json) {
        bn_json_error(stdout, msg);
    }
}

int extract_verify_main(int argc, char **argv) {
    verify_args a;
    int status = verify_options(argc, argv, &a);
    if (status >= 0)
        return status;
    status = 1;
    verify_ctx ctx = {.quiet = a.quiet, .json = a.json};
    const char *db = a.db, *features = a.features;
    if (a.threads > 0)
        bn_cpu_set_threads(a.threads);

    bn_error err;
    bn_error_clear(&err);
    char fsname[512];
    bn_store *s = NULL;
    int64_t fs = 0;
    int dim;
    char dtype[8];
    if (bn_image_init(argv[0], &err) || bn_store_open(&s, db, 0, &err)) {
        verify_fatal(a.json, err.msg);
        goto done;
    }
    if (!features) {
        int count = only_featureset(s, fsname, sizeof fsname);
        if (count != 1) {
            char msg[8400];
            snprintf(msg, sizeof msg,
                     "%s: %s; name one with --features (list: sqlite3 %s 'SELECT id, name FROM "
                     "featuresets')",
                     db, count == 0 ? "no extracted feature set" : "several feature sets", db);
            verify_fatal(a.json, msg);
            goto done;
        }
        features = fsname;
    }
    if (bn_store_featureset_find(s, features, &fs, &dim, dtype, &err)) {
        verify_fatal(a.json, err.msg);
        goto done;
    }
    bn_progress_start(&ctx.bar, stderr, "verify", "vec", 0, ctx.quiet || ctx.json);
    bn_verify_stats st;
    int rc = bn_verify_run(s, fs, a.root, a.weights, &a.o, on_differ, on_progress, &ctx, &st, &err);
    bn_progress_finish(&ctx.bar);
    if (rc) {
        verify_fatal(a.json, err.msg);
        goto done;
    }
    if (ctx.out_of_memory) {
        verify_fatal(a.json, "out of memory listing the vectors that differ");
        goto done;
    }
    status = st.differ > st.repaired ? 3 : 0;
    verify_report(&a, &ctx, features, &st, status);
done:
    for (long i = 0; i < ctx.ndiffer; i++)
        free(ctx.differ[i].path), free(ctx.differ[i].stored_by);
    free(ctx.differ);
    bn_store_close(s);
    bn_image_shutdown();
    return status;
}

void extract_warn_unverified(struct bn_store *s, const char *db_path, const char *prog) {
    long n = 0;
    bn_error err;
    if (bn_store_unverified(s, &n, &err) || n == 0)
        return;
    fprintf(stderr,
            "%s: warning: %s holds %ld vectors written by bottleneck 0.1.0 or earlier, whose "
            "default engine could store wrong vectors for partial batches; check them with: "
            "bottleneck-extract verify --db %s --all DATASET_DIR (add --repair to replace wrong "
            "ones)\n",
            prog, db_path, n, db_path);
}

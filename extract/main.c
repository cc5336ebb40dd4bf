/*
 * bottleneck-extract: run the frozen VGG16 convolutional base once over a
 * dataset and store one feature vector per image in SQLite.
 *
 * A thin program: option parsing, messages and exit codes. The work is in
 * common/ (dataset.c scans, extractor.c runs the pipeline, store.c writes).
 *
 * Exit codes: 0 all images stored; 1 the run could not go on (bad option
 * value, weights, dataset or database problem); 2 usage error; 3 the run
 * finished but some inputs failed (listed in the failures table).
 */
#include "cmd_verify.h"
#include "dataset.h"
#include "download.h"
#include "error.h"
#include "extractor.h"
#include "image.h"
#include "import.h"
#include "json.h"
#include "progress.h"
#include "store.h"
#include "vgg16.h"
#include "weights.h"

#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_FATAL 1
#define EXIT_USAGE 2
#define EXIT_SOME_FAILED 3

static const char usage_text[] =
    "usage: bottleneck-extract [options] DATASET_DIR\n"
    "       bottleneck-extract --download [--weights FILE]\n"
    "       bottleneck-extract import --db FILE --name NAME --npy FILE.npy --index FILE.tsv\n"
    "       bottleneck-extract verify --db FILE [--sample N | --all] [--repair] DATASET_DIR\n"
    "\n"
    "Run the frozen VGG16 convolutional base over every image of DATASET_DIR and store\n"
    "one feature vector per image in a SQLite database. DATASET_DIR holds one folder per\n"
    "class (cat/, dog/), optionally inside split folders (train/, validation/, test/).\n"
    "Images already stored are skipped; a killed run resumes where it stopped.\n"
    "\n"
    "Database:\n"
    "  --db FILE            SQLite database to create or extend (default: bottleneck.db)\n"
    "\n"
    "Weights (Keras HDF5, vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5):\n"
    "  --weights FILE       weights file; default $BOTTLENECK_WEIGHTS, then the cache\n"
    "                       ($XDG_CACHE_HOME or ~/.cache)/bottleneck/\n"
    "  --download           fetch the official file into the cache (md5-checked) first;\n"
    "                       $BOTTLENECK_WEIGHTS_URL overrides the URL (mirrors)\n"
    "\n"
    "Features (each combination is its own feature set in the database):\n"
    "  --layer NAME         block3_pool | block4_pool | block5_pool (default block5_pool)\n"
    "  --pooling MODE       none (flatten y,x,c as Keras) | avg | max (default none)\n"
    "  --size N             input size, a multiple of 32 (default 224)\n"
    "  --resize MODE        squash (Keras: whole image to size x size, default) |\n"
    "                       crop (torchvision: shorter side to size, centre crop)\n"
    "  --preprocess MODE    caffe (Keras VGG16: BGR minus ImageNet means, default) |\n"
    "                       torch (RGB/255, ImageNet mean and std)\n"
    "  --dtype TYPE         f32 (default) | f16 (half floats, half the space)\n"
    "\n"
    "Run:\n"
    "  --conv ENGINE        auto (default) | direct (exact im2col+GEMM) | winograd\n"
    "  --batch N            images per forward pass and per transaction (default 8)\n"
    "  --threads N          compute threads (default: all cores)\n"
    "  --all-loaders        also use libvips' untrusted loaders (ImageMagick: BMP, ICO,\n"
    "                       PSD, ...; PDF, SVG); off by default for safety on files\n"
    "                       you did not make\n"
    "  --max-pixels N       refuse images larger than N pixels before decoding\n"
    "                       (decompression bombs; default 178956970, as PIL)\n"
    "  --self-check N       every N-th batch, check one image against the exact engine\n"
    "                       and stop (batch not stored) if they differ by more than 1e-4\n"
    "  --quiet              no progress output\n"
    "  --json               print a JSON summary on stdout\n"
    "  --help               this text\n"
    "  --version            print the version\n"
    "\n"
    "Exit status: 0 all images stored; 1 the run could not go on; 2 usage error;\n"
    "3 finished, but some inputs failed (see: SELECT * FROM failures).\n";

static void usage_error(const char *fmt, const char *arg) {
    fputs("bottleneck-extract: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'bottleneck-extract --help'.\n", stderr);
    exit(EXIT_USAGE);
}

static int parse_int(const char *s, const char *flag) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 1 << 20) {
        fprintf(stderr, "bottleneck-extract: %s %s: expected a positive integer\n", flag, s);
        exit(EXIT_USAGE);
    }
    return (int)v;
}

static void download_progress(void *ctx, size_t done, size_t total) {
    bn_progress *p = ctx;
    p->total = (long)(total >> 20);
    bn_progress_update(p, (long)(done >> 20));
}

typedef struct {
    bn_progress bar;
} run_ctx;

static void extract_progress(void *ctx, const bn_extract_stats *st) {
    run_ctx *r = ctx;
    bn_progress_update(&r->bar, st->images);
}

int main(int argc, char **argv) {
    bn_blas_use_best_kernels(argv);
    if (argc > 1 && strcmp(argv[1], "import") == 0)
        return extract_import_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "verify") == 0)
        return extract_verify_main(argc, argv);
    const char *db_path = "bottleneck.db", *weights_arg = NULL;
    int download = 0, quiet = 0, json = 0, threads = 0, all_loaders = 0;
    long long max_pixels = 0;
    bn_extract_opts o;
    bn_extract_opts_default(&o);

    enum {
        OPT_DB = 256,
        OPT_WEIGHTS,
        OPT_DOWNLOAD,
        OPT_LAYER,
        OPT_POOLING,
        OPT_SIZE,
        OPT_RESIZE,
        OPT_PREPROCESS,
        OPT_DTYPE,
        OPT_CONV,
        OPT_BATCH,
        OPT_THREADS,
        OPT_QUIET,
        OPT_JSON,
        OPT_HELP,
        OPT_ALL_LOADERS,
        OPT_MAX_PIXELS,
        OPT_SELF_CHECK,
        OPT_VERSION
    };
    static const struct option longopts[] = {
        {"db", required_argument, 0, OPT_DB},
        {"weights", required_argument, 0, OPT_WEIGHTS},
        {"download", no_argument, 0, OPT_DOWNLOAD},
        {"layer", required_argument, 0, OPT_LAYER},
        {"pooling", required_argument, 0, OPT_POOLING},
        {"size", required_argument, 0, OPT_SIZE},
        {"resize", required_argument, 0, OPT_RESIZE},
        {"preprocess", required_argument, 0, OPT_PREPROCESS},
        {"dtype", required_argument, 0, OPT_DTYPE},
        {"conv", required_argument, 0, OPT_CONV},
        {"batch", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, OPT_THREADS},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"json", no_argument, 0, OPT_JSON},
        {"all-loaders", no_argument, 0, OPT_ALL_LOADERS},
        {"max-pixels", required_argument, 0, OPT_MAX_PIXELS},
        {"self-check", required_argument, 0, OPT_SELF_CHECK},
        {"help", no_argument, 0, OPT_HELP},
        {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB: db_path = optarg; break;
        case OPT_WEIGHTS: weights_arg = optarg; break;
        case OPT_DOWNLOAD: download = 1; break;
        case OPT_LAYER:
            if (bn_layer_parse(optarg, &o.layer))
                usage_error("--layer %s: expected block3_pool, block4_pool or block5_pool", optarg);
            break;
        case OPT_POOLING:
            if (bn_pooling_parse(optarg, &o.pooling))
                usage_error("--pooling %s: expected none, avg or max", optarg);
            break;
        case OPT_SIZE: o.image.size = parse_int(optarg, "--size"); break;
        case OPT_RESIZE:
            if (bn_resize_parse(optarg, &o.image.resize))
                usage_error("--resize %s: expected squash or crop", optarg);
            break;
        case OPT_PREPROCESS:
            if (bn_preprocess_parse(optarg, &o.image.preprocess))
                usage_error("--preprocess %s: expected caffe or torch", optarg);
            break;
        case OPT_DTYPE:
            if (strcmp(optarg, "f32") && strcmp(optarg, "f16"))
                usage_error("--dtype %s: expected f32 or f16", optarg);
            o.dtype = optarg;
            break;
        case OPT_CONV:
            if (bn_conv_engine_parse(optarg, &o.engine))
                usage_error("--conv %s: expected auto, direct or winograd", optarg);
            break;
        case OPT_BATCH: o.batch = parse_int(optarg, "--batch"); break;
        case OPT_THREADS: threads = parse_int(optarg, "--threads"); break;
        case OPT_ALL_LOADERS: all_loaders = 1; break;
        case OPT_SELF_CHECK: o.self_check = parse_int(optarg, "--self-check"); break;
        case OPT_MAX_PIXELS: {
            char *end;
            max_pixels = strtoll(optarg, &end, 10);
            if (!*optarg || *end || max_pixels < 1)
                usage_error("--max-pixels %s: expected a positive integer", optarg);
            break;
        }
        case OPT_QUIET: quiet = 1; break;
        case OPT_JSON: json = 1; break;
        case OPT_HELP: fputs(usage_text, stdout); return 0;
        case OPT_VERSION: puts("bottleneck-extract " BN_VERSION); return 0;
        default: usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (o.image.size % 32 != 0)
        usage_error("--size: %s", "must be a multiple of 32 (224, 256, 64, ...)");
    if (optind < argc - 1)
        usage_error("one dataset folder expected, got '%s' and more", argv[optind + 1]);
    const char *root = optind < argc ? argv[optind] : NULL;
    if (!root && !download)
        usage_error("%s", "no dataset folder given");

    /* Past a file size limit (ulimit -f) a write should fail with EFBIG and
     * be reported like a full disk, not kill us with SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);

    bn_error err;
    bn_error_clear(&err);
    if (bn_image_init(argv[0], &err)) {
        fprintf(stderr, "bottleneck-extract: %s\n", err.msg);
        return EXIT_FATAL;
    }
    if (threads > 0)
        bn_set_threads(threads);
    bn_image_allow_untrusted(all_loaders);
    bn_image_set_max_pixels((uint64_t)max_pixels);

    char weights_path[4096];
    if (download && !weights_arg) {
        bn_progress bar;
        bn_progress_start(&bar, stderr, "download", "MiB", 0, quiet);
        if (bn_weights_download(weights_path, sizeof weights_path, NULL, download_progress, &bar,
                                &err)) {
            fprintf(stderr, "bottleneck-extract: %s\n", err.msg);
            return EXIT_FATAL;
        }
        bn_progress_finish(&bar);
        if (!quiet)
            fprintf(stderr, "weights: %s\n", weights_path);
        if (!root)
            return 0;
    } else if (bn_weights_locate(weights_path, sizeof weights_path, weights_arg, &err)) {
        fprintf(stderr, "bottleneck-extract: %s\n", err.msg);
        return EXIT_FATAL;
    }
    if (!root)
        return 0;

    /* Check the cheap things first: a wrong folder should not cost a
     * weights load. */
    bn_dataset ds;
    if (bn_dataset_scan(&ds, root, &err)) {
        fprintf(stderr, "bottleneck-extract: %s\n", err.msg);
        return EXIT_FATAL;
    }
    if (ds.n == 0) {
        fprintf(stderr,
                "bottleneck-extract: %s: no images found (expected class folders such as "
                "%s/cat/*.jpg or %s/train/cat/*.jpg)\n",
                root, root, root);
        bn_dataset_free(&ds);
        return EXIT_FATAL;
    }

    bn_vgg16_weights w;
    if (bn_weights_load(&w, weights_path, &err)) {
        fprintf(stderr, "bottleneck-extract: %s\n", err.msg);
        bn_dataset_free(&ds);
        return EXIT_FATAL;
    }
    bn_store *store = NULL;
    bn_extractor *x = NULL;
    int status = EXIT_FATAL;
    if (bn_store_open(&store, db_path, BN_STORE_CREATE, &err)) {
        fprintf(stderr, "bottleneck-extract: %s\n", err.msg);
        goto done;
    }
    if (!quiet)
        extract_warn_unverified(store, db_path, "bottleneck-extract");
    if (bn_extractor_create(&x, store, &w, &o, &err)) {
        fprintf(stderr, "bottleneck-extract: %s\n", err.msg);
        goto done;
    }
    bn_weights_free(&w); /* the network holds its own prepared copy */

    run_ctx r;
    bn_progress_start(&r.bar, stderr, "extract", "img", (long)ds.n, quiet);
    bn_extract_stats st;
    int rc = bn_extractor_run(x, &ds, extract_progress, &r, &st, &err);
    bn_progress_finish(&r.bar);
    double rate = st.seconds > 0 ? (double)st.extracted / st.seconds : 0;
    if (rc) {
        fprintf(stderr, "bottleneck-extract: %s (%ld images stored before the error are kept)\n",
                err.msg, st.extracted + st.reused);
    } else {
        status = st.failed > 0 ? EXIT_SOME_FAILED : 0;
    }
    if (!quiet)
        fprintf(stderr,
                "%s: %ld images: %ld extracted, %ld reused (same content), %ld already stored, "
                "%ld failed; %.1f s, %.2f images/s; feature set %s (id %lld, dim %d)\n",
                db_path, st.images, st.extracted, st.reused, st.skipped, st.failed, st.seconds,
                rate, bn_extractor_featureset_name(x), (long long)bn_extractor_featureset(x),
                bn_extractor_dim(x));
    if (st.failed > 0 && !quiet)
        fprintf(stderr, "%ld inputs failed: sqlite3 %s 'SELECT path, reason FROM failures'\n",
                st.failed, db_path);
    if (json) {
        printf("{\"db\":");
        bn_json_string(stdout, db_path);
        printf(",\"dataset\":");
        bn_json_string(stdout, root);
        printf(",\"featureset\":");
        bn_json_string(stdout, bn_extractor_featureset_name(x));
        printf(",\"featureset_id\":%lld,\"dim\":%d,\"dtype\":\"%s\",\"images\":%ld,"
               "\"extracted\":%ld,\"reused\":%ld,\"skipped\":%ld,\"failed\":%ld,"
               "\"seconds\":%.3f,\"network_seconds\":%.3f,\"images_per_second\":%.3f,"
               "\"ok\":%s",
               (long long)bn_extractor_featureset(x), bn_extractor_dim(x), o.dtype, st.images,
               st.extracted, st.reused, st.skipped, st.failed, st.seconds, st.network_seconds, rate,
               rc ? "false" : "true");
        if (rc) {
            printf(",\"error\":");
            bn_json_string(stdout, err.msg);
        }
        printf("}\n");
    }
done:
    bn_extractor_free(x);
    bn_store_close(store);
    bn_weights_free(&w);
    bn_dataset_free(&ds);
    bn_image_shutdown();
    return status;
}

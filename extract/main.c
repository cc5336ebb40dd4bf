/*
 * bottleneck-extract: run a frozen pretrained network (VGG16's convolutional
 * base from the Keras .h5 by default, or any classic CNN from an ONNX file)
 * once over a dataset and store one feature vector per image in SQLite.
 *
 * A thin program: option parsing, messages and exit codes. The work is in
 * common/ (dataset.c scans, extractor.c runs the pipeline, store.c writes).
 *
 * Exit codes: 0 all images stored; 1 the run could not go on (bad option
 * value, weights, dataset or database problem); 2 usage error; 3 the run
 * finished but some inputs failed (listed in the failures table).
 */
#include "cmd_verify.h"
#include "cpu.h"
#include "dataset.h"
#include "datasets.h"
#include "download.h"
#include "error.h"
#include "export.h"
#include "extractor.h"
#include "image.h"
#include "import.h"
#include "json.h"
#include "merge.h"
#include "onnx.h"
#include "pack.h"
#include "precision.h"
#include "progress.h"
#include "store.h"
#include "sync.h"
#include "vgg16.h"
#include "weights.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
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
    "       bottleneck-extract layers [--model FILE.onnx | --weights FILE] [--size N] [--json]\n"
    "       bottleneck-extract verify --db FILE [--sample N | --all] [--repair] DATASET_DIR\n"
    "       bottleneck-extract merge --db OUT.db [--expect N] IN.db...\n"
    "       bottleneck-extract export --db FILE --features NAME --npy OUT.npy --index OUT.tsv\n"
    "\n"
    "Run a frozen network (VGG16's convolutional base, or --model FILE.onnx) over every\n"
    "image of DATASET_DIR and store one feature vector per image in a SQLite database.\n"
    "DATASET_DIR holds one folder per class (cat/, dog/), optionally inside split folders\n"
    "(train/, validation/, test/). Images already stored are skipped; a killed run\n"
    "resumes where it stopped. The database follows the folder: files renamed or moved\n"
    "keep their vectors (by content), files that are gone are removed from it.\n"
    "\n"
    "Database:\n"
    "  --db FILE            SQLite database to create or extend (default: bottleneck.db)\n"
    "  --dataset NAME       the dataset's name in the database (default: the folder's\n"
    "                       name); one database holds several datasets, kept apart\n"
    "  --keep-missing       keep the rows of files that are not in the folder now (for a\n"
    "                       dataset extracted in pieces); default: remove them\n"
    "\n"
    "Weights (Keras HDF5, vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5):\n"
    "  --weights FILE       weights file; default $BOTTLENECK_WEIGHTS, then the cache\n"
    "                       ($XDG_CACHE_HOME or ~/.cache)/bottleneck/\n"
    "  --download           fetch the official file into the cache (into FILE with\n"
    "                       --weights FILE; md5-checked, kept if already there) first;\n"
    "                       $BOTTLENECK_WEIGHTS_URL overrides the URL (mirrors),\n"
    "                       $BOTTLENECK_WEIGHTS_MD5 the md5 expected\n"
    "\n"
    "Model (default: VGG16 from the weights above):\n"
    "  --model FILE.onnx    any classic CNN as an ONNX file (VGG, GoogLeNet, ResNet,\n"
    "                       SqueezeNet, MobileNetV2, ...); its preprocessing comes from\n"
    "                       its preprocess.* metadata when present, else from the flags\n"
    "                       below, else the ONNX model zoo's: RGB, 0-1, torchvision mean\n"
    "                       and std, 224, squash\n"
    "  --mean A,B,C         per-channel mean, in the --channels order\n"
    "  --std A,B,C          per-channel std, in the --channels order\n"
    "  --channels ORDER     rgb | bgr: channel order the model wants\n"
    "  --scale RANGE        0-255 | 0-1: pixel values before the mean is taken\n"
    "\n"
    "Features (each combination is its own feature set in the database):\n"
    "  --layer NAME         any tensor of the network (bottleneck-extract layers lists\n"
    "                       them); default block5_pool for VGG16, and for ONNX files the\n"
    "                       input of the first Flatten/Gemm (e.g. GoogLeNet pool5/7x7_s1)\n"
    "  --pooling MODE       none (flattened: y,x,c for VGG16 as Keras, c,y,x for ONNX)\n"
    "                       | avg | max over the spatial axes (default none)\n"
    "  --size N             input size (default 224 for VGG16, a multiple of 32; for\n"
    "                       ONNX the file's metadata or input shape)\n"
    "  --resize MODE        squash (Keras: whole image to size x size, default) |\n"
    "                       crop (torchvision: shorter side to size, centre crop)\n"
    "  --preprocess MODE    caffe (Keras VGG16: BGR minus ImageNet means, default) |\n"
    "                       torch (RGB/255, ImageNet mean and std)\n"
    "  --dtype TYPE         f32 (default) | f16 (half floats, half the space)\n"
    "\n"
    "Run:\n"
    "  --conv ENGINE        auto (default) | direct (exact im2col+GEMM) | winograd\n"
    "  --precision P        fp32 (default, exact to 1e-4) | fast (the CPU's fastest reduced\n"
    "                       precision, else fp32; says which) | bf16 | fp16 | amx (BF16 on\n"
    "                       AMX tiles): the Winograd products; part of the feature set\n"
    "                       (never mixed with fp32)\n"
    "  --batch N            images per forward pass and per transaction (default 8)\n"
    "  --threads N          compute threads (default: all cores)\n"
    "  --all-loaders        also use libvips' untrusted loaders (ImageMagick: BMP, ICO,\n"
    "                       PSD, ...; PDF, SVG); off by default for safety on files\n"
    "                       you did not make\n"
    "  --max-pixels N       refuse images larger than N pixels before decoding\n"
    "                       (decompression bombs; default 178956970, as PIL)\n"
    "  --shard K/N          take only shard K of N (1 <= K <= N): the images whose relative\n"
    "                       path hashes to K (SHA-256), the same split on every machine;\n"
    "                       run the N shards anywhere, then 'bottleneck-extract merge'\n"
    "  --self-check N       every N-th batch, check one image against the exact engine\n"
    "                       and stop (batch not stored) if they differ by more than 1e-4\n"
    "  --quiet              no progress output\n"
    "  --verbose            also list the files ignored (not images, or outside class\n"
    "                       folders)\n"
    "  --json               print a JSON summary on stdout\n"
    "  -h, --help           this text\n"
    "  --version            print the version\n"
    "\n"
    "Exit status: 0 all images stored; 1 the run could not go on; 2 usage error;\n"
    "3 finished, but some inputs failed (see: SELECT * FROM failures); 130 / 143\n"
    "stopped by SIGINT (Ctrl-C) / SIGTERM after the batch in hand, which is kept.\n";

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

static void extract_progress(void *ctx, const bn_extractor_stats *st) {
    run_ctx *r = ctx;
    bn_progress_update(&r->bar, st->images);
}

enum {
    SET_MEAN = 1,
    SET_STD = 2,
    SET_CHANNELS = 4,
    SET_SCALE = 8,
    SET_SIZE = 16,
    SET_RESIZE = 32,
    SET_PREPROCESS = 64
};

/* "A,B,C" -> v; -1 unless three finite numbers (a std of 0 is refused by
 * the decoder). */
static int parse3(const char *s, float v[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        v[i] = strtof(s, &end);
        if (end == s || !isfinite(v[i]))
            return -1;
        s = end + (*end == ',' && i < 2);
    }
    return *s ? -1 : 0;
}

/* The network to run and what identifies it: VGG16 from the .h5 at
 * weights_path, or the ONNX file model_path. For ONNX the preprocessing is
 * the file's metadata (or the zoo default), overridden field by field by the
 * flags in `set`. g is built, not inferred; m's strings point into the
 * caller's buffers. */
static int open_network(const char *model_path, const char *weights_path, bn_extractor_opts *o,
                        const bn_image_opts *pre, unsigned set, bn_graph **g, bn_extractor_model *m,
                        char name[256], char abs_path[4096], char sha[65], bn_error *err) {
    memset(m, 0, sizeof *m);
    if (!model_path) {
        bn_vgg16_weights w;
        int rc = bn_weights_load(&w, weights_path, err);
        if (rc)
            return rc;
        rc = bn_vgg16_build_graph(g, &w, BN_LAYER_BLOCK5_POOL, err);
        bn_graph *exact = NULL;
        if (!rc && o->self_check > 0 &&
            (rc = bn_vgg16_build_graph(&exact, &w, BN_LAYER_BLOCK5_POOL, err))) {
            bn_graph_free(*g);
            *g = NULL;
        }
        snprintf(sha, 65, "%s", w.sha256);
        bn_weights_free(&w);
        if (!o->tensor)
            o->tensor = "block5_pool";
        if (set & (SET_MEAN | SET_STD | SET_CHANNELS | SET_SCALE)) {
            /* caffe's recipe with the given fields changed */
            bn_image_opts c = {.preprocess = BN_PREPROCESS_CUSTOM,
                               .bgr = 1,
                               .range255 = 1,
                               .mean = {103.939f, 116.779f, 123.68f},
                               .std = {1, 1, 1}};
            o->image.preprocess = BN_PREPROCESS_CUSTOM;
            o->image.bgr = set & SET_CHANNELS ? pre->bgr : c.bgr;
            o->image.range255 = set & SET_SCALE ? pre->range255 : c.range255;
            memcpy(o->image.mean, set & SET_MEAN ? pre->mean : c.mean, sizeof c.mean);
            memcpy(o->image.std, set & SET_STD ? pre->std : c.std, sizeof c.std);
        }
        *m = (bn_extractor_model){
            .model = "vgg16", .sha256 = sha, .format = "keras-h5", .exact = exact};
        return rc;
    }
    bn_onnx_info info;
    bn_graph *exact = NULL;
    int rc = bn_onnx_load(g, model_path, &info, err);
    if (!rc && o->self_check > 0 && (rc = bn_onnx_load(&exact, model_path, NULL, err))) {
        bn_graph_free(*g);
        *g = NULL;
    }
    if (rc)
        return rc;
    bn_image_opts im = info.image;
    if (set & SET_PREPROCESS) { /* a named recipe replaces the file's */
        im.preprocess = o->image.preprocess;
    } else {
        if (set & SET_MEAN)
            memcpy(im.mean, pre->mean, sizeof im.mean);
        if (set & SET_STD)
            memcpy(im.std, pre->std, sizeof im.std);
        if (set & SET_CHANNELS)
            im.bgr = pre->bgr;
        if (set & SET_SCALE)
            im.range255 = pre->range255;
    }
    if (set & SET_SIZE)
        im.size = o->image.size;
    if (set & SET_RESIZE)
        im.resize = o->image.resize;
    o->image = im;
    if (!o->tensor)
        o->tensor = bn_graph_default_feature(*g);
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".onnx"))
        len -= 5;
    snprintf(name, 256, "%.*s", (int)(len < 255 ? len : 255), base);
    if (!realpath(model_path, abs_path))
        snprintf(abs_path, 4096, "%s", model_path);
    snprintf(sha, 65, "%s", info.sha256);
    *m = (bn_extractor_model){
        .model = name, .sha256 = sha, .format = "onnx", .path = abs_path, .exact = exact};
    return BN_OK;
}

/* A fatal error: one line on stderr and, with --json, one object on stdout
 * ({"ok":false,"error":...}), so that a script reading stdout always gets
 * one, as merge and export give. */
static void extract_fatal(int json, const char *msg) {
    fprintf(stderr, "bottleneck-extract: %s\n", msg);
    if (json) {
        bn_json_error(stdout, msg);
    }
}

/* bottleneck-extract layers: every tensor with its shape (per image: C, H,
 * W) and the op that writes it, at the model's input size. */
static int list_layers(const char *model_path, const char *weights_arg, int size, int json) {
    bn_error err;
    bn_error_clear(&err);
    bn_graph *g = NULL;
    char wpath[4096];
    int rc;
    if (model_path) {
        bn_onnx_info info;
        rc = bn_onnx_load(&g, model_path, &info, &err);
        if (!size)
            size = info.image.size;
    } else {
        bn_vgg16_weights w;
        rc = bn_weights_locate(wpath, sizeof wpath, weights_arg, &err);
        if (!rc)
            rc = bn_weights_load(&w, wpath, &err);
        if (!rc) {
            rc = bn_vgg16_build_graph(&g, &w, BN_LAYER_BLOCK5_POOL, &err);
            bn_weights_free(&w);
        }
        if (!size)
            size = 224;
    }
    if (!rc)
        rc = bn_graph_infer(g, size, size, &err);
    if (rc) {
        extract_fatal(json, err.msg);
        bn_graph_free(g);
        return EXIT_FATAL;
    }
    const char *def = bn_graph_default_feature(g);
    if (json) {
        printf("{\"size\":%d,\"default\":", size);
        bn_json_string(stdout, def);
        printf(",\"tensors\":[");
    } else {
        printf("%-36s %-18s %s\n", "tensor", "op", "shape (C, H, W) at input size");
    }
    for (int i = 0; i < bn_graph_tensor_count(g); i++) {
        bn_shape s = bn_graph_tensor_shape(g, i);
        const char *name = bn_graph_tensor_name(g, i);
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            bn_json_string(stdout, name);
            printf(",\"op\":\"%s\",\"shape\":[%d,%d,%d]}", bn_graph_tensor_op(g, i), s.c, s.h, s.w);
        } else {
            printf("%-36s %-18s (%d, %d, %d)%s\n", name, bn_graph_tensor_op(g, i), s.c, s.h, s.w,
                   strcmp(name, def) ? "" : "  <- default --layer");
        }
    }
    if (json)
        printf("]}\n");
    bn_graph_free(g);
    return 0;
}

/* libvips' start, run beside the network's load (main). */
typedef struct {
    const char *argv0;
    int all_loaders;
    long long max_pixels;
    pthread_t thread;
    int rc;
    bn_error err;
} vips_start;

static void *vips_start_main(void *arg) {
    vips_start *v = arg;
    bn_error_clear(&v->err);
    v->rc = bn_image_init(v->argv0, &v->err);
    if (!v->rc) {
        bn_image_allow_untrusted(v->all_loaders);
        bn_image_set_max_pixels((uint64_t)v->max_pixels);
    }
    return NULL;
}

/* Everything the command line says, for an extract run or `layers`. */
typedef struct {
    const char *db_path, *weights_arg, *model_path, *dataset_name;
    const char *root;  /* DATASET_DIR, or NULL */
    bn_image_opts pre; /* --mean, --std, --channels, --scale */
    unsigned set;      /* which preprocessing flags were given */
    int layers, download, quiet, json, threads, all_loaders, keep_missing, verbose;
    int shard_k, shard_n;
    long long max_pixels;
    bn_extractor_opts o;
} extract_opts;

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
    OPT_MODEL,
    OPT_MEAN,
    OPT_STD,
    OPT_CHANNELS,
    OPT_SCALE,
    OPT_SELF_CHECK,
    OPT_SHARD,
    OPT_VERSION,
    OPT_DATASET,
    OPT_KEEP_MISSING,
    OPT_VERBOSE,
    OPT_PRECISION
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
    {"precision", required_argument, 0, OPT_PRECISION},
    {"batch", required_argument, 0, OPT_BATCH},
    {"threads", required_argument, 0, OPT_THREADS},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"json", no_argument, 0, OPT_JSON},
    {"all-loaders", no_argument, 0, OPT_ALL_LOADERS},
    {"max-pixels", required_argument, 0, OPT_MAX_PIXELS},
    {"model", required_argument, 0, OPT_MODEL},
    {"mean", required_argument, 0, OPT_MEAN},
    {"std", required_argument, 0, OPT_STD},
    {"channels", required_argument, 0, OPT_CHANNELS},
    {"scale", required_argument, 0, OPT_SCALE},
    {"self-check", required_argument, 0, OPT_SELF_CHECK},
    {"shard", required_argument, 0, OPT_SHARD},
    {"help", no_argument, 0, OPT_HELP},
    {"version", no_argument, 0, OPT_VERSION},
    {"dataset", required_argument, 0, OPT_DATASET},
    {"keep-missing", no_argument, 0, OPT_KEEP_MISSING},
    {"verbose", no_argument, 0, OPT_VERBOSE},
    {0, 0, 0, 0},
};

/* The options that choose the features (the model's input and what is kept
 * of its output); 0 if c is not one of them. Usage errors exit 2. */
static int set_feature_option(extract_opts *a, int c, const char *arg) {
    switch (c) {
    case OPT_LAYER: a->o.tensor = arg; break;
    case OPT_MEAN:
    case OPT_STD:
        if (parse3(arg, c == OPT_MEAN ? a->pre.mean : a->pre.std))
            usage_error("%s: expected three numbers A,B,C (std non-zero)", arg);
        a->set |= c == OPT_MEAN ? SET_MEAN : SET_STD;
        break;
    case OPT_CHANNELS:
        if (strcmp(arg, "rgb") && strcmp(arg, "bgr"))
            usage_error("--channels %s: expected rgb or bgr", arg);
        a->pre.bgr = !strcmp(arg, "bgr");
        a->set |= SET_CHANNELS;
        break;
    case OPT_SCALE:
        if (strcmp(arg, "0-255") && strcmp(arg, "0-1"))
            usage_error("--scale %s: expected 0-255 or 0-1", arg);
        a->pre.range255 = !strcmp(arg, "0-255");
        a->set |= SET_SCALE;
        break;
    case OPT_POOLING:
        if (bn_vgg16_pooling_parse(arg, &a->o.pooling))
            usage_error("--pooling %s: expected none, avg or max", arg);
        break;
    case OPT_SIZE:
        a->o.image.size = parse_int(arg, "--size");
        a->set |= SET_SIZE;
        break;
    case OPT_RESIZE:
        if (bn_image_resize_parse(arg, &a->o.image.resize))
            usage_error("--resize %s: expected squash or crop", arg);
        a->set |= SET_RESIZE;
        break;
    case OPT_PREPROCESS:
        if (bn_image_preprocess_parse(arg, &a->o.image.preprocess))
            usage_error("--preprocess %s: expected caffe or torch", arg);
        a->set |= SET_PREPROCESS;
        break;
    case OPT_DTYPE:
        if (strcmp(arg, "f32") && strcmp(arg, "f16"))
            usage_error("--dtype %s: expected f32 or f16", arg);
        a->o.dtype = arg;
        break;
    default: return 0;
    }
    return 1;
}

/* --shard K/N */
static void parse_shard(extract_opts *a, const char *arg) {
    char *end;
    long k = strtol(arg, &end, 10), n = 0;
    if (end != arg && *end == '/' && end[1]) {
        char *end2;
        n = strtol(end + 1, &end2, 10);
        if (*end2)
            n = 0;
    }
    if (n < 1 || n > 1 << 20 || k < 1 || k > n)
        usage_error("--shard %s: expected K/N with 1 <= K <= N (e.g. 2/8)", arg);
    a->shard_k = (int)k;
    a->shard_n = (int)n;
}

/* One option (not --help or --version) into a; usage errors exit 2. */
static void set_option(extract_opts *a, int c, const char *arg, char **argv) {
    if (set_feature_option(a, c, arg))
        return;
    switch (c) {
    case OPT_DB: a->db_path = arg; break;
    case OPT_WEIGHTS: a->weights_arg = arg; break;
    case OPT_DOWNLOAD: a->download = 1; break;
    case OPT_MODEL: a->model_path = arg; break;
    case OPT_CONV:
        if (bn_conv_engine_parse(arg, &a->o.engine))
            usage_error("--conv %s: expected auto, direct or winograd", arg);
        break;
    case OPT_PRECISION:
        if (bn_precision_parse(arg, &a->o.precision))
            usage_error("--precision %s: expected fp32, fast, bf16, fp16 or amx", arg);
        break;
    case OPT_BATCH: a->o.batch = parse_int(arg, "--batch"); break;
    case OPT_THREADS: a->threads = parse_int(arg, "--threads"); break;
    case OPT_ALL_LOADERS: a->all_loaders = 1; break;
    case OPT_SELF_CHECK: a->o.self_check = parse_int(arg, "--self-check"); break;
    case OPT_SHARD: parse_shard(a, arg); break;
    case OPT_MAX_PIXELS: {
        char *end;
        a->max_pixels = strtoll(arg, &end, 10);
        if (!*arg || *end || a->max_pixels < 1)
            usage_error("--max-pixels %s: expected a positive integer", arg);
        break;
    }
    case OPT_QUIET: a->quiet = 1; break;
    case OPT_JSON: a->json = 1; break;
    case OPT_DATASET: a->dataset_name = arg; break;
    case OPT_KEEP_MISSING: a->keep_missing = 1; break;
    case OPT_VERBOSE: a->verbose = 1; break;
    default: usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
    }
}

/* The command line (after a `layers`) into a: -1 to go on, else the exit
 * status (--help, --version). Usage errors exit 2. */
static int parse_options(int argc, char **argv, extract_opts *a) {
    memset(a, 0, sizeof *a);
    a->db_path = "bottleneck.db";
    bn_extractor_opts_default(&a->o);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h' || c == OPT_HELP) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (c == OPT_VERSION) {
            puts("bottleneck-extract " BN_VERSION);
            return 0;
        }
        set_option(a, c, optarg, argv);
    }
    if (a->o.image.size % 32 != 0 && !a->model_path) {
        char size[16];
        snprintf(size, sizeof size, "%d", a->o.image.size);
        usage_error("--size %s: VGG16 needs a multiple of 32 (224, 256, 64, ...)", size);
    }
    if (optind < argc - 1)
        usage_error("one dataset folder expected, got '%s' and more", argv[optind + 1]);
    a->root = optind < argc ? argv[optind] : NULL;
    return -1;
}

/* --download (into the cache), else where the weights are; nothing to find
 * for --model. 0, or EXIT_FATAL with the message printed. */
static int find_weights(const extract_opts *a, char *path, size_t cap, bn_error *err) {
    if (a->download) {
        /* into the cache, or into the file --weights names */
        bn_progress bar;
        bn_progress_start(&bar, stderr, "download", "MiB", 0, a->quiet);
        int rc = a->weights_arg
                     ? bn_weights_download_to(a->weights_arg, 0, NULL, download_progress, &bar, err)
                     : bn_weights_download(path, cap, NULL, download_progress, &bar, err);
        if (!rc && a->weights_arg && snprintf(path, cap, "%s", a->weights_arg) >= (int)cap)
            rc = bn_fail(err, BN_EINVAL, "%s: path is too long", a->weights_arg);
        if (rc) {
            extract_fatal(a->json, err->msg);
            return EXIT_FATAL;
        }
        bn_progress_finish(&bar);
        if (!a->quiet)
            fprintf(stderr, "weights: %s\n", path);
    } else if (!a->model_path && bn_weights_locate(path, cap, a->weights_arg, err)) {
        extract_fatal(a->json, err->msg);
        return EXIT_FATAL;
    }
    return 0;
}

/* The images of a->root (of the shard, for --shard). 0, or EXIT_FATAL with
 * the message printed. */
static int scan_dataset(extract_opts *a, bn_dataset *ds, bn_error *err) {
    if (bn_dataset_scan(ds, a->root, err)) {
        extract_fatal(a->json, err->msg);
        return EXIT_FATAL;
    }
    size_t whole = ds->n;
    if (a->shard_n > 0) {
        bn_dataset_keep_shard(ds, a->shard_k, a->shard_n);
        /* The other shards' images are not missing from the folder: a shard
         * run must never remove their rows from a database that holds them. */
        a->keep_missing = 1;
    }
    if (a->shard_n > 0 && !a->quiet)
        fprintf(stderr, "%s: shard %d/%d: %zu of %zu images\n", a->root, a->shard_k, a->shard_n,
                ds->n, whole);
    if (whole == 0) {
        /* Photos dropped straight into the folder are the usual case: say
         * that they were seen, and why they do not count. */
        if (ds->nignored > 0)
            fprintf(stderr,
                    "bottleneck-extract: %s: no images in class folders (%zu file%s ignored, "
                    "such as %s: outside a class folder, or not an image by its extension); "
                    "expected class folders such as %s/cat/*.jpg or %s/train/cat/*.jpg\n",
                    a->root, ds->nignored, ds->nignored == 1 ? "" : "s", ds->ignored[0], a->root,
                    a->root);
        else
            fprintf(stderr,
                    "bottleneck-extract: %s: no images found (expected class folders such as "
                    "%s/cat/*.jpg or %s/train/cat/*.jpg)\n",
                    a->root, a->root, a->root);
        bn_dataset_free(ds);
        return EXIT_FATAL;
    }

    /* A folder named like a split with images straight inside is taken as a
     * class of that name (dataset.h): right for a class called "test",
     * wrong for a split without class folders, which then trains "train"
     * against "validation". Say which it was taken for. */
    const char *said = NULL;
    for (size_t i = 0; i < ds->n && !a->quiet; i++) {
        const bn_item *it = &ds->items[i];
        if (it->split || !bn_dataset_is_split_name(it->label) ||
            (said && strcmp(said, it->label) == 0))
            continue;
        said = it->label;
        fprintf(stderr,
                "bottleneck-extract: note: %s/%s has no class folders: its images are the "
                "class '%s' (a split holds class folders: %s/%s/cat/*.jpg)\n",
                a->root, it->label, it->label, a->root, it->label);
    }

    /* Buffers for the images there are, not for a whole batch: a fresh
     * process pays for every page it first touches (docs/PERFORMANCE.md,
     * Start-up). The batch size never changes a vector. */
    if (ds->n > 0 && ds->n < (size_t)a->o.batch) /* a shard may be empty */
        a->o.batch = (int)ds->n;
    return 0;
}

/* The network to run, until the extractor takes it. */
typedef struct {
    bn_graph *g;
    bn_extractor_model m; /* m.exact: the --self-check graph */
    char name[256], abs_path[4096], sha[65];
} network;

/* Load the network, start libvips beside it, infer the shapes and check the
 * input and the --layer. 0, or non-zero with the problem in err (n->g and
 * n->m.exact may still hold graphs to free). */
static int load_network(extract_opts *a, const char *argv0, const char *weights_path, network *n,
                        bn_error *err) {
    /* libvips starts (30-80 ms: it loads its modules) on another thread
     * while the network loads; nothing decodes before the join below. */
    vips_start vs = {.argv0 = argv0, .all_loaders = a->all_loaders, .max_pixels = a->max_pixels};
    int vips_thread = pthread_create(&vs.thread, NULL, vips_start_main, &vs) == 0;
    if (!vips_thread)
        vips_start_main(&vs);
    int rc = open_network(a->model_path, weights_path, &a->o, &a->pre, a->set, &n->g, &n->m,
                          n->name, n->abs_path, n->sha, err);
    if (vips_thread)
        pthread_join(vs.thread, NULL);
    if (vs.rc && !rc) {
        *err = vs.err;
        rc = vs.rc;
    }
    const bn_extractor_opts *o = &a->o;
    return rc || bn_graph_infer(n->g, o->image.size, o->image.size, err) ||
           (bn_graph_tensor_shape(n->g, 0).c != 3 &&
            bn_fail(err, BN_EINVAL, "%s: its input has %d channels; images have 3", n->m.model,
                    bn_graph_tensor_shape(n->g, 0).c)) ||
           (bn_graph_find(n->g, o->tensor) < 0 &&
            bn_fail(err, BN_EINVAL,
                    "--layer %s: %s has no tensor of that name (bottleneck-extract layers lists "
                    "them)",
                    o->tensor, n->m.model));
}

/* What a run did: the summary line and the JSON say it. */
typedef struct {
    bn_dataset_info dsi;
    char root_abs[PATH_MAX];
    bn_extractor_stats st;
    bn_sync_stats sy;
    int rc;
    bn_error err;
} run_result;

/* SIGINT (Ctrl-C) and SIGTERM (kill, a batch system's time limit) while
 * images are extracted: the batch in hand is finished and committed, the run
 * reports and exits 128 + the signal; the same command resumes. Not before
 * the run (nothing to keep yet) nor after it. One-shot (SA_RESETHAND): a
 * second signal ends the process at once, losing the batch in hand, as a
 * SIGKILL would. A SIGINT ignored from the start (a background job of a
 * non-interactive shell) stays ignored. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    stop_signal = sig;
}

static void catch_stop_signals(int on) {
    static struct sigaction old_int, old_term;
    static int int_caught;
    if (!on) {
        if (int_caught)
            sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART | SA_RESETHAND; /* no EINTR from reads and SQLite */
    sigemptyset(&sa.sa_mask);
    int_caught = sigaction(SIGINT, NULL, &old_int) == 0 && old_int.sa_handler != SIG_IGN;
    if (int_caught)
        sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, &old_term);
}

/* Sync, extract, sync again, pack: res->rc and res->err say how it ended. */
static void run_and_sync(const extract_opts *a, bn_store *store, bn_extractor *x, bn_dataset *ds,
                         run_result *res) {
    run_ctx r;
    bn_progress_start(&r.bar, stderr, "extract", "img", (long)ds->n, a->quiet);
    memset(&res->sy, 0, sizeof res->sy);
    memset(&res->st, 0, sizeof res->st);
    int rc = bn_sync_begin(store, res->dsi.id, &res->err);
    if (rc == BN_OK) {
        catch_stop_signals(1);
        rc = bn_extractor_run(x, ds, extract_progress, &r, &res->st, &res->err);
        catch_stop_signals(0);
    }
    bn_progress_finish(&r.bar);
    /* Only a run that saw every file may remove the rows of files not seen. */
    if (rc == BN_OK)
        rc = bn_sync_finish(store, res->dsi.id, ds, a->keep_missing, &res->sy, &res->err);
    if (rc == BN_OK)
        extract_pack_store(store, "bottleneck-extract", a->quiet);
    res->rc = rc;
}

static double images_per_second(const bn_extractor_stats *st) {
    return st->seconds > 0 ? (double)st->extracted / st->seconds : 0;
}

/* --verbose: each file ignored, and why. */
static void print_ignored(const extract_opts *a, const bn_dataset *ds) {
    for (size_t i = 0; i < ds->nignored; i++)
        fprintf(stderr, "ignored: %s/%s (%s)\n", a->root, ds->ignored[i],
                strchr(ds->ignored[i], '/') && bn_dataset_is_image_name(ds->ignored[i])
                    ? "outside the class folders"
                : bn_dataset_is_image_name(ds->ignored[i])
                    ? "at the dataset root, outside any class folder"
                    : "not an image by its extension");
}

/* The summary line on stderr. */
static void print_summary(const extract_opts *a, const bn_dataset *ds, bn_extractor *x,
                          const run_result *res) {
    const bn_extractor_stats *st = &res->st;
    const bn_sync_stats *sy = &res->sy;
    if (res->rc) /* the sync's counts come after a whole run: none to give */
        fprintf(stderr,
                "%s: dataset '%s' (%s): stopped after %ld of %ld images: %ld skipped "
                "(unchanged), %ld failed",
                a->db_path, res->dsi.name, res->root_abs, st->images, st->total, st->skipped,
                st->failed);
    else
        fprintf(stderr,
                "%s: dataset '%s' (%s): %ld images: %ld added, %ld moved, %ld relabelled, "
                "%ld changed, %ld removed, %ld skipped (unchanged), %ld failed",
                a->db_path, res->dsi.name, res->root_abs, st->images, sy->added, sy->moved,
                sy->relabelled, sy->changed, sy->removed, st->skipped, st->failed);
    if (a->keep_missing)
        fprintf(stderr, ", %ld missing (kept)", sy->missing);
    if (ds->nignored)
        fprintf(stderr, ", %zu ignored (not images, or outside class folders%s)", ds->nignored,
                a->verbose ? "" : "; --verbose lists them");
    fprintf(stderr,
            "; %ld computed, %ld reused (same content); %.1f s, %.2f images/s; feature set %s "
            "(id %lld, dim %d)\n",
            st->extracted, st->reused, st->seconds, images_per_second(st),
            bn_extractor_featureset_name(x), (long long)bn_extractor_featureset(x),
            bn_extractor_dim(x));
}

/* --json: the summary on stdout. */
static void print_json(const extract_opts *a, const bn_dataset *ds, bn_extractor *x,
                       const run_result *res) {
    const bn_extractor_stats *st = &res->st;
    const bn_sync_stats *sy = &res->sy;
    printf("{\"db\":");
    bn_json_string(stdout, a->db_path);
    printf(",\"dataset\":");
    bn_json_string(stdout, res->dsi.name);
    printf(",\"dataset_id\":%lld,\"root\":", (long long)res->dsi.id);
    bn_json_string(stdout, res->root_abs);
    printf(",\"featureset\":");
    bn_json_string(stdout, bn_extractor_featureset_name(x));
    printf(",\"featureset_id\":%lld,\"dim\":%d,\"dtype\":\"%s\",\"images\":%ld,"
           "\"added\":%ld,\"moved\":%ld,\"relabelled\":%ld,\"changed\":%ld,\"removed\":%ld,"
           "\"skipped\":%ld,\"failed\":%ld,\"missing\":%ld,\"ignored\":%zu,"
           "\"extracted\":%ld,\"reused\":%ld,"
           /* the parts of seconds in microseconds: a small run's SQLite
            * writes take less than the millisecond %.3f would show */
           "\"seconds\":%.3f,\"network_seconds\":%.6f,\"store_seconds\":%.6f,"
           "\"wait_seconds\":%.6f,\"images_per_second\":%.3f,"
           "\"precision\":\"%s\",\"ok\":%s",
           (long long)bn_extractor_featureset(x), bn_extractor_dim(x), a->o.dtype, st->images,
           sy->added, sy->moved, sy->relabelled, sy->changed, sy->removed, st->skipped, st->failed,
           sy->missing, ds->nignored, st->extracted, st->reused, st->seconds, st->network_seconds,
           st->store_seconds, st->wait_seconds, images_per_second(st), bn_extractor_precision(x),
           res->rc ? "false" : "true");
    printf(",\"precision_note\":");
    bn_json_string(stdout, bn_extractor_precision_note(x));
    if (a->verbose) {
        printf(",\"ignored_files\":[");
        for (size_t i = 0; i < ds->nignored; i++) {
            if (i)
                putchar(',');
            bn_json_string(stdout, ds->ignored[i]);
        }
        putchar(']');
    }
    if (res->rc) {
        printf(",\"error\":");
        bn_json_string(stdout, res->err.msg);
    }
    printf("}\n");
}

/* The database, the extractor (which takes the network's graphs), the run and
 * its report. The exit status; the graphs are freed either way. */
static int run_extract(const extract_opts *a, bn_dataset *ds, network *net) {
    bn_store *store = NULL;
    bn_extractor *x = NULL;
    int status = EXIT_FATAL;
    run_result res;
    memset(&res, 0, sizeof res);
    bn_error_clear(&res.err);
    if (!realpath(a->root, res.root_abs)) {
        char msg[4200];
        snprintf(msg, sizeof msg, "%s: cannot resolve the folder's path", a->root);
        extract_fatal(a->json, msg);
        goto done;
    }
    if (bn_store_open(&store, a->db_path, BN_STORE_CREATE, &res.err)) {
        extract_fatal(a->json, res.err.msg);
        goto done;
    }
    if (!a->quiet)
        extract_warn_unverified(store, a->db_path, "bottleneck-extract");
    if (bn_datasets_for_folder(store, a->dataset_name, res.root_abs, ds, a->keep_missing, &res.dsi,
                               &res.err)) {
        extract_fatal(a->json, res.err.msg);
        goto done;
    }
    /* The extractor owns the graphs from here on, or has freed them. */
    int created = bn_extractor_create_graph(&x, store, net->g, &net->m, &a->o, &res.err);
    net->g = NULL;
    net->m.exact = NULL;
    if (created) {
        extract_fatal(a->json, res.err.msg);
        goto done;
    }
    ds->id = res.dsi.id;
    if (!a->quiet && a->o.precision != BN_PRECISION_FP32)
        fprintf(stderr, "precision: %s\n", bn_extractor_precision_note(x));
    run_and_sync(a, store, x, ds, &res);
    if (res.rc == BN_EINTR) {
        fprintf(stderr,
                "bottleneck-extract: interrupted by %s: the %ld images this run stored are kept; "
                "the same command resumes\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", res.st.extracted + res.st.reused);
        status = 128 + stop_signal;
    } else if (res.rc) {
        fprintf(stderr, "bottleneck-extract: %s (%ld images stored before the error are kept)\n",
                res.err.msg, res.st.extracted + res.st.reused);
    } else {
        status = res.st.failed > 0 ? EXIT_SOME_FAILED : 0;
    }
    if (a->verbose && !a->quiet)
        print_ignored(a, ds);
    if (!a->quiet)
        print_summary(a, ds, x, &res);
    if (res.st.failed > 0 && !a->quiet)
        fprintf(stderr, "%ld input%s failed: sqlite3 %s 'SELECT path, reason FROM failures'\n",
                res.st.failed, res.st.failed == 1 ? "" : "s", a->db_path);
    if (a->json)
        print_json(a, ds, x, &res);
done:
    bn_extractor_free(x);
    bn_graph_free(net->g); /* not yet handed to an extractor: an error came first */
    bn_graph_free(net->m.exact);
    net->g = NULL;
    net->m.exact = NULL;
    bn_store_close(store);
    return status;
}

int main(int argc, char **argv) {
    bn_cpu_blas_use_best_kernels(argv);
    if (argc > 1 && strcmp(argv[1], "import") == 0)
        return extract_import_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "verify") == 0)
        return extract_verify_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "merge") == 0)
        return extract_merge_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "export") == 0)
        return extract_export_main(argc, argv);
    int layers = argc > 1 && strcmp(argv[1], "layers") == 0;
    if (layers) { /* bottleneck-extract layers [options]: the options after it */
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    extract_opts a;
    int status = parse_options(argc, argv, &a);
    if (status >= 0)
        return status;
    if (layers)
        return list_layers(a.model_path, a.weights_arg, a.set & SET_SIZE ? a.o.image.size : 0,
                           a.json);
    if (!a.root && !a.download)
        usage_error("%s", "no dataset folder given");

    /* Past a file size limit (ulimit -f) a write should fail with EFBIG and
     * be reported like a full disk, not kill us with SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);

    bn_error err;
    bn_error_clear(&err);
    if (a.threads > 0)
        bn_cpu_set_threads(a.threads);
    char weights_path[4096];
    if (find_weights(&a, weights_path, sizeof weights_path, &err))
        return EXIT_FATAL;
    if (!a.root)
        return 0;

    /* Check the cheap things first: a wrong folder should not cost a
     * weights load. */
    bn_dataset ds;
    if (scan_dataset(&a, &ds, &err))
        return EXIT_FATAL;

    /* The network and the tensor, before the database: a bad model file or
     * layer name changes nothing on disk. */
    network net;
    memset(&net, 0, sizeof net);
    if (load_network(&a, argv[0], weights_path, &net, &err)) {
        bn_graph_free(net.g);
        bn_graph_free(net.m.exact);
        extract_fatal(a.json, err.msg);
        bn_dataset_free(&ds);
        return EXIT_FATAL;
    }
    a.o.interrupt = &stop_signal;
    status = run_extract(&a, &ds, &net);
    bn_dataset_free(&ds);
    bn_image_shutdown();
    return status;
}

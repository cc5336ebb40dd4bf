/*
 * bottleneck-classify: train, compare and apply output layers on the feature
 * vectors bottleneck-extract stored (or that were imported).
 *
 * A thin program: this file parses the command line and dispatches; the
 * commands live in cmd_*.c and the work in common/ (featureset.c loads
 * vectors, train.c trains, metrics.c measures, runs.c stores).
 *
 * It is the main of two programs (classify/meson.build): bottleneck-classify,
 * without the image code, whose predict and report exec the other
 * (forward.c), and bottleneck-classify-images, with every command.
 *
 * Exit codes: 0 success; 1 error (a bad value, an unknown feature set or
 * run, an empty split, ...: nothing is stored); 2 usage error; 3 predict on
 * image files finished but some could not be read.
 */
#include "classify.h"
#include "cpu.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char help_head[] =
    "usage: bottleneck-classify [train] [options]\n"
    "       bottleneck-classify runs [options]\n"
    "       bottleneck-classify show RUN [options]\n"
    "       bottleneck-classify predict --run ID [--split S] [options]\n"
    "       bottleneck-classify predict --run ID IMAGE_OR_FOLDER... [options]\n"
    "       bottleneck-classify report [--run N | --sweep S | --runs 3,7,9] [-o FILE] [options]\n"
    "\n"
    "Train, compare and apply output layers (logistic regression / softmax heads) on the\n"
    "feature vectors stored by bottleneck-extract or bottleneck-extract import. Every\n"
    "training is a run kept in the database with its hyperparameters, metrics and weights.\n"
    "\n"
    "Commands (bottleneck-classify COMMAND --help: its options and examples):\n"
    "  train (default)      train one head per hyperparameter combination, choose the best\n"
    "                       on the validation split or by cross-validation, report\n"
    "  runs                 list the stored runs, one line each\n"
    "  show RUN             one run: hyperparameters, training, metrics per split\n"
    "  predict              apply a run's head to a stored split (predictions are stored,\n"
    "                       see the run_predictions view) or to image files and folders\n"
    "  report               one self-contained HTML file about a run, a sweep or several\n"
    "                       runs: metrics, curves, confusion, calibration, embedding map,\n"
    "                       the most confident mistakes with thumbnails\n"
    "\n";

static const char help_common[] =
    "Common options:\n"
    "  --db FILE            the database (default: bottleneck.db)\n"
    "  --json               machine-readable output (one JSON object) on stdout\n"
    "  --quiet              no progress or notes on stderr\n"
    "  -h, --help           this text (after a command: that command's options)\n"
    "  --version            print the version\n"
    "\n";

static const char help_train[] =
    "train, data:\n"
    "  --features NAME|ID   feature set (default: the only one in the database)\n"
    "  --dataset NAME       dataset to train on (default: the only one with vectors in the\n"
    "                       feature set)\n"
    "  --train SPLIT        training split (default: train; a dataset without split folders\n"
    "                       trains on all its rows, scored by 5-fold cross-validation unless\n"
    "                       --folds or --holdout says otherwise)\n"
    "  --valid SPLIT        validation split, to choose among candidates and for early\n"
    "                       stopping (default: validation, when the feature set has it;\n"
    "                       'none': no validation split)\n"
    "  --test SPLIT         split reported for the final model only (default: test, when\n"
    "                       present; 'none')\n"
    "  --folds K            choose by stratified K-fold cross-validation within the training\n"
    "                       split instead; the chosen hyperparameters are then trained on the\n"
    "                       whole training split\n"
    "  --holdout F          hold out the fraction F of the training rows (stratified, by\n"
    "                       --seed) as the validation rows, 'holdout'; which rows were held\n"
    "                       out is recorded (predict --run N --split holdout)\n"
    "\n"
    "train, model (LIST: comma-separated values; every combination is a candidate run):\n"
    "  --C LIST             inverse L2 strength, scikit-learn's C (default: 1). The head\n"
    "                       minimises 0.5*||W||^2 + C * sum_i sw_i * loss_i (cross-entropy,\n"
    "                       intercept not penalised): LogisticRegression(penalty='l2')\n"
    "  --l2 LIST            L2 strength L instead of --C: C = 1/L. (Keras' l2(lambda) on the\n"
    "                       mean loss of n rows is L = 2 * n * lambda.)\n"
    "  --class-weight LIST  none (default) | balanced: sw = n / (classes * n_class)\n"
    "  --standardize[=LIST] standardise each feature (mean 0, variance 1, fitted on the\n"
    "                       training rows, folded into the stored weights); alone: yes;\n"
    "                       --standardize=no,yes tries both (default: no)\n"
    "  --solver NAME        lbfgs (default; to the optimum) | newton (two classes, dim <=\n"
    "                       4096; LAPACK) | sgd | adam (mini-batches, as Keras)\n"
    "  --max-iter N         lbfgs/newton iteration limit (default: 1000)\n"
    "  --tol T              lbfgs/newton: stop when max |gradient of f/C| <= T (default: 1e-4,\n"
    "                       scikit-learn's criterion)\n"
    "  --epochs N           sgd/adam: at most N passes over the training rows (default: 100)\n"
    "  --lr LIST            sgd/adam learning rate (default: 0.001)\n"
    "  --batch-size LIST    sgd/adam mini-batch size (default: 32)\n"
    "  --patience N         sgd/adam: stop after N epochs without a lower validation log\n"
    "                       loss and keep the best epoch (default: 5; needs a validation\n"
    "                       split; with --folds, candidates run all --epochs)\n"
    "  --seed N             shuffling and fold assignment (default: 0; same seed, same run)\n"
    "\n"
    "train, selection:\n"
    "  --select METRIC      accuracy (default) | log_loss | roc_auc | f1_macro |\n"
    "                       precision_macro | recall_macro; ties go to the lower log loss,\n"
    "                       then to the earlier candidate\n"
    "  --refit              train the chosen hyperparameters again on train + validation and\n"
    "                       keep that as the final run (sgd/adam: for the chosen run's best\n"
    "                       number of epochs)\n"
    "  --note TEXT          free text stored with the runs\n"
    "\n"
    "Examples:\n"
    "  bottleneck-classify --db catsdogs.db --C 0.001,0.01,0.1,1 --standardize\n"
    "  bottleneck-classify --db pets.db --dataset pets --holdout 0.2 --seed 1 --C 0.1,1\n"
    "\n";

static const char help_runs[] =
    "runs:\n"
    "  --split S            split whose metrics are shown, sorted and filtered on (default:\n"
    "                       validation; cv for cross-validation scores, holdout, train, ...)\n"
    "  --sort KEY           id (default: newest first), accuracy, log_loss, roc_auc, f1_macro,\n"
    "                       precision_macro, recall_macro (best first), C, seconds, sweep,\n"
    "                       featureset, dataset, solver, ...; -KEY reverses\n"
    "  --filter EXPR        KEY OP VALUE with OP one of = != < <= > >=, repeatable (all must\n"
    "                       hold). KEY: featureset, dataset (= takes glob patterns: 'vgg16*'),\n"
    "                       solver, role, class_weight, standardize, chosen (yes/no), C,\n"
    "                       seconds, id, sweep, or a metric: --filter 'accuracy>=0.98'\n"
    "  --limit N            the first N rows after sorting (--limit 10: the last ten runs)\n"
    "  --dataset NAME       the runs trained on that dataset (--filter dataset=NAME)\n"
    "\n"
    "Examples:\n"
    "  bottleneck-classify --db catsdogs.db runs --sort accuracy --limit 10\n"
    "  bottleneck-classify --db catsdogs.db runs --split cv --filter chosen=yes\n"
    "\n";

static const char help_show[] = "show RUN: the run with that id (--json for everything as JSON).\n"
                                "\n"
                                "Example:\n"
                                "  bottleneck-classify --db catsdogs.db show 3\n"
                                "\n";

static const char help_predict[] =
    "predict:\n"
    "  --run ID             the run whose head to apply\n"
    "  --split S            the images of split S of the run's dataset (default: every image\n"
    "                       of it with a vector in the run's feature set; 'holdout': the\n"
    "                       images its --holdout sweep held out); predictions replace\n"
    "                       earlier ones of the run\n"
    "  --dataset NAME       the images of another dataset\n"
    "  --features NAME|ID   apply the head to another feature set of the same dimension\n"
    "  IMAGE_OR_FOLDER...   files and folders to predict instead. An image already stored\n"
    "                       (same content, whatever its path) is used as stored; the others\n"
    "                       are extracted with the run's feature-set settings (the same\n"
    "                       network file: VGG16 weights or ONNX; not for imported feature\n"
    "                       sets) into the dataset 'predicted'. Images under class folders\n"
    "                       (FOLDER/cat/x.jpg) are labelled (cat), then metrics are printed;\n"
    "                       others have no label. One line per image, in path order\n"
    "  --weights FILE       VGG16 weights for that extraction (default: $BOTTLENECK_WEIGHTS,\n"
    "                       then the cache, as bottleneck-extract); must be the weights the\n"
    "                       feature set was extracted with\n"
    "  --threads N          compute threads for that extraction (default: all cores)\n"
    "\n"
    "Examples:\n"
    "  bottleneck-classify --db catsdogs.db predict --run 3 --split validation\n"
    "  bottleneck-classify --db catsdogs.db predict --run 3 new_photos/\n"
    "\n";

static const char help_report[] =
    "report:\n"
    "  --run N              one run (with its sweep's validation curve when it was chosen\n"
    "                       among several candidates)\n"
    "  --sweep S            a sweep: its validation curve and its final (or chosen) run\n"
    "  --runs LIST          several runs overlaid, e.g. --runs 3,7 (VGG16 against GoogLeNet)\n"
    "                       (none of the three: the latest sweep)\n"
    "  -o, --output FILE    the HTML file (default: report-run-N.html, report-sweep-S.html,\n"
    "                       report-runs-A-B.html); written to a temporary name, then renamed\n"
    "  --split S            the evaluated split (default: validation or test, whichever the\n"
    "                       run did not train on)\n"
    "  --images DIR         the dataset folder the stored paths are relative to, for the\n"
    "                       thumbnails (without it, placeholders)\n"
    "  --gallery N          at most N mistakes shown (default 24)\n"
    "\n"
    "Example:\n"
    "  bottleneck-classify --db catsdogs.db report --run 3 --images data/catsdogs\n"
    "\n";

static const char help_tail[] =
    "Exit status: 0 success; 1 error (nothing stored); 2 usage error; 3 predict: some\n"
    "image files could not be read.\n";

/* The global help (cmd < 0), or one command's. */
static void print_help(int cmd) {
    static const char *const sections[] = {help_train, help_runs, help_show, help_predict,
                                           help_report};
    fputs(help_head, stdout);
    fputs(help_common, stdout);
    for (int c = 0; c < (int)(sizeof sections / sizeof *sections); c++)
        if (cmd < 0 || cmd == c)
            fputs(sections[c], stdout);
    fputs(help_tail, stdout);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...) {
    fputs("bottleneck-classify: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'bottleneck-classify --help'.\n", stderr);
    exit(CL_EXIT_USAGE);
}

static int parse_count(const char *s, const char *flag, int min) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > 1 << 30)
        usage_error("%s %s: expected an integer >= %d", flag, s, min);
    return (int)v;
}

enum {
    O_DB = 256,
    O_JSON,
    O_QUIET,
    O_HELP,
    O_VERSION,
    O_FEATURES,
    O_TRAIN,
    O_VALID,
    O_TEST,
    O_FOLDS,
    O_C,
    O_L2,
    O_CLASS_WEIGHT,
    O_STANDARDIZE,
    O_SOLVER,
    O_MAX_ITER,
    O_TOL,
    O_EPOCHS,
    O_LR,
    O_BATCH_SIZE,
    O_PATIENCE,
    O_SEED,
    O_SELECT,
    O_REFIT,
    O_NOTE,
    O_SPLIT,
    O_SORT,
    O_FILTER,
    O_LIMIT,
    O_RUN,
    O_WEIGHTS,
    O_THREADS,
    O_DATASET,
    O_HOLDOUT,
    O_SWEEP,
    O_RUNS,
    O_OUTPUT,
    O_IMAGES,
    O_GALLERY,
    O_END
};

typedef enum { CMD_TRAIN, CMD_RUNS, CMD_SHOW, CMD_PREDICT, CMD_REPORT, NCOMMANDS } command;
static const char *const command_names[] = {"train", "runs", "show", "predict", "report"};

/* Which options each command accepts (a bit per command). */
#define T (1 << CMD_TRAIN)
#define R (1 << CMD_RUNS)
#define S (1 << CMD_SHOW)
#define P (1 << CMD_PREDICT)
#define E (1 << CMD_REPORT)
static const struct {
    struct option opt;
    int commands;
} options[] = {
    {{"db", required_argument, 0, O_DB}, T | R | S | P | E},
    {{"json", no_argument, 0, O_JSON}, T | R | S | P | E},
    {{"quiet", no_argument, 0, O_QUIET}, T | R | S | P | E},
    {{"help", no_argument, 0, O_HELP}, T | R | S | P | E},
    {{"version", no_argument, 0, O_VERSION}, T | R | S | P | E},
    {{"features", required_argument, 0, O_FEATURES}, T | P},
    {{"train", required_argument, 0, O_TRAIN}, T},
    {{"valid", required_argument, 0, O_VALID}, T},
    {{"test", required_argument, 0, O_TEST}, T},
    {{"folds", required_argument, 0, O_FOLDS}, T},
    {{"C", required_argument, 0, O_C}, T},
    {{"l2", required_argument, 0, O_L2}, T},
    {{"class-weight", required_argument, 0, O_CLASS_WEIGHT}, T},
    {{"standardize", optional_argument, 0, O_STANDARDIZE}, T},
    {{"solver", required_argument, 0, O_SOLVER}, T},
    {{"max-iter", required_argument, 0, O_MAX_ITER}, T},
    {{"tol", required_argument, 0, O_TOL}, T},
    {{"epochs", required_argument, 0, O_EPOCHS}, T},
    {{"lr", required_argument, 0, O_LR}, T},
    {{"batch-size", required_argument, 0, O_BATCH_SIZE}, T},
    {{"patience", required_argument, 0, O_PATIENCE}, T},
    {{"seed", required_argument, 0, O_SEED}, T},
    {{"select", required_argument, 0, O_SELECT}, T},
    {{"refit", no_argument, 0, O_REFIT}, T},
    {{"note", required_argument, 0, O_NOTE}, T},
    {{"split", required_argument, 0, O_SPLIT}, R | P | E},
    {{"sort", required_argument, 0, O_SORT}, R},
    {{"filter", required_argument, 0, O_FILTER}, R},
    {{"limit", required_argument, 0, O_LIMIT}, R},
    {{"run", required_argument, 0, O_RUN}, P | E},
    {{"weights", required_argument, 0, O_WEIGHTS}, P},
    {{"threads", required_argument, 0, O_THREADS}, P},
    {{"dataset", required_argument, 0, O_DATASET}, T | R | P},
    {{"holdout", required_argument, 0, O_HOLDOUT}, T},
    {{"sweep", required_argument, 0, O_SWEEP}, E},
    {{"runs", required_argument, 0, O_RUNS}, E},
    {{"output", required_argument, 0, O_OUTPUT}, E},
    {{"images", required_argument, 0, O_IMAGES}, E},
    {{"gallery", required_argument, 0, O_GALLERY}, E},
};
#undef T
#undef R
#undef S
#undef P
#undef E
#define NOPTIONS ((int)(sizeof options / sizeof options[0]))

/* The command is the first word that is not an option or an option's
 * value (so `--db x runs` works as `runs --db x`); none means train.
 * *cmd_at: its index in argv, 0 when none was given. */
static command find_command(int argc, char **argv, int *cmd_at) {
    command cmd = CMD_TRAIN;
    *cmd_at = 0;
    for (int i = 1; i < argc && !*cmd_at; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-o") == 0) { /* the one short option with a value */
            i++;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            const char *name = argv[i] + (argv[i][1] == '-' ? 2 : 1);
            if (strchr(name, '='))
                continue;
            for (int k = 0; k < NOPTIONS; k++)
                if (strcmp(options[k].opt.name, name) == 0 &&
                    options[k].opt.has_arg == required_argument)
                    i++;
            continue;
        }
        int found = 0;
        for (int c = 0; c < NCOMMANDS; c++)
            if (strcmp(argv[i], command_names[c]) == 0) {
                cmd = (command)c;
                found = 1;
            }
        if (!found && i == 1)
            usage_error("unknown command '%s' (expected train, runs, show, predict or report)",
                        argv[1]);
        if (found)
            *cmd_at = i;
        else
            break; /* a positional argument of train: reported below */
    }
    return cmd;
}

/* Defaults: the training ones from train.c (bn_train_opts_default). */
static void default_options(cl_opts *o, char **argv) {
    memset(o, 0, sizeof *o);
    o->argv0 = argv[0];
    o->argv = argv;
    o->db = "bottleneck.db";
    o->train = NULL; /* "train", or every row of a dataset without split folders */
    o->select = "accuracy";
    o->solver = "lbfgs";
    bn_train_opts dflt;
    bn_train_opts_default(&dflt);
    o->max_iter = dflt.max_iter;
    o->tol = dflt.tol;
    o->epochs = dflt.epochs;
    o->patience = dflt.patience;
    o->run = -1;
    o->gallery = 24;
}

/* Option c (a value of options[], named name) with its optarg into *o. */
static void set_option(cl_opts *o, int c, const char *name) {
    char *end;
    switch (c) {
    case O_DB: o->db = optarg; break;
    case O_JSON: o->json = 1; break;
    case O_QUIET: o->quiet = 1; break;
    case O_FEATURES: o->features = optarg; break;
    case O_TRAIN: o->train = optarg; break;
    case O_VALID: o->valid = optarg; break;
    case O_TEST: o->test = optarg; break;
    case O_FOLDS: o->folds = parse_count(optarg, "--folds", 2); break;
    case O_C: o->C = optarg; break;
    case O_L2: o->l2 = optarg; break;
    case O_CLASS_WEIGHT: o->class_weight = optarg; break;
    case O_STANDARDIZE: o->standardize = optarg ? optarg : "yes"; break;
    case O_SOLVER: o->solver = optarg; break;
    case O_MAX_ITER:
        o->max_iter = parse_count(optarg, "--max-iter", 1);
        o->lbfgs_only = o->lbfgs_only ? o->lbfgs_only : "--max-iter";
        break;
    case O_TOL:
        o->tol = strtod(optarg, &end);
        if (!*optarg || *end || !(o->tol >= 0))
            usage_error("--tol %s: expected a number >= 0", optarg);
        o->lbfgs_only = o->lbfgs_only ? o->lbfgs_only : "--tol";
        break;
    case O_EPOCHS:
        o->epochs = parse_count(optarg, "--epochs", 1);
        o->sgd_only = o->sgd_only ? o->sgd_only : "--epochs";
        break;
    case O_LR: o->lr = optarg; break;
    case O_BATCH_SIZE: o->batch_size = optarg; break;
    case O_PATIENCE:
        o->patience = parse_count(optarg, "--patience", 1);
        o->sgd_only = o->sgd_only ? o->sgd_only : "--patience";
        break;
    case O_SEED: {
        unsigned long long v = strtoull(optarg, &end, 10);
        if (!*optarg || *end || optarg[0] == '-')
            usage_error("--seed %s: expected a non-negative integer", optarg);
        o->seed = v;
        break;
    }
    case O_SELECT: o->select = optarg; break;
    case O_REFIT: o->refit = 1; break;
    case O_NOTE: o->note = optarg; break;
    case O_SPLIT: o->split = optarg; break;
    case O_SORT: o->sort = optarg; break;
    case O_FILTER:
        if (o->nfilters == CL_MAX_FILTERS)
            usage_error("at most %d --filter options", CL_MAX_FILTERS);
        o->filters[o->nfilters++] = optarg;
        break;
    case O_LIMIT: o->limit = parse_count(optarg, "--limit", 1); break;
    case O_RUN: o->run = parse_count(optarg, "--run", 1); break;
    case O_WEIGHTS: o->weights = optarg; break;
    case O_THREADS: o->threads = parse_count(optarg, "--threads", 1); break;
    case O_DATASET: o->dataset = optarg; break;
    case O_HOLDOUT:
        o->holdout = strtod(optarg, &end);
        if (!*optarg || *end || !(o->holdout > 0 && o->holdout < 1))
            usage_error("--holdout %s: expected a fraction between 0 and 1 (0.2: a fifth)", optarg);
        break;
    case O_SWEEP: o->sweep = parse_count(optarg, "--sweep", 1); break;
    case O_RUNS: o->runs_list = optarg; break;
    case O_OUTPUT: o->output = optarg; break;
    case O_IMAGES: o->images = optarg; break;
    case O_GALLERY: o->gallery = parse_count(optarg, "--gallery", 0); break;
    default: usage_error("unknown option '--%s'", name);
    }
}

/* What the options say together, and what each command needs. */
static void check_options(const cl_opts *o, command cmd) {
    if (o->C && o->l2)
        usage_error("--C and --l2 are two spellings of one setting: give one");
    if (o->select && !bn_metrics_known(o->select)) {
        char names[200] = "";
        for (int i = 0; i < BN_NMETRICS; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                     i == 0                 ? ""
                     : i == BN_NMETRICS - 1 ? " or "
                                            : ", ",
                     bn_metrics_defs[i].name);
        usage_error("--select %s: expected %s", o->select, names);
    }
    switch (cmd) {
    case CMD_TRAIN:
        if (o->nargs)
            usage_error("train takes no arguments ('%s'); optional values are written with '=', "
                        "as in --standardize=no",
                        o->args[0]);
        break;
    case CMD_RUNS:
        if (o->nargs)
            usage_error("runs takes no arguments ('%s')", o->args[0]);
        break;
    case CMD_SHOW: {
        if (o->nargs != 1)
            usage_error("show takes one run id: bottleneck-classify show RUN");
        char *end;
        long long id = strtoll(o->args[0], &end, 10);
        if (!*o->args[0] || *end || id < 1)
            usage_error("show %s: expected a run id (a positive integer)", o->args[0]);
        break;
    }
    case CMD_PREDICT:
        if (o->run < 0)
            usage_error("predict needs --run ID (list runs with: bottleneck-classify runs)");
        if (o->nargs && o->split)
            usage_error("predict takes --split or image files, not both");
        if (o->nargs && o->dataset)
            usage_error("predict takes --dataset or image files, not both (new files go to the "
                        "dataset 'predicted')");
        break;
    case CMD_REPORT:
        if (o->nargs)
            usage_error("report takes no arguments ('%s'): choose with --run, --sweep or --runs",
                        o->args[0]);
        if ((o->run > 0) + (o->sweep > 0) + (o->runs_list != NULL) > 1)
            usage_error("report: give one of --run, --sweep and --runs");
        break;
    default: break;
    }
}

int main(int argc, char **argv) {
    int cmd_at;
    command cmd = find_command(argc, argv, &cmd_at);
    /* predict runs the network: the same OpenBLAS kernels as bottleneck-extract
     * (which makes the same choice), so a vector computed here is the one
     * extract would store. train's BLAS calls run on one thread each, on the
     * pool's threads: OpenBLAS' own threads need not spin (cpu.h). */
    if (cmd == CMD_TRAIN)
        bn_cpu_blas_use_best_kernels_idle(argv);
    else
        bn_cpu_blas_use_best_kernels(argv);
    /* Past a file size limit (ulimit -f) a write should fail with EFBIG and
     * be reported like a full disk, not kill us with SIGXFSZ (as in extract). */
    signal(SIGXFSZ, SIG_IGN);
    struct option longopts[NOPTIONS + 1];
    for (int i = 0; i < NOPTIONS; i++)
        longopts[i] = options[i].opt;
    memset(&longopts[NOPTIONS], 0, sizeof longopts[NOPTIONS]);
    cl_opts o;
    default_options(&o, argv);
    o.args = calloc((size_t)argc, sizeof *o.args);
    /* getopt over argv without the command word. */
    char **av = calloc((size_t)argc + 1, sizeof *av);
    if (!o.args || !av)
        return cl_fail("out of memory");
    int ac = 0;
    av[ac++] = argv[0];
    for (int i = 1; i < argc; i++)
        if (i != cmd_at)
            av[ac++] = argv[i];
    opterr = 0;
    int c, idx;
    while ((c = getopt_long(ac, av, "-ho:", longopts, &idx)) != -1) {
        if (c == 1) { /* a positional argument, in order */
            o.args[o.nargs++] = optarg;
            continue;
        }
        if (c == 'h')
            c = O_HELP;
        if (c == '?' || c == ':')
            usage_error("unknown or incomplete option '%s'", av[optind - 1]);
        if (c == 'o')
            c = O_OUTPUT;
        int allowed = 0;
        const char *name = "?";
        for (int i = 0; i < NOPTIONS; i++)
            if (options[i].opt.val == c) {
                allowed = options[i].commands & (1 << cmd);
                name = options[i].opt.name;
            }
        if (!allowed)
            usage_error("--%s does not apply to '%s'", name, command_names[cmd]);
        if (c == O_HELP || c == O_VERSION) {
            if (c == O_HELP)
                print_help(cmd_at ? (int)cmd : -1);
            else
                fputs("bottleneck-classify " BN_VERSION "\n", stdout);
            free(o.args);
            free(av);
            return 0;
        }
        set_option(&o, c, name);
    }
    check_options(&o, cmd);
    cl_fail_json(o.json);
    int rc = cmd == CMD_TRAIN     ? cl_train(&o)
             : cmd == CMD_RUNS    ? cl_runs(&o)
             : cmd == CMD_SHOW    ? cl_show(&o)
             : cmd == CMD_PREDICT ? cl_predict(&o)
             : cmd == CMD_REPORT  ? cl_report(&o)
                                  : CL_EXIT_USAGE;
    free(o.args);
    free(av);
    return rc;
}

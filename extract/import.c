/*
 * import.c: `bottleneck-extract import`, the program part: options, usage,
 * and what was stored printed as a line on stderr or JSON on stdout. The work
 * (checks first, then one transaction) is common/importer.c.
 */
#include "import.h"
#include "json.h"
#include "pack.h"

#include "importer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_EXIT_FATAL 1
#define IMPORT_EXIT_USAGE 2

static const char import_usage[] =
    "usage: bottleneck-extract import --db FILE --name NAME --npy FILE.npy --index FILE.tsv\n"
    "                                 [--root DIR] [--model NAME] [--dtype f32|f16]\n"
    "\n"
    "Store vectors computed elsewhere (another network, another tool) as a feature set of\n"
    "their own, attached to the images they describe, so that bottleneck-classify and SQL\n"
    "use them exactly as extracted ones.\n"
    "\n"
    "  --db FILE        SQLite database to create or extend (default: bottleneck.db)\n"
    "  --name NAME      name of the feature set (e.g. googlenet). Importing again under the\n"
    "                   same name adds or replaces vectors of that set (same dim required)\n"
    "  --npy FILE       the vectors: float32, shape (rows, dim), C order, as numpy.save writes\n"
    "  --index FILE     tab-separated text: a header row naming the columns, then line i\n"
    "                   describing row i of the .npy. Columns (any order, others ignored):\n"
    "                     relpath  image path relative to the dataset root, '/' separated,\n"
    "                              as bottleneck-extract stores it (required)\n"
    "                     label    class name (required)\n"
    "                     split    train, validation, test, ... (optional; empty = none)\n"
    "                     sha256   hex SHA-256 of the image file's bytes (optional)\n"
    "                     row      if present, must count 0, 1, 2, ... (a check)\n"
    "  --root DIR       the dataset folder relpath is relative to; used to hash the files\n"
    "                   when the index has no sha256 column\n"
    "  --dataset NAME   the dataset the index describes (default: the database's only one;\n"
    "                   a new name makes a new dataset)\n"
    "  --model NAME     model recorded for the feature set (default: the --name)\n"
    "  --dtype TYPE     f32 (default) | f16 (stored as half floats)\n"
    "  --quiet          no progress or summary on stderr\n"
    "  --json           print a JSON summary on stdout\n"
    "  -h, --help       this text\n"
    "\n"
    "Vectors are keyed by the content hash (SHA-256) of their image, as extracted ones are.\n"
    "Without a sha256 column each line's hash comes from the file --root/relpath, or else\n"
    "from the image already stored at relpath in the database (e.g. by an earlier extract);\n"
    "a line with neither is an error: no surrogate key is invented, so an imported vector\n"
    "always belongs to the bytes of one image.\n"
    "\n"
    "Everything is checked first and stored in one transaction: a wrong dtype or shape, a\n"
    "row count that differs from the index, NaN or Inf values, a duplicate path, or a path\n"
    "the database already holds with other content, label or split is an error, and the\n"
    "database is left unchanged.\n"
    "\n"
    "Exit status: 0 stored; 1 error (nothing stored); 2 usage error.\n";

/* The options into *io and *json. Returns -1 to go on, else the exit
 * status (0 after --help, IMPORT_EXIT_USAGE after a usage error). */
static int import_options(int ac, char **av, bn_importer_opts *io, int *json) {
    enum {
        O_DB = 256,
        O_NAME,
        O_NPY,
        O_INDEX,
        O_ROOT,
        O_MODEL,
        O_DTYPE,
        O_QUIET,
        O_JSON,
        O_HELP,
        O_DATASET
    };
    static const struct option longopts[] = {
        {"db", required_argument, 0, O_DB},
        {"name", required_argument, 0, O_NAME},
        {"npy", required_argument, 0, O_NPY},
        {"index", required_argument, 0, O_INDEX},
        {"root", required_argument, 0, O_ROOT},
        {"model", required_argument, 0, O_MODEL},
        {"dtype", required_argument, 0, O_DTYPE},
        {"quiet", no_argument, 0, O_QUIET},
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},
        {"dataset", required_argument, 0, O_DATASET},
        {0, 0, 0, 0},
    };
    *io = (bn_importer_opts){.db = "bottleneck.db", .dtype = "f32"};
    *json = 0;
    const char *usage_err = NULL, *usage_arg = "";
    int c;
    opterr = 0;
    optind = 1;
    while (!usage_err && (c = getopt_long(ac, av, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DB: io->db = optarg; break;
        case O_NAME: io->name = optarg; break;
        case O_NPY: io->npy = optarg; break;
        case O_INDEX: io->index = optarg; break;
        case O_ROOT: io->root = optarg; break;
        case O_DATASET: io->dataset = optarg; break;
        case O_MODEL: io->model = optarg; break;
        case O_DTYPE:
            io->dtype = optarg;
            if (strcmp(io->dtype, "f32") && strcmp(io->dtype, "f16"))
                usage_err = "--dtype %s: expected f32 or f16", usage_arg = optarg;
            break;
        case O_QUIET: io->quiet = 1; break;
        case O_JSON: *json = 1; break;
        case 'h':
        case O_HELP: fputs(import_usage, stdout); return 0;
        default: usage_err = "unknown or incomplete option '%s'", usage_arg = av[optind - 1];
        }
    }
    if (!usage_err && optind < ac)
        usage_err = "unexpected argument '%s'", usage_arg = av[optind];
    if (!usage_err && (!io->name || !*io->name))
        usage_err = "%s--name NAME is required (the feature set's name)";
    if (!usage_err && !io->npy)
        usage_err = "%s--npy FILE.npy is required";
    if (!usage_err && !io->index)
        usage_err = "%s--index FILE.tsv is required";
    if (usage_err) {
        fputs("bottleneck-extract import: ", stderr);
        fprintf(stderr, usage_err, usage_arg);
        fputs("\nTry 'bottleneck-extract import --help'.\n", stderr);
        return IMPORT_EXIT_USAGE;
    }
    if (!io->model)
        io->model = io->name;
    return -1;
}

/* What was stored (or why not) on stderr, and as JSON on stdout with --json. */
static void import_report(const bn_importer_opts *io, int json, int rc, const bn_importer_result *r,
                          const bn_error *err) {
    if (rc)
        fprintf(stderr, "bottleneck-extract import: %s (nothing stored)\n", err->msg);
    else if (!io->quiet)
        fprintf(stderr,
                "%s: imported %d vectors of dim %lld as feature set '%s' (id %lld, %s) into "
                "dataset '%s': %ld new images, %ld known images (already stored); %.1f s\n",
                io->db, r->rows, (long long)r->dim, io->name, (long long)r->featureset, io->dtype,
                r->dataset, r->new_images, (long)r->rows - r->new_images, r->seconds);
    if (!json)
        return;
    printf("{\"db\":");
    bn_json_string(stdout, io->db);
    printf(",\"featureset\":");
    bn_json_string(stdout, io->name);
    printf(",\"ok\":%s", rc ? "false" : "true");
    if (rc) {
        printf(",\"error\":");
        bn_json_string(stdout, err->msg);
    } else {
        printf(",\"dataset\":");
        bn_json_string(stdout, r->dataset);
        printf(",\"featureset_id\":%lld,\"rows\":%d,\"dim\":%lld,\"dtype\":\"%s\","
               "\"new_images\":%ld,\"known_images\":%ld,\"seconds\":%.3f",
               (long long)r->featureset, r->rows, (long long)r->dim, io->dtype, r->new_images,
               (long)r->rows - r->new_images, r->seconds);
    }
    printf("}\n");
}

int extract_import_main(int argc, char **argv) {
    /* Accept both ("bottleneck-extract", "import", ...) and ("import", ...). */
    int skip = argc > 1 && strcmp(argv[1], "import") == 0 ? 2 : 1;
    char **av = malloc(((size_t)argc + 1) * sizeof *av);
    if (!av) {
        fputs("bottleneck-extract import: out of memory\n", stderr);
        return IMPORT_EXIT_FATAL;
    }
    int ac = 0;
    av[ac++] = "bottleneck-extract import";
    for (int i = skip; i < argc; i++)
        av[ac++] = argv[i];
    av[ac] = NULL;
    bn_importer_opts io;
    int json, status = import_options(ac, av, &io, &json);
    if (status < 0) {
        bn_error err;
        bn_error_clear(&err);
        bn_importer_result r;
        int rc = bn_importer_run(&io, &r, &err);
        import_report(&io, json, rc, &r, &err);
        if (rc == BN_OK)
            extract_pack_path(io.db, "bottleneck-extract import", io.quiet);
        status = rc ? IMPORT_EXIT_FATAL : 0;
    }
    free(av);
    return status;
}

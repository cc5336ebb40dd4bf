/*
 * precision.c: --precision names and the choice behind `fast` (precision.h).
 *
 * The choice, in order: what the CPU can run at all (conv.h's
 * bn_conv_winograd_has_precision: BF16 needs avx512_bf16, FP16
 * avx512_fp16), then how fast it runs them here, measured once per host
 * and cached. The measurement is the engine's own products kernel on data
 * in cache (bn_conv_winograd_kernel_gmacs), not a peak-FLOPS loop: what
 * matters is whether the kernel that does 80% of the work gets faster.
 */
#include "precision.h"

#include "cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    bn_precision p;
} prec_names[] = {
    {"fp32", BN_PRECISION_FP32}, {"fast", BN_PRECISION_FAST}, {"bf16", BN_PRECISION_BF16},
    {"fp16", BN_PRECISION_FP16}, {"amx", BN_PRECISION_AMX},
};

int bn_precision_parse(const char *s, bn_precision *out) {
    for (size_t i = 0; s && i < sizeof prec_names / sizeof prec_names[0]; i++)
        if (strcmp(s, prec_names[i].name) == 0) {
            *out = prec_names[i].p;
            return BN_OK;
        }
    return BN_EINVAL;
}

const char *bn_precision_name(bn_precision p) {
    for (size_t i = 0; i < sizeof prec_names / sizeof prec_names[0]; i++)
        if (prec_names[i].p == p)
            return prec_names[i].name;
    return "unknown";
}

/* The cache file's path (dir: its directory); 0 when there is no home. */
static int prec_cache_path(char *path, size_t n, char *dir, size_t ndir) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(dir, ndir, "%s/bottleneck", xdg);
    else if (home && *home)
        snprintf(dir, ndir, "%s/.cache/bottleneck", home);
    else
        return 0;
    snprintf(path, n, "%s/precision.tsv", dir);
    return 1;
}

/* The products kernels' revision: raise it when a change to them may move
 * their speed, so that hosts measure again instead of trusting a ratio
 * measured with the old code. 2: BF16 broadcasts each pair once
 * (winograd_bf16.h; 1.6x -> 2.0x FP32 on Zen 5). 3: FP16 products
 * (winograd_fp16.h), a candidate where avx512_fp16 is. 4: AMX products
 * (winograd_amx.h), a candidate where AMX tiles are granted. */
#define PREC_KERNELS 4

/* What the measurement depends on: the CPU model, the features that decide
 * which kernels exist, and the kernels' revision. Tabs and newlines cannot
 * occur in it. */
static void prec_host_key(char *key, size_t n) {
    const bn_cpu_features *f = bn_cpu_features_get();
    snprintf(key, n, "%s|avx512=%d,avx512_bf16=%d,avx512_fp16=%d,amx_bf16=%d|kernels=%d",
             bn_cpu_model(), f->avx512, f->avx512_bf16, f->avx512_fp16, f->amx_bf16, PREC_KERNELS);
    for (char *c = key; *c; c++)
        if (*c == '\t' || *c == '\n')
            *c = ' ';
}

/* The cached line for key: choice and ratio. 1 if found. */
static int prec_cache_read(const char *path, const char *key, char *choice, size_t nchoice,
                           double *ratio) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    int found = 0;
    size_t klen = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0 || line[klen] != '\t')
            continue;
        char c[16];
        if (sscanf(line + klen + 1, "%15[a-z0-9]\t%lf", c, ratio) == 2) {
            snprintf(choice, nchoice, "%s", c);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Replace key's line (others kept), atomically: a temp file beside it, then
 * rename. Failures are silent: the cache is only a cache. */
static void prec_cache_write(const char *path, const char *dir, const char *key, const char *choice,
                             double ratio) {
    char parent[4096], tmp[4300];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        (void)mkdir(parent, 0755);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out)
        return;
    FILE *in = fopen(path, "r");
    char line[512];
    size_t klen = strlen(key);
    while (in && fgets(line, sizeof line, in))
        if (!(strncmp(line, key, klen) == 0 && line[klen] == '\t') && strchr(line, '\n'))
            fputs(line, out);
    if (in)
        fclose(in);
    fprintf(out, "%s\t%s\t%.3f\n", key, choice, ratio);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
        fclose(out);
        unlink(tmp);
        return;
    }
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        unlink(tmp);
}

/* The instruction behind a precision's products, for the user's line. */
static const char *prec_instruction(bn_precision p) {
    return p == BN_PRECISION_BF16   ? "vdpbf16ps"
           : p == BN_PRECISION_FP16 ? "vfmadd231ph"
           : p == BN_PRECISION_AMX  ? "AMX tdpbf16ps"
                                    : "FMA";
}

/* Whether p's products run natively here, so that `fast` may pick them (the
 * FP16 emulation is never fast). */
static int prec_native(bn_precision p) {
    if (!bn_conv_winograd_has_precision(p))
        return 0;
    return p != BN_PRECISION_FP16 || !bn_conv_winograd_fp16_emulated();
}

/* What to ask instead of the refused precision: fp32, the other reduced
 * format where it runs here, or fast ("fp32, bf16 or fast"). */
static const char *prec_instead(bn_precision refused) {
    const bn_precision other = refused == BN_PRECISION_BF16 ? BN_PRECISION_FP16 : BN_PRECISION_BF16;
    if (!bn_conv_winograd_has_precision(other))
        return "fp32 or fast";
    return other == BN_PRECISION_BF16 ? "fp32, bf16 or fast" : "fp32, fp16 or fast";
}

/* The one line refusing --precision p on this CPU: what its products
 * (label) need, what is missing here (has: the CPU feature they need;
 * lacks: saying it is absent), and what to ask instead. */
static int prec_refuse(bn_precision p, const char *label, const char *needs, int has,
                       const char *lacks, bn_error *err) {
    return bn_fail(err, BN_EINVAL,
                   "--precision %s: the %s products need %s and the engine's AVX-512 build (this "
                   "CPU, %s: %s); use %s",
                   bn_precision_name(p), label, needs, bn_cpu_model(),
                   !bn_cpu_features_get()->avx512 ? "no AVX-512"
                   : !has                         ? lacks
                                                  : "portable build forced or not built with GCC",
                   prec_instead(p));
}

int bn_precision_resolve(bn_precision request, bn_precision *out, char *why, size_t nwhy,
                         bn_error *err) {
    char scratch[8];
    if (!why) {
        why = scratch;
        nwhy = sizeof scratch;
    }
    const bn_cpu_features *f = bn_cpu_features_get();
    switch (request) {
    case BN_PRECISION_FP32:
        *out = BN_PRECISION_FP32;
        snprintf(why, nwhy, "fp32: exact (as asked)");
        return BN_OK;
    case BN_PRECISION_BF16:
        if (!bn_conv_winograd_has_precision(BN_PRECISION_BF16))
            return prec_refuse(BN_PRECISION_BF16, "BF16", "AVX-512 with avx512_bf16",
                               f->avx512_bf16, "no avx512_bf16", err);
        *out = BN_PRECISION_BF16;
        snprintf(why, nwhy, "bf16: vdpbf16ps products (as asked)");
        return BN_OK;
    case BN_PRECISION_FP16:
        if (!bn_conv_winograd_has_precision(BN_PRECISION_FP16))
            return prec_refuse(BN_PRECISION_FP16, "FP16", "AVX-512 with avx512_fp16",
                               f->avx512_fp16, "no avx512_fp16", err);
        *out = BN_PRECISION_FP16;
        snprintf(why, nwhy, "%s",
                 bn_conv_winograd_fp16_emulated()
                     ? "fp16: products emulated in software (BN_FP16_EMULATE; about 100x slower)"
                     : "fp16: vfmadd231ph products (as asked)");
        return BN_OK;
    case BN_PRECISION_AMX:
        if (!bn_conv_winograd_has_precision(BN_PRECISION_AMX))
            return prec_refuse(BN_PRECISION_AMX, "AMX",
                               "AMX tiles with amx_bf16, granted by the kernel,", f->amx_bf16,
                               "no amx_bf16, or Linux did not grant the tiles", err);
        *out = BN_PRECISION_AMX;
        snprintf(why, nwhy, "amx: AMX tdpbf16ps products (as asked)");
        return BN_OK;
    case BN_PRECISION_FAST: break;
    default: return bn_fail(err, BN_EINVAL, "--precision: unknown value %d", (int)request);
    }
    *out = BN_PRECISION_FP32;
    const int bf16 = prec_native(BN_PRECISION_BF16), fp16 = prec_native(BN_PRECISION_FP16),
              amx = prec_native(BN_PRECISION_AMX);
    if (!bf16 && !fp16 && !amx) {
        snprintf(why, nwhy, "fp32: no faster reduced precision on this CPU (%s)",
                 !f->avx512 ? "no AVX-512"
                 : !f->avx512_bf16 && !f->avx512_fp16 && !f->amx_bf16
                     ? "no avx512_bf16, avx512_fp16 or AMX"
                     : "portable build forced, not built with GCC, or FP16 emulated");
        return BN_OK;
    }
    char path[4200], dir[4096], key[256], choice[16];
    double ratio = 0;
    prec_host_key(key, sizeof key);
    int have_path = prec_cache_path(path, sizeof path, dir, sizeof dir);
    bn_precision cached;
    if (have_path && prec_cache_read(path, key, choice, sizeof choice, &ratio) &&
        bn_precision_parse(choice, &cached) == BN_OK &&
        (cached == BN_PRECISION_FP32 || (cached == BN_PRECISION_BF16 && bf16) ||
         (cached == BN_PRECISION_FP16 && fp16) || (cached == BN_PRECISION_AMX && amx))) {
        *out = cached;
        snprintf(why, nwhy, "%s: %s products %.2fx FP32 on this CPU (cached in %s)",
                 bn_precision_name(cached),
                 cached == BN_PRECISION_FP32 ? "reduced-precision" : prec_instruction(cached),
                 ratio, path);
        return BN_OK;
    }
    /* Interleaved, best of 5 each: a busy host slows all alike. */
    double fp32 = 0, rb = 0, rh = 0, ra = 0;
    for (int r = 0; r < 5; r++) {
        double a = bn_conv_winograd_kernel_gmacs(BN_PRECISION_FP32, 1, 0.004);
        double b = bf16 ? bn_conv_winograd_kernel_gmacs(BN_PRECISION_BF16, 1, 0.004) : 0;
        double h = fp16 ? bn_conv_winograd_kernel_gmacs(BN_PRECISION_FP16, 1, 0.004) : 0;
        double x = amx ? bn_conv_winograd_kernel_gmacs(BN_PRECISION_AMX, 1, 0.004) : 0;
        fp32 = a > fp32 ? a : fp32;
        rb = b > rb ? b : rb;
        rh = h > rh ? h : rh;
        ra = x > ra ? x : ra;
    }
    rb = fp32 > 0 ? rb / fp32 : 0;
    rh = fp32 > 0 ? rh / fp32 : 0;
    ra = fp32 > 0 ? ra / fp32 : 0;
    /* FP16 is 3-5x closer to exact than BF16 (docs/PERFORMANCE.md): it wins
     * unless BF16 is clearly faster. AMX has BF16's values (its accuracy):
     * it wins over BF16 when faster, over FP16 when clearly faster. */
    bn_precision best = rh >= 0.95 * rb ? BN_PRECISION_FP16 : BN_PRECISION_BF16;
    ratio = best == BN_PRECISION_FP16 ? rh : rb;
    if (ra > (best == BN_PRECISION_FP16 ? ratio / 0.95 : ratio)) {
        best = BN_PRECISION_AMX;
        ratio = ra;
    }
    *out = ratio >= BN_PRECISION_MIN_GAIN ? best : BN_PRECISION_FP32;
    snprintf(why, nwhy, "%s: %s products %.2fx FP32 on this CPU (measured%s)",
             bn_precision_name(*out), prec_instruction(best), ratio,
             *out == BN_PRECISION_FP32 ? ", not worth the accuracy" : "");
    if (have_path)
        prec_cache_write(path, dir, key, bn_precision_name(*out), ratio);
    return BN_OK;
}

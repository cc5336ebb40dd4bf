/*
 * cpu.c: CPU features, the thread knob and OpenBLAS' kernels (cpu.h).
 *
 * Kept apart from the engines so that conv.c, conv_winograd.c, the graph and
 * the solvers all depend on this file and not on each other.
 */
#include "cpu.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Both are read once, under pthread_once: engines ask from several threads,
 * and the model names the per-host precision cache (precision.c), so no
 * caller may see a half-written value. */
static bn_cpu_features cpu_features;
static char cpu_model_name[128];
static pthread_once_t cpu_features_once = PTHREAD_ONCE_INIT, cpu_model_once = PTHREAD_ONCE_INIT;

static void cpu_detect(void) {
    bn_cpu_features *f = &cpu_features;
    /* __builtin_cpu_supports checks the OS's XSAVE state as well as CPUID,
     * so a feature is reported only when it can be used. */
    __builtin_cpu_init();
    f->avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f->avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 /* clang: no such feature names */
    f->avx512_bf16 = f->avx512 && __builtin_cpu_supports("avx512bf16");
    f->avx512_fp16 = f->avx512 && __builtin_cpu_supports("avx512fp16");
#endif
}

const bn_cpu_features *bn_cpu_features_get(void) {
    pthread_once(&cpu_features_once, cpu_detect);
    return &cpu_features;
}

static void cpu_read_model(void) {
    snprintf(cpu_model_name, sizeof cpu_model_name, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(cpu_model_name, sizeof cpu_model_name, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
}

const char *bn_cpu_model(void) {
    pthread_once(&cpu_model_once, cpu_read_model);
    return cpu_model_name;
}

/* The thread count every engine uses: kept here, not read back from
 * OpenBLAS, because the direct engine runs OpenBLAS single-threaded while
 * it shares chunks among the pool's threads (conv_direct.c). */
static int cpu_threads; /* 0: not set, OpenBLAS' own default */

void bn_cpu_set_threads(int n) {
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    cpu_threads = n;
    openblas_set_num_threads(n);
}

int bn_cpu_threads(void) {
    return cpu_threads > 0 ? cpu_threads : openblas_get_num_threads();
}

const char *bn_cpu_blas_core(void) {
    return openblas_get_corename();
}

const char *bn_cpu_blas_better_coretype(void) {
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (set && *set)
        return NULL; /* the user's choice stands */
    /* Kernel sets at least as fast as the suggestion on this CPU. */
    static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2_cores[] = {"Haswell",        "Zen", "SkylakeX", "Cooperlake",
                                             "SapphireRapids", NULL};
    const bn_cpu_features *f = bn_cpu_features_get();
    const char *want;
    const char *const *good;
    if (f->avx512) {
        want = "SkylakeX";
        good = avx512_cores;
    } else if (f->avx2_fma) {
        want = "Haswell";
        good = avx2_cores;
    } else {
        return NULL;
    }
    const char *core = openblas_get_corename();
    for (int i = 0; core && good[i]; i++)
        if (strcasecmp(core, good[i]) == 0)
            return NULL;
    return want;
}

/* Set what OpenBLAS should read when it loads (its kernels; with idle, its
 * threads' spin) and execute the program again, once: the variables are
 * then set. Returns when nothing needed setting or the exec failed. */
static void cpu_blas_reexec(char **argv, int idle) {
    const char *core = bn_cpu_blas_better_coretype();
    const char *timeout = getenv("OPENBLAS_THREAD_TIMEOUT");
    int quiet = idle && !(timeout && *timeout);
    if ((!core && !quiet) || getenv("BN_NO_REEXEC"))
        return;
    if (core)
        setenv("OPENBLAS_CORETYPE", core, 1);
    if (quiet)
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1); /* 2^4 cycles: its minimum */
    execv("/proc/self/exe", argv);
    if (core) /* exec failed: say what is really in use */
        unsetenv("OPENBLAS_CORETYPE");
    if (quiet)
        unsetenv("OPENBLAS_THREAD_TIMEOUT");
}

void bn_cpu_blas_use_best_kernels(char **argv) {
    cpu_blas_reexec(argv, 0);
}

void bn_cpu_blas_use_best_kernels_idle(char **argv) {
    cpu_blas_reexec(argv, 1);
}

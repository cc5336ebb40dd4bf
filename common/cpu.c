/*
 * cpu.c: CPU features, the data cache sizes, the thread knob and OpenBLAS'
 * kernels (cpu.h).
 *
 * Kept apart from the engines so that conv.c, conv_winograd.c, the graph and
 * the solvers all depend on this file and not on each other.
 */
#include "cpu.h"

#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif

/* Both are read once, under pthread_once: engines ask from several threads,
 * and the model names the per-host precision cache (precision.c), so no
 * caller may see a half-written value. */
static bn_cpu_features cpu_features;
static char cpu_model_name[128];
static pthread_once_t cpu_features_once = PTHREAD_ONCE_INIT, cpu_model_once = PTHREAD_ONCE_INIT;

/* AMX BF16: CPUID.(7,0):EDX bits 22 (AMX-BF16) and 24 (AMX-TILE), the OS
 * managing the tile state (XCR0 bits 17 and 18), and Linux granting it to
 * this process (the state is large, so it is given only on request, once
 * per process; threads created later inherit it). A refusal (an older
 * kernel, a seccomp filter) only means no AMX. */
static int cpu_amx_bf16(void) {
#if defined(__x86_64__) && defined(__linux__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24)))
        return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE: xgetbv is allowed */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17))
        return 0;
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    unsigned long perm = 0;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0 ||
        syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm) != 0)
        return 0;
    return (perm >> XFEATURE_XTILEDATA) & 1;
#else
    return 0;
#endif
}

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
    f->amx_bf16 = f->avx512 && cpu_amx_bf16();
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

/* ------------------------------------------------------------------------ */
/* Data caches                                                              */
/* ------------------------------------------------------------------------ */

/* When neither sysfs nor CPUID answers (another kernel, a sandbox, another
 * architecture): the caches of the host the engine was tuned on (AMD EPYC,
 * docs/PERFORMANCE.md), so that the engine behaves as it was measured. */
static const bn_cpu_cache_sizes cpu_default_caches = {
    .l1d = 32 << 10, .l2 = 1 << 20, .l3 = 32 << 20, .l3_cpus = 2, .line = 64, .source = "defaults"};

/* A size: decimal digits and an optional K, M or G (binary units), nothing
 * else. 0 and *v on success, -1 on anything else (overflow included). */
static int cpu_parse_size(const char *s, size_t len, size_t *v) {
    size_t i = 0;
    uint64_t x = 0;
    if (len == 0 || !isdigit((unsigned char)s[0]))
        return -1;
    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        if (x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    int shift = 0;
    if (i < len) {
        switch (s[i++]) {
        case 'K':
        case 'k': shift = 10; break;
        case 'M':
        case 'm': shift = 20; break;
        case 'G':
        case 'g': shift = 30; break;
        default: return -1;
        }
    }
    if (i != len || x > (SIZE_MAX >> shift) || x > (UINT64_MAX >> shift))
        return -1;
    *v = (size_t)(x << shift);
    return 0;
}

/* Ranges a real cache could have: a value outside is a typo, not a machine. */
static int cpu_caches_sane(const bn_cpu_cache_sizes *c, const char **why) {
    if (c->l1d < ((size_t)4 << 10) || c->l1d > ((size_t)4 << 20))
        *why = "l1d must be 4K..4M";
    else if (c->l2 < ((size_t)64 << 10) || c->l2 > ((size_t)1 << 30))
        *why = "l2 must be 64K..1G";
    else if (c->l3 < ((size_t)64 << 10) || c->l3 > ((size_t)64 << 30))
        *why = "l3 must be 64K..64G";
    else if (c->l3_cpus < 1 || c->l3_cpus > 65536)
        *why = "l3_cpus must be 1..65536";
    else if (c->line < 16 || c->line > 1024 || (c->line & (c->line - 1)))
        *why = "line must be a power of two, 16..1024";
    else
        return 0;
    return -1;
}

int bn_cpu_caches_parse(const char *s, bn_cpu_cache_sizes *io, const char **why) {
    bn_cpu_cache_sizes c = *io;
    *why = NULL;
    if (!s || !*s) {
        *why = "empty";
        return -1;
    }
    for (const char *p = s;;) {
        size_t len = strcspn(p, ","), klen = strcspn(p, "=,");
        if (klen >= len) {
            *why = "each item must be key=value";
            return -1;
        }
        const char *val = p + klen + 1;
        size_t vlen = len - klen - 1, v;
        if (cpu_parse_size(val, vlen, &v)) {
            *why = "a value is not a number with an optional K, M or G";
            return -1;
        }
#define CPU_KEY(k) (klen == sizeof(k) - 1 && strncmp(p, k, klen) == 0)
        if (CPU_KEY("l1d"))
            c.l1d = v;
        else if (CPU_KEY("l2"))
            c.l2 = v;
        else if (CPU_KEY("l3"))
            c.l3 = v;
        else if (CPU_KEY("l3_cpus") || CPU_KEY("line")) {
            if (!isdigit((unsigned char)val[vlen - 1]) || v > 65536) {
                *why = "l3_cpus and line are plain numbers";
                return -1;
            }
            if (CPU_KEY("line"))
                c.line = (int)v;
            else
                c.l3_cpus = (int)v;
        } else {
            *why = "unknown key (l1d, l2, l3, l3_cpus, line)";
            return -1;
        }
#undef CPU_KEY
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    if (cpu_caches_sane(&c, why))
        return -1;
    *io = c;
    return 0;
}

/* The contents of dir/name, first line, without its newline; -1 if absent. */
static int cpu_read_line(const char *dir, const char *name, char *buf, size_t size) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *ok = fgets(buf, (int)size, f);
    fclose(f);
    if (!ok)
        return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* CPUs in a list such as "0-1,4,6-7"; 0 if malformed. */
static int cpu_list_count(const char *s) {
    int count = 0;
    while (*s) {
        char *end;
        errno = 0;
        long a = strtol(s, &end, 10), b = a;
        if (end == s || a < 0 || errno)
            return 0;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            if (end == s + 1 || b < a || errno)
                return 0;
            s = end;
        }
        if (b - a >= 65536 || count + (b - a + 1) > 65536)
            return 0;
        count += (int)(b - a + 1);
        if (*s == ',')
            s++;
        else if (*s)
            return 0;
    }
    return count;
}

/* The end of a detector: it found the caches in *c if it found at least the
 * L1d and the L2 (then *out = *c, from source, and 0; else -1). Without an
 * L3 the L2 is the last level. */
static int cpu_caches_found_by(bn_cpu_cache_sizes *c, const char *source, bn_cpu_cache_sizes *out) {
    if (!c->l1d || !c->l2)
        return -1;
    if (!c->l3) {
        c->l3 = c->l2;
        c->l3_cpus = 1;
    }
    snprintf(c->source, sizeof c->source, "%s", source);
    *out = *c;
    return 0;
}

int bn_cpu_caches_read_sysfs(const char *sysfs_root, bn_cpu_cache_sizes *out) {
    bn_cpu_cache_sizes c = {.line = 64};
    for (int i = 0; i < 16; i++) {
        char dir[4096], level[16], type[32], size[32], list[1024], line[16];
        if ((size_t)snprintf(dir, sizeof dir, "%s/cpu0/cache/index%d", sysfs_root, i) >= sizeof dir)
            return -1;
        size_t bytes;
        if (cpu_read_line(dir, "level", level, sizeof level) ||
            cpu_read_line(dir, "type", type, sizeof type) ||
            cpu_read_line(dir, "size", size, sizeof size) ||
            cpu_parse_size(size, strlen(size), &bytes))
            continue; /* indexes need not be contiguous; a broken one is skipped */
        int is_data = strcmp(type, "Data") == 0, is_unified = strcmp(type, "Unified") == 0;
        if (!is_data && !is_unified)
            continue;
        if (cpu_read_line(dir, "coherency_line_size", line, sizeof line) == 0 && atoi(line) > 0)
            c.line = atoi(line);
        if (strcmp(level, "1") == 0)
            c.l1d = bytes;
        else if (strcmp(level, "2") == 0)
            c.l2 = bytes;
        else if (strcmp(level, "3") == 0) {
            c.l3 = bytes;
            c.l3_cpus = cpu_read_line(dir, "shared_cpu_list", list, sizeof list) == 0
                            ? cpu_list_count(list)
                            : 0;
            if (c.l3_cpus < 1)
                c.l3_cpus = 1;
        }
    }
    return cpu_caches_found_by(&c, "sysfs", out);
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
int bn_cpu_caches_read_cpuid(bn_cpu_cache_sizes *out) {
    unsigned a, b, cx, d, max;
    char vendor[13] = {0};
    if (!__get_cpuid(0, &max, &b, &cx, &d))
        return -1;
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &cx, 4);
    /* The same layout in both leaves: EAX type (bits 4:0: 1 data, 3 unified),
     * level (7:5), CPUs sharing the cache - 1 (25:14); EBX line - 1 (11:0),
     * partitions - 1 (21:12), ways - 1 (31:22); ECX sets - 1. */
    unsigned leaf = 4;
    if (!strcmp(vendor, "AuthenticAMD") || !strcmp(vendor, "HygonGenuine")) {
        if ((unsigned)__get_cpuid_max(0x80000000, NULL) < 0x8000001Du)
            return -1;
        leaf = 0x8000001D;
    } else if (max < 4) {
        return -1;
    }
    bn_cpu_cache_sizes c = {.line = 64};
    for (unsigned i = 0; i < 16; i++) {
        __cpuid_count(leaf, i, a, b, cx, d);
        unsigned type = a & 31, level = (a >> 5) & 7;
        if (type == 0)
            break;
        if (type != 1 && type != 3)
            continue;
        size_t bytes = (size_t)((b >> 22) + 1) * (((b >> 12) & 1023) + 1) * ((b & 4095) + 1) *
                       ((size_t)cx + 1);
        c.line = (int)(b & 4095) + 1;
        if (level == 1)
            c.l1d = bytes;
        else if (level == 2)
            c.l2 = bytes;
        else if (level == 3) {
            c.l3 = bytes;
            c.l3_cpus = (int)((a >> 14) & 4095) + 1;
        }
    }
    return cpu_caches_found_by(&c, "cpuid", out);
}
#else
int bn_cpu_caches_read_cpuid(bn_cpu_cache_sizes *out) {
    (void)out;
    return -1;
}
#endif

/* Why 16 MiB and 2 MiB: no x86 core has more than 12 MiB of L3 to itself
 * (Zen 4 X3D: 96 MiB over 8 cores; the AMD EPYC VMs here show 32 MiB over
 * 2 CPUs, 16 MiB, and keep the plans measured on them), and Intel's server
 * parts have 1.875 to 5 MiB a core. On the 260 MiB host, shares of 1 and
 * 2 MiB ran VGG16 about 3% faster than 130 MiB and 1% faster than 4 or 8
 * (docs/PERFORMANCE.md, "A virtual machine's L3"). */
int bn_cpu_caches_plausible(bn_cpu_cache_sizes *c) {
    if (c->l3_cpus < 1 || c->l3 / (size_t)c->l3_cpus <= BN_CPU_L3_SHARE_MAX)
        return 0;
    int shown = c->l3_cpus;
    size_t cpus = (c->l3 + BN_CPU_L3_SHARE_ASSUMED - 1) / BN_CPU_L3_SHARE_ASSUMED;
    c->l3_cpus = cpus > 65536 ? 65536 : (int)cpus;
    size_t n = strlen(c->source);
    snprintf(c->source + n, sizeof c->source - n, "; %d CPUs cannot own it all: %d assumed", shown,
             c->l3_cpus);
    return 1;
}

static bn_cpu_cache_sizes cpu_caches_found, cpu_caches_forced;
static atomic_int cpu_caches_forced_on;
static pthread_once_t cpu_caches_once = PTHREAD_ONCE_INIT;

static void cpu_caches_detect(void) {
    bn_cpu_cache_sizes c;
    const char *why = NULL;
    if (bn_cpu_caches_read_sysfs("/sys/devices/system/cpu", &c) && bn_cpu_caches_read_cpuid(&c))
        c = cpu_default_caches;
    if (cpu_caches_sane(&c, &why)) /* a detector's odd answer: not worth trusting */
        c = cpu_default_caches;
    bn_cpu_caches_plausible(&c);
    const char *env = getenv("BN_CACHES");
    if (env) {
        char found[sizeof c.source];
        memcpy(found, c.source, sizeof found);
        if (bn_cpu_caches_parse(env, &c, &why) == 0)
            snprintf(c.source, sizeof c.source, "BN_CACHES");
        else
            snprintf(c.source, sizeof c.source, "%s; BN_CACHES ignored: %s", found, why);
    }
    cpu_caches_found = c;
}

const bn_cpu_cache_sizes *bn_cpu_caches(void) {
    if (atomic_load(&cpu_caches_forced_on))
        return &cpu_caches_forced;
    pthread_once(&cpu_caches_once, cpu_caches_detect);
    return &cpu_caches_found;
}

void bn_cpu_caches_force(const bn_cpu_cache_sizes *c) {
    atomic_store(&cpu_caches_forced_on, 0);
    if (!c)
        return;
    cpu_caches_forced = *c;
    snprintf(cpu_caches_forced.source, sizeof cpu_caches_forced.source, "forced");
    atomic_store(&cpu_caches_forced_on, 1);
}

/* 48K, 1M, 105M: the largest binary unit that divides the size. */
static void cpu_size_str(size_t v, char *buf, size_t size) {
    if (v && v % ((size_t)1 << 30) == 0)
        snprintf(buf, size, "%zuG", v >> 30);
    else if (v && v % ((size_t)1 << 20) == 0)
        snprintf(buf, size, "%zuM", v >> 20);
    else if (v && v % 1024 == 0)
        snprintf(buf, size, "%zuK", v >> 10);
    else
        snprintf(buf, size, "%zu", v);
}

void bn_cpu_caches_format(const bn_cpu_cache_sizes *c, char *buf, size_t size) {
    char l1[24], l2[24], l3[24];
    cpu_size_str(c->l1d, l1, sizeof l1);
    cpu_size_str(c->l2, l2, sizeof l2);
    cpu_size_str(c->l3, l3, sizeof l3);
    snprintf(buf, size, "l1d=%s l2=%s l3=%s l3_cpus=%d line=%d (%s)", l1, l2, l3, c->l3_cpus,
             c->line, c->source);
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

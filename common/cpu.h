/*
 * cpu.h: what the program knows about the CPU it runs on, and the one thread
 * knob.
 *
 * Owns: CPU feature detection at run time (the same binary runs on AMD Zen 4/5
 * and on Intel Xeons with other AVX-512 extensions), the data cache sizes the
 * Winograd engine sizes its blocks by (bn_cpu_caches), the thread count every
 * engine and solver uses, and the choice of OpenBLAS kernels. It depends on
 * nothing else in common/: conv, the graph, the solvers and the programs ask
 * it, never the other way round.
 */
#ifndef BN_CPU_H
#define BN_CPU_H

#include <stddef.h>

/* CPU features the kernels choose by. Each is 1 only when the CPU has it and
 * the operating system saves the registers it needs. */
typedef struct {
    int avx2_fma;    /* AVX2 and FMA3 */
    int avx512;      /* AVX-512 F, BW, DQ, VL: the Winograd engine's fast build */
    int avx512_bf16; /* vdpbf16ps: BF16 dot products, FP32 accumulation */
    int avx512_fp16; /* vfmadd...ph: FP16 arithmetic, 32 lanes */
    /* AMX tiles with tdpbf16ps (Intel Sapphire Rapids and later), and this
     * process allowed to use them: Linux grants the tile registers' 8 KiB
     * of state per process on request (arch_prctl ARCH_REQ_XCOMP_PERM),
     * which detection makes. */
    int amx_bf16;
} bn_cpu_features;

/* Detected once, on first call (from any thread); cheap afterwards. */
const bn_cpu_features *bn_cpu_features_get(void);

/* The data caches, as the engines need them. Sizes in bytes. */
typedef struct {
    size_t l1d;  /* level 1 data cache of one core */
    size_t l2;   /* level 2 of one core (private on every CPU the engine targets) */
    size_t l3;   /* the whole last-level cache; l2 (and l3_cpus 1) when there is none */
    int l3_cpus; /* logical CPUs that share it: l3 / l3_cpus is one CPU's share */
    int line;    /* cache line bytes */
    /* Where the values came from: "sysfs", "cpuid", "defaults" (neither
     * answered: the sizes the engine was tuned on, docs/PERFORMANCE.md),
     * "BN_CACHES", "forced" (bn_cpu_caches_force); with a rejected
     * $BN_CACHES, what was wrong with it after the source. */
    char source[96];
} bn_cpu_cache_sizes;

/* This machine's caches, found once on first call (from any thread): from
 * $BN_CACHES when set and valid, else sysfs, else CPUID, else defaults.
 * $BN_CACHES ("l1d=48K,l2=2M,l3=105M,l3_cpus=56,line=64"; any subset of the
 * keys, the others as detected) is for tests and experiments: runs the
 * engine as it would run on a machine with those caches. */
const bn_cpu_cache_sizes *bn_cpu_caches(void);

/* Tests and benchmarks: make bn_cpu_caches() answer *c (copied; NULL: the
 * detected caches again). Only between forward calls: a layer's workspace
 * size and its forward call must see the same caches. */
void bn_cpu_caches_force(const bn_cpu_cache_sizes *c);

/* Parse a $BN_CACHES value into *io: keys l1d, l2, l3 (a number with an
 * optional K, M or G suffix, binary units), l3_cpus and line (numbers),
 * separated by commas. Strict: on any unknown key, malformed or out-of-range
 * value, returns -1 with *why set to a one-line reason and *io untouched;
 * 0 on success (keys not given keep their value in *io). */
int bn_cpu_caches_parse(const char *s, bn_cpu_cache_sizes *io, const char **why);

/* The detectors bn_cpu_caches() tries, exposed for the tests. Each returns 0
 * and fills *out (source included) when it found at least the L1d and the
 * L2, else -1 and leaves *out untouched. sysfs_root is the directory that
 * holds cpu0/ ("/sys/devices/system/cpu" on Linux). */
int bn_cpu_caches_read_sysfs(const char *sysfs_root, bn_cpu_cache_sizes *out);
int bn_cpu_caches_read_cpuid(bn_cpu_cache_sizes *out);

/* Virtual machines often show their few CPUs as the only sharers of the
 * host's whole L3 (an Intel Xeon host: 260 MiB "shared" by 2 CPUs), which
 * would have the engine size its blocks for 130 MiB a core. When one CPU's
 * share (l3 / l3_cpus) is above BN_CPU_L3_SHARE_MAX, no real core has it:
 * l3_cpus becomes l3 / BN_CPU_L3_SHARE_ASSUMED, the source says so, and 1 is
 * returned; otherwise *c is left as it is and 0 returned. bn_cpu_caches()
 * applies it to what it detects (not to $BN_CACHES's keys). */
#define BN_CPU_L3_SHARE_MAX ((size_t)16 << 20)
#define BN_CPU_L3_SHARE_ASSUMED ((size_t)2 << 20)
int bn_cpu_caches_plausible(bn_cpu_cache_sizes *c);

/* "l1d=48K l2=1M l3=32M l3_cpus=2 line=64 (sysfs)" into buf. */
void bn_cpu_caches_format(const bn_cpu_cache_sizes *c, char *buf, size_t size);

/* The CPU's model name as /proc/cpuinfo gives it ("unknown" otherwise). */
const char *bn_cpu_model(void);

/* The one thread knob for every engine and solver: sets OpenBLAS' thread
 * count too (n <= 0: one per online CPU); code with its own threads reads
 * bn_cpu_threads(). Call it before forward calls or sweeps, not during. */
void bn_cpu_set_threads(int n);
int bn_cpu_threads(void);

/* OpenBLAS chooses its kernels once, when it is loaded, from the CPU model.
 * On CPUs it does not recognise (some virtual machines) it falls back to
 * generic SSE3 kernels ("Prescott"), 4-5x slower than the AVX2/AVX-512 ones
 * the CPU supports. This returns the OPENBLAS_CORETYPE value that suits this
 * CPU ("SkylakeX" with AVX-512, "Haswell" with AVX2+FMA) when OpenBLAS chose
 * slower kernels and the user has not set OPENBLAS_CORETYPE; otherwise NULL.
 * The choice cannot change after load: a program that gets a value sets the
 * variable and re-executes itself. bn_cpu_blas_core() names the kernels in use. */
const char *bn_cpu_blas_better_coretype(void);
const char *bn_cpu_blas_core(void);

/* For programs, first thing in main(): when bn_cpu_blas_better_coretype() has
 * a suggestion, set OPENBLAS_CORETYPE and re-execute the program (once: the
 * variable is then set; BN_NO_REEXEC=1 disables it). Returns only if no
 * re-execution was needed or it failed, in which case the program goes on
 * with the slower kernels. */
void bn_cpu_blas_use_best_kernels(char **argv);

/* The same, for a program whose BLAS calls all run on one thread (classify's
 * train: sweep.c and train.c compute on the pool): also sets
 * OPENBLAS_THREAD_TIMEOUT=4 unless the user set it, so that OpenBLAS' own
 * threads sleep at once instead of spinning (sched_yield) for their first
 * ~0.1 s after it loads, which took ~30 ms of wall time and ~70 ms of CPU
 * from a 0.2 s sweep on two cores. Costs one exec when nothing else needed
 * it (a few ms for bottleneck-classify, which links no image code). */
void bn_cpu_blas_use_best_kernels_idle(char **argv);

#endif

/*
 * cpu.h: what the program knows about the CPU it runs on, and the one thread
 * knob.
 *
 * Owns: CPU feature detection at run time (the same binary runs on AMD Zen 4/5
 * and on Intel Xeons with other AVX-512 extensions), the thread count every
 * engine and solver uses, and the choice of OpenBLAS kernels. It depends on
 * nothing else in common/: conv, the graph, the solvers and the programs ask
 * it, never the other way round.
 */
#ifndef BN_CPU_H
#define BN_CPU_H

/* CPU features the kernels choose by. Each is 1 only when the CPU has it and
 * the operating system saves the registers it needs. */
typedef struct {
    int avx2_fma;    /* AVX2 and FMA3 */
    int avx512;      /* AVX-512 F, BW, DQ, VL: the Winograd engine's fast build */
    int avx512_bf16; /* vdpbf16ps: BF16 dot products, FP32 accumulation */
    int avx512_fp16; /* vfmadd...ph: FP16 arithmetic, 32 lanes */
} bn_cpu_features;

/* Detected once, on first call (from any thread); cheap afterwards. */
const bn_cpu_features *bn_cpu_features_get(void);

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

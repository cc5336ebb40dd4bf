/*
 * support.h: helpers that several C tests share, linked into each of them
 * (tests/meson.build). tests/check.h stays the framework: nothing here calls
 * CHECK (its counters are per program file); these functions return what the
 * caller checks, and name problems on stderr.
 *
 * - random numbers: one reproducible xorshift64* stream per program;
 * - the convolution's definition in seven loops, the yardstick of the
 *   engines (test_conv, test_winograd, test_vgg16);
 * - one layer, or a batch of images through VGG16, run the way the engine
 *   and batch tests run them (test_winograd, test_batch, test_precision);
 * - raw float32 files and the reference photos of ../shared/reference with
 *   their PyTorch outputs (test_vgg16, test_winograd);
 * - a temporary directory removed at the end (test_weights, test_download);
 * - HDF5 string attributes as Keras writes them (test_weights, fuzz/gen_seeds);
 * - Exif APP1 payloads (test_image, fuzz/gen_seeds).
 */
#ifndef BN_TEST_SUPPORT_H
#define BN_TEST_SUPPORT_H

#include "conv.h"
#include "precision.h"
#include "vgg16.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random numbers ----------------------------------------------------- */

/* Restart the stream (it starts from 0x2545f4914f6cdd1d). */
void support_seed(uint64_t seed);
/* Uniform in [-1, 1), xorshift64*: reproducible across runs and machines. */
float support_rnd(void);

/* ---- convolution -------------------------------------------------------- */

/* The definition, seven loops, double accumulation:
 * out[b,y,x,co] = relu(bias[co] + sum_{ky,kx,ci} in[b,y+ky-1,x+kx-1,ci] * k[ky,kx,ci,co]),
 * in (n, h, w, cin), k (3, 3, cin, cout), out (n, h, w, cout). Unless NULL,
 * absum receives sum |bias| + sum |term|, the scale of the float rounding. */
void support_naive_conv(const float *in, const float *k, const float *bias, double *out,
                        double *absum, int n, int h, int w, int cin, int cout);

/* A random 3x3 layer (cin -> cout) on n images of h x w, reproducible (drawn
 * from support_rnd in this order): inputs U[-1, 1) + offset, or |U[-1, 1)|
 * when positive (like the ReLU outputs that later layers get); the kernel
 * He-scaled (3, 3, cin, cout); bias 0.1 U[-1, 1). And its answer in double
 * (support_naive_conv): ref, and absum, the scale of each output's terms. */
typedef struct {
    size_t nin, nout; /* n h w cin and n h w cout */
    float *in, *k, *bias;
    double *ref, *absum;
} support_layer;

void support_layer_make(support_layer *l, int n, int h, int w, int cin, int cout, int positive,
                        float offset);
void support_layer_free(support_layer *l);
/* How many outputs of out (l->nout) lie farther from l->ref than frac x their
 * absum + add; the first of them in *first. */
size_t support_layer_off(const support_layer *l, const float *out, double frac, double add,
                         size_t *first);
/* Relative L2 distance of out (l->nout) from l->ref. */
double support_layer_rel_l2(const support_layer *l, const float *out);
/* Relative L2 distance of a (float) from b (double, an exact answer). */
double support_rel_l2_exact(const float *a, const double *b, size_t n);

/* A 64-byte aligned convolution workspace of at least `bytes`; free(). */
void *support_ws_alloc(size_t bytes);
/* c on in (n, h, w, cin) into out: bn_conv_forward, or with pool
 * bn_conv_forward_pool (out n, h/2, w/2, cout), in a workspace of its own. */
void support_conv_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                          int pool);

/* ---- running layers and networks the way the tests do ------------------- */

/* One 3x3 layer (conv.h) with engine e in precision p on `threads` threads:
 * out (n, h, w, cout) is filled with NaN first, so a value the engine did not
 * write shows. Fails (-1, the reason in err) when creation fails or the layer
 * does not resolve to e and p; 0 otherwise. */
int support_conv_run(bn_conv_engine e, bn_precision p, int threads, const float *in, const float *k,
                     const float *bias, float *out, int n, int h, int w, int cin, int cout,
                     bn_error *err);

/* VGG16 from w up to block5_pool, or exit(1) naming the reason. */
bn_vgg16 *support_net(const bn_vgg16_weights *w, bn_conv_engine e, bn_precision p, int s,
                      int max_batch);
/* Images [first, first + n) (mod nimg) of in (nimg, s, s, 3) through net
 * into out (n, dim), block5_pool flattened. Returns bn_vgg16_forward's code. */
int support_net_batch(bn_vgg16 *net, const float *in, int nimg, int s, int first, int n, float *out,
                      bn_error *err);
/* nimg smooth s x s images in the caffe range (NHWC, 3 channels: a sine
 * along each row, support_rnd noise, an offset per channel), malloc'd. */
float *support_smooth_images(int nimg, int s);
/* Each of the nimg images of in through VGG16 alone (engine e, precision p,
 * one thread, batch 1) into alone, and all of them at once through the
 * exact engine (direct, FP32) into exact, both (nimg, dim); the worst
 * relative L2 distance of an image's vector from its exact one. engine_id
 * (64 bytes) receives the first net's engine id. Exits (1) on an error. */
double support_net_alone_vs_exact(const bn_vgg16_weights *w, bn_conv_engine e, bn_precision p,
                                  int s, const float *in, int nimg, float *alone, float *exact,
                                  char engine_id[64]);
/* How many of out's n rows differ, bitwise, from alone's rows first, first
 * + 1, ... (mod nimg): each image's vector computed alone. */
int support_rows_differ(const float *out, const float *alone, int nimg, int first, int n,
                        size_t dim);

/* ---- hand-made files ---------------------------------------------------- */

/* A complete PNG of 44 + 8 + 39 bytes into out (at least 128): signature,
 * an IHDR declaring w x h 8-bit RGB, one IDAT of a single black pixel, IEND,
 * every CRC correct; only its declared size may be a lie. Returns its length. */
size_t support_png_declaring(unsigned char *out, uint32_t w, uint32_t h);

/* ---- float32 files and the reference photos ----------------------------- */

/* A raw float32 file of exactly n values (malloc'ed), or NULL. */
float *support_read_f32(const char *path, size_t n);

/* Relative L2 distance of a from b: |a - b| / |b| (|a - b| where b is 0). */
double support_rel_l2(const float *a, const float *b, size_t n);

/* The reference photos: refdir/<name>.input.f32 holds one caffe-preprocessed
 * 224x224 input, refdir/<name>.<layer>.f32 PyTorch's block3_pool and
 * block5_pool for it (shared weights). */
#define SUPPORT_NREF 6
#define SUPPORT_REF_SIZE 224
extern const char *const support_ref_names[SUPPORT_NREF];

/* The SUPPORT_NREF inputs as one batch (NREF, 224, 224, 3), or NULL with
 * the file that could not be read named on stderr. */
float *support_ref_inputs(const char *refdir);

/* Runs the batch from support_ref_inputs through net (made for 224 and at
 * least NREF images, up to block5_pool) and compares block3_pool and
 * block5_pool with PyTorch's, printing each image's relative L2 error.
 * Returns how many of those exceed tol or could not be computed (each named
 * on stderr); engine only labels the lines. */
int support_ref_compare(bn_vgg16 *net, const float *in, const char *refdir, const char *engine,
                        double tol);

/* ---- a temporary directory ---------------------------------------------- */

/* OpenBLAS 0.3.21 may not recognise this CPU and load generic kernels,
 * which makes the direct engine (the yardstick of many tests) 3-4x slower:
 * run the program again, once, with the kernels the extractor uses
 * (bn_cpu_blas_use_best_kernels; not under BN_NO_REEXEC, as for valgrind).
 * Returns 0, or -1 when OpenBLAS then runs other kernels than asked
 * (printed): CHECK it. Call first thing in main. */
int support_use_fast_blas(char **argv);

/* Make $TMPDIR/<prefix>-XXXXXX (TMPDIR defaults to /tmp) and return its path,
 * or NULL after perror. support_tmp_path names files in it. */
const char *support_mkdtemp(const char *prefix);

/* dir/name for the directory made by support_mkdtemp; the result lives
 * until eight more calls. */
const char *support_tmp_path(const char *name);

/* rm -rf dir (does not follow symbolic links). */
void support_remove_tree(const char *dir);

/* ---- HDF5 --------------------------------------------------------------- */

/* Attach the string attribute `name` (n strings, n may be 0) to obj: variable
 * length strings when vlen, else fixed-size null-padded ones as old Keras
 * wrote them. Returns 0, or -1 if the attribute could not be created. */
int support_h5_strings(hid_t obj, const char *name, const char *const *s, int n, int vlen);

/* The GoogLeNet embeddings of ../shared (features/googlenet/catsdogs): train
 * rows (2,000) and validation rows (1,000), 1,024 floats each, labels 1 = dog.
 * 0, or -1 when they cannot be read. */
typedef struct {
    float *xt, *xv;
    int *yt, *yv;
    int nt, nv;
} support_gnet;
int support_load_gnet(support_gnet *g);
void support_free_gnet(support_gnet *g);

/* ---- Exif ---------------------------------------------------------------- */

/* One TIFF IFD entry; value is the 4-byte field (SHORT values in its first
 * two bytes, in the block's byte order). */
typedef struct {
    unsigned tag, type;
    uint32_t count, value;
} support_tiff_entry;

/* v in `bytes` bytes at p, big-endian when be ("MM"), else little-endian. */
void support_tiff_put(unsigned char *p, int bytes, uint32_t v, int be);

/* An Exif APP1 payload into b: "Exif\0\0", a TIFF header (be: "MM") with
 * IFD0 at 8 holding ne entries, then next (the next IFD's offset) and the
 * tail bytes (what offsets past IFD0 point at; tail may be NULL when
 * tail_len is 0). Returns its length. */
size_t support_exif_block(unsigned char *b, int be, const support_tiff_entry *e, int ne,
                          uint32_t next, const unsigned char *tail, size_t tail_len);

#endif

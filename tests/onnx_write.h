/*
 * onnx_write.h: small ONNX models written with the protobuf-c code the reader
 * itself uses (onnx.pb-c.h), for tests/test_onnx_graphs.c and the fuzz seeds
 * (tests/fuzz/gen_seeds.c). Every allocation is kept and freed by ow_free();
 * nothing here checks for errors: it is test code.
 */
#ifndef BN_ONNX_WRITE_H
#define BN_ONNX_WRITE_H

#include "onnx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    Onnx__GraphProto g;
    Onnx__NodeProto *node[128];
    Onnx__TensorProto *init[128];
    Onnx__ValueInfoProto *in[1];
} ow_model;

/* p, freed by ow_free() (up to 100,000 blocks). */
void *ow_keep(void *p);
void ow_free(void);

/* An empty graph with input (N, c, h, w) float32, N free. */
void ow_model_init(ow_model *m, const char *input, int c, int h, int w);
/* An initializer of `bytes` raw bytes of ONNX data type dtype (1 float32). */
void ow_init(ow_model *m, const char *name, int ndims, const int64_t *dims, const void *data,
             size_t bytes, int dtype);
Onnx__NodeProto *ow_node(ow_model *m, const char *op, const char *name, int nin,
                         const char *const *in, const char *out);
void ow_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v);
void ow_int(Onnx__NodeProto *n, const char *name, int64_t v);
/* A Conv node with initializers NAME_W (cout, cin/group, kh, kw) and NAME_B. */
Onnx__NodeProto *ow_conv(ow_model *m, const char *name, const char *in, const char *out, int cin,
                         int cout, int kh, int kw, int group, const float *w, const float *b);
/* The model (opset 13, IR 7) serialised; the bytes are kept. */
uint8_t *ow_bytes(ow_model *m, size_t *len);

#endif

/*
 * onnx_write.c: small ONNX models written with protobuf-c (onnx_write.h).
 */
#include "onnx_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[100000];
static int nkept;

void *ow_keep(void *p) {
    if (nkept < (int)(sizeof kept / sizeof kept[0]))
        kept[nkept++] = p;
    return p;
}

void ow_free(void) {
    while (nkept)
        free(kept[--nkept]);
}

void ow_model_init(ow_model *m, const char *input, int c, int h, int w) {
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    m->g = g;
    m->g.node = m->node;
    m->g.initializer = m->init;
    m->g.input = m->in;
    m->g.n_input = 1;
    m->g.name = "test";
    Onnx__ValueInfoProto *vi = ow_keep(malloc(sizeof *vi));
    onnx__value_info_proto__init(vi);
    vi->name = (char *)input;
    Onnx__TypeProto *t = ow_keep(malloc(sizeof *t));
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = ow_keep(malloc(sizeof *tt));
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = 1;
    Onnx__TensorShapeProto *sh = ow_keep(malloc(sizeof *sh));
    onnx__tensor_shape_proto__init(sh);
    Onnx__TensorShapeProto__Dimension **d = ow_keep(malloc(4 * sizeof *d));
    int64_t dims[4] = {0, c, h, w};
    for (int i = 0; i < 4; i++) {
        d[i] = ow_keep(malloc(sizeof *d[i]));
        onnx__tensor_shape_proto__dimension__init(d[i]);
        if (i) {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d[i]->dim_value = dims[i];
        } else {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d[i]->dim_param = "N";
        }
    }
    sh->n_dim = 4;
    sh->dim = d;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    vi->type = t;
    m->in[0] = vi;
}

/* A float32 (or, with dtype, another type's bytes) initializer. */
void ow_init(ow_model *m, const char *name, int ndims, const int64_t *dims, const void *data,
             size_t bytes, int dtype) {
    Onnx__TensorProto *t = ow_keep(malloc(sizeof *t));
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->n_dims = (size_t)ndims;
    t->dims = ow_keep(malloc((size_t)ndims * sizeof(int64_t)));
    memcpy(t->dims, dims, (size_t)ndims * sizeof(int64_t));
    t->has_data_type = 1;
    t->data_type = dtype;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = ow_keep(malloc(bytes ? bytes : 1));
    memcpy(t->raw_data.data, data, bytes);
    m->init[m->g.n_initializer++] = t;
}

Onnx__NodeProto *ow_node(ow_model *m, const char *op, const char *name, int nin,
                         const char *const *in, const char *out) {
    Onnx__NodeProto *n = ow_keep(malloc(sizeof *n));
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = (char *)name;
    n->n_input = (size_t)nin;
    n->input = ow_keep(malloc((size_t)nin * sizeof(char *)));
    memcpy(n->input, in, (size_t)nin * sizeof(char *));
    n->n_output = 1;
    n->output = ow_keep(malloc(sizeof(char *)));
    n->output[0] = (char *)out;
    n->attribute = ow_keep(calloc(8, sizeof(Onnx__AttributeProto *)));
    m->node[m->g.n_node++] = n;
    return n;
}

void ow_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    Onnx__AttributeProto *a = ow_keep(malloc(sizeof *a));
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)count;
    a->ints = ow_keep(malloc((size_t)count * sizeof(int64_t)));
    memcpy(a->ints, v, (size_t)count * sizeof(int64_t));
    n->attribute[n->n_attribute++] = a;
}

void ow_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = ow_keep(malloc(sizeof *a));
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    n->attribute[n->n_attribute++] = a;
}

/* Serialise; the bytes are kept. */
uint8_t *ow_bytes(ow_model *m, size_t *len) {
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
    op.domain = "";
    op.has_version = 1;
    op.version = 13;
    mp.has_ir_version = 1;
    mp.ir_version = 7;
    mp.n_opset_import = 1;
    mp.opset_import = ops;
    mp.graph = &m->g;
    *len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = ow_keep(malloc(*len));
    onnx__model_proto__pack(&mp, buf);
    return buf;
}

/* A Conv node with weight `name`_W (cout, cin/group, kh, kw) and bias. */
Onnx__NodeProto *ow_conv(ow_model *m, const char *name, const char *in, const char *out, int cin,
                         int cout, int kh, int kw, int group, const float *w, const float *b) {
    char *wn = ow_keep(malloc(strlen(name) + 3)), *bn = ow_keep(malloc(strlen(name) + 3));
    sprintf(wn, "%s_W", name);
    sprintf(bn, "%s_B", name);
    int64_t wd[4] = {cout, cin / group, kh, kw}, bd[1] = {cout};
    ow_init(m, wn, 4, wd, w, (size_t)cout * (cin / group) * kh * kw * sizeof(float), 1);
    ow_init(m, bn, 1, bd, b, (size_t)cout * sizeof(float), 1);
    const char *ins[3] = {in, wn, bn};
    Onnx__NodeProto *n = ow_node(m, "Conv", name, 3, ins, out);
    int64_t k[2] = {kh, kw};
    ow_ints(n, "kernel_shape", 2, k);
    if (group > 1)
        ow_int(n, "group", group);
    return n;
}

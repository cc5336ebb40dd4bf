/*
 * onnx.h: an ONNX model file -> a graph (graph.h).
 *
 * The file is decoded by libprotobuf-c with C code that protoc-c generates at
 * build time from the onnx.proto Debian's libonnx-dev installs (meson.build);
 * this module walks the decoded ModelProto. Supported (opsets 7-18 as they
 * apply): Conv (any kernel, stride, pads, dilation, group), Relu, Clip
 * (attribute and input forms), MaxPool, AveragePool (pads, ceil_mode,
 * count_include_pad), GlobalAveragePool, GlobalMaxPool, LRN, Concat
 * (channels), Add, BatchNormalization (folded into the Conv before it),
 * Gemm, MatMul with constant weights, Flatten, Reshape to (N, -1), Dropout
 * and Identity (no-ops), Softmax, Constant. That covers VGG, GoogLeNet,
 * ResNet, SqueezeNet and MobileNetV2 of the ONNX model zoo. Anything else
 * fails at load, before any image is read, with one line naming the operator
 * and the node.
 *
 * Weights must be float32 (inside the file, or in external data files beside
 * it, as ONNX writes models over 2 GB). Tensors keep their ONNX names; the
 * graph flattens them in ONNX's (c, y, x) order.
 */
#ifndef BN_ONNX_H
#define BN_ONNX_H

#include "error.h"
#include "graph.h"
#include "image.h"

typedef struct {
    char sha256[65];     /* of the model file: identifies its feature sets */
    char input[256];     /* the graph input's name */
    int channels;        /* of the input */
    int height, width;   /* of the input, 0 when the file leaves them free */
    int opset;           /* of the default (ai.onnx) domain */
    int nodes;           /* ONNX nodes read */
    int has_preprocess;  /* the file carries preprocess.* metadata_props */
    bn_image_opts image; /* preprocessing: from the metadata, else the zoo default */
} bn_onnx_info;

/* Read path into a graph (not yet inferred). info may be NULL. Errors name
 * the file, and the node where there is one. */
int bn_onnx_load(bn_graph **out, const char *path, bn_onnx_info *info, bn_error *err);

/* The same from bytes in memory (name is used in messages; external data
 * files are looked for beside it). */
int bn_onnx_load_buffer(bn_graph **out, const void *buf, size_t len, const char *name,
                        bn_onnx_info *info, bn_error *err);

/* The preprocessing classic ONNX model zoo models expect when the file says
 * nothing: RGB, scaled to 0-1, minus (0.485, 0.456, 0.406), over (0.229,
 * 0.224, 0.225) (torchvision's), 224 x 224, squash. */
void bn_onnx_default_preprocess(bn_image_opts *o);

#endif

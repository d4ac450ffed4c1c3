/* dds_model.h: the model graph (layers, shapes, FLOPs, parameters) shared by server and agent.
 *
 * A model is read from a JSON graph and an optional weights file (docs/model-format.md). Values
 * are numbered: value 0 is the raw input, value k+1 is the output of layer k. Layers are stored
 * in a topological order, so a layer's inputs always have smaller value ids.
 *
 * Ownership: dds_model_load() returns a model that owns everything it points to; free it with
 * dds_model_free(). Nothing here touches a network, a GPU or DPDK.
 */
#ifndef DDS_MODEL_H
#define DDS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DDS_MAX_DIMS 4
#define DDS_NAME_MAX 64
#define DDS_MAX_PARAMS 6
/* Largest tensor (value or parameter) a model may declare, in elements (1 GiB of float32). */
#define DDS_MAX_TENSOR_ELEMS (1 << 28)

/* An error message filled by the functions that can fail: "<file>: <layer>: <problem>". */
struct dds_err {
	char msg[512];
};

enum dds_op {
	DDS_OP_CONV2D,
	DDS_OP_BATCHNORM,
	DDS_OP_RELU,
	DDS_OP_GELU,
	DDS_OP_MAXPOOL,
	DDS_OP_AVGPOOL,
	DDS_OP_ADAPTIVE_AVGPOOL,
	DDS_OP_LINEAR,
	DDS_OP_ADD,
	DDS_OP_CONCAT,
	DDS_OP_FLATTEN,
	DDS_OP_SOFTMAX,
	DDS_OP_LAYERNORM,
	DDS_OP_MHA,
	DDS_OP_TOKENS,
	DDS_OP_CLS_TOKEN,
	DDS_OP_POS_EMBED,
	DDS_OP_SELECT_TOKEN,
	DDS_OP__COUNT
};

enum dds_act { DDS_ACT_NONE, DDS_ACT_RELU, DDS_ACT_GELU };

/* A per-sample shape (no batch dimension). */
struct dds_shape {
	int ndim;
	int d[DDS_MAX_DIMS];
};

/* One parameter tensor; data points into the model's weights arena. */
struct dds_param {
	char name[16]; /* "weight", "bias", "bn_mean", ... (docs/model-format.md) */
	struct dds_shape shape;
	size_t count;
	float *data;
};

struct dds_layer {
	char name[DDS_NAME_MAX];
	enum dds_op op;
	int n_in;
	int *in; /* value ids of the inputs (0 = raw input, k+1 = layer k) */
	struct dds_shape out_shape;

	/* Attributes; only those of the layer's op are meaningful. */
	int kernel[2], stride[2], padding[2], dilation[2]; /* conv2d, pools: [h, w] */
	int groups, out_channels;                          /* conv2d */
	int out_features;                                  /* linear */
	int output_size[2];                                /* adaptive_avgpool */
	int heads;                                         /* mha */
	int axis;                                          /* concat (per-sample axis) */
	int index;                                         /* select_token */
	bool bias, bn, ceil_mode, count_include_pad;
	float eps;
	enum dds_act act; /* fused activation: conv2d, linear, add */

	int n_params;
	struct dds_param params[DDS_MAX_PARAMS];

	double flops;     /* floating-point operations per sample */
	double macs;      /* multiply-adds per sample, ptflops convention */
	size_t out_bytes; /* bytes of the output per sample (float32) */

	int n_succ;
	int *succ; /* layer indices that consume this layer's output */
};

struct dds_model {
	char name[DDS_NAME_MAX];
	struct dds_shape in_shape;
	size_t in_bytes;
	int n_in_succ;
	int *in_succ; /* layer indices that consume the raw input */
	int n_layers;
	struct dds_layer *layers;
	int output;  /* layer index of the result */
	int n_edges; /* data edges between layers, plus edges from the raw input */
	double flops, macs;
	float *weights; /* arena that every dds_param.data points into */
	size_t n_weights;
	uint64_t hash; /* FNV-1a 64 of the graph file's bytes: the model's identity on the wire */
};

/* Load a model. weights_path NULL means seeded initialisation with `seed`.
 * On error returns -1, fills err (naming the file and the layer) and *out is untouched. */
int dds_model_load(const char *json_path, const char *weights_path, uint64_t seed,
		   struct dds_model **out, struct dds_err *err);

/* Same from a JSON text already in memory; `origin` names it in error messages. */
int dds_model_load_string(const char *json_text, size_t len, const char *origin,
			  const char *weights_path, uint64_t seed, struct dds_model **out,
			  struct dds_err *err);

/* The graph alone (shapes, FLOPs, sizes, hash): no weights are allocated and every
 * dds_param.data is NULL. For the partitioner, the simulator and the protocol, which never run
 * the model. Errors as dds_model_load. */
int dds_model_load_graph(const char *json_path, struct dds_model **out, struct dds_err *err);

void dds_model_free(struct dds_model *m);

/* Shape of a value (0 = raw input, k+1 = layer k). */
const struct dds_shape *dds_model_value_shape(const struct dds_model *m, int value);

/* Elements of a shape (product of dims). */
size_t dds_shape_numel(const struct dds_shape *s);

/* Write a shape as "[3,224,224]" into buf (n bytes, always NUL-terminated). */
void dds_shape_format(const struct dds_shape *s, char *buf, size_t n);

/* Index of a layer by name, or -1. */
int dds_model_find(const struct dds_model *m, const char *name);

/* The tail that turns `values` (value ids a device sends, any order, no duplicates; 0 = the raw
 * input) into the model's output: mask[k] = 1 for each layer k the node must run (n_layers
 * bytes). 0, or -1 with err (a value out of range or repeated, the output sent, the raw input
 * needed but not sent: not a cut; mask unspecified then). */
int dds_model_tail_mask(const struct dds_model *m, const int *values, int n_values,
			uint8_t *mask, struct dds_err *err);

/* The inputs of the layers of mask (n_layers bytes): in[v] = 1 (n_layers + 1 bytes) for each
 * value v (0 = the raw input) a layer of mask reads and no layer of mask computes. */
void dds_model_mask_inputs(const struct dds_model *m, const uint8_t *mask, uint8_t *in);

/* Op name as in the JSON ("conv2d"), and back (-1 if unknown). */
const char *dds_op_name(enum dds_op op);
int dds_op_from_name(const char *name);

/* Write the model's current parameters as a weights file. Returns 0, or -1 with err. */
int dds_model_save_weights(const struct dds_model *m, const char *path, struct dds_err *err);

/* Check that `mask` (one byte per layer, non-zero = in the head) is closed under predecessors.
 * Returns 0, or -1 with err naming the first layer whose input is outside the head. */
int dds_model_check_head(const struct dds_model *m, const uint8_t *mask, struct dds_err *err);

#endif

/* backend_cuda.c: the CUDA backend: cuDNN convolution/pooling/activation/batchnorm/softmax,
 * cuBLAS linear and attention, kernels.cu for the rest, one CUDA graph per batch-size bucket.
 *
 * A plan owns everything it runs with: its own stream, cuDNN and cuBLAS handles (so plans may
 * run on different threads at once), one device buffer per value the tail reads or writes
 * (sized for max_batch, never reused between layers), the tail's weights uploaded once (conv
 * weights with their batchnorm folded in, in double, as the CPU fast path does), pinned host
 * staging for the inputs and the outputs (the model output, or the values a bridge plan hands
 * on: dds_plan_create_values), one cuDNN workspace, and per conv layer the algorithm
 * cudnnFindConvolutionForwardAlgorithm chose for each batch bucket.
 *
 * Batch buckets: 1, 2, 4, ... up to max_batch (and max_batch itself). A batch of n runs the
 * smallest bucket B >= n: rows n..B-1 hold what an earlier, larger batch left in the input
 * staging (zeros before that; not necessarily finite, as a request may send any floats) and are
 * computed and dropped: every op is per sample, so nothing crosses into rows 0..n-1. So each
 * bucket's whole run (copy in, layers, copy out) has fixed shapes and addresses and is captured
 * once as a CUDA graph at its first run, after one eager run of it; later runs are one graph
 * launch. A bucket whose capture fails runs eagerly.
 *
 * Precision: no TF32 anywhere (cuDNN FMA math only, cuBLAS default math, which for float is
 * plain FMA), so results stay within float rounding of the CPU engine (tests/gpu states the
 * tolerance). Every CUDA, cuDNN and cuBLAS status goes through one of the *_TRY macros: a
 * failure becomes DDS_BACKEND_EDEVICE (ENOMEM for allocation failures) with a line naming the
 * model, the layer, the call, and where; nothing aborts.
 */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_int.h"
#include "cuda_kernels.h"

#define CUDA_MAX_BUCKETS 16
/* Largest cuDNN workspace one convolution may use; faster algorithms that need more are
 * skipped. */
#define CUDA_CONV_WS_LIMIT ((size_t)1 << 30)
/* cuBLAS's own workspace, set explicitly so that graph capture never allocates. */
#define CUDA_BLAS_WS ((size_t)32 << 20)

struct cuda_backend {
	int dev;
	dds_backend_log_fn log; /* NULL: stderr */
	void *log_arg;
};

/* Per tail layer: its device parameters and, for conv2d, an algorithm per bucket. */
struct cuda_layer {
	float *w, *b;        /* conv/linear weight and bias (conv: BN folded); bn/ln: scale, shift */
	float *w2, *b2;      /* mha: out_proj weight and bias */
	float *mean, *var;   /* batchnorm through cuDNN */
	cudnnConvolutionFwdAlgo_t algo[CUDA_MAX_BUCKETS];
};

struct cuda_plan {
	int dev, cur;         /* device; layer being prepared or run (-1: none) */
	cudaStream_t st;
	cudnnHandle_t dnn;
	cublasHandle_t blas;
	cudnnTensorDescriptor_t xd, yd, pd4; /* scratch descriptors, set per call */
	cudnnFilterDescriptor_t fd;
	cudnnConvolutionDescriptor_t cd;
	cudnnPoolingDescriptor_t pool;
	cudnnActivationDescriptor_t relu;
	float **val;          /* n_layers + 1 device buffers; NULL for values the tail ignores */
	struct cuda_layer *L; /* n_layers entries, used where the mask is set */
	void *ws, *blas_ws;
	size_t ws_bytes;
	float *mha_work;      /* qkv, scores and attention of the largest mha layer */
	float *h_in, *h_out;  /* pinned staging: input k at h_in + max_batch * (floats before k);
			       * outputs likewise in h_out */
	int n_buckets, bucket[CUDA_MAX_BUCKETS];
	cudaGraphExec_t graph[CUDA_MAX_BUCKETS];
	bool no_graph[CUDA_MAX_BUCKETS]; /* capture failed once: run eagerly */
};

/* ---- errors ---- */

/* The one error path: "<model>: layer '<name>': <call>: <what> (<func>:<line>)". */
static int cuda_fail(const struct dds_plan *p, struct dds_err *err, int status,
		     const char *call, const char *what, const char *func, int line)
{
	const struct cuda_plan *cp = p->context;
	const char *layer = cp && cp->cur >= 0 ? p->m->layers[cp->cur].name : "(plan)";
	return dds_backend_errf(err, status, "%s: layer '%s': %s: %s (%s:%d)", p->m->name, layer,
				call, what, func, line);
}

/* One library call x returning a status of type T: on anything but ok, the error path above
 * (allocation failures as DDS_BACKEND_ENOMEM, the rest as DDS_BACKEND_EDEVICE). */
#define API_TRY(T, ok, is_alloc, to_string, x)                                               \
	do {                                                                                 \
		T e_ = (x);                                                                  \
		if (e_ != (ok))                                                              \
			return cuda_fail(p, err,                                             \
					 is_alloc(e_) ? DDS_BACKEND_ENOMEM : DDS_BACKEND_EDEVICE, \
					 #x, to_string(e_), __func__, __LINE__);             \
	} while (0)
#define CUDA_IS_ALLOC(e) ((e) == cudaErrorMemoryAllocation)
/* cuDNN 9's allocation failures: CUDNN_STATUS_ALLOC_FAILED is now only a deprecated alias of
 * the host one (cudnn_graph.h), so a failed device allocation needs its own name. */
#define CUDNN_IS_ALLOC(e)                                              \
	((e) == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED || \
	 (e) == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
#define CUBLAS_IS_ALLOC(e) ((e) == CUBLAS_STATUS_ALLOC_FAILED)
#define CUDA_TRY(x) API_TRY(cudaError_t, cudaSuccess, CUDA_IS_ALLOC, cudaGetErrorString, x)
#define CUDNN_TRY(x) \
	API_TRY(cudnnStatus_t, CUDNN_STATUS_SUCCESS, CUDNN_IS_ALLOC, cudnnGetErrorString, x)
#define CUBLAS_TRY(x) \
	API_TRY(cublasStatus_t, CUBLAS_STATUS_SUCCESS, CUBLAS_IS_ALLOC, cublasGetStatusString, x)
#define STATUS_TRY(x)                                                                        \
	do {                                                                                 \
		int s_ = (x);                                                                \
		if (s_ != DDS_BACKEND_OK)                                                    \
			return s_;                                                           \
	} while (0)

/* ---- small helpers ---- */

static size_t value_numel(const struct dds_model *m, int v)
{
	return dds_shape_numel(dds_model_value_shape(m, v));
}

static const struct dds_param *host_param(const struct dds_layer *l, const char *name)
{
	for (int i = 0; i < l->n_params; i++)
		if (!strcmp(l->params[i].name, name))
			return &l->params[i];
	return NULL;
}

/* Data of a parameter, or NULL. */
static const float *host_data(const struct dds_layer *l, const char *name)
{
	const struct dds_param *pa = host_param(l, name);
	return pa ? pa->data : NULL;
}

/* Copy n host floats to a new device buffer *d (NULL src: *d stays NULL). */
static int upload(struct dds_plan *p, const float *src, size_t n, float **d, struct dds_err *err)
{
	if (!src)
		return DDS_BACKEND_OK;
	CUDA_TRY(cudaMalloc((void **)d, n * sizeof(float)));
	CUDA_TRY(cudaMemcpy(*d, src, n * sizeof(float), cudaMemcpyHostToDevice));
	return DDS_BACKEND_OK;
}

/* Upload parameter `name` of l whole (absent: *d stays NULL). */
static int upload_param(struct dds_plan *p, const struct dds_layer *l, const char *name,
			float **d, struct dds_err *err)
{
	const struct dds_param *pa = host_param(l, name);
	return pa ? upload(p, pa->data, pa->count, d, err) : DDS_BACKEND_OK;
}

/* Same input shape and conv attributes: the same cuDNN algorithm choice. */
static bool conv_same_shape(const struct dds_model *m, const struct dds_layer *a,
			    const struct dds_layer *b)
{
	const struct dds_shape *sa = dds_model_value_shape(m, a->in[0]);
	const struct dds_shape *sb = dds_model_value_shape(m, b->in[0]);
	bool same = sa->ndim == sb->ndim && a->groups == b->groups &&
		    a->out_channels == b->out_channels;
	for (int i = 0; i < sa->ndim && same; i++)
		same = sa->d[i] == sb->d[i];
	for (int i = 0; i < 2 && same; i++)
		same = a->kernel[i] == b->kernel[i] && a->stride[i] == b->stride[i] &&
		       a->padding[i] == b->padding[i] && a->dilation[i] == b->dilation[i];
	return same;
}

/* Set a 4-d NCHW float descriptor. */
static int set4(struct dds_plan *p, cudnnTensorDescriptor_t d, int n, int c, int h, int w,
		struct dds_err *err)
{
	CUDNN_TRY(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
	return DDS_BACKEND_OK;
}

/* Descriptors of a conv2d layer at batch n: xd (input), fd, cd, yd (output). */
static int conv_describe(struct dds_plan *p, int li, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	const struct dds_shape *xs = dds_model_value_shape(p->m, l->in[0]);

	STATUS_TRY(set4(p, cp->xd, n, xs->d[0], xs->d[1], xs->d[2], err));
	STATUS_TRY(set4(p, cp->yd, n, l->out_shape.d[0], l->out_shape.d[1], l->out_shape.d[2],
			err));
	CUDNN_TRY(cudnnSetFilter4dDescriptor(cp->fd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
					     l->out_channels, xs->d[0] / l->groups, l->kernel[0],
					     l->kernel[1]));
	CUDNN_TRY(cudnnSetConvolution2dDescriptor(cp->cd, l->padding[0], l->padding[1],
						  l->stride[0], l->stride[1], l->dilation[0],
						  l->dilation[1], CUDNN_CROSS_CORRELATION,
						  CUDNN_DATA_FLOAT));
	CUDNN_TRY(cudnnSetConvolutionGroupCount(cp->cd, l->groups));
	CUDNN_TRY(cudnnSetConvolutionMathType(cp->cd, CUDNN_FMA_MATH));
	return DDS_BACKEND_OK;
}

/* ---- preparing a plan ---- */

/* Conv weights with BN folded in (double), uploaded: w' = w * s, b' = (b - mean) * s + beta
 * with s = gamma / sqrt(var + eps). */
static int prep_conv(struct dds_plan *p, struct cuda_layer *cl, const struct dds_layer *l,
		     struct dds_err *err)
{
	const float *w = host_data(l, "weight"), *b = host_data(l, "bias");
	size_t count = host_param(l, "weight")->count, per_o = count / (size_t)l->out_channels;
	int oc = l->out_channels, rc = DDS_BACKEND_OK;

	if (!l->bn) {
		STATUS_TRY(upload_param(p, l, "weight", &cl->w, err));
		return upload_param(p, l, "bias", &cl->b, err);
	}
	const float *g = host_data(l, "bn_weight"), *be = host_data(l, "bn_bias");
	const float *mu = host_data(l, "bn_mean"), *var = host_data(l, "bn_var");
	float *fw = malloc(count * sizeof(float)), *fb = malloc(oc * sizeof(float));
	if (!fw || !fb)
		rc = cuda_fail(p, err, DDS_BACKEND_ENOMEM, "malloc", "out of host memory",
			       __func__, __LINE__);
	for (int o = 0; o < oc && rc == DDS_BACKEND_OK; o++) {
		double s = g[o] / sqrt((double)var[o] + l->eps);
		for (size_t i = 0; i < per_o; i++)
			fw[o * per_o + i] = (float)(w[o * per_o + i] * s);
		fb[o] = (float)(((b ? b[o] : 0.0) - mu[o]) * s + be[o]);
	}
	if (rc == DDS_BACKEND_OK)
		rc = upload(p, fw, count, &cl->w, err);
	if (rc == DDS_BACKEND_OK)
		rc = upload(p, fb, (size_t)oc, &cl->b, err);
	free(fw);
	free(fb);
	return rc;
}

/* Batchnorm: through cuDNN (weight, bias, mean, var as given) when its eps is allowed, else
 * as a folded scale/shift for the affine kernel. */
static int prep_batchnorm(struct dds_plan *p, struct cuda_layer *cl, const struct dds_layer *l,
			  struct dds_err *err)
{
	int c = dds_model_value_shape(p->m, l->in[0])->d[0];
	const float *w = host_data(l, "weight"), *b = host_data(l, "bias");
	const float *mu = host_data(l, "mean"), *var = host_data(l, "var");

	if (l->eps >= CUDNN_BN_MIN_EPSILON) {
		STATUS_TRY(upload_param(p, l, "weight", &cl->w, err));
		STATUS_TRY(upload_param(p, l, "bias", &cl->b, err));
		STATUS_TRY(upload_param(p, l, "mean", &cl->mean, err));
		return upload_param(p, l, "var", &cl->var, err);
	}
	float *sc = malloc(2 * (size_t)c * sizeof(float));
	if (!sc)
		return cuda_fail(p, err, DDS_BACKEND_ENOMEM, "malloc", "out of host memory",
				 __func__, __LINE__);
	for (int i = 0; i < c; i++) {
		double s = w[i] / sqrt((double)var[i] + l->eps);
		sc[i] = (float)s;
		sc[c + i] = (float)(b[i] - mu[i] * s);
	}
	int rc = upload(p, sc, (size_t)c, &cl->w, err);
	if (rc == DDS_BACKEND_OK)
		rc = upload(p, sc + c, (size_t)c, &cl->b, err);
	free(sc);
	return rc;
}

/* Upload the parameters of tail layer li in the form the run uses. */
static int prep_params(struct dds_plan *p, int li, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	struct cuda_layer *cl = &cp->L[li];
	const struct dds_layer *l = &p->m->layers[li];

	switch (l->op) {
	case DDS_OP_CONV2D:
		return prep_conv(p, cl, l, err);
	case DDS_OP_BATCHNORM:
		return prep_batchnorm(p, cl, l, err);
	case DDS_OP_LINEAR:
	case DDS_OP_LAYERNORM:
		STATUS_TRY(upload_param(p, l, "weight", &cl->w, err));
		return upload_param(p, l, "bias", &cl->b, err);
	case DDS_OP_MHA:
		STATUS_TRY(upload_param(p, l, "in_proj_weight", &cl->w, err));
		STATUS_TRY(upload_param(p, l, "in_proj_bias", &cl->b, err));
		STATUS_TRY(upload_param(p, l, "out_proj_weight", &cl->w2, err));
		return upload_param(p, l, "out_proj_bias", &cl->b2, err);
	case DDS_OP_CLS_TOKEN:
		return upload_param(p, l, "token", &cl->w, err);
	case DDS_OP_POS_EMBED:
		return upload_param(p, l, "weight", &cl->w, err);
	default:
		return DDS_BACKEND_OK;
	}
}

/* Conv layer li's algorithm for bucket k: copied from an earlier tail conv of the same shape,
 * else the fastest result of cudnnFindConvolutionForwardAlgorithm (the descriptor asks for FMA
 * math; tensor-op results are skipped all the same) whose workspace fits CUDA_CONV_WS_LIMIT.
 * Grows cp->ws_bytes to what it needs. */
static int prep_conv_algo(struct dds_plan *p, int li, int k, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
	int found = 0, pick = -1;
	size_t ws = 0;

	for (int j = 0; j < li; j++) {
		const struct dds_layer *o = &p->m->layers[j];
		if (p->mask[j] && o->op == DDS_OP_CONV2D && conv_same_shape(p->m, o, l)) {
			cp->L[li].algo[k] = cp->L[j].algo[k];
			return DDS_BACKEND_OK;
		}
	}
	STATUS_TRY(conv_describe(p, li, cp->bucket[k], err));
	CUDNN_TRY(cudnnFindConvolutionForwardAlgorithm(cp->dnn, cp->xd, cp->fd, cp->cd, cp->yd,
						       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found,
						       perf));
	for (int i = 0; i < found && pick < 0; i++)
		if (perf[i].status == CUDNN_STATUS_SUCCESS &&
		    perf[i].mathType != CUDNN_TENSOR_OP_MATH &&
		    perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
		    perf[i].memory <= CUDA_CONV_WS_LIMIT)
			pick = i;
	if (pick < 0)
		return cuda_fail(p, err, DDS_BACKEND_EDEVICE, "cudnnFindConvolutionForwardAlgorithm",
				 "no FMA-math algorithm within the workspace limit", __func__,
				 __LINE__);
	cp->L[li].algo[k] = perf[pick].algo;
	CUDNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(cp->dnn, cp->xd, cp->fd, cp->cd, cp->yd,
							  perf[pick].algo, &ws));
	cp->ws_bytes = ws > cp->ws_bytes ? ws : cp->ws_bytes;
	return DDS_BACKEND_OK;
}

/* Floats of attention scratch an mha layer needs per sample: qkv [T,3E], scores and
 * probabilities [heads,T,T] each, attention [T,E]. */
static size_t mha_floats(const struct dds_layer *l)
{
	size_t t = (size_t)l->out_shape.d[0], e = (size_t)l->out_shape.d[1];
	return t * 3 * e + 2 * (size_t)l->heads * t * t + t * e;
}

/* Device buffers: one per value the tail reads or writes, and the mha scratch. Zeroed, so the
 * padding rows of a bucket are finite. */
static int prep_values(struct dds_plan *p, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_model *m = p->m;
	size_t mha = 0, mb = (size_t)p->max_batch;

	for (int k = 0; k < p->n_in; k++) {
		int v = p->in_val[k];
		CUDA_TRY(cudaMalloc((void **)&cp->val[v], mb * p->in_numel[k] * sizeof(float)));
		CUDA_TRY(cudaMemset(cp->val[v], 0, mb * p->in_numel[k] * sizeof(float)));
	}
	for (int li = 0; li < m->n_layers; li++) {
		if (!p->mask[li])
			continue;
		size_t n = mb * value_numel(m, li + 1) * sizeof(float);
		CUDA_TRY(cudaMalloc((void **)&cp->val[li + 1], n));
		CUDA_TRY(cudaMemset(cp->val[li + 1], 0, n));
		if (m->layers[li].op == DDS_OP_MHA && mha_floats(&m->layers[li]) > mha)
			mha = mha_floats(&m->layers[li]);
	}
	if (mha)
		CUDA_TRY(cudaMalloc((void **)&cp->mha_work, mb * mha * sizeof(float)));
	return DDS_BACKEND_OK;
}

/* Stream, handles (math modes without TF32), scratch descriptors, pinned staging. */
static int prep_handles(struct dds_plan *p, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;

	CUDA_TRY(cudaSetDevice(cp->dev));
	CUDA_TRY(cudaStreamCreateWithFlags(&cp->st, cudaStreamNonBlocking));
	CUDNN_TRY(cudnnCreate(&cp->dnn));
	CUDNN_TRY(cudnnSetStream(cp->dnn, cp->st));
	CUBLAS_TRY(cublasCreate(&cp->blas));
	CUBLAS_TRY(cublasSetStream(cp->blas, cp->st));
	CUBLAS_TRY(cublasSetMathMode(cp->blas, CUBLAS_DEFAULT_MATH));
	CUDA_TRY(cudaMalloc(&cp->blas_ws, CUDA_BLAS_WS));
	CUBLAS_TRY(cublasSetWorkspace(cp->blas, cp->blas_ws, CUDA_BLAS_WS));
	CUDNN_TRY(cudnnCreateTensorDescriptor(&cp->xd));
	CUDNN_TRY(cudnnCreateTensorDescriptor(&cp->yd));
	CUDNN_TRY(cudnnCreateTensorDescriptor(&cp->pd4));
	CUDNN_TRY(cudnnCreateFilterDescriptor(&cp->fd));
	CUDNN_TRY(cudnnCreateConvolutionDescriptor(&cp->cd));
	CUDNN_TRY(cudnnCreatePoolingDescriptor(&cp->pool));
	CUDNN_TRY(cudnnCreateActivationDescriptor(&cp->relu));
	CUDNN_TRY(cudnnSetActivationDescriptor(cp->relu, CUDNN_ACTIVATION_RELU,
					       CUDNN_PROPAGATE_NAN, 0.0));
	CUDA_TRY(cudaMallocHost((void **)&cp->h_in, p->in_floats * p->max_batch * sizeof(float)));
	CUDA_TRY(cudaMallocHost((void **)&cp->h_out, p->out_floats * p->max_batch * sizeof(float)));
	memset(cp->h_in, 0, p->in_floats * p->max_batch * sizeof(float)); /* finite padding rows */
	return DDS_BACKEND_OK;
}

/* Buckets 1, 2, 4, ... < max_batch, then max_batch. */
static void prep_buckets(struct cuda_plan *cp, int max_batch)
{
	cp->n_buckets = 0;
	for (int b = 1; b < max_batch && cp->n_buckets < CUDA_MAX_BUCKETS - 1; b *= 2)
		cp->bucket[cp->n_buckets++] = b;
	cp->bucket[cp->n_buckets++] = max_batch;
}

static void cuda_plan_free(struct dds_plan *p)
{
	struct cuda_plan *cp = p->context;

	cudaSetDevice(cp->dev);
	if (cp->st)
		cudaStreamSynchronize(cp->st);
	for (int k = 0; k < cp->n_buckets; k++)
		if (cp->graph[k])
			cudaGraphExecDestroy(cp->graph[k]);
	for (int v = 0; cp->val && v <= p->m->n_layers; v++)
		cudaFree(cp->val[v]);
	for (int li = 0; cp->L && li < p->m->n_layers; li++) {
		struct cuda_layer *cl = &cp->L[li];
		float *bufs[] = {cl->w, cl->b, cl->w2, cl->b2, cl->mean, cl->var};
		for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
			cudaFree(bufs[i]);
	}
	cudaFree(cp->ws);
	cudaFree(cp->blas_ws);
	cudaFree(cp->mha_work);
	cudaFreeHost(cp->h_in);
	cudaFreeHost(cp->h_out);
	if (cp->relu)
		cudnnDestroyActivationDescriptor(cp->relu);
	if (cp->pool)
		cudnnDestroyPoolingDescriptor(cp->pool);
	if (cp->cd)
		cudnnDestroyConvolutionDescriptor(cp->cd);
	if (cp->fd)
		cudnnDestroyFilterDescriptor(cp->fd);
	cudnnTensorDescriptor_t tds[] = {cp->xd, cp->yd, cp->pd4};
	for (size_t i = 0; i < 3; i++)
		if (tds[i])
			cudnnDestroyTensorDescriptor(tds[i]);
	if (cp->blas)
		cublasDestroy(cp->blas);
	if (cp->dnn)
		cudnnDestroy(cp->dnn);
	if (cp->st)
		cudaStreamDestroy(cp->st);
	free(cp->val);
	free(cp->L);
	free(cp);
	p->context = NULL;
}

/* Everything a plan needs, in order; on failure the half-built context is freed. */
static int cuda_plan_prepare(struct dds_plan *p, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;

	STATUS_TRY(prep_handles(p, err));
	prep_buckets(cp, p->max_batch);
	STATUS_TRY(prep_values(p, err));
	for (cp->cur = 0; cp->cur < p->m->n_layers; cp->cur++) {
		if (!p->mask[cp->cur])
			continue;
		STATUS_TRY(prep_params(p, cp->cur, err));
		for (int k = 0; k < cp->n_buckets && p->m->layers[cp->cur].op == DDS_OP_CONV2D; k++)
			STATUS_TRY(prep_conv_algo(p, cp->cur, k, err));
	}
	cp->cur = -1;
	if (cp->ws_bytes)
		CUDA_TRY(cudaMalloc(&cp->ws, cp->ws_bytes));
	/* The zeroing and the weight copies ran on the legacy stream, which the plan's
	 * non-blocking stream does not wait for: finish them before the first run. */
	CUDA_TRY(cudaDeviceSynchronize());
	return DDS_BACKEND_OK;
}

static int cuda_plan_create(struct dds_backend *b, struct dds_plan *p, struct dds_err *err)
{
	const struct cuda_backend *cb = b->context;
	struct cuda_plan *cp = calloc(1, sizeof(*cp));
	int n = p->m->n_layers;

	if (cp) {
		cp->val = calloc((size_t)n + 1, sizeof(float *));
		cp->L = calloc((size_t)n, sizeof(struct cuda_layer));
	}
	if (!cp || !cp->val || !cp->L) {
		if (cp) {
			free(cp->val);
			free(cp->L);
		}
		free(cp);
		return dds_backend_errf(err, DDS_BACKEND_ENOMEM, "%s: plan: out of memory",
					p->m->name);
	}
	cp->dev = cb->dev;
	cp->cur = -1;
	p->context = cp;
	int rc = cuda_plan_prepare(p, err);
	if (rc != DDS_BACKEND_OK)
		cuda_plan_free(p);
	return rc;
}

/* ---- running the layers (enqueued on the plan's stream; n = the bucket's batch) ---- */

static int run_conv(struct dds_plan *p, int li, int k, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	const struct cuda_layer *cl = &cp->L[li];
	const float one = 1.0f, zero = 0.0f;
	float *y = cp->val[li + 1];
	size_t hw = (size_t)l->out_shape.d[1] * l->out_shape.d[2];

	STATUS_TRY(conv_describe(p, li, n, err));
	CUDNN_TRY(cudnnConvolutionForward(cp->dnn, &one, cp->xd, cp->val[l->in[0]], cp->fd, cl->w,
					  cp->cd, cl->algo[k], cp->ws, cp->ws_bytes, &zero, cp->yd,
					  y));
	if (cl->b || l->act != DDS_ACT_NONE)
		CUDA_TRY(dds_cuk_affine_act(y, y, NULL, cl->b, l->out_channels, hw,
					    (size_t)n * l->out_channels * hw, l->act, cp->st));
	return DDS_BACKEND_OK;
}

/* Batchnorm over the first per-sample axis, as [n, C, inner, 1]. */
static int run_batchnorm(struct dds_plan *p, int li, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	const struct cuda_layer *cl = &cp->L[li];
	int c = l->out_shape.d[0];
	size_t inner = dds_shape_numel(&l->out_shape) / (size_t)c;
	const float one = 1.0f, zero = 0.0f;

	if (!cl->mean)
		CUDA_TRY(dds_cuk_affine_act(cp->val[l->in[0]], cp->val[li + 1], cl->w, cl->b, c,
					    inner, (size_t)n * c * inner, DDS_ACT_NONE, cp->st));
	if (!cl->mean)
		return DDS_BACKEND_OK;
	STATUS_TRY(set4(p, cp->xd, n, c, (int)inner, 1, err));
	STATUS_TRY(set4(p, cp->pd4, 1, c, 1, 1, err));
	CUDNN_TRY(cudnnBatchNormalizationForwardInference(
		cp->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, cp->xd, cp->val[l->in[0]], cp->xd,
		cp->val[li + 1], cp->pd4, cl->w, cl->b, cl->mean, cl->var, l->eps));
	return DDS_BACKEND_OK;
}

/* Pooling: cuDNN when its window rule gives the layer's output size (no ceil-mode overrun),
 * the own kernel otherwise; adaptive pooling through cuDNN when the bins are equal. */
static int run_pool(struct dds_plan *p, int li, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	const struct dds_shape *xs = dds_model_value_shape(p->m, l->in[0]);
	int c = xs->d[0], h = xs->d[1], w = xs->d[2], oh = l->out_shape.d[1], ow = l->out_shape.d[2];
	const float *x = cp->val[l->in[0]];
	float *y = cp->val[li + 1];
	const float one = 1.0f, zero = 0.0f;
	cudnnPoolingMode_t mode = CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING;
	int kh = l->kernel[0], kw = l->kernel[1], sh = l->stride[0], sw = l->stride[1];
	int ph = l->padding[0], pw = l->padding[1];

	if (l->op == DDS_OP_ADAPTIVE_AVGPOOL && (h % oh || w % ow)) {
		CUDA_TRY(dds_cuk_adaptive_avg(x, y, n * c, h, w, oh, ow, cp->st));
		return DDS_BACKEND_OK;
	}
	if (l->op == DDS_OP_ADAPTIVE_AVGPOOL) {
		kh = sh = h / oh;
		kw = sw = w / ow;
		ph = pw = 0;
	} else if ((h + 2 * ph - kh) / sh + 1 != oh || (w + 2 * pw - kw) / sw + 1 != ow) {
		struct dds_cuk_pool pp = {n * c, h, w, oh, ow, kh, kw, sh, sw, ph, pw,
					  l->op == DDS_OP_MAXPOOL, l->count_include_pad};
		CUDA_TRY(dds_cuk_pool2d(x, y, &pp, cp->st));
		return DDS_BACKEND_OK;
	} else if (l->op == DDS_OP_MAXPOOL) {
		mode = CUDNN_POOLING_MAX;
	} else if (!l->count_include_pad) {
		mode = CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
	}
	CUDNN_TRY(cudnnSetPooling2dDescriptor(cp->pool, mode, CUDNN_PROPAGATE_NAN, kh, kw, ph, pw,
					      sh, sw));
	STATUS_TRY(set4(p, cp->xd, n, c, h, w, err));
	STATUS_TRY(set4(p, cp->yd, n, c, oh, ow, err));
	CUDNN_TRY(cudnnPoolingForward(cp->dnn, cp->pool, &one, cp->xd, x, &zero, cp->yd, y));
	return DDS_BACKEND_OK;
}

/* Y[rows, nout] = X[rows, kdim] W^T (+ bias, act): row-major, so column-major Y^T = W X^T. */
static int gemm_rows(struct dds_plan *p, const float *x, size_t rows, int kdim, const float *w,
		     const float *b, int nout, enum dds_act act, float *y, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const float one = 1.0f, zero = 0.0f;

	if (rows > 0x7fffffff)
		return cuda_fail(p, err, DDS_BACKEND_EDEVICE, "cublasSgemm", "too many rows",
				 __func__, __LINE__);
	CUBLAS_TRY(cublasSgemm(cp->blas, CUBLAS_OP_T, CUBLAS_OP_N, nout, (int)rows, kdim, &one, w,
			       kdim, x, kdim, &zero, y, nout));
	if (b || act != DDS_ACT_NONE)
		CUDA_TRY(dds_cuk_affine_act(y, y, NULL, b, nout, 1, rows * nout, act, cp->st));
	return DDS_BACKEND_OK;
}

/* Softmax over rows of e through cuDNN (accurate: max subtracted). */
static int softmax_rows(struct dds_plan *p, const float *x, size_t rows, int e, float *y,
			struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const float one = 1.0f, zero = 0.0f;

	if (rows > 0x7fffffff)
		return cuda_fail(p, err, DDS_BACKEND_EDEVICE, "cudnnSoftmaxForward", "too many rows",
				 __func__, __LINE__);
	STATUS_TRY(set4(p, cp->xd, (int)rows, e, 1, 1, err));
	CUDNN_TRY(cudnnSoftmaxForward(cp->dnn, CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_INSTANCE,
				      &one, cp->xd, x, &zero, cp->xd, y));
	return DDS_BACKEND_OK;
}

/* Self-attention for n samples: qkv by one gemm; per head, scores = Q K^T / sqrt(d) and
 * att = P V as strided-batched gemms over the samples; softmax of all score rows at once;
 * then the output projection. Scratch layout: qkv [n,T,3E], S and P [n,heads,T,T] each,
 * att [n,T,E]. Column-major views: S_h^T = K_h Q_h^T and att_h^T = V_h^T P_h^T. */
static int run_mha(struct dds_plan *p, int li, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	const struct cuda_layer *cl = &cp->L[li];
	int t = l->out_shape.d[0], e = l->out_shape.d[1], hd = l->heads, d = e / hd;
	float *qkv = cp->mha_work, *s = qkv + (size_t)n * t * 3 * e;
	float *pr = s + (size_t)n * hd * t * t, *att = pr + (size_t)n * hd * t * t;
	const float one = 1.0f, zero = 0.0f, scale = (float)(1.0 / sqrt((double)d));
	long long sq = (long long)t * 3 * e, ss = (long long)hd * t * t, sa = (long long)t * e;

	STATUS_TRY(gemm_rows(p, cp->val[l->in[0]], (size_t)n * t, e, cl->w, cl->b, 3 * e,
			     DDS_ACT_NONE, qkv, err));
	for (int h = 0; h < hd; h++) {
		const float *q = qkv + h * d, *k = q + e;
		CUBLAS_TRY(cublasSgemmStridedBatched(cp->blas, CUBLAS_OP_T, CUBLAS_OP_N, t, t, d,
						     &scale, k, 3 * e, sq, q, 3 * e, sq, &zero,
						     s + (size_t)h * t * t, t, ss, n));
	}
	STATUS_TRY(softmax_rows(p, s, (size_t)n * hd * t, t, pr, err));
	for (int h = 0; h < hd; h++) {
		const float *v = qkv + 2 * e + h * d;
		CUBLAS_TRY(cublasSgemmStridedBatched(cp->blas, CUBLAS_OP_N, CUBLAS_OP_N, d, t, t,
						     &one, v, 3 * e, sq, pr + (size_t)h * t * t, t, ss,
						     &zero, att + h * d, e, sa, n));
	}
	return gemm_rows(p, att, (size_t)n * t, e, cl->w2, cl->b2, e, DDS_ACT_NONE,
			 cp->val[li + 1], err);
}

/* Sum in input order (as the reference), the activation with the last addition. */
static int run_add(struct dds_plan *p, int li, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	size_t cnt = (size_t)n * dds_shape_numel(&l->out_shape);
	float *y = cp->val[li + 1];

	for (int j = 1; j < l->n_in; j++)
		CUDA_TRY(dds_cuk_add_act(j == 1 ? cp->val[l->in[0]] : y, cp->val[l->in[j]], y, cnt,
					 j == l->n_in - 1 ? (int)l->act : DDS_ACT_NONE, cp->st));
	return DDS_BACKEND_OK;
}

/* Concat along a per-sample axis: one 2-d copy per input (rows = outer blocks of all samples). */
static int run_concat(struct dds_plan *p, int li, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	size_t outer = 1, row = dds_shape_numel(&l->out_shape), off = 0;

	for (int a = 0; a < l->axis; a++)
		outer *= (size_t)l->out_shape.d[a];
	row /= outer;
	for (int j = 0; j < l->n_in; j++) {
		size_t blk = value_numel(p->m, l->in[j]) / outer;
		CUDA_TRY(cudaMemcpy2DAsync(cp->val[li + 1] + off, row * sizeof(float),
					   cp->val[l->in[j]], blk * sizeof(float),
					   blk * sizeof(float), outer * n, cudaMemcpyDeviceToDevice,
					   cp->st));
		off += blk;
	}
	return DDS_BACKEND_OK;
}

/* Ops that are elementwise or pure layout. */
static int run_simple(struct dds_plan *p, int li, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	const struct dds_shape *xs = dds_model_value_shape(p->m, l->in[0]);
	const float *x = cp->val[l->in[0]];
	float *y = cp->val[li + 1];
	size_t in_n = dds_shape_numel(xs), e = (size_t)xs->d[xs->ndim - 1];

	switch (l->op) {
	case DDS_OP_GELU:
		CUDA_TRY(dds_cuk_affine_act(x, y, NULL, NULL, 1, 1, n * in_n, DDS_ACT_GELU, cp->st));
		break;
	case DDS_OP_FLATTEN:
		CUDA_TRY(cudaMemcpyAsync(y, x, n * in_n * sizeof(float), cudaMemcpyDeviceToDevice,
					 cp->st));
		break;
	case DDS_OP_LAYERNORM:
		CUDA_TRY(dds_cuk_layernorm(x, y, cp->L[li].w, cp->L[li].b, n * in_n / e, (int)e,
					   l->eps, cp->st));
		break;
	case DDS_OP_TOKENS:
		CUDA_TRY(dds_cuk_tokens(x, y, n, xs->d[0], (size_t)xs->d[1] * xs->d[2], cp->st));
		break;
	case DDS_OP_CLS_TOKEN:
		CUDA_TRY(dds_cuk_cls_token(x, cp->L[li].w, y, n, xs->d[0], xs->d[1], cp->st));
		break;
	case DDS_OP_POS_EMBED:
		CUDA_TRY(dds_cuk_add_periodic(x, cp->L[li].w, y, in_n, n * in_n, cp->st));
		break;
	default: /* DDS_OP_SELECT_TOKEN */
		CUDA_TRY(cudaMemcpy2DAsync(y, e * sizeof(float), x + (size_t)l->index * e,
					   in_n * sizeof(float), e * sizeof(float), (size_t)n,
					   cudaMemcpyDeviceToDevice, cp->st));
		break;
	}
	return DDS_BACKEND_OK;
}

/* One layer, one switch on the op (ggml's dispatch). */
static int run_layer(struct dds_plan *p, int li, int k, int n, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	const struct dds_layer *l = &p->m->layers[li];
	const struct dds_shape *xs = dds_model_value_shape(p->m, l->in[0]);
	size_t in_n = dds_shape_numel(xs);
	int e = xs->d[xs->ndim - 1];
	const float one = 1.0f, zero = 0.0f;

	switch (l->op) {
	case DDS_OP_CONV2D:
		return run_conv(p, li, k, n, err);
	case DDS_OP_BATCHNORM:
		return run_batchnorm(p, li, n, err);
	case DDS_OP_RELU:
		STATUS_TRY(set4(p, cp->xd, n, (int)in_n, 1, 1, err));
		CUDNN_TRY(cudnnActivationForward(cp->dnn, cp->relu, &one, cp->xd, cp->val[l->in[0]],
						 &zero, cp->xd, cp->val[li + 1]));
		return DDS_BACKEND_OK;
	case DDS_OP_MAXPOOL:
	case DDS_OP_AVGPOOL:
	case DDS_OP_ADAPTIVE_AVGPOOL:
		return run_pool(p, li, n, err);
	case DDS_OP_LINEAR:
		return gemm_rows(p, cp->val[l->in[0]], n * in_n / e, e, cp->L[li].w, cp->L[li].b,
				 l->out_features, l->act, cp->val[li + 1], err);
	case DDS_OP_ADD:
		return run_add(p, li, n, err);
	case DDS_OP_CONCAT:
		return run_concat(p, li, n, err);
	case DDS_OP_SOFTMAX:
		return softmax_rows(p, cp->val[l->in[0]], n * in_n / e, e, cp->val[li + 1], err);
	case DDS_OP_MHA:
		return run_mha(p, li, n, err);
	default:
		return run_simple(p, li, n, err);
	}
}

/* The whole run of bucket k on the stream: pinned inputs in, the plan's layers, each output
 * value to pinned (output k at h_out + max_batch * (floats of the outputs before k), as h_in). */
static int enqueue_bucket(struct dds_plan *p, int k, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	int n = cp->bucket[k];
	size_t off = 0;

	cp->cur = -1;
	for (int i = 0; i < p->n_in; i++) {
		CUDA_TRY(cudaMemcpyAsync(cp->val[p->in_val[i]], cp->h_in + off,
					 n * p->in_numel[i] * sizeof(float), cudaMemcpyHostToDevice,
					 cp->st));
		off += (size_t)p->max_batch * p->in_numel[i];
	}
	for (cp->cur = 0; cp->cur < p->m->n_layers; cp->cur++)
		if (p->mask[cp->cur])
			STATUS_TRY(run_layer(p, cp->cur, k, n, err));
	cp->cur = -1;
	off = 0;
	for (int i = 0; i < p->n_out; i++) {
		CUDA_TRY(cudaMemcpyAsync(cp->h_out + off, cp->val[p->out_val[i]],
					 n * p->out_numel[i] * sizeof(float), cudaMemcpyDeviceToHost,
					 cp->st));
		off += (size_t)p->max_batch * p->out_numel[i];
	}
	return DDS_BACKEND_OK;
}

/* One line through the backend's log, stderr when none was given (as backend.c's). */
static void cuda_log(const struct dds_plan *p, const char *line)
{
	const struct cuda_backend *cb = p->b->context;

	if (cb->log)
		cb->log(cb->log_arg, line);
	else
		fprintf(stderr, "%s\n", line);
}

/* Capture bucket k's run as a graph, after one eager run of it (as PyTorch warms up before a
 * capture): the libraries' lazy set-up on first use (module loading, cuBLAS and cuDNN internals)
 * then happens outside the capture, where it may allocate and synchronise. A failed eager run
 * is the run's error. On a failed capture (some library call that cannot be captured) the
 * bucket is marked to run eagerly, the capture's error is cleared and logged (once per bucket:
 * a slower eager bucket then says why), and OK is returned. */
static int capture_bucket(struct dds_plan *p, int k, struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	cudaGraph_t g = NULL;
	struct dds_err cerr = {{0}};
	char line[700];

	STATUS_TRY(enqueue_bucket(p, k, err));
	CUDA_TRY(cudaStreamSynchronize(cp->st));
	CUDA_TRY(cudaStreamBeginCapture(cp->st, cudaStreamCaptureModeThreadLocal));
	int rc = enqueue_bucket(p, k, &cerr);
	cudaError_t ce = cudaStreamEndCapture(cp->st, &g);
	if (rc == DDS_BACKEND_OK && ce == cudaSuccess)
		ce = cudaGraphInstantiate(&cp->graph[k], g, 0);
	if (g)
		cudaGraphDestroy(g);
	if (rc != DDS_BACKEND_OK || ce != cudaSuccess) {
		cp->graph[k] = NULL;
		cp->no_graph[k] = true;
		cudaGetLastError();
		snprintf(line, sizeof(line),
			 "backend cuda: %s: batch bucket %d: no CUDA graph, runs eagerly: %s",
			 p->m->name, cp->bucket[k],
			 rc != DDS_BACKEND_OK ? cerr.msg : cudaGetErrorString(ce));
		cuda_log(p, line);
	}
	return DDS_BACKEND_OK;
}

static int cuda_plan_run(struct dds_plan *p, const float *in, int batch, float *out,
			 struct dds_err *err)
{
	struct cuda_plan *cp = p->context;
	int k = 0;
	size_t off = 0;

	while (cp->bucket[k] < batch)
		k++;
	cp->cur = -1;
	CUDA_TRY(cudaSetDevice(cp->dev));
	for (int i = 0; i < p->n_in; i++) {
		memcpy(cp->h_in + off, in, batch * p->in_numel[i] * sizeof(float));
		in += batch * p->in_numel[i];
		off += (size_t)p->max_batch * p->in_numel[i];
	}
	if (!cp->graph[k] && !cp->no_graph[k])
		STATUS_TRY(capture_bucket(p, k, err));
	if (cp->graph[k])
		CUDA_TRY(cudaGraphLaunch(cp->graph[k], cp->st));
	else
		STATUS_TRY(enqueue_bucket(p, k, err));
	CUDA_TRY(cudaStreamSynchronize(cp->st));
	off = 0;
	for (int i = 0; i < p->n_out; i++) {
		memcpy(out, cp->h_out + off, batch * p->out_numel[i] * sizeof(float));
		out += batch * p->out_numel[i];
		off += (size_t)p->max_batch * p->out_numel[i];
	}
	return DDS_BACKEND_OK;
}

/* ---- the backend ---- */

static const char *cuda_name(const struct dds_backend *b)
{
	(void)b;
	return "cuda";
}

/* Every op of the model format; cuDNN's int sizes bound the per-sample sizes (the loader's
 * DDS_MAX_TENSOR_ELEMS already keeps them below 2^28). */
static bool cuda_supports_op(const struct dds_backend *b, const struct dds_model *m, int li)
{
	(void)b;
	return (unsigned)m->layers[li].op < DDS_OP__COUNT;
}

static void cuda_free(struct dds_backend *b)
{
	free(b->context);
}

int dds_backend_cuda_init(struct dds_backend *b, const struct dds_backend_opts *o,
			  struct dds_err *err)
{
	static const struct dds_backend_iface cuda_iface = {
		.name = cuda_name,
		.supports_op = cuda_supports_op,
		.plan_create = cuda_plan_create,
		.plan_run = cuda_plan_run,
		.plan_free = cuda_plan_free,
		.free = cuda_free,
	};
	int count = 0;
	cudaError_t ce = cudaGetDeviceCount(&count);

	if (ce != cudaSuccess || o->gpu_index >= count)
		return dds_backend_errf(err, DDS_BACKEND_EUNSUPPORTED,
					"backend 'cuda': no GPU %d: %s", o->gpu_index,
					ce != cudaSuccess ? cudaGetErrorString(ce)
							  : "fewer devices");
	ce = cudaSetDevice(o->gpu_index);
	if (ce == cudaSuccess)
		ce = cudaFree(NULL); /* start the context now, not in the first plan */
	if (ce != cudaSuccess)
		return dds_backend_errf(err, DDS_BACKEND_EDEVICE, "backend 'cuda': GPU %d: %s",
					o->gpu_index, cudaGetErrorString(ce));
	struct cuda_backend *cb = calloc(1, sizeof(*cb));
	if (!cb)
		return dds_backend_errf(err, DDS_BACKEND_ENOMEM, "backend 'cuda': out of memory");
	cb->dev = o->gpu_index;
	cb->log = o->log;
	cb->log_arg = o->log_arg;
	b->iface = cuda_iface;
	b->context = cb;
	return DDS_BACKEND_OK;
}

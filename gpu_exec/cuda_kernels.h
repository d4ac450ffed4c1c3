/* cuda_kernels.h: the CUDA backend's own kernels (kernels.cu), for what cuDNN and cuBLAS lack.
 *
 * Each launcher enqueues one kernel on `st` and returns cudaGetLastError() of the launch (the
 * kernel's own faults show up at the stream's next synchronisation). Layout as the CPU engine:
 * row-major, batch first. `act` is an enum dds_act (0 none, 1 relu, 2 gelu: the erf form). A
 * launcher given no work (n == 0) launches nothing and returns cudaSuccess.
 */
#ifndef DDS_CUDA_KERNELS_H
#define DDS_CUDA_KERNELS_H

#include <stddef.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[i] = act(x[i] * scale[c] + shift[c]), c = (i / inner) % ch; scale or shift may be NULL (1, 0).
 * Serves conv/linear bias + activation, batchnorm with a tiny eps, and standalone gelu. */
cudaError_t dds_cuk_affine_act(const float *x, float *y, const float *scale, const float *shift,
			       int ch, size_t inner, size_t n, int act, cudaStream_t st);

/* y[i] = act(a[i] + b[i]) (y may be a). */
cudaError_t dds_cuk_add_act(const float *a, const float *b, float *y, size_t n, int act,
			    cudaStream_t st);

/* y[i] = x[i] + p[i % period] (pos_embed). */
cudaError_t dds_cuk_add_periodic(const float *x, const float *p, float *y, size_t period,
				 size_t n, cudaStream_t st);

/* Max or average pooling over `planes` planes of h x w into oh x ow, PyTorch's windows (ceil
 * mode overrun, count_include_pad) exactly as cpu_engine/ref_kernels.c's pool_point. */
struct dds_cuk_pool {
	int planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
	int is_max, count_include_pad;
};
cudaError_t dds_cuk_pool2d(const float *x, float *y, const struct dds_cuk_pool *pp,
			   cudaStream_t st);

/* Adaptive average pooling, PyTorch's bins [floor(i*h/oh), ceil((i+1)*h/oh)). */
cudaError_t dds_cuk_adaptive_avg(const float *x, float *y, int planes, int h, int w, int oh,
				 int ow, cudaStream_t st);

/* Layer norm over the last axis (rows of e), double accumulators as the reference. */
cudaError_t dds_cuk_layernorm(const float *x, float *y, const float *w, const float *b,
			      size_t rows, int e, float eps, cudaStream_t st);

/* [batch, c, hw] -> [batch, hw, c] (tokens). */
cudaError_t dds_cuk_tokens(const float *x, float *y, int batch, int c, size_t hw,
			   cudaStream_t st);

/* y[n] = [token; x[n]] for x [batch, t, e], y [batch, t + 1, e] (cls_token). */
cudaError_t dds_cuk_cls_token(const float *x, const float *tok, float *y, int batch, int t,
			      int e, cudaStream_t st);

#ifdef __cplusplus
}
#endif

#endif

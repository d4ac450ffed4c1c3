// kernels.cu: the CUDA backend's elementwise, pooling, norm and layout kernels (cuda_kernels.h).
#include <math.h>

#include "cuda_kernels.h"

namespace {

const int kThreads = 256;

// Blocks for n elements with a grid-stride loop: enough to fill the GPU, capped.
unsigned blocks_for(size_t n)
{
	size_t b = (n + kThreads - 1) / kThreads;
	return (unsigned)(b > 65535 * 8 ? 65535 * 8 : b);
}

// The fused activation, as dds_act_apply in cpu_engine/engine_int.h.
__device__ float act_apply(int act, float x)
{
	if (act == 1)
		return x < 0.0f ? 0.0f : x;
	if (act == 2)
		return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
	return x;
}

__global__ void affine_act(const float *x, float *y, const float *scale, const float *shift,
			   int ch, size_t inner, size_t n, int act)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		int c = (int)((i / inner) % (size_t)ch);
		float v = x[i];
		if (scale)
			v *= scale[c];
		if (shift)
			v += shift[c];
		y[i] = act_apply(act, v);
	}
}

__global__ void add_act(const float *a, const float *b, float *y, size_t n, int act)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		y[i] = act_apply(act, a[i] + b[i]);
}

__global__ void add_periodic(const float *x, const float *p, float *y, size_t period, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		y[i] = x[i] + p[i % period];
}

// One output point per thread; the window rule of ref_kernels.c's pool_point.
__global__ void pool2d(const float *x, float *y, dds_cuk_pool pp)
{
	size_t n = (size_t)pp.planes * pp.oh * pp.ow;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		int ox = (int)(i % pp.ow), oy = (int)(i / pp.ow % pp.oh);
		const float *xp = x + i / ((size_t)pp.oh * pp.ow) * pp.h * pp.w;
		int y0 = oy * pp.sh - pp.ph, x0 = ox * pp.sw - pp.pw;
		int y1 = y0 + pp.kh, x1 = x0 + pp.kw;
		int pad_area = (min(y1, pp.h + pp.ph) - y0) * (min(x1, pp.w + pp.pw) - x0);
		double sum = 0;
		float mx = -INFINITY;
		int cnt = 0;
		for (int iy = max(y0, 0); iy < y1 && iy < pp.h; iy++)
			for (int ix = max(x0, 0); ix < x1 && ix < pp.w; ix++) {
				float v = xp[(size_t)iy * pp.w + ix];
				if (v > mx || isnan(v))
					mx = v;
				sum += v;
				cnt++;
			}
		y[i] = pp.is_max ? mx : (float)(sum / (pp.count_include_pad ? pad_area : cnt));
	}
}

__global__ void adaptive_avg(const float *x, float *y, int planes, int h, int w, int oh, int ow)
{
	size_t n = (size_t)planes * oh * ow;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		int ox = (int)(i % ow), oy = (int)(i / ow % oh);
		const float *xp = x + i / ((size_t)oh * ow) * h * w;
		int y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh;
		int x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow;
		double sum = 0;
		for (int iy = y0; iy < y1; iy++)
			for (int ix = x0; ix < x1; ix++)
				sum += xp[(size_t)iy * w + ix];
		y[i] = (float)(sum / ((y1 - y0) * (x1 - x0)));
	}
}

// Sum of v over the block (kThreads threads); every thread gets the result.
__device__ double block_sum(double v, double *sh)
{
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int s = kThreads / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

// One block per row: mean, then variance around it (two passes, as the reference).
__global__ void layernorm(const float *x, float *y, const float *w, const float *b, int e,
			  float eps)
{
	__shared__ double sh[kThreads];
	const float *xr = x + (size_t)blockIdx.x * e;
	float *yr = y + (size_t)blockIdx.x * e;
	double s = 0;
	for (int i = threadIdx.x; i < e; i += kThreads)
		s += xr[i];
	double mean = block_sum(s, sh) / e;
	s = 0;
	for (int i = threadIdx.x; i < e; i += kThreads)
		s += (xr[i] - mean) * (xr[i] - mean);
	double inv = 1.0 / sqrt(block_sum(s, sh) / e + eps);
	for (int i = threadIdx.x; i < e; i += kThreads)
		yr[i] = (float)((xr[i] - mean) * inv * w[i] + b[i]);
}

__global__ void tokens(const float *x, float *y, int c, size_t hw, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t s = i / (hw * c), r = i % (hw * c), p = r / c, ch = r % c;
		y[i] = x[(s * c + ch) * hw + p];
	}
}

__global__ void cls_token(const float *x, const float *tok, float *y, int t, int e, size_t n)
{
	size_t row = (size_t)(t + 1) * e;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		size_t s = i / row, r = i % row;
		y[i] = r < (size_t)e ? tok[r] : x[s * t * e + r - e];
	}
}

// Launch k over `grid` blocks on st: nothing (cudaSuccess) for an empty grid. cudaGetLastError
// reports the last error of *any* runtime call of this thread (cuda_runtime_api.h), so one left
// by an earlier failed call (already returned to its caller) is cleared first: the status
// returned is this launch's.
template <typename... P, typename... A>
cudaError_t launch(void (*k)(P...), unsigned grid, cudaStream_t st, A... a)
{
	if (!grid)
		return cudaSuccess;
	(void)cudaGetLastError();
	k<<<grid, kThreads, 0, st>>>(a...);
	return cudaGetLastError();
}

} // namespace

extern "C" {

cudaError_t dds_cuk_affine_act(const float *x, float *y, const float *scale, const float *shift,
			       int ch, size_t inner, size_t n, int act, cudaStream_t st)
{
	return launch(affine_act, blocks_for(n), st, x, y, scale, shift, ch, inner, n, act);
}

cudaError_t dds_cuk_add_act(const float *a, const float *b, float *y, size_t n, int act,
			    cudaStream_t st)
{
	return launch(add_act, blocks_for(n), st, a, b, y, n, act);
}

cudaError_t dds_cuk_add_periodic(const float *x, const float *p, float *y, size_t period,
				 size_t n, cudaStream_t st)
{
	return launch(add_periodic, blocks_for(n), st, x, p, y, period, n);
}

cudaError_t dds_cuk_pool2d(const float *x, float *y, const struct dds_cuk_pool *pp,
			   cudaStream_t st)
{
	return launch(pool2d, blocks_for((size_t)pp->planes * pp->oh * pp->ow), st, x, y, *pp);
}

cudaError_t dds_cuk_adaptive_avg(const float *x, float *y, int planes, int h, int w, int oh,
				 int ow, cudaStream_t st)
{
	return launch(adaptive_avg, blocks_for((size_t)planes * oh * ow), st, x, y, planes, h, w,
		      oh, ow);
}

cudaError_t dds_cuk_layernorm(const float *x, float *y, const float *w, const float *b,
			      size_t rows, int e, float eps, cudaStream_t st)
{
	if (rows > 0x7fffffff)
		return cudaErrorInvalidValue;
	return launch(layernorm, (unsigned)rows, st, x, y, w, b, e, eps);
}

cudaError_t dds_cuk_tokens(const float *x, float *y, int batch, int c, size_t hw,
			   cudaStream_t st)
{
	size_t n = (size_t)batch * c * hw;
	return launch(tokens, blocks_for(n), st, x, y, c, hw, n);
}

cudaError_t dds_cuk_cls_token(const float *x, const float *tok, float *y, int batch, int t,
			      int e, cudaStream_t st)
{
	size_t n = (size_t)batch * (t + 1) * e;
	return launch(cls_token, blocks_for(n), st, x, tok, y, t, e, n);
}

} // extern "C"

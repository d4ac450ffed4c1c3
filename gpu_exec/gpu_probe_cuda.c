/* gpu_probe_cuda.c: the GPU probe when built with CUDA: asks the CUDA runtime and cuDNN. */
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stdio.h>

#include "dds_gpu.h"

int dds_gpu_probe(char *what, size_t n)
{
	int count = 0;
	cudaError_t rc = cudaGetDeviceCount(&count);
	if (rc != cudaSuccess || count <= 0) {
		snprintf(what, n, "no usable GPU: %s",
			 rc != cudaSuccess ? cudaGetErrorString(rc) : "no CUDA device");
		return 0;
	}
	struct cudaDeviceProp prop;
	if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess)
		snprintf(prop.name, sizeof(prop.name), "?");
	snprintf(what, n, "%d GPU(s), first: %s, cuDNN %zu", count, prop.name, cudnnGetVersion());
	return count;
}

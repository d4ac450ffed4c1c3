/* gpu_probe_none.c: the GPU probe when built without CUDA (-Dgpu=disabled or no CUDA found). */
#include <stdio.h>

#include "dds_gpu.h"

int dds_gpu_probe(char *what, size_t n)
{
	snprintf(what, n, "no usable GPU: built without GPU support (meson -Dgpu=disabled or CUDA "
			  "not found)");
	return 0;
}

/* backend_cuda_none.c: the CUDA backend's constructor in builds without CUDA (-Dgpu=disabled). */
#include "backend_int.h"

int dds_backend_cuda_init(struct dds_backend *b, const struct dds_backend_opts *o,
			  struct dds_err *err)
{
	(void)b;
	(void)o;
	return dds_backend_errf(err, DDS_BACKEND_EUNSUPPORTED,
				"backend 'cuda': not in this build (configured without CUDA: "
				"-Dgpu=disabled, or CUDA/cuDNN/cuBLAS/nvcc not found)");
}

/* backend_cuda_none.c: the CUDA backend's constructor in builds that do not have it (yet). */
#include "backend_int.h"

int dds_backend_cuda_init(struct dds_backend *b, const struct dds_backend_opts *o,
			  struct dds_err *err)
{
	(void)b;
	(void)o;
	return dds_backend_errf(err, DDS_BACKEND_EUNSUPPORTED,
				"backend 'cuda': not in this build (the CUDA backend is not "
				"written yet; gpu_exec/backend_cuda_none.c stands in for it)");
}

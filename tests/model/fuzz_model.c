/* fuzz_model.c: libFuzzer target for the model JSON loader: any input is refused cleanly or
 * loaded into a consistent model (checked), never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dds_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dds_model *m = NULL;
	struct dds_err err;
	if (dds_model_load_string((const char *)data, size, "fuzz", NULL, 1, &m, &err))
		return 0;
	/* a loaded model is consistent: inputs defined above, output a sink, sizes positive */
	for (int i = 0; i < m->n_layers; i++) {
		for (int k = 0; k < m->layers[i].n_in; k++)
			if (m->layers[i].in[k] < 0 || m->layers[i].in[k] > i)
				abort();
		if (m->layers[i].out_bytes == 0)
			abort();
	}
	uint8_t *mask = calloc((size_t)m->n_layers, 1);
	for (int i = 0; mask && i < m->n_layers; i++)
		mask[i] = (uint8_t)(i % 2);
	if (mask)
		dds_model_check_head(m, mask, &err);
	free(mask);
	dds_model_free(m);
	return 0;
}

/* model_int.h: internals of the model module shared by its files (not a public header). */
#ifndef DDS_MODEL_INT_H
#define DDS_MODEL_INT_H

#include <stdarg.h>

#include "dds_model.h"

/* printf into err->msg; always returns -1 so callers can `return dds_errf(...)`. */
int dds_errf(struct dds_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Infer out_shape, the parameter list, flops, macs and out_bytes of layer `li` from its inputs.
 * Returns 0, or -1 with err naming the layer (prefixed by `origin`). */
int dds_layer_finish(struct dds_model *m, int li, const char *origin, struct dds_err *err);

/* Fill every parameter with the documented seeded initialisation. */
void dds_weights_seed(struct dds_model *m, uint64_t seed);

/* Read a weights file into the model's parameters. Returns 0, or -1 with err. */
int dds_weights_read(struct dds_model *m, const char *path, struct dds_err *err);

#endif

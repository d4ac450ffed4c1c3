/* dds_gpu.h: is a GPU usable here? The node asks once at start and falls back to the CPU engine
 * with one log line when the answer is no (no device, no driver, or built without CUDA). */
#ifndef DDS_GPU_H
#define DDS_GPU_H

#include <stddef.h>

/* Returns the number of usable CUDA devices (> 0) and describes the first in `what`, or 0 with
 * the reason in `what` (e.g. the CUDA runtime's error string). Never aborts. */
int dds_gpu_probe(char *what, size_t n);

#endif

/* op_graphs.h: small graphs that together hold every op of the model format, for the cross-backend op tests (ggml's test-backend-ops).
 *
 * Shared by tests/scheduler/test_backend.c (every backend against the CPU engine's reference
 * kernels) and tests/gpu/test_backend_gpu.c (CUDA on a machine with a GPU). JSON with ' for ".
 */
#ifndef DDS_TEST_OP_GRAPHS_H
#define DDS_TEST_OP_GRAPHS_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "dds_model.h"
#include "dds_util.h"

/* n floats uniform in [-1, 1) from the sequence *s: the tests' inputs. */
static inline void dds_test_fill_random(float *x, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(dds_rand_unit(s) * 2 - 1);
}

static const struct {
	const char *in_shape, *layers, *output;
} dds_op_graphs[] = {
	/* Convolutions (stride, padding, dilation, groups, BN, bias, act), batchnorm (cuDNN eps and
	 * a tiny one), a three-way add, pools through cuDNN (with padding over signed inputs:
	 * padding must not count as a value) and through the own kernel (ceil mode overrun,
	 * count_include_pad false), adaptive pools (equal and unequal bins), concat on axes 0
	 * and 2, flatten, linear, softmax. */
	{"[4,11,11]",
	 "{'name':'c1','op':'conv2d','inputs':['input'],'out_channels':6,'kernel':3,'stride':2,"
	 "'padding':1,'bn':true,'act':'relu'},"
	 "{'name':'c2','op':'conv2d','inputs':['c1'],'out_channels':6,'kernel':3,'padding':2,"
	 "'dilation':2,'groups':2,'bias':true,'act':'gelu'},"
	 "{'name':'bn','op':'batchnorm','inputs':['c2']},"
	 "{'name':'bn2','op':'batchnorm','inputs':['bn'],'eps':1e-9},"
	 "{'name':'s','op':'add','inputs':['c1','c2','bn2'],'act':'relu'},"
	 "{'name':'mp','op':'maxpool','inputs':['s'],'kernel':3,'stride':2,'padding':1,"
	 "'ceil_mode':true},"
	 "{'name':'ap','op':'avgpool','inputs':['s'],'kernel':3,'stride':2,'padding':1,"
	 "'ceil_mode':true,'count_include_pad':false},"
	 "{'name':'ap2','op':'avgpool','inputs':['s'],'kernel':2},"
	 "{'name':'mp2','op':'maxpool','inputs':['s'],'kernel':2},"
	 "{'name':'mp3','op':'maxpool','inputs':['bn'],'kernel':3,'stride':2,'padding':1},"
	 "{'name':'ap3','op':'avgpool','inputs':['bn'],'kernel':3,'stride':2,'padding':1},"
	 "{'name':'cat','op':'concat','inputs':['mp','ap']},"
	 "{'name':'ad','op':'adaptive_avgpool','inputs':['cat'],'output_size':3},"
	 "{'name':'ad2','op':'adaptive_avgpool','inputs':['s'],'output_size':[3,3]},"
	 "{'name':'cat2','op':'concat','inputs':['ad','ad2','ap2','mp2','mp3','ap3']},"
	 "{'name':'cat3','op':'concat','inputs':['ap2','mp2'],'axis':2},"
	 "{'name':'f','op':'flatten','inputs':['cat2']},"
	 "{'name':'f2','op':'flatten','inputs':['cat3']},"
	 "{'name':'cat4','op':'concat','inputs':['f','f2']},"
	 "{'name':'l1','op':'linear','inputs':['cat4'],'out_features':20,'act':'relu'},"
	 "{'name':'l2','op':'linear','inputs':['l1'],'out_features':7},"
	 "{'name':'o','op':'softmax','inputs':['l2']}",
	 "o"},
	/* The transformer ops: relu, gelu, tokens, cls_token, pos_embed, layernorm, mha, linear
	 * on tokens, softmax over tokens' features, select_token. */
	{"[8,4,4]",
	 "{'name':'r','op':'relu','inputs':['input']},"
	 "{'name':'g','op':'gelu','inputs':['input']},"
	 "{'name':'c','op':'concat','inputs':['r','g']},"
	 "{'name':'t','op':'tokens','inputs':['c']},"
	 "{'name':'k','op':'cls_token','inputs':['t']},"
	 "{'name':'e','op':'pos_embed','inputs':['k']},"
	 "{'name':'n','op':'layernorm','inputs':['e']},"
	 "{'name':'h','op':'mha','inputs':['n'],'heads':4},"
	 "{'name':'a','op':'add','inputs':['e','h']},"
	 "{'name':'l','op':'linear','inputs':['a'],'out_features':32,'act':'gelu'},"
	 "{'name':'l2','op':'linear','inputs':['l'],'out_features':16,'bias':false},"
	 "{'name':'a2','op':'add','inputs':['a','l2']},"
	 "{'name':'sm','op':'softmax','inputs':['a2']},"
	 "{'name':'x','op':'select_token','inputs':['sm'],'index':3}",
	 "x"},
};

/* Graph i of the table as a model (seeded weights, seed 3); fails the test on error. */
static inline struct dds_model *dds_op_graph_load(int i)
{
	char buf[4096];
	struct dds_model *m = NULL;
	struct dds_err err;
	int n = snprintf(buf, sizeof(buf),
			 "{'format':'dds-model/1','name':'ops%d','input':{'shape':%s},"
			 "'layers':[%s],'output':'%s'}",
			 i, dds_op_graphs[i].in_shape, dds_op_graphs[i].layers, dds_op_graphs[i].output);
	ck_assert_int_lt(n, (int)sizeof(buf));
	for (char *p = buf; *p; p++)
		*p = *p == '\'' ? '"' : *p;
	ck_assert_msg(dds_model_load_string(buf, strlen(buf), "ops", NULL, 3, &m, &err) == 0,
		      "%s", err.msg);
	return m;
}

#define DDS_N_OP_GRAPHS ((int)(sizeof(dds_op_graphs) / sizeof(dds_op_graphs[0])))

#endif

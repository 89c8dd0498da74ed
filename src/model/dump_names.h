/* dump_names.h — every tensor name a forward pass hands to the dump callback, in one
 * device-independent table: the names of the golden files, so that a GPU run (src/cuda/lua_gpu.c,
 * vae_gpu.c), a CPU run (src/model/lua.c, vae.c) and the golden data compare tensor by tensor.
 * Head stage names come from the model (head.before_name, up_name, last_name) on both devices. */
#ifndef LATUP_MODEL_DUMP_NAMES_H
#define LATUP_MODEL_DUMP_NAMES_H

enum {
    /* LUA / SwinIR; %d: RSTB i, block j */
    DN_PAD, DN_CONV_FIRST, DN_PATCH_EMBED,
    DN_NORM1, DN_QKV, DN_ATTN_OUT, DN_ATTN_PROJ, DN_ATTN_RES, DN_NORM2, DN_MLP_ACT, DN_MLP_FC2, DN_BLOCK,
    DN_RSTB_CONV, DN_RSTB, DN_NORM, DN_CONV_AFTER_BODY, DN_HEAD_UP, DN_OUT,
    /* VAE; %s: a resnet's name, %d: level L, block M */
    DN_POST_QUANT, DN_CONV_IN, DN_MID_BLOCK_1, DN_MID_BLOCK_2, DN_UP_BLOCK, DN_RES_NORM1, DN_RES_CONV1,
    DN_ATTN_NORM, DN_ATTN_Q, DN_ATTN_K, DN_ATTN_V, DN_ATTN_ATTN, DN_ATTN, DN_UPSAMPLE, DN_NORM_OUT, DN_IMAGE,
    /* the VAE encoder (its attention: DN_ATTN* under the prefix DN_ENC); %d: level i, block j */
    DN_ENC, DN_ENC_CONV_IN, DN_ENC_DOWN_BLOCK, DN_ENC_DOWNSAMPLE, DN_ENC_MID_BLOCK_1, DN_ENC_MID_BLOCK_2,
    DN_ENC_NORM_OUT, DN_ENC_CONV_OUT, DN_QUANT, DN_MEAN, DN_LOGVAR,
    DN_COUNT
};

static const char *const DUMP_NAMES[DN_COUNT] = {
    [DN_PAD] = "pad",
    [DN_CONV_FIRST] = "conv_first",
    [DN_PATCH_EMBED] = "patch_embed",
    [DN_NORM1] = "layers.%d.blocks.%d.norm1",
    [DN_QKV] = "layers.%d.blocks.%d.attn.qkv",
    [DN_ATTN_OUT] = "layers.%d.blocks.%d.attn.out",
    [DN_ATTN_PROJ] = "layers.%d.blocks.%d.attn.proj",
    [DN_ATTN_RES] = "layers.%d.blocks.%d.attn_res",
    [DN_NORM2] = "layers.%d.blocks.%d.norm2",
    [DN_MLP_ACT] = "layers.%d.blocks.%d.mlp.act",
    [DN_MLP_FC2] = "layers.%d.blocks.%d.mlp.fc2",
    [DN_BLOCK] = "layers.%d.blocks.%d",
    [DN_RSTB_CONV] = "layers.%d.conv",
    [DN_RSTB] = "layers.%d",
    [DN_NORM] = "norm",
    [DN_CONV_AFTER_BODY] = "conv_after_body",
    [DN_HEAD_UP] = "%s.%d",            /* head.up_name, stage index (conv 2k, shuffle 2k+1) */
    [DN_OUT] = "out.x%d",
    [DN_POST_QUANT] = "post_quant_conv",
    [DN_CONV_IN] = "conv_in",
    [DN_MID_BLOCK_1] = "mid.block_1",
    [DN_MID_BLOCK_2] = "mid.block_2",
    [DN_UP_BLOCK] = "up.%d.block.%d",
    [DN_RES_NORM1] = "%s.norm1",       /* only for mid.block_1, as in the golden files */
    [DN_RES_CONV1] = "%s.conv1",
    [DN_ATTN_NORM] = "mid.attn_1.norm",
    [DN_ATTN_Q] = "mid.attn_1.q",
    [DN_ATTN_K] = "mid.attn_1.k",
    [DN_ATTN_V] = "mid.attn_1.v",
    [DN_ATTN_ATTN] = "mid.attn_1.attn",
    [DN_ATTN] = "mid.attn_1",
    [DN_UPSAMPLE] = "up.%d.upsample",
    [DN_NORM_OUT] = "norm_out",
    [DN_IMAGE] = "out",
    [DN_ENC] = "encoder",              /* the patch code's conv (moments), and the ldm names' prefix */
    [DN_ENC_CONV_IN] = "encoder.conv_in",
    [DN_ENC_DOWN_BLOCK] = "encoder.down.%d.block.%d",
    [DN_ENC_DOWNSAMPLE] = "encoder.down.%d.downsample",
    [DN_ENC_MID_BLOCK_1] = "encoder.mid.block_1",
    [DN_ENC_MID_BLOCK_2] = "encoder.mid.block_2",
    [DN_ENC_NORM_OUT] = "encoder.norm_out", /* SiLU(GroupNorm), as norm_out */
    [DN_ENC_CONV_OUT] = "encoder.conv_out",
    [DN_QUANT] = "quant_conv",
    [DN_MEAN] = "mean",
    [DN_LOGVAR] = "logvar",             /* the moments' second half, before the clamp to [-30, 20] */
};

#endif

/* Internal checkpoint helpers shared by checkpoint.c and trainer.c. */
#ifndef VX_CHECKPOINT_H
#define VX_CHECKPOINT_H
#include "io/safetensors.h"
#include "voxcl.h"

char *vx_unet3d_config_json(const vx_unet3d_config *c); /* malloc'ed */
vx_status vx_unet3d_config_parse(const char *text, vx_unet3d_config *c, char *errbuf, size_t errlen);
/* Writes the network's parameters plus 'extra' tensors and metadata pairs. */
vx_status vx_unet3d_save_tensors(vx_unet3d *net, const char *path, const vx_st_tensor *extra, int nextra,
                                 const char *const *meta, char *errbuf, size_t errlen);
/* Loads every parameter from f; allow_extra lets the file hold more tensors (trainer state). */
vx_status vx_unet3d_load_from(vx_unet3d *net, const vx_st_file *f, const char *path, int allow_extra, char *errbuf,
                              size_t errlen);
#endif

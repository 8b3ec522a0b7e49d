/* Internal checkpoint helpers shared by checkpoint.c and trainer.c. */
#ifndef VX_CHECKPOINT_H
#define VX_CHECKPOINT_H
#include "io/safetensors.h"
#include "voxcl.h"

char *vx_model_config_json(const vx_model_config *c); /* malloc'ed */
vx_status vx_model_config_parse(const char *text, vx_model_config *c, char *errbuf, size_t errlen);
/* Writes the network's parameters and saved state plus 'extra' tensors and metadata pairs. */
vx_status vx_model_save_tensors(vx_model *m, const char *path, const vx_st_tensor *extra, int nextra,
                                const char *const *meta, char *errbuf, size_t errlen);
/* Loads every parameter and state tensor from f; allow_extra lets the file hold more tensors
 * (trainer state). Nothing changes unless all match. */
vx_status vx_model_load_from(vx_model *m, const vx_st_file *f, const char *path, int allow_extra, char *errbuf,
                             size_t errlen);
#endif

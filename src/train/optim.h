/* train/optim.h — AdamW (decoupled weight decay, bias correction, as torch.optim.AdamW),
 * and global-norm
 * gradient clipping (torch.nn.utils.clip_grad_norm_). Moments are laid out like
 * the trained parameters (model.h, or a LoRA run's adapters: model/lora.h), so checkpoints store them as two more tensors sets. */
#ifndef HONE_OPTIM_H
#define HONE_OPTIM_H
#include "model/model.h"

typedef struct hone_adamw {
    float *m, *v;      /* (num_floats) first and second moments, owned */
    size_t n;
    long step;         /* optimizer steps taken */
    double b1, b2, eps, wd;
} hone_adamw;

/* Moments for n floats: the trained tensors' buffer (the model's, or a LoRA run's adapters). */
int adamw_init(hone_adamw *o, size_t n, double b1, double b2, double eps, double wd, hone_error *err);
void adamw_free(hone_adamw *o);
/* One update of the n_params tensors of params (offsets into data, g and the moments) with
 * gradient g, after scaling g by gscale. Tensors marked no_decay get no weight decay. */
void adamw_update(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale);
/* The same over the floats [lo, hi) of the tensors only, with moments m, v holding just that
 * range (m[0] is float lo): a ZeRO-1 shard. Element-wise, so the same bits as adamw_update. */
void adamw_update_range(hone_adamw *o, const hone_param *params, int n_params, float *data, const float *g, double lr, float gscale,
                        size_t lo, size_t hi);

/* L2 norm over all gradients (double accumulation, fixed order) and the factor
 * clip_grad_norm_ would scale them by (1 when max_norm <= 0 or within bounds). */
double grad_global_norm(const float *g, size_t n);
float grad_clip_scale(double norm, double max_norm);
#endif

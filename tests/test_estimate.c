/* test_estimate.c — the memory estimate of a run (train/estimate.h) on the tiny-llama model:
 * weights are 4 bytes per parameter slot as model_init allocates them; full training adds
 * gradients of the same size and AdamW state of twice that, adamw_8bit keeps the bytes of
 * adamw_state_bytes (a quarter for the tensors of >= 4096 elements); gradient checkpointing
 * plans fewer activation bytes than keeping them all (acts_plan_bytes); LoRA trains only the
 * adapters (r (in + out) per module and layer); a DPO run without LoRA counts a reference
 * model, with LoRA none (adapters off); load_in_4bit counts the decoder linears as NF4 (0.5 byte
 * + 4 per 64); the available memory is positive on Linux. The pre-flight check refuses a model
 * no machine holds, with its message (test_preflight_refuses). */
#include "train/estimate.h"
#include "train/optim.h"
#include "model/transformer.h"
#include "test.h"
#include "base/util.h"

static void cfg_for(hone_train_config *c, int kind) {
    hone_error err;
    config_defaults(c, kind, &err);
    free(c->model_name_or_path);
    c->model_name_or_path = strdup(test_src("tests/fixtures/models/tiny-llama"));
    c->max_length = 64;
    c->per_device_train_batch_size = 2;
}

static void test_breakdown(void) {
    hone_train_config c;
    hone_error err;
    hone_mem_estimate e, e8, en, el;
    cfg_for(&c, HONE_SFT);
    CHECK(estimate_run(&c, &e, &err) == 0, "%s", err.msg);
    hone_model m;
    CHECK(model_load(&m, c.model_name_or_path, 0, &err) == 0, "%s", err.msg);
    CHECK(e.weights == 4.0 * m.num_floats && e.grads == e.weights && e.optim == 2 * e.weights, "weights %g grads %g optim %g (num_floats %zu)",
          e.weights, e.grads, e.optim, m.num_floats);
    CHECK(e.acts == (double)acts_plan_bytes(&m.cfg, 2, 64, 1, 1), "activations with gradient checkpointing (the default)");
    free(c.optim);
    c.optim = strdup("adamw_8bit");
    estimate_run(&c, &e8, &err);
    CHECK(e8.optim == (double)adamw_state_bytes(HONE_OPTIM_ADAMW_8BIT, m.params, m.n_params) && e8.optim < 0.7 * e.optim,
          "8-bit state %g vs %g", e8.optim, e.optim);
    c.gradient_checkpointing = 0;
    estimate_run(&c, &en, &err);
    CHECK(en.acts > e.acts && en.total > e8.total, "no checkpointing: activations %g vs %g", en.acts, e.acts);
    c.use_peft = 1;
    c.gradient_checkpointing = 1;
    estimate_run(&c, &el, &err);
    /* q_proj and v_proj (PEFT's default), r 16: 16 (64 + 64) each, 2 layers */
    CHECK(el.n_trained == 2 * 2 * 16 * (64 + 64) && el.grads == 4.0 * el.n_trained, "LoRA trained %zu", el.n_trained);
    /* QLoRA: the decoder linears in NF4 (0.5 byte + an fp32 absmax per 64), the rest fp32 */
    hone_mem_estimate eq;
    c.load_in_4bit = 1;
    estimate_run(&c, &eq, &err);
    double lin = 2.0 * (4 * 64 * 64 + 3 * 160 * 64);
    CHECK(fabs(eq.weights - (el.weights - 4 * lin + lin / 2 + 4 * lin / 64)) < 1.0 && !strcmp(eq.held, "nf4"), "NF4 weights %g (%s)", eq.weights,
          eq.held);
    c.load_in_4bit = 0;
    config_free(&c);

    cfg_for(&c, HONE_DPO);
    hone_mem_estimate d, dl;
    estimate_run(&c, &d, &err);
    CHECK(d.B == 4 && d.ref >= d.weights, "DPO: rows %ld, reference %g", d.B, d.ref);
    c.use_peft = 1;
    estimate_run(&c, &dl, &err);
    CHECK(dl.ref == 0, "DPO with LoRA: no reference model (%g)", dl.ref);
    config_free(&c);
    model_free(&m);
    char how[64];
    CHECK(estimate_available(how, sizeof how) > 0, "available memory unknown");
}

/* A model no machine holds (hidden 32768, 400 layers: ~5e12 parameters, tens of TB): the
 * pre-flight check refuses it with the estimate, what is available and that no setting tried
 * fits; HONE_NO_MEMORY_CHECK=1 lets it through. */
static void test_preflight_refuses(void) {
    const char *dir = test_tmpdir("huge");
    char path[4096];
    hone_path_join(path, sizeof path, dir, "config.json");
    const char *cfgj = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 32768, "
                       "\"intermediate_size\": 131072, \"num_attention_heads\": 256, \"num_key_value_heads\": 256, "
                       "\"num_hidden_layers\": 400, \"vocab_size\": 32000, \"max_position_embeddings\": 4096, "
                       "\"rms_norm_eps\": 1e-5, \"hidden_act\": \"silu\"}";
    hone_error err;
    CHECK(hone_write_file(path, cfgj, strlen(cfgj), &err) == 0, "%s", err.msg);
    hone_train_config c;
    cfg_for(&c, HONE_SFT);
    free(c.model_name_or_path);
    c.model_name_or_path = strdup(dir);
    unsetenv("HONE_NO_MEMORY_CHECK");
    CHECK(estimate_check(&c, &err) < 0 && strstr(err.msg, "not enough memory: this run needs about") && strstr(err.msg, "GB are available") &&
              strstr(err.msg, "No single setting tried fits") && strstr(err.msg, "HONE_NO_MEMORY_CHECK=1"),
          "%s", err.msg);
    setenv("HONE_NO_MEMORY_CHECK", "1", 1);
    CHECK(estimate_check(&c, &err) == 0, "HONE_NO_MEMORY_CHECK=1 still refused");
    unsetenv("HONE_NO_MEMORY_CHECK");
    config_free(&c);
    hone_remove_tree(dir, NULL);
}

int main(void) {
    TEST_RUN(test_breakdown);
    TEST_RUN(test_preflight_refuses);
    return test_finish();
}

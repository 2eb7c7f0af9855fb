/* test_init_write.c — `hone init`'s streaming writer (model_init_write): the tiny-llama config
 * written in shards of at most 100 kB (fp32) loads back through model.safetensors.index.json
 * bitwise equal to model_init_random's weights (same seed and std); written in bfloat16 it
 * equals those weights rounded to bf16 (exact: the same conversion), config.json says
 * bfloat16; an unknown dtype is refused. */
#include "model/model.h"
#include "simd/kernels.h"
#include "test.h"
#include "base/util.h"

static void test_sharded_equals_in_memory(void) {
    hone_error err;
    hone_model_config c;
    if (model_config_load(&c, test_src("tests/fixtures/models/tiny-llama/config.json"), &err) < 0) { CHECK(0, "%s", err.msg); return; }
    hone_model ref, got;
    CHECK(model_init(&ref, &c, &err) == 0, "%s", err.msg);
    model_init_random(&ref, 7, 0.05f);
    const char *tmp = test_tmpdir("initw");
    char dir[4096], path[4200];
    hone_path_join(dir, sizeof dir, tmp, "m");
    CHECK(model_init_write(&c, dir, NULL, 7, 0.05f, "float32", 100000, &err) == 0, "%s", err.msg);
    hone_path_join(path, sizeof path, dir, "model.safetensors.index.json");
    CHECK(hone_file_exists(path), "no index for a sharded model");
    hone_path_join(path, sizeof path, dir, "model-00006-of-00006.safetensors");
    CHECK(hone_file_exists(path), "expected 6 shards of <= 100 kB (509 kB of fp32 in tensors of up to 64 kB)");
    CHECK(model_load(&got, dir, 1, &err) == 0, "%s", err.msg);
    CHECK(got.num_floats == ref.num_floats && !memcmp(got.data, ref.data, 4 * ref.num_floats), "streamed weights differ from model_init_random's");
    model_free(&got);

    hone_path_join(dir, sizeof dir, tmp, "b");
    CHECK(model_init_write(&c, dir, NULL, 7, 0.05f, "bfloat16", 0, &err) == 0, "%s", err.msg);
    CHECK(model_load(&got, dir, 1, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(got.stored_dtype, "bfloat16") && !strcmp(got.cfg.torch_dtype, "bfloat16"), "dtype %s / %s", got.stored_dtype, got.cfg.torch_dtype);
    uint16_t *h = malloc(2 * ref.num_floats);
    hone_kt.f32_to_bf16(h, ref.data, ref.num_floats);
    size_t bad = 0;
    for (size_t i = 0; i < ref.num_floats; i++) {
        uint32_t u = (uint32_t)h[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        bad += f != got.data[i];
    }
    CHECK(bad == 0, "%zu bf16 values differ from the rounded fp32 ones", bad);
    free(h);
    model_free(&got);
    CHECK(model_init_write(&c, dir, NULL, 7, 0.05f, "int8", 0, &err) < 0 && strstr(err.msg, "'int8'"), "%s", err.msg);
    model_free(&ref);
    hone_remove_tree(tmp, NULL);
}

int main(void) {
    kernels_init();
    TEST_RUN(test_sharded_equals_in_memory);
    return test_finish();
}

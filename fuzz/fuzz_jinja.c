/* fuzz_jinja.c — libFuzzer target for chat templates (a template ships with every
 * downloaded model): parse, then render with the first input byte choosing how many of
 * five messages, add_generation_prompt, bos/eos and spans. Must end in an error or a
 * text, never a crash, a hang or unbounded memory (jinja.h's bounds). */
#include "chat/jinja.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    char *src = fuzz_cstr(data + 1, size - 1);
    jinja_template *t;
    hone_error err;
    if (jinja_parse(&t, src, &err) == 0) {
        static const jinja_message msgs[] = {{"system", "Be brief."}, {"user", "Hi  there\n"}, {"assistant", " Hello! \xC3\xA9"},
                                             {"user", "2+2 = ?"}, {"tool", "{\"x\": [1, 2]}"}};
        jinja_chat_vars v = {msgs, mode % 6, mode & 8 ? 1 : 0, mode & 16 ? "<s>" : NULL, mode & 32 ? "</s>" : NULL};
        char *out;
        size_t len;
        jinja_span *sp = NULL;
        int nsp = 0;
        if (jinja_render_chat(t, &v, &out, &len, mode & 64 ? &sp : NULL, &nsp, &err) == 0) {
            if (out[len]) abort(); /* NUL-terminated at len */
            for (int i = 0; i < nsp; i++)
                if (sp[i].start > sp[i].end || sp[i].end > len) abort();
            free(out);
            free(sp);
        }
        jinja_free(t);
    }
    free(src);
    return 0;
}

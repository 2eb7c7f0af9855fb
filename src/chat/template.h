/* chat/ — conversations to text: the built-in chat formats and the Jinja subset that
 *   runs tokenizer_config.json templates (this header is the folder's entry point;
 *   jinja.h the engine). May include base/ and data/ (for the message type).
 *
 * chat/template.h — conversations to text, with the byte ranges to train on.
 * Built-in formats render without Jinja, byte for byte as these templates do under
 * transformers (fixture: tests/fixtures/chat/chat_templates.json):
 *   chatml  the seed pipeline's: <|im_start|>{role}\n{content}<|im_end|>\n, user and
 *           system content .strip()'d, assistant content kept as is
 *   llama2  Llama-2-chat: <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>
 *   llama3  Llama-3-Instruct: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
 *   gemma   <bos><start_of_turn>user\n{system\n\n}{content}<end_of_turn>\n<start_of_turn>model\n...
 *   zephyr  <|user|>\n{content}</s>\n<|assistant|>\n{content}</s>\n
 * and `model` / inline templates render a tokenizer_config.json chat_template with the
 * Jinja subset of jinja.h, like transformers' apply_chat_template(tokenize=False).
 * Texts include the BOS text where the template writes it (llama2, llama3, gemma, and
 * model templates using bos_token): tokenize them without adding special tokens again.
 *
 * Spans: [start, end) byte ranges of the rendered text that assistant turns produced —
 * for the built-ins the turn after the generation prompt through its end marker
 * (chatml: "{content}<|im_end|>\n"), i.e. exactly what TRL's prompt/completion split
 * trains on; for Jinja templates the {% generation %} blocks when the template has
 * them, otherwise each assistant turn found by rendering prefixes of the conversation.
 *
 * Ownership: chat_template owns its strings; chat_text / chat_dpo_text own their
 * buffers (free with chat_text_free / chat_dpo_text_free). */
#ifndef HONE_CHAT_TEMPLATE_H
#define HONE_CHAT_TEMPLATE_H
#include "data/dataset.h"
#include "base/error.h"
#include "chat/jinja.h"

typedef enum { CHAT_CHATML, CHAT_LLAMA2, CHAT_LLAMA3, CHAT_GEMMA, CHAT_ZEPHYR, CHAT_JINJA } chat_kind;

typedef struct chat_template {
    chat_kind kind;
    jinja_template *jinja;      /* CHAT_JINJA */
    char *bos_token, *eos_token;/* from tokenizer_config.json, or the format's own; may be NULL */
    char *generation_prompt;    /* e.g. "<|im_start|>assistant\n" ("" for llama2) */
    char *stop;                 /* the end-of-turn string, e.g. "<|im_end|>"; eos_token for Jinja */
    char *name;                 /* "chatml", ..., or "model" / "inline" */
    char *source;               /* CHAT_JINJA: the Jinja text it was parsed from */
    /* NULL-terminated markup the format writes that must be single special tokens,
     * e.g. {"<|im_start|>", "<|im_end|>"} for chatml (static; NULL for Jinja templates,
     * whose tokens the model's tokenizer already has). add_chat_tokens with chatml is
     * old TRL's setup_chat_format: add these two as special tokens, then bos =
     * <|im_start|>, eos = pad = <|im_end|>, and grow the embeddings. */
    const char *const *special_tokens;
} chat_template;

typedef struct chat_span {
    size_t start, end;          /* bytes [start, end) of chat_text.text */
} chat_span;

typedef struct chat_text {
    char *text;                 /* NUL-terminated, len bytes */
    size_t len;
    chat_span *spans;           /* (n_spans) trained ranges, increasing */
    int n_spans;
    size_t prompt_len;          /* chat_render_sft of a prompt/completion example: where the completion starts */
} chat_text;

/* TRL's DPO inputs as text: tokenize prompt, chosen and rejected separately (each
 * chosen/rejected is the FULL prompt+completion text), then the completion starts at
 * the common token prefix with the prompt, as TRL's DPOTrainer does. */
typedef struct chat_dpo_text {
    char *prompt, *chosen, *rejected;
    size_t prompt_len, chosen_len, rejected_len;
    size_t common_len;          /* bytes shared by prompt and both full texts (= prompt_len when the template is prefix-consistent) */
} chat_dpo_text;

/* spec: chatml | llama2 | llama3 | gemma | zephyr | model | auto | an inline Jinja
 * template (contains "{{" or "{%"). model_path: a model directory holding
 * tokenizer_config.json, or that file itself; may be NULL unless spec is model/auto
 * (auto: the model's template when it has one, else chatml). bos/eos tokens come from
 * tokenizer_config.json when there is one. */
int chat_template_load(chat_template *t, const char *spec, const char *model_path, hone_error *err);
/* A Jinja template from source with explicit bos/eos (NULL: undefined). */
int chat_template_from_jinja(chat_template *t, const char *source, const char *bos, const char *eos, hone_error *err);
/* The template as Jinja, for a tokenizer_config.json's chat_template (malloc'd, caller
 * frees; NULL on OOM): a Jinja template's own source, or a built-in format written as the
 * Jinja that renders it byte for byte (tests/reference/chat_templates.py), with the
 * template's bos / eos spellings. */
char *chat_template_jinja(const chat_template *t);
void chat_template_free(chat_template *t);

/* Renders msgs (role/content). add_generation_prompt appends the assistant header. */
int chat_render(const chat_template *t, const hone_message *msgs, int n, int add_generation_prompt, chat_text *out,
                hone_error *err);
void chat_text_free(chat_text *o);

/* An SFT example: plain text -> itself + eos (appended unless already there, as TRL's
 * add_eos; eos NULL or "" appends nothing) with one span over all of it; prompt/completion
 * -> render(all) with one span from the end of render(prompt, generation prompt) (the
 * common prefix, as TRL) to the end, prompt_len set; a conversation -> render(all)
 * with one span per assistant turn. */
int chat_render_sft(const chat_template *t, const hone_sft_example *ex, const char *eos, chat_text *out, hone_error *err);
/* A DPO example (TRL): conversational -> prompt = render(prompt, gen prompt), chosen =
 * render(prompt + chosen), rejected likewise; text form -> prompt, prompt + chosen +
 * eos, prompt + rejected + eos (eos appended unless already there; eos NULL uses the
 * template's eos_token, "" appends nothing). */
int chat_render_dpo(const chat_template *t, const hone_dpo_example *ex, const char *eos, chat_dpo_text *out,
                    hone_error *err);
void chat_dpo_text_free(chat_dpo_text *o);

#endif

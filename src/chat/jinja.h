/* chat/jinja.h — the subset of Jinja2 that Hugging Face chat templates use, rendered the
 * way transformers' apply_chat_template does (trim_blocks, lstrip_blocks, loop
 * controls, {% generation %} blocks, raise_exception, strftime_now, tojson with
 * ensure_ascii=False). Supported: {{ }}, {% if/elif/else %}, {% for x in y [if c] %}
 * with loop.* and else, {% set %} (names, namespace attributes, set blocks),
 * {% macro %}/call, break/continue, comments, '-' whitespace control; expressions
 * with literals, lists, dicts, attribute/item access, slices, calls, filters, tests,
 * arithmetic, comparisons, in, and/or/not, ~, the conditional expression; string,
 * list and dict methods used by chat templates. Anything else is a parse error that
 * names the template line, never undefined behaviour.
 *
 * Ownership: a jinja_template owns its parsed tree; renders allocate their own
 * scratch and hand back a malloc'd string the caller frees. */
#ifndef HONE_JINJA_H
#define HONE_JINJA_H
#include "base/error.h"
#include <stddef.h>

/* Bounds on one template: chat templates come with downloaded models, so a hostile or
 * broken one must end in an error naming the chat template and its line, never in a
 * crash, a hang or unbounded memory. Integers are 64-bit: where Python's would grow
 * past that, the render stops with "integer overflow". */
#define JINJA_MAX_DEPTH 200             /* nesting: expressions and blocks (parse), calls and values (render) */
#ifndef JINJA_MAX_STEPS                 /* (the fuzz build makes the next three smaller) */
#define JINJA_MAX_STEPS 10000000LL      /* per render: evaluations, loop iterations, elements built, bytes/64 scanned */
#endif
#ifndef JINJA_MAX_OUTPUT
#define JINJA_MAX_OUTPUT ((size_t)64 << 20) /* bytes: the output, and any one string value */
#endif
#ifndef JINJA_MAX_MEMORY
#define JINJA_MAX_MEMORY ((size_t)512 << 20) /* bytes of values one render may build */
#endif

typedef struct jinja_template jinja_template;

/* One chat message as the template sees it: {"role": ..., "content": ...}. */
typedef struct jinja_message {
    const char *role, *content;
} jinja_message;

typedef struct jinja_chat_vars {
    const jinja_message *messages; /* (n_messages) */
    int n_messages;
    int add_generation_prompt;
    const char *bos_token, *eos_token; /* NULL: undefined in the template */
} jinja_chat_vars;

/* A byte range [start, end) of the output written inside {% generation %}. */
typedef struct jinja_span {
    size_t start, end;
} jinja_span;

int jinja_parse(jinja_template **t, const char *source, hone_error *err);
void jinja_free(jinja_template *t);
/* 1 when the template has {% generation %} blocks (assistant masks). */
int jinja_has_generation(const jinja_template *t);
/* Renders. *out (malloc'd, NUL-terminated, *out_len bytes) and, when spans is
 * non-NULL, the generation spans (*spans malloc'd, *n_spans). On failure (a
 * raise_exception, a type error) returns -1 with the message. */
int jinja_render_chat(const jinja_template *t, const jinja_chat_vars *v, char **out, size_t *out_len,
                      jinja_span **spans, int *n_spans, hone_error *err);

/* Python's str.strip() on UTF-8: the [*start, *end) byte range left after removing
 * leading and trailing Unicode whitespace (str.isspace: ASCII \t\n\v\f\r, \x1c-\x1f,
 * space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). */
void jinja_py_strip(const char *s, size_t n, size_t *start, size_t *end);

#endif

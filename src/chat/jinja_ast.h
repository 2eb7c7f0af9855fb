/* chat/jinja_ast.h — private to jinja.c (parser) and jinja_eval.c (renderer): the parsed
 * template tree. Every node lives in the template's arena. */
#ifndef HONE_JINJA_AST_H
#define HONE_JINJA_AST_H
#include "base/arena.h"
#include "chat/jinja.h"

typedef enum {
    E_STR, E_INT, E_FLOAT, E_BOOL, E_NONE,
    E_NAME,   /* name */
    E_ATTR,   /* a.name */
    E_ITEM,   /* a[b] */
    E_SLICE,  /* a[b:c:d] (b, c, d may be NULL) — d kept in args[0] */
    E_CALL,   /* a(args) */
    E_FILTER, /* a | name(args) */
    E_TEST,   /* a is [not] name(args) */
    E_BIN,    /* a op b */
    E_NOT, E_NEG, E_POS,
    E_COND,   /* b if a else c */
    E_LIST,   /* [args] or a tuple */
    E_DICT,   /* {kwnames-as-exprs: args}: keys in keys[] */
} expr_kind;

typedef enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN, OP_AND, OP_OR,
} binop;

typedef struct jexpr {
    expr_kind kind;
    int op, line, negate;
    const char *name;       /* E_NAME, E_ATTR, E_FILTER, E_TEST; E_STR text */
    size_t len;             /* E_STR length */
    long long i;            /* E_INT, E_BOOL */
    double f;               /* E_FLOAT */
    struct jexpr *a, *b, *c;
    struct jexpr **args;    /* (nargs) call/filter/test arguments, list items, dict values */
    const char **kwnames;   /* (nargs) keyword name or NULL for positional */
    struct jexpr **keys;    /* (nargs) E_DICT keys */
    int nargs;
} jexpr;

typedef enum { S_TEXT, S_OUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_GEN, S_BREAK, S_CONTINUE, S_MACRO, S_CALLBLOCK } stmt_kind;

typedef struct jnode jnode;
typedef struct jbody {
    jnode **nodes;
    int n;
} jbody;

struct jnode {
    stmt_kind kind;
    int line;
    const char *text;       /* S_TEXT */
    size_t len;
    jexpr *e;               /* S_OUT value, S_SET value, S_FOR iterable, S_CALLBLOCK call */
    jexpr **conds;          /* S_IF: (nconds) conditions with bodies[] */
    jbody *bodies;
    int nconds;
    jbody els;              /* S_IF else, S_FOR else */
    const char *targets[4]; /* S_FOR loop names, S_SET name(s) */
    int ntargets;
    const char *attr;       /* S_SET ns.attr */
    jexpr *filter;          /* S_FOR inline if */
    jbody body;             /* S_FOR, S_SETBLOCK, S_GEN, S_MACRO, S_CALLBLOCK */
    const char *name;       /* S_MACRO */
    const char **params;    /* S_MACRO (nparams) */
    jexpr **defaults;       /* S_MACRO (nparams), NULL where none */
    int nparams;
};

struct jinja_template {
    hone_arena *arena;
    jbody root;
    int has_generation;
};

#endif

/* conf.c -- parser and typed access for postlink.conf (see conf.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_params.h"
#include "strutil.h"

struct entry {
    char *raw;        /* as written (NULL = default) */
    char *origin;     /* "file:line" */
    char *value;      /* expanded */
    char **list;      /* split value for LIST */
};

struct pl_conf {
    const struct pl_conf_param *tab;
    size_t n;
    struct entry *e;
    struct pl_strvec parse_errors;   /* syntax, unknown names: kept */
    struct pl_strvec check_errors;   /* values: recomputed after each change */
    struct pl_strvec warnings;
    struct pl_cfg *cfg;              /* typed view, made by pl_conf_cfg() */
};

pl_conf *pl_conf_new(const struct pl_conf_param *table)
{
    pl_conf *c = pl_xcalloc(1, sizeof(*c));
    c->tab = table;
    while (table[c->n].name != NULL)
        c->n++;
    c->e = pl_xcalloc(c->n ? c->n : 1, sizeof(*c->e));
    for (size_t i = 0; i < c->n; i++)
        c->e[i].value = pl_xstrdup(table[i].def);
    return c;
}

static void free_list(char **list)
{
    if (list == NULL)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

void pl_conf_free(pl_conf *c)
{
    if (c == NULL)
        return;
    free(c->cfg);
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].raw);
        free(c->e[i].origin);
        free(c->e[i].value);
        free_list(c->e[i].list);
    }
    free(c->e);
    pl_strvec_free(&c->parse_errors);
    pl_strvec_free(&c->check_errors);
    pl_strvec_free(&c->warnings);
    free(c);
}

static long find(const pl_conf *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->tab[i].name) == len && strncmp(c->tab[i].name, name, len) == 0)
            return (long)i;
    return -1;
}

static size_t must_find(const pl_conf *c, const char *name)
{
    long i = find(c, name, strlen(name));
    if (i < 0) {
        fprintf(stderr, "postlink: internal error: unknown parameter %s\n", name);
        abort();
    }
    return (size_t)i;
}

/* ---- parsing of typed values ------------------------------------------ */

int pl_conf_parse_bool(const char *s, int *out)
{
    if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
        return *out = 1, 0;
    if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
        return *out = 0, 0;
    return -1;
}

int pl_conf_parse_number(enum pl_conf_type type, const char *s, long long *out)
{
    char *end;
    long long mult = 1, v;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -1;
    if (*end != '\0') {
        int u = tolower((unsigned char)*end);
        if (end[1] != '\0')
            return -1;
        if (type == PL_CONF_SIZE && u == 'k') mult = 1024LL;
        else if (type == PL_CONF_SIZE && u == 'm') mult = 1024LL * 1024;
        else if (type == PL_CONF_SIZE && u == 'g') mult = 1024LL * 1024 * 1024;
        else if (type == PL_CONF_TIME && u == 's') mult = 1;
        else if (type == PL_CONF_TIME && u == 'm') mult = 60;
        else if (type == PL_CONF_TIME && u == 'h') mult = 3600;
        else if (type == PL_CONF_TIME && u == 'd') mult = 86400;
        else if (type == PL_CONF_TIME && u == 'w') mult = 7 * 86400;
        else return -1;
    }
    if (v > (long long)(9e18 / (double)mult))
        return -1;
    *out = v * mult;
    return 0;
}

const char *pl_conf_next_item(const char **cursor, size_t *len)
{
    const char *item = *cursor + strspn(*cursor, ", \t\r\n");
    *len = strcspn(item, ", \t\r\n");
    *cursor = item + *len;
    return *len ? item : NULL;
}

static char **split_list(const char *s)
{
    size_t cap = 4, n = 0, len;
    char **v = pl_xcalloc(cap, sizeof(*v));
    const char *item;
    while ((item = pl_conf_next_item(&s, &len)) != NULL) {
        if (n + 2 > cap)
            v = pl_xrealloc(v, (cap *= 2) * sizeof(*v));
        v[n++] = pl_xstrndup(item, len);
    }
    v[n] = NULL;
    return v;
}

/* ---- diagnostics ------------------------------------------------------ */

static void __attribute__((format(printf, 3, 4))) add_msg(struct pl_strvec *v, const char *origin, const char *fmt, ...)
{
    char buf[1024];
    size_t off = (size_t)snprintf(buf, sizeof(buf), "%s: ", origin);
    va_list ap;
    va_start(ap, fmt);
    if (off < sizeof(buf))
        vsnprintf(buf + off, sizeof(buf) - off, fmt, ap);
    va_end(ap);
    pl_strvec_add(v, buf);
}

size_t pl_conf_nerrors(const pl_conf *c)
{
    return c->parse_errors.n + c->check_errors.n;
}

const char *pl_conf_error(const pl_conf *c, size_t i)
{
    return i < c->parse_errors.n ? c->parse_errors.v[i]
                                 : c->check_errors.v[i - c->parse_errors.n];
}

size_t pl_conf_nwarnings(const pl_conf *c) { return c->warnings.n; }
const char *pl_conf_warning(const pl_conf *c, size_t i) { return c->warnings.v[i]; }

/* ---- expansion and validation ----------------------------------------- */

/* Bounds on one parameter's expansion.  Without them a few short lines,
 * "a = $b$b$b$b", "b = $c$c$c$c", ... ten levels deep, expand 4^10 times
 * (or blow up memory) and hang every daemon at start-up (found while
 * writing fuzz/fuzz_conf). */
#define CONF_MAX_REFS  1000
#define CONF_MAX_VALUE (1024 * 1024)

static int expand(pl_conf *c, size_t idx, const char *in, struct pl_strbuf *out, int depth,
                  unsigned *refs)
{
    const char *origin = c->e[idx].origin ? c->e[idx].origin : "(default)";
    if (depth > 10) {
        add_msg(&c->check_errors, origin, "parameter %s: recursive $name expansion", c->tab[idx].name);
        return -1;
    }
    for (const char *p = in; *p; p++) {
        const char *name;
        size_t len;
        long ref;

        if (*p != '$') {
            pl_strbuf_addc(out, *p);
            continue;
        }
        if (p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (close == NULL) {
                add_msg(&c->check_errors, origin, "parameter %s: missing '}' after '${'", c->tab[idx].name);
                return -1;
            }
            name = p + 2;
            len = (size_t)(close - name);
            p = close;
        } else {
            name = p + 1;
            len = 0;
            while (isalnum((unsigned char)name[len]) || name[len] == '_')
                len++;
            if (len == 0) {
                pl_strbuf_addc(out, '$');
                continue;
            }
            p = name + len - 1;
        }
        if (++*refs > CONF_MAX_REFS || out->len > CONF_MAX_VALUE) {
            *refs = UINT_MAX;              /* finish() names the parameter */
            return -1;
        }
        ref = find(c, name, len);
        if (ref < 0) {
            add_msg(&c->check_errors, origin, "parameter %s: $%.*s is not a postlink.conf parameter",
                    c->tab[idx].name, (int)len, name);
            return -1;
        }
        if (expand(c, (size_t)ref, c->e[ref].raw ? c->e[ref].raw : c->tab[ref].def,
                   out, depth + 1, refs) < 0)
            return -1;
    }
    return 0;
}

static void validate(pl_conf *c, size_t i)
{
    const struct pl_conf_param *p = &c->tab[i];
    struct entry *e = &c->e[i];
    const char *origin = e->origin ? e->origin : "(default)";
    const char *why;
    long long num;
    int b;

    switch (p->type) {
    case PL_CONF_BOOL:
        if (pl_conf_parse_bool(e->value, &b) < 0)
            add_msg(&c->check_errors, origin, "parameter %s: \"%s\" is not yes or no", p->name, e->value);
        break;
    case PL_CONF_INT:
    case PL_CONF_SIZE:
    case PL_CONF_TIME:
        if (pl_conf_parse_number(p->type, e->value, &num) < 0) {
            add_msg(&c->check_errors, origin, "parameter %s: \"%s\" is not %s", p->name, e->value,
                    p->type == PL_CONF_TIME ? "a time (e.g. 30s, 10m, 2h, 7d)"
                    : p->type == PL_CONF_SIZE ? "a size (e.g. 512k, 8m)" : "a number");
        } else if ((p->min || p->max) && (num < p->min || num > p->max)) {
            add_msg(&c->check_errors, origin, "parameter %s: %s is out of range [%lld, %lld]",
                    p->name, e->value, p->min, p->max);
        }
        break;
    case PL_CONF_LIST:
        free_list(e->list);
        e->list = split_list(e->value);
        break;
    case PL_CONF_STR:
        break;
    }
    if (p->check != NULL && (why = p->check(e->value)) != NULL)
        add_msg(&c->check_errors, origin, "parameter %s: %s", p->name, why);
}

/* Re-expand and re-check every parameter after a change. */
static void finish(pl_conf *c)
{
    pl_strvec_free(&c->check_errors);
    for (size_t i = 0; i < c->n; i++) {
        struct pl_strbuf out = {0};
        const char *raw = c->e[i].raw ? c->e[i].raw : c->tab[i].def;
        unsigned refs = 0;
        if (expand(c, i, raw, &out, 0, &refs) < 0) {
            if (refs == UINT_MAX)
                add_msg(&c->check_errors, c->e[i].origin ? c->e[i].origin : "(default)",
                        "parameter %s: $name expansion too large (more than %d references "
                        "or %d bytes)", c->tab[i].name, CONF_MAX_REFS, CONF_MAX_VALUE);
            pl_strbuf_free(&out);
            continue;
        }
        free(c->e[i].value);
        c->e[i].value = pl_strbuf_take(&out);
        validate(c, i);
    }
}

static int is_name(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

static void assign(pl_conf *c, const char *origin, const char *line)
{
    const char *eq = strchr(line, '=');
    size_t nlen;
    long idx;

    if (eq == NULL) {
        add_msg(&c->parse_errors, origin, "missing '=' after parameter name");
        return;
    }
    nlen = (size_t)(eq - line);
    while (nlen > 0 && isspace((unsigned char)line[nlen - 1]))
        nlen--;
    if (!is_name(line, nlen)) {
        add_msg(&c->parse_errors, origin, "bad parameter name \"%.*s\"", (int)nlen, line);
        return;
    }
    if ((idx = find(c, line, nlen)) < 0) {
        add_msg(&c->parse_errors, origin, "unknown parameter \"%.*s\"", (int)nlen, line);
        return;
    }
    if (c->e[idx].origin != NULL)
        add_msg(&c->warnings, origin, "parameter %s overrides the setting at %s",
                c->tab[idx].name, c->e[idx].origin);
    eq++;
    while (isspace((unsigned char)*eq))
        eq++;
    free(c->e[idx].raw);
    free(c->e[idx].origin);
    c->e[idx].raw = pl_xstrdup(eq);
    pl_strtrim_right(c->e[idx].raw);
    c->e[idx].origin = pl_xstrdup(origin);
}

static void flush(pl_conf *c, const char *name, int start, struct pl_strbuf *logical)
{
    char origin[1024];
    if (logical->len == 0)
        return;
    snprintf(origin, sizeof(origin), "%s:%d", name, start);
    assign(c, origin, logical->s);
    logical->len = 0;
    logical->s[0] = '\0';
}

int pl_conf_load_text(pl_conf *c, const char *name, const char *text)
{
    struct pl_strbuf logical = {0};
    int lineno = 0, start = 0;
    const char *p = text;

    while (*p) {
        size_t len = strcspn(p, "\n");
        char *line = pl_xstrndup(p, len);
        const char *q = line;

        lineno++;
        pl_strtrim_right(line);
        while (isspace((unsigned char)*q))
            q++;
        if (*q == '\0' || *q == '#') {
            /* blank or comment line: ignored */
        } else if (q != line) {
            if (logical.len > 0) {
                pl_strbuf_addc(&logical, ' ');
                pl_strbuf_adds(&logical, q);
            } else {
                char origin[1024];
                snprintf(origin, sizeof(origin), "%s:%d", name, lineno);
                add_msg(&c->parse_errors, origin,
                        "indented line continues nothing (parameter lines start in column 1)");
            }
        } else {
            flush(c, name, start, &logical);
            start = lineno;
            pl_strbuf_adds(&logical, q);
        }
        free(line);
        p += len;
        if (*p == '\n')
            p++;
    }
    flush(c, name, start, &logical);
    pl_strbuf_free(&logical);
    finish(c);
    return (int)pl_conf_nerrors(c);
}

int pl_conf_load(pl_conf *c, const char *path, int missing_ok)
{
    FILE *fp = fopen(path, "r");
    struct pl_strbuf text = {0};
    char buf[4096];
    size_t n;
    int ret;

    if (fp == NULL) {
        if (errno == ENOENT && missing_ok) {
            finish(c);
            return (int)pl_conf_nerrors(c);
        }
        add_msg(&c->parse_errors, path, "cannot open: %s", strerror(errno));
        return (int)pl_conf_nerrors(c);
    }
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        pl_strbuf_addn(&text, buf, n);
    if (ferror(fp))
        add_msg(&c->parse_errors, path, "read error: %s", strerror(errno));
    fclose(fp);
    if (memchr(text.s ? text.s : "", '\0', text.len) != NULL)
        add_msg(&c->parse_errors, path, "file contains a NUL byte");
    ret = pl_conf_load_text(c, path, text.s ? text.s : "");
    pl_strbuf_free(&text);
    return ret;
}

int pl_conf_set(pl_conf *c, const char *name, const char *value)
{
    struct pl_strbuf line = {0};
    pl_strbuf_adds(&line, name);
    pl_strbuf_adds(&line, " = ");
    pl_strbuf_adds(&line, value);
    assign(c, "(command line)", line.s);
    pl_strbuf_free(&line);
    finish(c);
    return (int)pl_conf_nerrors(c);
}

/* ---- typed access ----------------------------------------------------- */

const char *pl_conf_str(const pl_conf *c, const char *name)
{
    return c->e[must_find(c, name)].value;
}

int pl_conf_bool(const pl_conf *c, const char *name)
{
    int b = 0;
    (void)pl_conf_parse_bool(pl_conf_str(c, name), &b);
    return b;
}

long long pl_conf_int(const pl_conf *c, const char *name)
{
    size_t i = must_find(c, name);
    long long v = 0;
    if (pl_conf_parse_number(c->tab[i].type, c->e[i].value, &v) < 0)
        (void)pl_conf_parse_number(c->tab[i].type, c->tab[i].def, &v);
    return v;
}

const char *const *pl_conf_list(const pl_conf *c, const char *name)
{
    size_t i = must_find(c, name);
    static const char *const empty[] = {NULL};
    return c->e[i].list ? (const char *const *)c->e[i].list : empty;
}

int pl_conf_is_set(const pl_conf *c, const char *name)
{
    return c->e[must_find(c, name)].raw != NULL;
}

const char *pl_conf_origin(const pl_conf *c, const char *name)
{
    return c->e[must_find(c, name)].origin;
}

int pl_conf_domain_enabled(const pl_conf *c, const char *domain)
{
    return pl_cfg_list_has(pl_conf_list(c, "enabled_domains"), domain);
}

const char *pl_conf_map_lookup(const pl_conf *c, const char *name, const char *key)
{
    return pl_cfg_list_map(pl_conf_list(c, name), key);
}

/* ---- the typed view ---------------------------------------------------- */

const struct pl_cfg *pl_conf_cfg(pl_conf *c)
{
    if (c->tab != pl_conf_params)
        abort();                       /* struct pl_cfg describes that table only */
    if (c->cfg == NULL)
        c->cfg = pl_xcalloc(1, sizeof(*c->cfg));
    for (size_t i = 0; i < c->n; i++) {
        char *field = (char *)c->cfg + c->tab[i].offset;
        switch (c->tab[i].type) {
        case PL_CONF_STR:
            *(const char **)field = c->e[i].value;
            break;
        case PL_CONF_LIST:
            *(const char **)field = c->e[i].value;
            *(const char *const **)((char *)c->cfg + c->tab[i].list_offset) =
                pl_conf_list(c, c->tab[i].name);
            break;
        case PL_CONF_BOOL:
            *(int *)field = pl_conf_bool(c, c->tab[i].name);
            break;
        case PL_CONF_INT:
        case PL_CONF_SIZE:
        case PL_CONF_TIME:
            *(long long *)field = pl_conf_int(c, c->tab[i].name);
            break;
        }
    }
    return c->cfg;
}

int pl_conf_differs(const pl_conf *a, const pl_conf *b, size_t i)
{
    return i < a->n && i < b->n && strcmp(a->e[i].value, b->e[i].value) != 0;
}

int pl_cfg_list_has(const char *const *list, const char *word)
{
    for (; list && *list; list++)
        if (strcasecmp(*list, word) == 0)
            return 1;
    return 0;
}

const char *pl_cfg_list_map(const char *const *list, const char *key)
{
    size_t kl = strlen(key);
    for (; list && *list; list++)
        if (strncasecmp(*list, key, kl) == 0 && (*list)[kl] == '=')
            return *list + kl + 1;
    return NULL;
}

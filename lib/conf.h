/* conf.h -- postlink.conf: "name = value" in Postfix's grammar (# comments
 * at line start, indented lines continue the previous one, $name and
 * ${name} expand other parameters), checked against one parameter table. */
#ifndef PL_CONF_H
#define PL_CONF_H

#include <stddef.h>

enum pl_conf_type {
    PL_CONF_STR,     /* any text */
    PL_CONF_BOOL,    /* yes | no */
    PL_CONF_INT,     /* decimal integer within [min, max] */
    PL_CONF_SIZE,    /* integer with optional k/m/g suffix, bytes */
    PL_CONF_TIME,    /* integer with optional s/m/h/d/w suffix, seconds */
    PL_CONF_LIST,    /* words separated by commas and/or white space */
};

/* A validator returns NULL if the value is good, else a static message. */
typedef const char *(*pl_conf_check_fn)(const char *value);

struct pl_conf_param {
    const char *name;
    enum pl_conf_type type;
    const char *def;          /* default value, as it would be written */
    long long min, max;       /* bounds for INT/SIZE/TIME (0, 0 = none) */
    pl_conf_check_fn check;   /* extra validation, may be NULL */
    const char *help;         /* one line for -n / documentation */
    enum { PL_CONF_RELOAD, PL_CONF_RESTART } when;  /* SIGHUP applies it, or only a restart */
    size_t offset;            /* of its field in struct pl_cfg (conf_params.h) */
    size_t list_offset;       /* LIST: of its NAME_list field there */
};

typedef struct pl_conf pl_conf;

/* The table of every postlink.conf parameter (conf_params.c). */
extern const struct pl_conf_param pl_conf_params[];

pl_conf *pl_conf_new(const struct pl_conf_param *table);
void pl_conf_free(pl_conf *conf);

/* Parse a file (a missing file is an error unless missing_ok).  Returns the
 * number of errors; each is kept as "file:line: text".  Warnings (e.g. a
 * parameter set twice) are kept apart and do not count. */
int pl_conf_load(pl_conf *conf, const char *path, int missing_ok);
/* Parse text from memory, naming it `origin` in messages (used by tests). */
int pl_conf_load_text(pl_conf *conf, const char *origin, const char *text);
/* Set one parameter as if from a file (command-line overrides). */
int pl_conf_set(pl_conf *conf, const char *name, const char *value);

size_t pl_conf_nerrors(const pl_conf *conf);
const char *pl_conf_error(const pl_conf *conf, size_t i);
size_t pl_conf_nwarnings(const pl_conf *conf);
const char *pl_conf_warning(const pl_conf *conf, size_t i);

/* Nonzero when a and b differ in the expanded value of parameter i of the
 * table (for "changed by reload" messages). */
int pl_conf_differs(const pl_conf *a, const pl_conf *b, size_t i);

/* Typed access to the expanded value (defaults apply). The name must be in
 * the table: asking for an unknown name is a programming error (abort). */
const char *pl_conf_str(const pl_conf *conf, const char *name);
int pl_conf_bool(const pl_conf *conf, const char *name);
long long pl_conf_int(const pl_conf *conf, const char *name);  /* INT/SIZE/TIME */
/* List items, a NULL-terminated array owned by conf. */
const char *const *pl_conf_list(const pl_conf *conf, const char *name);
/* Nonzero when the parameter was set explicitly. */
int pl_conf_is_set(const pl_conf *conf, const char *name);
/* Where it was set ("file:line"), or NULL for a default. */
const char *pl_conf_origin(const pl_conf *conf, const char *name);

/* Helpers shared with validators and tests.  pl_conf_next_item walks a
 * list value: returns the next item (len bytes) and advances the cursor,
 * NULL at the end. */
const char *pl_conf_next_item(const char **cursor, size_t *len);
int pl_conf_parse_bool(const char *s, int *out);
int pl_conf_parse_number(enum pl_conf_type type, const char *s, long long *out);

/* In a list parameter of "key=value" items (e.g. imap_url), the value for
 * key (case-insensitive), or NULL. */
const char *pl_conf_map_lookup(const pl_conf *conf, const char *name, const char *key);
/* Is `domain` (case-insensitive) listed in enabled_domains? */
int pl_conf_domain_enabled(const pl_conf *conf, const char *domain);

#endif

/* control.c -- read a control message's sync headers (control.h) and name
 * the control words and state flags. */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control.h"
#include "strutil.h"

const char *const pl_sync_header_names[] = {
    "X-Control", "X-Control-Target", "X-Control-Version", "X-Control-Since",
    "X-Postlink-Forwarded", "X-Postlink-State", NULL,
};

int pl_is_sync_header(const char *name)
{
    for (size_t i = 0; name != NULL && pl_sync_header_names[i] != NULL; i++)
        if (strcasecmp(name, pl_sync_header_names[i]) == 0)
            return 1;
    return 0;
}

static const char *const word_names[] = {
    "none", "read", "unread", "replied", "saved", "deleted", "undeleted", "resync",
};
#define NWORDS (sizeof(word_names) / sizeof(word_names[0]))

const char *pl_ctl_word_name(enum pl_ctl_word w)
{
    return (unsigned)w < NWORDS ? word_names[w] : "none";
}

enum pl_ctl_word pl_ctl_word_parse(const char *s)
{
    for (size_t i = 1; s != NULL && i < NWORDS; i++)
        if (strcasecmp(s, word_names[i]) == 0)
            return (enum pl_ctl_word)i;
    return PL_CW_NONE;
}

int pl_ctl_word_flag(enum pl_ctl_word w, int *set)
{
    int dummy;
    if (set == NULL)
        set = &dummy;
    *set = w != PL_CW_UNREAD && w != PL_CW_UNDELETED;
    switch (w) {
    case PL_CW_READ: case PL_CW_UNREAD: return PL_ST_READ;
    case PL_CW_REPLIED: return PL_ST_REPLIED;
    case PL_CW_SAVED: return PL_ST_SAVED;
    case PL_CW_DELETED: case PL_CW_UNDELETED: return PL_ST_DELETED;
    default: return -1;
    }
}

static const struct { unsigned flag; const char *name; } flag_names[] = {
    {PL_ST_READ, "read"}, {PL_ST_REPLIED, "replied"},
    {PL_ST_SAVED, "saved"}, {PL_ST_DELETED, "deleted"},
};
#define NFLAGS (sizeof(flag_names) / sizeof(flag_names[0]))

void pl_state_format(unsigned flags, char *out, size_t outlen)
{
    size_t len = 0;

    if (outlen == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < NFLAGS; i++) {
        if (!(flags & flag_names[i].flag))
            continue;
        int n = snprintf(out + len, outlen - len, "%s%s", len ? ", " : "",
                         flag_names[i].name);
        if (n < 0 || (size_t)n >= outlen - len)
            return;                         /* truncated */
        len += (size_t)n;
    }
}

int pl_state_parse(const char *s, unsigned *flags)
{
    size_t i = 0, j, k;

    *flags = 0;
    while (s[i] != '\0') {
        if (s[i] == ',' || isspace((unsigned char)s[i])) {
            i++;
            continue;
        }
        for (j = i; s[j] != '\0' && s[j] != ',' && !isspace((unsigned char)s[j]); j++)
            ;
        for (k = 0; k < NFLAGS; k++)
            if (strlen(flag_names[k].name) == j - i &&
                strncasecmp(s + i, flag_names[k].name, j - i) == 0)
                break;
        if (k == NFLAGS)
            return -1;
        *flags |= flag_names[k].flag;
        i = j;
    }
    return 0;
}

/* ---- parsing ------------------------------------------------------------ */

/* s for an error message: at most 60 bytes, non-printables as '?'. */
static void sanitize(const char *s, size_t n, char *out, size_t outlen)
{
    size_t k = 0;
    for (size_t i = 0; i < n && i < 60 && k + 4 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = c >= 32 && c < 127 ? (char)c : '?';
    }
    if (n > 60 && k + 4 < outlen) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* A non-negative decimal integer <= 2^62, or -1. */
static int64_t parse_count(const char *s)
{
    const int64_t max = (int64_t)1 << 62;
    int64_t v = 0;
    size_t i;

    for (i = 0; isdigit((unsigned char)s[i]); i++) {
        if (v > (max - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return i > 0 && s[i] == '\0' ? v : -1;
}

/* The one value of a header that may repeat only with the same value. */
static int one_number(const struct pl_headers *hs, const char *name, int64_t *out,
                      char *err, size_t errlen)
{
    const char *v;

    *out = -1;
    for (size_t i = 0; (v = pl_headers_get(hs, name, i)) != NULL; i++) {
        int64_t n = parse_count(v);
        if (n < 0) {
            snprintf(err, errlen, "malformed %s", name);
            return -1;
        }
        if (*out >= 0 && *out != n) {
            snprintf(err, errlen, "%s given twice", name);
            return -1;
        }
        *out = n;
    }
    return 0;
}

/* Add the message-ids in one X-Control-Target value to c. */
static int add_targets(struct pl_control *c, const char *v, size_t max_targets,
                       char *err, size_t errlen)
{
    size_t i = 0, j;
    char tok[PL_MSGID_MAX + 8], id[PL_MSGID_MAX + 1], shown[72];
    const char *why;

    while (v[i] != '\0') {
        if (v[i] == ',' || isspace((unsigned char)v[i])) {
            i++;
            continue;
        }
        j = i;
        if (v[i] == '(') {                          /* comment, may nest */
            for (int depth = 0; v[j] != '\0'; j++) {
                if (v[j] == '\\' && v[j + 1] != '\0')
                    j++;
                else if (v[j] == '(')
                    depth++;
                else if (v[j] == ')' && --depth == 0) {
                    j++;
                    break;
                }
            }
            i = j;
            continue;
        }
        if (v[i] == '<')
            while (v[j] != '\0' && v[j] != '>')
                j++;
        while (v[j] != '\0' && v[j] != ',' && !isspace((unsigned char)v[j]))
            j++;
        sanitize(v + i, j - i, shown, sizeof(shown));
        if (j - i >= sizeof(tok)) {
            snprintf(err, errlen, "malformed X-Control-Target: %s (too long)", shown);
            return -1;
        }
        memcpy(tok, v + i, j - i);
        tok[j - i] = '\0';
        if (pl_msgid_parse(tok, id, sizeof(id), &why) < 0) {
            snprintf(err, errlen, "malformed X-Control-Target: %s (%s)", shown, why);
            return -1;
        }
        i = j;
        size_t k;
        for (k = 0; k < c->ntargets && strcmp(c->targets[k], id) != 0; k++)
            ;
        if (k < c->ntargets)
            continue;                               /* duplicate */
        if (c->ntargets >= max_targets) {
            snprintf(err, errlen, "more than %zu targets", max_targets);
            return -1;
        }
        c->targets = pl_xrealloc(c->targets, (c->ntargets + 1) * sizeof(*c->targets));
        c->targets[c->ntargets++] = pl_xstrdup(id);
    }
    return 0;
}

static int parse_sync(const struct pl_headers *hs, size_t max_targets,
                      struct pl_control *c, char *err, size_t errlen)
{
    const char *v;
    char shown[72];
    int64_t since;

    for (size_t i = 0; (v = pl_headers_get(hs, "X-Control", i)) != NULL; i++) {
        enum pl_ctl_word w = pl_ctl_word_parse(v);
        if (w == PL_CW_NONE) {
            sanitize(v, strlen(v), shown, sizeof(shown));
            snprintf(err, errlen, "unknown X-Control state \"%s\"", shown);
            return -1;
        }
        if (c->word != PL_CW_NONE && c->word != w) {
            snprintf(err, errlen, "X-Control given twice");
            return -1;
        }
        c->word = w;
    }
    if (one_number(hs, "X-Control-Version", &c->version, err, errlen) < 0)
        return -1;
    for (size_t i = 0; (v = pl_headers_get(hs, "X-Control-Target", i)) != NULL; i++)
        if (add_targets(c, v, max_targets, err, errlen) < 0)
            return -1;
    if (c->word == PL_CW_RESYNC) {
        if (one_number(hs, "X-Control-Since", &since, err, errlen) < 0)
            return -1;
        if (since < 0) {
            snprintf(err, errlen, "X-Control-Since missing");
            return -1;
        }
        if (c->ntargets > 0) {
            snprintf(err, errlen, "resync takes no X-Control-Target");
            return -1;
        }
        c->since = since;
    } else if (c->ntargets == 0) {
        snprintf(err, errlen, "X-Control-Target missing");
        return -1;
    }
    return 0;
}

int pl_control_parse(const struct pl_headers *hs, size_t max_targets,
                     struct pl_control *c, char *err, size_t errlen)
{
    const char *v;
    char dummy[1];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    memset(c, 0, sizeof(*c));
    c->version = c->since = -1;
    if ((v = pl_headers_get(hs, "Message-ID", 0)) == NULL ||
        pl_msgid_parse(v, c->msgid, sizeof(c->msgid), NULL) < 0)
        c->msgid[0] = '\0';
    if ((v = pl_headers_get(hs, "Date", 0)) == NULL || pl_date_parse(v, &c->date) < 0)
        c->date = 0;
    c->forwarded = pl_headers_count(hs, "X-Postlink-Forwarded") > 0;
    if (pl_headers_count(hs, "X-Control") == 0)
        return PL_CTL_NONE;
    if (parse_sync(hs, max_targets, c, err, errlen) < 0) {
        pl_control_free(c);
        return PL_CTL_BAD;
    }
    return PL_CTL_OK;
}

void pl_control_free(struct pl_control *c)
{
    for (size_t i = 0; i < c->ntargets; i++)
        free(c->targets[i]);
    free(c->targets);
    c->targets = NULL;
    c->ntargets = 0;
}

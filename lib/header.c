/* header.c -- RFC 5322 header fields (header.h): split a raw message into
 * unfolded fields and its body, and read Message-ID, Date and addresses out
 * of field values.  Every scan is bounded by the value's or message's own
 * length; comments nest but are walked iteratively. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"
#include "strutil.h"

#define IS_WSP(c) ((c) == ' ' || (c) == '\t')

/* ---- fields ------------------------------------------------------------- */

/* Copy value[0..n) without CR/LF, leading and trailing WSP removed. */
static char *unfold(const char *value, size_t n)
{
    struct pl_strbuf b = {0};
    size_t i = 0, j;

    while (i < n && (IS_WSP(value[i]) || value[i] == '\r' || value[i] == '\n'))
        i++;
    for (; i < n; i = j) {
        for (j = i; j < n && value[j] != '\r' && value[j] != '\n'; j++)
            ;
        pl_strbuf_addn(&b, value + i, j - i);
        while (j < n && (value[j] == '\r' || value[j] == '\n'))
            j++;
    }
    while (b.len > 0 && IS_WSP(b.s[b.len - 1]))
        b.s[--b.len] = '\0';
    return pl_strbuf_take(&b);
}

static void add_field(struct pl_headers *hs, char *name, char *value)
{
    if (hs->n == hs->cap) {
        hs->cap = hs->cap ? hs->cap * 2 : 16;
        hs->h = pl_xrealloc(hs->h, hs->cap * sizeof(*hs->h));
    }
    hs->h[hs->n].name = name;
    hs->h[hs->n].value = value;
    hs->n++;
}

void pl_headers_add(struct pl_headers *hs, const char *name, const char *value)
{
    add_field(hs, pl_xstrdup(name), unfold(value, strlen(value)));
}

/* Length of the field name at line[0..n) (trailing WSP before the colon
 * allowed, as Postfix does), or 0 if the line is not a field. */
static size_t field_name(const char *line, size_t n, size_t *colon)
{
    size_t i = 0, name_len;

    while (i < n && line[i] != ':' && (unsigned char)line[i] > 32 &&
           (unsigned char)line[i] < 127)
        i++;
    name_len = i;
    while (i < n && IS_WSP(line[i]))
        i++;
    if (name_len == 0 || i >= n || line[i] != ':')
        return 0;
    *colon = i;
    return name_len;
}

int pl_headers_parse(struct pl_headers *hs, const char *msg, size_t len)
{
    size_t pos = 0;
    struct pl_strbuf val = {0};
    char *name = NULL;

    memset(hs, 0, sizeof(*hs));
    hs->body_offset = len;
    while (pos < len) {
        const char *nl = memchr(msg + pos, '\n', len - pos);
        size_t next = nl ? (size_t)(nl - msg) + 1 : len;
        size_t end = nl ? (size_t)(nl - msg) : len, colon, nlen;

        if (end > pos && msg[end - 1] == '\r')
            end--;
        if (name != NULL && IS_WSP(msg[pos])) {      /* continuation */
            pl_strbuf_addn(&val, msg + pos, end - pos);
            pos = next;
            continue;
        }
        if (name != NULL) {
            add_field(hs, name, unfold(val.s ? val.s : "", val.len));
            name = NULL;
            val.len = 0;
        }
        if (end == pos) {                             /* blank line */
            hs->body_offset = next;
            break;
        }
        nlen = field_name(msg + pos, end - pos, &colon);
        if (nlen == 0) {                              /* not a field: body */
            hs->body_offset = pos;
            break;
        }
        name = pl_xstrndup(msg + pos, nlen);
        pl_strbuf_addn(&val, msg + pos + colon + 1, end - pos - colon - 1);
        pos = next;
    }
    if (name != NULL)
        add_field(hs, name, unfold(val.s ? val.s : "", val.len));
    pl_strbuf_free(&val);
    return 0;
}

void pl_headers_free(struct pl_headers *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        free(hs->h[i].name);
        free(hs->h[i].value);
    }
    free(hs->h);
    memset(hs, 0, sizeof(*hs));
}

const char *pl_headers_get(const struct pl_headers *hs, const char *name, size_t idx)
{
    for (size_t i = 0; i < hs->n; i++)
        if (strcasecmp(hs->h[i].name, name) == 0 && idx-- == 0)
            return hs->h[i].value;
    return NULL;
}

size_t pl_headers_count(const struct pl_headers *hs, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < hs->n; i++)
        if (strcasecmp(hs->h[i].name, name) == 0)
            n++;
    return n;
}

/* ---- lexical helpers on s[0..n) ----------------------------------------- */

/* s[i] == '(' : the index after the matching ')' (or n). */
static size_t skip_comment(const char *s, size_t i, size_t n)
{
    size_t depth = 0;
    for (; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n)
            i++;
        else if (s[i] == '(')
            depth++;
        else if (s[i] == ')' && --depth == 0)
            return i + 1;
    }
    return n;
}

/* s[i] == '"' : the index after the closing quote (or n). */
static size_t skip_quoted(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n)
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

static size_t skip_cfws(const char *s, size_t i, size_t n)
{
    while (i < n) {
        if (IS_WSP(s[i]) || s[i] == '\r' || s[i] == '\n')
            i++;
        else if (s[i] == '(')
            i = skip_comment(s, i, n);
        else
            break;
    }
    return i;
}

/* The index of the first '<' outside comments and quoted strings, or n. */
static size_t find_angle(const char *s, size_t i, size_t n)
{
    while (i < n && s[i] != '<') {
        if (s[i] == '(')
            i = skip_comment(s, i, n);
        else if (s[i] == '"')
            i = skip_quoted(s, i, n);
        else
            i++;
    }
    return i;
}

/* ---- Message-ID --------------------------------------------------------- */

int pl_msgid_parse(const char *value, char *out, size_t outlen, const char **why)
{
    const char *dummy;
    size_t n = strlen(value), i, j, at = 0;

    if (why == NULL)
        why = &dummy;
    i = find_angle(value, skip_cfws(value, 0, n), n);
    if (i >= n) {
        *why = "no <...> message-id";
        return -1;
    }
    for (j = i + 1; j < n && value[j] != '>'; j++) {
        unsigned char c = (unsigned char)value[j];
        if (j - i + 2 > PL_MSGID_MAX) {
            *why = "message-id too long";
            return -1;
        }
        if (c <= 32 || c >= 127 || c == '<') {
            *why = "invalid character in message-id";
            return -1;
        }
        if (c == '@' && at == 0)
            at = j;
    }
    if (j >= n) {
        *why = "unterminated message-id";
        return -1;
    }
    if (at == 0 || at == i + 1 || value[j - 1] == '@') {
        *why = "message-id is not <left@right>";
        return -1;
    }
    if (j - i + 2 > outlen) {
        *why = "message-id too long";
        return -1;
    }
    memcpy(out, value + i, j - i + 1);
    out[j - i + 1] = '\0';
    return 0;
}

/* ---- Date --------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Up to maxd digits at s[*i]; -1 if there are none or too many. */
static int read_num(const char *s, size_t *i, size_t n, int maxd, int *ndig)
{
    int v = 0, d = 0;
    while (*i < n && isdigit((unsigned char)s[*i])) {
        if (++d > maxd)
            return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    if (ndig != NULL)
        *ndig = d;
    return d ? v : -1;
}

/* An alphabetic word at s[*i] copied into w (up to wlen-1 letters). */
static size_t read_word(const char *s, size_t *i, size_t n, char *w, size_t wlen)
{
    size_t k = 0;
    while (*i < n && isalpha((unsigned char)s[*i])) {
        if (k + 1 >= wlen)
            return 0;
        w[k++] = s[(*i)++];
    }
    w[k] = '\0';
    return k;
}

static int zone_offset(const char *w, size_t len, int *minutes)
{
    static const struct { const char *name; int min; } zones[] = {
        {"UT", 0}, {"UTC", 0}, {"GMT", 0}, {"Z", 0},
        {"EST", -300}, {"EDT", -240}, {"CST", -360}, {"CDT", -300},
        {"MST", -420}, {"MDT", -360}, {"PST", -480}, {"PDT", -420},
    };
    for (size_t k = 0; k < sizeof(zones) / sizeof(zones[0]); k++)
        if (strcasecmp(w, zones[k].name) == 0) {
            *minutes = zones[k].min;
            return 0;
        }
    /* Military letters and unknown names mean -0000 (RFC 5322 4.3). */
    *minutes = 0;
    return len >= 1 && len <= 5 ? 0 : -1;
}

int pl_date_parse(const char *value, int64_t *out)
{
    static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
        "jul", "aug", "sep", "oct", "nov", "dec"};
    static const char *const wdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t n = strlen(value), i = skip_cfws(value, 0, n), k;
    int day, mon = -1, year, hour, min, sec = 0, zone = 0, nd;
    char w[8];

    if (i < n && isalpha((unsigned char)value[i])) {          /* day-of-week */
        if (read_word(value, &i, n, w, sizeof(w)) != 3)
            return -1;
        for (k = 0; k < 7 && strcasecmp(w, wdays[k]) != 0; k++)
            ;
        if (k == 7)
            return -1;
        i = skip_cfws(value, i, n);
        if (i < n && value[i] == ',')
            i = skip_cfws(value, i + 1, n);
    }
    if ((day = read_num(value, &i, n, 2, NULL)) < 1)
        return -1;
    i = skip_cfws(value, i, n);
    if (read_word(value, &i, n, w, sizeof(w)) != 3)
        return -1;
    for (k = 0; k < 12; k++)
        if (strcasecmp(w, months[k]) == 0)
            mon = (int)k + 1;
    i = skip_cfws(value, i, n);
    if (mon < 0 || (year = read_num(value, &i, n, 4, &nd)) < 0)
        return -1;
    if (nd == 2)                                  /* obsolete years */
        year += year < 50 ? 2000 : 1900;
    else if (nd == 3)
        year += 1900;
    i = skip_cfws(value, i, n);
    if ((hour = read_num(value, &i, n, 2, NULL)) < 0)
        return -1;
    i = skip_cfws(value, i, n);
    if (i >= n || value[i] != ':')
        return -1;
    i = skip_cfws(value, i + 1, n);
    if ((min = read_num(value, &i, n, 2, NULL)) < 0)
        return -1;
    i = skip_cfws(value, i, n);
    if (i < n && value[i] == ':') {
        i = skip_cfws(value, i + 1, n);
        if ((sec = read_num(value, &i, n, 2, NULL)) < 0)
            return -1;
        i = skip_cfws(value, i, n);
    }
    if (i < n && (value[i] == '+' || value[i] == '-')) {
        int sign = value[i] == '-' ? -1 : 1, z;
        i++;
        if ((z = read_num(value, &i, n, 4, &nd)) < 0 || nd != 4 || z % 100 > 59)
            return -1;
        zone = sign * (z / 100 * 60 + z % 100);
        i = skip_cfws(value, i, n);
        if (i < n && isalpha((unsigned char)value[i]))   /* "+0100 CET" */
            read_word(value, &i, n, w, sizeof(w));
    } else {
        size_t len = read_word(value, &i, n, w, sizeof(w));
        if (len == 0 || zone_offset(w, len, &zone) < 0)
            return -1;
    }
    if (skip_cfws(value, i, n) != n)
        return -1;
    if (year < 1900 || hour > 23 || min > 59 || sec > 60 || day > mdays[mon - 1] ||
        (mon == 2 && day == 29 && (year % 4 != 0 || (year % 100 == 0 && year % 400 != 0))))
        return -1;
    *out = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
           hour * 3600 + min * 60 + sec - (int64_t)zone * 60;
    return 0;
}

/* ---- addresses ---------------------------------------------------------- */

/* Copy s[a..b) lower-cased into out; -1 if empty, bad or too long. */
static int copy_addr(const char *s, size_t a, size_t b, char *out, size_t outlen)
{
    size_t k;

    if (b > a && s[a] == '@') {                      /* source route @a,@b:x@y */
        const char *c = memchr(s + a, ':', b - a);
        if (c != NULL)
            a = (size_t)(c - s) + 1;
    }
    if (b <= a || b - a >= outlen || memchr(s + a, '@', b - a) == NULL)
        return -1;
    for (k = 0; a + k < b; k++) {
        unsigned char c = (unsigned char)s[a + k];
        if (c <= 32 || c == 127 || c == '<' || c == '>')
            return -1;
        out[k] = (char)tolower(c);
    }
    out[k] = '\0';
    return 0;
}

static int is_word_end(char c)
{
    return IS_WSP(c) || c == '\r' || c == '\n' || c == ',' || c == ';' ||
           c == ':' || c == '(' || c == '"' || c == '<';
}

/* The address in s[0..n): see pl_header_addr. */
static int addr_in(const char *s, size_t n, char *out, size_t outlen)
{
    size_t i = find_angle(s, 0, n), j;

    if (i < n) {
        const char *gt = memchr(s + i, '>', n - i);
        size_t a = skip_cfws(s, i + 1, n);
        j = gt ? (size_t)(gt - s) : n;
        while (j > a && (IS_WSP(s[j - 1]) || s[j - 1] == '\r' || s[j - 1] == '\n'))
            j--;
        return copy_addr(s, a, j, out, outlen);
    }
    for (i = 0; i < n; i = j) {
        if (s[i] == '(') {
            j = skip_comment(s, i, n);
        } else if (s[i] == '"') {
            j = skip_quoted(s, i, n);
        } else if (is_word_end(s[i])) {
            j = i + 1;
        } else {
            for (j = i; j < n && !is_word_end(s[j]); j++)
                ;
            if (copy_addr(s, i, j, out, outlen) == 0)
                return 0;
        }
    }
    return -1;
}

int pl_header_addr(const char *value, char *out, size_t outlen)
{
    return addr_in(value, strlen(value), out, outlen);
}

void pl_header_addr_list(const char *value, struct pl_strvec *v)
{
    size_t n = strlen(value), i = 0, start = 0;
    char addr[512];

    /* Split at ',' ';' ':' outside comments, quotes and <...>. */
    while (i <= n) {
        if (i == n || value[i] == ',' || value[i] == ';' || value[i] == ':') {
            if (addr_in(value + start, i - start, addr, sizeof(addr)) == 0)
                pl_strvec_add(v, addr);
            start = ++i;
        } else if (value[i] == '(') {
            i = skip_comment(value, i, n);
        } else if (value[i] == '"') {
            i = skip_quoted(value, i, n);
        } else if (value[i] == '<') {
            const char *gt = memchr(value + i, '>', n - i);
            i = gt ? (size_t)(gt - value) + 1 : n;
        } else {
            i++;
        }
    }
}

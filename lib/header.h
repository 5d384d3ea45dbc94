/* header.h -- RFC 5322 message headers as postlink reads them: split a raw
 * message into unfolded header fields and the body, find fields by name,
 * and parse the two values postlink keys state by (Message-ID, Date). */
#ifndef PL_HEADER_H
#define PL_HEADER_H

#include <stddef.h>
#include <stdint.h>

struct pl_header {
    char *name;      /* as written, without the colon */
    char *value;     /* unfolded (CR/LF removed), leading/trailing WSP trimmed */
};

struct pl_headers {
    struct pl_header *h;
    size_t n, cap;
    size_t body_offset;   /* offset of the body in the parsed message */
};

/* Parse the header section of msg (LF or CRLF line ends).  Lines that are
 * not fields (no colon, or a name with illegal characters) end the header
 * section, as Postfix's cleanup does.  Returns 0, or -1 (errno ENOMEM) only
 * on allocation failure. */
int pl_headers_parse(struct pl_headers *hs, const char *msg, size_t len);
/* Append one field (copies name and value, unfolding the value). */
void pl_headers_add(struct pl_headers *hs, const char *name, const char *value);
void pl_headers_free(struct pl_headers *hs);
/* The idx-th (0-based) field named name (case-insensitive), or NULL. */
const char *pl_headers_get(const struct pl_headers *hs, const char *name, size_t idx);
size_t pl_headers_count(const struct pl_headers *hs, const char *name);

/* Canonical Message-ID: the first "<...@...>" token of value, with
 * surrounding CFWS removed, copied into out as "<left@right>".  Only
 * printable ASCII without white space, '<' or '>' inside, at most
 * PL_MSGID_MAX bytes in all.  Returns 0, or -1 if there is none or it is
 * malformed (a static reason in *why when why != NULL). */
#define PL_MSGID_MAX 250
int pl_msgid_parse(const char *value, char *out, size_t outlen, const char **why);

/* RFC 5322 date-time ("Mon, 23 Nov 2026 10:00:00 +0100", weekday optional,
 * seconds optional, obsolete zones UT/GMT/EST.. and military letters
 * accepted) to Unix time.  Returns 0, or -1 if unparseable. */
int pl_date_parse(const char *value, int64_t *out);

/* The address inside a From/To-style value: the first "<addr>" if any, else
 * the first bare word containing '@'.  Copied to out lower-cased. Returns 0
 * or -1 if none fits in outlen. */
int pl_header_addr(const char *value, char *out, size_t outlen);
/* Every address in a To/Cc-style list value, lower-cased, appended to v
 * (a struct pl_strvec from strutil.h).  Quoted strings and comments are
 * skipped. */
struct pl_strvec;
void pl_header_addr_list(const char *value, struct pl_strvec *v);

#endif

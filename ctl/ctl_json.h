/* ctl_json.h -- postlinkctl's --json output, built with jansson: strings
 * from the store become JSON strings (ill-formed UTF-8 replaced), and one
 * document per command is printed on stdout.  See postlinkctl(8), "JSON
 * OUTPUT". */
#ifndef PL_CTL_JSON_H
#define PL_CTL_JSON_H

#include <jansson.h>

/* A JSON string holding s.  s is taken as UTF-8: each ill-formed sequence
 * (the maximal subpart, as Unicode 3.9 recommends) becomes one U+FFFD.
 * NULL s gives "" .  Returns NULL only when out of memory. */
json_t *ctl_json_string(const char *s);

/* Print v compactly and a newline on stdout, then release v.  Returns 0,
 * or -1 (with a message on stderr) when v is NULL (out of memory) or the
 * output cannot be written. */
int ctl_json_print(json_t *v);

/* A listing command's output, once its transaction committed (rc PL_OK):
 * the rows as JSON (--json) or the text; then both are released.  Returns
 * rc, or PL_ERR when the output cannot be written. */
struct pl_strbuf;
int ctl_json_output(int rc, int json, json_t *rows, struct pl_strbuf *text);

#endif

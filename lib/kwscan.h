/* kwscan.h -- find the first of many keywords in text in one pass
 * (Aho-Corasick), for postlink-route's keyword table: the keywords are
 * searched in the recipient address, the decoded headers and the decoded
 * body.  ASCII letters match without regard to case; other bytes (UTF-8
 * text) match exactly. */
#ifndef PL_KWSCAN_H
#define PL_KWSCAN_H

#include <stddef.h>

#define PL_KW_MAX_LEN 256          /* bytes in one keyword */
#define PL_KW_MAX_COUNT 10000

struct pl_kw;

/* Build a matcher for words[0..n) (empty words are skipped).  NULL if
 * there are too many or one is too long. */
struct pl_kw *pl_kw_build(const char *const *words, size_t n);
void pl_kw_free(struct pl_kw *kw);

/* The keyword whose occurrence in text[0..len) ends first (the longest of
 * those that end at the same byte): its index in words, with the offset of
 * its first byte in *at; -1 if none occurs. */
long pl_kw_first(const struct pl_kw *kw, const char *text, size_t len, size_t *at);

#endif

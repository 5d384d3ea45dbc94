/* control.h -- a control message (capability 1): the sync headers a device
 * puts on an ordinary mail to tell postlink (and the user's other devices)
 * that the state of one or more messages changed.
 *
 *   X-Control: read | unread | replied | saved | deleted | undeleted | resync
 *   X-Control-Target: <message-id>     (repeatable; one field may list several)
 *   X-Control-Version: N               (the user version the device last saw)
 *   X-Control-Since: N                 (with resync: changes after version N)
 *   X-Postlink-Forwarded: ...          (set by postlink on copies it fans out)
 *   X-Postlink-State: read, saved      (set by postlink on a target that
 *                                       arrives after its controls)
 */
#ifndef PL_CONTROL_H
#define PL_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "header.h"

enum pl_ctl_word {
    PL_CW_NONE = 0,
    PL_CW_READ, PL_CW_UNREAD, PL_CW_REPLIED, PL_CW_SAVED,
    PL_CW_DELETED, PL_CW_UNDELETED, PL_CW_RESYNC,
};

/* The state flags a message has; one control word sets or clears one. */
enum pl_state_flag {
    PL_ST_READ = 1, PL_ST_REPLIED = 2, PL_ST_SAVED = 4, PL_ST_DELETED = 8,
};
#define PL_ST_ALL 15

/* Every header name postlink's sync acts on (NULL-terminated): these are
 * stripped from mail of untrusted senders. */
extern const char *const pl_sync_header_names[];
int pl_is_sync_header(const char *name);

struct pl_control {
    enum pl_ctl_word word;
    char **targets;          /* canonical "<id@host>", duplicates removed */
    size_t ntargets;
    int64_t version;         /* X-Control-Version, -1 if absent */
    int64_t since;           /* X-Control-Since, -1 if absent */
    char msgid[PL_MSGID_MAX + 1];   /* the control's own Message-ID, "" if none */
    int64_t date;            /* its Date as Unix time, 0 if absent/unparseable */
    int forwarded;           /* X-Postlink-Forwarded present */
};

enum { PL_CTL_NONE = 0, PL_CTL_OK = 1, PL_CTL_BAD = -1 };

/* Read the control from a message's headers.  Returns PL_CTL_NONE when there
 * is no X-Control field, PL_CTL_OK, or PL_CTL_BAD with a one-line reason in
 * err (e.g. "unknown X-Control state \"reed\"", "X-Control-Target missing",
 * "malformed X-Control-Target: ...", "more than 50 targets", "X-Control
 * given twice", "malformed X-Control-Version").  resync needs X-Control-Since
 * and no targets; every other word needs >= 1 target and <= max_targets. */
int pl_control_parse(const struct pl_headers *hs, size_t max_targets,
                     struct pl_control *c, char *err, size_t errlen);
void pl_control_free(struct pl_control *c);

/* Names: "read".. for a word; the word for a name (case-insensitive),
 * PL_CW_NONE if unknown. */
const char *pl_ctl_word_name(enum pl_ctl_word w);
enum pl_ctl_word pl_ctl_word_parse(const char *s);
/* The flag a word acts on, and whether it sets (1) or clears (0) it. */
int pl_ctl_word_flag(enum pl_ctl_word w, int *set);
/* "read, saved" for flags (empty string for none) into out. */
void pl_state_format(unsigned flags, char *out, size_t outlen);
/* Parse "read, saved" (comma and/or space separated) into flags;
 * -1 on an unknown word. */
int pl_state_parse(const char *s, unsigned *flags);

#endif

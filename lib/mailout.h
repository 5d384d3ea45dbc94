/* mailout.h -- postlink's outgoing side, through libcurl: hand a composed
 * message to Postfix over SMTP (the re-injection listener that runs no
 * milters), and change flags of a message in a user's IMAP mailbox. */
#ifndef PL_MAILOUT_H
#define PL_MAILOUT_H

#include <stddef.h>

enum { PL_OUT_OK = 0, PL_OUT_TEMP = 1, PL_OUT_PERM = 2 };

/* Send msg (complete with headers, CRLF or LF line ends) to rcpts via the
 * SMTP server at url ("smtp://127.0.0.1:10026").  Returns PL_OUT_OK, or
 * PL_OUT_TEMP (connection failed, 4xx) / PL_OUT_PERM (5xx) with the
 * server's reply or curl's error in err.  timeout_s bounds the whole
 * exchange (0 = 30 s). */
int pl_smtp_send(const char *url, const char *helo, const char *sender,
                 const char *const *rcpts, size_t nrcpts,
                 const char *msg, size_t msglen, unsigned timeout_s,
                 char *err, size_t errlen);

struct pl_imap_login {
    const char *url;        /* "imap://127.0.0.1:1143" (mailbox INBOX is used) */
    const char *user;       /* login name, e.g. "alice@example.com*master" */
    const char *password;
};

/* In the INBOX of the account, find the messages whose Message-ID header
 * is msgid ("<id@host>") and add (add=1) or remove (add=0) the IMAP flags
 * or keywords in flags (e.g. "\\Seen", "$Saved", "\\Seen \\Answered").
 * Returns PL_OUT_OK (also when no message matches: *matched says how many
 * did), PL_OUT_TEMP (server unreachable, NO/BAD on login) or PL_OUT_PERM. */
int pl_imap_set_flags(const struct pl_imap_login *l, const char *msgid,
                      const char *flags, int add, unsigned timeout_s,
                      int *matched, char *err, size_t errlen);

/* The same for the messages whose header field `field` (letters, digits,
 * '-') holds one of tokens[0..n) (values msgid-safe: printable, no
 * blanks), in one IMAP session (a SEARCH per 50 tokens): flags added, or
 * with expunge those messages expunged; *matched: how many in all. */
int pl_imap_by_tokens(const struct pl_imap_login *l, const char *field,
                      const char *const *tokens, size_t n, const char *flags, int expunge,
                      unsigned timeout_s, int *matched, char *err, size_t errlen);

#endif

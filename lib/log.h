/* log.h -- postlink's one logging API: syslog (mail facility) or stderr,
 * ordered by severity, printf-checked, errno-safe, with the Postfix queue id
 * at the front of every per-message line. */
#ifndef PL_LOG_H
#define PL_LOG_H

#include <stdarg.h>

#define PL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Where log lines go. */
enum pl_log_dest { PL_LOG_STDERR, PL_LOG_SYSLOG, PL_LOG_BOTH };

void pl_log_open(const char *ident, enum pl_log_dest dest, int facility);
void pl_log_verbose(int level);
int  pl_log_facility(const char *name);   /* "mail", "local0".. or -1 */

void msg_info(const char *fmt, ...) PL_PRINTF(1, 2);
void msg_warn(const char *fmt, ...) PL_PRINTF(1, 2);
void msg_error(const char *fmt, ...) PL_PRINTF(1, 2);
void msg_debug(const char *fmt, ...) PL_PRINTF(1, 2);
_Noreturn void msg_fatal(const char *fmt, ...) PL_PRINTF(1, 2);

/* Per-message lines: "QUEUEID: text" like Postfix's own (qid may be NULL). */
void msg_qid(int priority, const char *qid, const char *fmt, ...) PL_PRINTF(3, 4);

void msg_vlog(int priority, const char *fmt, va_list ap) PL_PRINTF(2, 0);

#endif

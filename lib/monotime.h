/* monotime.h -- milliseconds on the monotonic clock, for the deadlines of
 * postlink's protocol clients (SMTP, POP3, IMAP). */
#ifndef PL_MONOTIME_H
#define PL_MONOTIME_H

#include <time.h>

static inline long long pl_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

#endif

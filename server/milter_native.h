/* milter_native.h -- the native milter engine (milter_native.c): event
 * loops serving the filter chain (milter_chain.h) on one socket. */
#ifndef PL_MILTER_NATIVE_H
#define PL_MILTER_NATIVE_H

/* Open the socket (as root, before privileges are dropped).  0 or -1. */
int pl_native_open(const char *socket, const char *user);

/* Serve with `threads` event loops until pl_native_end(); sessions idle
 * longer than timeout_s are closed.  Returns 0, or 1 on a set-up error. */
int pl_native_run(unsigned threads, unsigned timeout_s);

/* End the loops (after the drain): live sessions are closed. */
void pl_native_end(void);

#endif

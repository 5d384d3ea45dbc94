/* milter_libmilter.h -- the libmilter engine (milter_engine = libmilter):
 * the filter chain (milter_chain.h) behind one smfiDesc, served by
 * libmilter's smfi_main(). */
#ifndef PL_MILTER_LIBMILTER_H
#define PL_MILTER_LIBMILTER_H

/* Register the chain and open the socket (as root).  0 or -1. */
int pl_libmilter_open(const char *name, const char *socket, const char *user, unsigned timeout_s);

/* smfi_main() until pl_libmilter_end().  0, or 1 if it ended by itself. */
int pl_libmilter_run(void);

/* smfi_stop(), after the drain. */
void pl_libmilter_end(void);

#endif

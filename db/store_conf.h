/* store_conf.h -- open the store with the settings from postlink.conf. */
#ifndef PL_STORE_CONF_H
#define PL_STORE_CONF_H

#include "conf.h"
#include "store.h"

void pl_store_opts_from_conf(struct pl_store_opts *o, const pl_conf *conf);
int pl_store_open_conf(pl_store **sp, const pl_conf *conf, char *err, size_t errlen);

#endif

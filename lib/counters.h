/*
 * Counters with labels, for the Prometheus samples each process hands to
 * httpd.  Label text is the caller's: it must already be valid inside
 * braces (name="value",...).
 */
#ifndef EPHEMERD_COUNTERS_H
#define EPHEMERD_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Distinct label sets kept; later ones are folded into the last. */
#define COUNTERS_MAX	256

struct counter {
	char		*ct_labels;
	uint64_t	 ct_value;
};

struct counter_set {
	struct counter	*cs_items;
	size_t		 cs_count;
};

void	 counter_add(struct counter_set *, const char *, uint64_t);
/* Appends "name{labels} value" lines. */
void	 counter_write(const struct counter_set *, const char *,
	    struct buf *);
void	 counter_set_free(struct counter_set *);

#endif

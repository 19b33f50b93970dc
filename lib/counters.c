/*
 * Counters with labels.
 */
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "util.h"

void
counter_add(struct counter_set *cs, const char *labels, uint64_t n)
{
	size_t	 i;

	for (i = 0; i < cs->cs_count; i++)
		if (strcmp(cs->cs_items[i].ct_labels, labels) == 0) {
			cs->cs_items[i].ct_value += n;
			return;
		}

	/* A bounded set: an unbounded label space cannot grow memory. */
	if (cs->cs_count == COUNTERS_MAX) {
		cs->cs_items[COUNTERS_MAX - 1].ct_value += n;
		return;
	}
	cs->cs_items = xreallocarray(cs->cs_items, cs->cs_count + 1,
	    sizeof(*cs->cs_items));
	cs->cs_items[cs->cs_count].ct_labels = xstrdup(labels);
	cs->cs_items[cs->cs_count].ct_value = n;
	cs->cs_count++;
}

void
counter_write(const struct counter_set *cs, const char *name,
    struct buf *out)
{
	size_t	 i;

	for (i = 0; i < cs->cs_count; i++)
		buf_printf(out, "%s{%s} %llu\n", name,
		    cs->cs_items[i].ct_labels,
		    (unsigned long long)cs->cs_items[i].ct_value);
}

void
counter_set_free(struct counter_set *cs)
{
	size_t	 i;

	for (i = 0; i < cs->cs_count; i++)
		free(cs->cs_items[i].ct_labels);
	free(cs->cs_items);
	cs->cs_items = NULL;
	cs->cs_count = 0;
}

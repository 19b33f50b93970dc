/*
 * libFuzzer harness for the configuration.  The first byte picks a mode:
 * even, the rest is a YAML file for config_parse_yaml() and
 * config_validate() (no environment, no secret files); odd, the rest is a
 * MSG_CONFIG payload for config_decode() of role 1 + (byte >> 1) % 3.
 * Whatever is accepted must survive an encode and decode round trip, and
 * every error must name the file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "ipc.h"
#include "util.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const int roles[] = { ROLE_HTTPD, ROLE_POLLER, ROLE_DOCKER };

/* Encodes a role's part and checks that it decodes again. */
static void
round_trip(const struct config *cfg, int role)
{
	struct config	 out;
	struct buf	 b;
	const char	*why = NULL;

	buf_init(&b);
	config_encode(cfg, role, &b);
	config_init(&out);
	if (config_decode(&out, role, b.b_data, b.b_len, &why) == -1) {
		fprintf(stderr, "round trip for role %d failed: %s\n", role,
		    why);
		abort();
	}
	if (out.c_npools != cfg->c_npools)
		abort();
	config_free(&out);
	buf_free(&b);
}

static void
fuzz_yaml(const uint8_t *data, size_t size)
{
	struct config	 cfg;
	char		 err[512];
	size_t		 i;

	config_init(&cfg);
	cfg.c_file = xstrdup("fuzz.yaml");
	if (config_parse_yaml(&cfg, "fuzz.yaml", (const char *)data, size,
	    err, sizeof(err)) == 0 &&
	    config_validate(&cfg, err, sizeof(err)) == 0) {
		for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
			round_trip(&cfg, roles[i]);
	} else if (strncmp(err, "fuzz.yaml", 9) != 0)
		abort();
	config_free(&cfg);
}

static void
fuzz_wire(int role, const uint8_t *data, size_t size)
{
	struct config	 cfg;
	const char	*why = NULL;

	config_init(&cfg);
	if (config_decode(&cfg, role, data, size, &why) == 0)
		round_trip(&cfg, role);
	else if (why == NULL)
		abort();
	config_free(&cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_yaml(data + 1, size - 1);
	else
		fuzz_wire(roles[(data[0] >> 1) % 3], data + 1, size - 1);
	return 0;
}

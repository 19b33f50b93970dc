/*
 * libFuzzer harness for what the docker worker reads from the engine's
 * streams.  The input is cut into chunks at places chosen by its first
 * bytes, fed to the event line splitter and the log demultiplexer, and
 * the results must equal those of feeding it whole.  Each line goes
 * through the event parser and the error readers, and the whole input
 * through the container list parser.  A broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "docker_api.h"
#include "docker_runners.h"
#include "runner.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_line(const char *line, size_t len, void *arg)
{
	struct buf		*all = arg;
	struct docker_event	 ev;

	if (len == 0 || memchr(line, '\n', len) != NULL)
		abort();
	buf_add(all, line, len);
	buf_add_char(all, '\n');
	if (docker_event_parse(line, len, &ev) == 0) {
		if (ev.ev_type == NULL || ev.ev_action == NULL ||
		    ev.ev_id == NULL || ev.ev_id[0] == '\0')
			abort();
		if (ev.ev_has_exit && (ev.ev_exit_code < 0 ||
		    ev.ev_exit_code > 255))
			abort();
		docker_event_free(&ev);
	}
	free(docker_error_message(line, len));
	free(docker_pull_error(line, len));
}

static void
split_lines(const uint8_t *data, size_t size, size_t step, struct buf *out)
{
	struct docker_lines	 dl;
	size_t			 i, n;

	docker_lines_init(&dl);
	for (i = 0; i < size; i += n) {
		n = size - i < step ? size - i : step;
		docker_lines_feed(&dl, (const char *)data + i, n, check_line,
		    out);
	}
	docker_lines_free(&dl);
}

static int
demux(const uint8_t *data, size_t size, size_t step, struct buf *out)
{
	struct docker_demux	 dx;
	size_t			 i, n;
	int			 rc = 0;

	docker_demux_init(&dx, out);
	for (i = 0; i < size && rc == 0; i += n) {
		n = size - i < step ? size - i : step;
		rc = docker_demux_feed(&dx, data + i, n);
	}
	return rc;
}

static void
check_list(const uint8_t *data, size_t size)
{
	struct listed_container	*lcs;
	const char		*why;
	size_t			 i, n;

	if (docker_list_parse((const char *)data, size, &lcs, &n,
	    &why) == -1)
		return;
	for (i = 0; i < n; i++)
		if (lcs[i].lc_valid &&
		    !runner_name_valid(lcs[i].lc_runner.rn_name))
			abort();
	docker_list_free(lcs, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf	 whole, chunked, dwhole, dchunked;
	size_t		 step;
	int		 rw, rc;

	step = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	buf_init(&whole);
	buf_init(&chunked);
	split_lines(data, size, size > 0 ? size : 1, &whole);
	split_lines(data, size, step, &chunked);
	if (whole.b_len != chunked.b_len || (whole.b_len > 0 &&
	    memcmp(whole.b_data, chunked.b_data, whole.b_len) != 0))
		abort();

	/* Demultiplexing: any chunking, the same bytes and verdict. */
	buf_init(&dwhole);
	buf_init(&dchunked);
	rw = demux(data, size, size > 0 ? size : 1, &dwhole);
	rc = demux(data, size, step, &dchunked);
	if (rw != rc || dwhole.b_len != dchunked.b_len ||
	    (dwhole.b_len > 0 &&
	    memcmp(dwhole.b_data, dchunked.b_data, dwhole.b_len) != 0) ||
	    dwhole.b_len > size)
		abort();
	buf_reset(&dwhole);
	docker_log_demux(data, size, &dwhole);
	if (dwhole.b_len > size)
		abort();

	check_list(data, size);
	buf_free(&whole);
	buf_free(&chunked);
	buf_free(&dwhole);
	buf_free(&dchunked);
	return 0;
}

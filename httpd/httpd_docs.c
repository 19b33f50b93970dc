/*
 * The API's description and the pages that render it: openapi.json,
 * Swagger UI at /docs and ReDoc at /redoc.  The files are built into the
 * binary (.incbin), so the chrooted httpd needs no file and no page
 * fetches anything from another site.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stddef.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "util.h"

#ifndef HTTPD_EMBED_DIR
#error "HTTPD_EMBED_DIR must name the directory of httpd/openapi.json"
#endif

/* Defines NAME_start and NAME_end around the bytes of a file. */
#define EMBED(name, file)						\
	__asm__(".section .rodata\n"					\
	    ".balign 16\n"						\
	    ".globl " #name "_start\n"					\
	    #name "_start:\n"						\
	    ".incbin \"" HTTPD_EMBED_DIR "/" file "\"\n"		\
	    ".globl " #name "_end\n"					\
	    #name "_end:\n"						\
	    ".byte 0\n"							\
	    ".previous\n");						\
	extern const char name##_start[], name##_end[]

EMBED(httpd_openapi, "openapi.json");
EMBED(httpd_swagger_js, "assets/swagger-ui/swagger-ui-bundle.js");
EMBED(httpd_swagger_css, "assets/swagger-ui/swagger-ui.css");
EMBED(httpd_redoc_js, "assets/redoc/redoc.standalone.js");

/* Relative links, so that the pages also work below a proxy's prefix. */
static const char docs_page[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<title>ephemerd API - Swagger UI</title>\n"
	"<link rel=\"stylesheet\" href=\"assets/swagger-ui.css\">\n"
	"</head>\n"
	"<body>\n"
	"<div id=\"swagger-ui\"></div>\n"
	"<script src=\"assets/swagger-ui-bundle.js\"></script>\n"
	"<script>\n"
	"window.ui = SwaggerUIBundle({ url: \"openapi.json\", "
	"dom_id: \"#swagger-ui\", deepLinking: true });\n"
	"</script>\n"
	"</body>\n"
	"</html>\n";

static const char redoc_page[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<title>ephemerd API - ReDoc</title>\n"
	"</head>\n"
	"<body>\n"
	"<redoc spec-url=\"openapi.json\"></redoc>\n"
	"<script src=\"assets/redoc.standalone.js\"></script>\n"
	"</body>\n"
	"</html>\n";

struct httpd_asset {
	const char	*as_name;
	const char	*as_type;
	const char	*as_start;
	const char	*as_end;
};

static const struct httpd_asset httpd_assets[] = {
	{ "swagger-ui-bundle.js", "application/javascript",
	    httpd_swagger_js_start, httpd_swagger_js_end },
	{ "swagger-ui.css", "text/css",
	    httpd_swagger_css_start, httpd_swagger_css_end },
	{ "redoc.standalone.js", "application/javascript",
	    httpd_redoc_js_start, httpd_redoc_js_end },
};

/* The static bytes are referenced, not copied. */
static void
httpd_send_static(struct evhttp_request *req, const char *type,
    const char *data, size_t len, int cache)
{
	struct evkeyvalq	*hdrs = evhttp_request_get_output_headers(req);
	struct evbuffer		*out;

	evhttp_add_header(hdrs, "Content-Type", type);
	evhttp_add_header(hdrs, "X-Content-Type-Options", "nosniff");
	if (cache)
		evhttp_add_header(hdrs, "Cache-Control", "max-age=86400");
	if ((out = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	evbuffer_add_reference(out, data, len, NULL, NULL);
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

const char *
httpd_openapi_text(size_t *len)
{
	*len = (size_t)(httpd_openapi_end - httpd_openapi_start);
	return httpd_openapi_start;
}

void
httpd_docs_openapi(struct evhttp_request *req, const char *param)
{
	(void)param;
	httpd_send_static(req, "application/json", httpd_openapi_start,
	    (size_t)(httpd_openapi_end - httpd_openapi_start), 0);
}

void
httpd_docs_swagger(struct evhttp_request *req, const char *param)
{
	(void)param;
	httpd_send_static(req, "text/html; charset=utf-8", docs_page,
	    sizeof(docs_page) - 1, 0);
}

void
httpd_docs_redoc(struct evhttp_request *req, const char *param)
{
	(void)param;
	httpd_send_static(req, "text/html; charset=utf-8", redoc_page,
	    sizeof(redoc_page) - 1, 0);
}

void
httpd_docs_asset(struct evhttp_request *req, const char *name)
{
	size_t	 i;

	for (i = 0; i < nitems(httpd_assets); i++)
		if (strcmp(httpd_assets[i].as_name, name) == 0) {
			httpd_send_static(req, httpd_assets[i].as_type,
			    httpd_assets[i].as_start,
			    (size_t)(httpd_assets[i].as_end -
			    httpd_assets[i].as_start), 1);
			return;
		}
	httpd_send_error(req, HTTP_NOTFOUND, "no such asset");
}

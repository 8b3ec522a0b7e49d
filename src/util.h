/* Small helpers every room may use (they depend on nothing but libc and voxcl.h). */
#ifndef VX_UTIL_H
#define VX_UTIL_H
#include "voxcl.h"

/* Writes a printf-style message into errbuf (may be NULL) and returns st: the error return of
 * functions that report through a caller's buffer instead of a context. */
vx_status vx_errbuf_fail(char *errbuf, size_t errlen, vx_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* mkdir -p: creates path and its parents (existing ones are fine); 0 on success, -1 with errno. */
int vx_mkdir_p(const char *path);

#endif

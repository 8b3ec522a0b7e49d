/* Device discovery across every OpenCL platform and the parsing of device requests. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

void vx_free(void *p) { free(p); }

static void info_string(cl_device_id d, cl_device_info what, char *dst, size_t len) {
  dst[0] = 0;
  if (clGetDeviceInfo(d, what, len - 1, dst, NULL) != CL_SUCCESS) dst[0] = 0;
  dst[len - 1] = 0;
  /* trim trailing blanks some drivers leave */
  size_t n = strlen(dst);
  while (n && isspace((unsigned char)dst[n - 1])) dst[--n] = 0;
}

static void fill_info(cl_platform_id p, cl_device_id d, int pi, int di, vx_device_info *o) {
  memset(o, 0, sizeof *o);
  o->platform = pi;
  o->device = di;
  info_string(d, CL_DEVICE_NAME, o->name, sizeof o->name);
  info_string(d, CL_DEVICE_VENDOR, o->vendor, sizeof o->vendor);
  info_string(d, CL_DRIVER_VERSION, o->driver_version, sizeof o->driver_version);
  info_string(d, CL_DEVICE_VERSION, o->opencl_version, sizeof o->opencl_version);
  if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof o->platform_name - 1, o->platform_name, NULL) != CL_SUCCESS)
    o->platform_name[0] = 0;
  cl_device_type type = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  o->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  o->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
  cl_uint cu = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  o->compute_units = cu;
  cl_ulong v = 0;
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof v, &v, NULL);
  o->global_mem_bytes = v;
  v = 0;
  clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof v, &v, NULL);
  o->local_mem_bytes = v;
  v = 0;
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof v, &v, NULL);
  o->max_alloc_bytes = v;
  char ext[8192];
  info_string(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
  o->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
  o->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
}

/* Walks all platforms and devices; calls fn for each until it returns nonzero. */
typedef int (*visit_fn)(cl_platform_id, cl_device_id, int, int, void *);
/* Drivers initialise their devices on the first clGetDeviceIDs, and PoCL 3.1 answers
 * CL_DEVICE_NOT_FOUND to a thread that calls while another thread's initialisation is in
 * progress: two threads creating their first contexts at once could see no device. Make the
 * first enumeration once, before any concurrent one. */
static pthread_once_t g_driver_init_once = PTHREAD_ONCE_INIT;
static void driver_init(void) {
  cl_uint np = 0, nd = 0;
  if (clGetPlatformIDs(0, NULL, &np) != CL_SUCCESS || np == 0) return;
  cl_platform_id *plats = calloc(np, sizeof *plats);
  if (!plats) return;
  if (clGetPlatformIDs(np, plats, NULL) == CL_SUCCESS)
    for (cl_uint p = 0; p < np; p++) clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
  free(plats);
}

static vx_status visit_devices(visit_fn fn, void *user, char *errbuf, size_t errlen) {
  pthread_once(&g_driver_init_once, driver_init);
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no ICD installed */ || np == 0) return VX_OK; /* no platform: an empty list */
  if (err != CL_SUCCESS) {
    if (errbuf) snprintf(errbuf, errlen, "clGetPlatformIDs failed: %s", vx_cl_error_name(err));
    return VX_ERR_OPENCL;
  }
  cl_platform_id *plats = calloc(np, sizeof *plats);
  if (!plats) return VX_ERR_OUT_OF_MEMORY;
  clGetPlatformIDs(np, plats, NULL);
  for (cl_uint p = 0; p < np; p++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
    cl_device_id *devs = calloc(nd, sizeof *devs);
    if (!devs) { free(plats); return VX_ERR_OUT_OF_MEMORY; }
    clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
    for (cl_uint d = 0; d < nd; d++) {
      if (fn(plats[p], devs[d], (int)p, (int)d, user)) { free(devs); free(plats); return VX_OK; }
    }
    free(devs);
  }
  free(plats);
  return VX_OK;
}

typedef struct { vx_device_info *list; int n, cap; int oom; } collect_state;
static int collect(cl_platform_id p, cl_device_id d, int pi, int di, void *user) {
  collect_state *s = user;
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 8;
    vx_device_info *l = realloc(s->list, (size_t)cap * sizeof *l);
    if (!l) { s->oom = 1; return 1; }
    s->list = l;
    s->cap = cap;
  }
  fill_info(p, d, pi, di, &s->list[s->n++]);
  return 0;
}

vx_status vx_devices_list(vx_device_info **out, int *count, char *errbuf, size_t errlen) {
  if (!out || !count) return VX_ERR_INVALID_ARGUMENT;
  collect_state s = {0};
  vx_status st = visit_devices(collect, &s, errbuf, errlen);
  if (st == VX_OK && s.oom) st = VX_ERR_OUT_OF_MEMORY;
  if (st != VX_OK) { free(s.list); *out = NULL; *count = 0; return st; }
  *out = s.list;
  *count = s.n;
  return VX_OK;
}

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

vx_status vx_device_resolve(const vx_device_info *devs, int count, const char *req, int *index,
                            char *errbuf, size_t errlen) {
  *index = -1;
  int first_gpu = -1, first_cpu = -1;
  for (int i = 0; i < count; i++) {
    if (devs[i].is_gpu && first_gpu < 0) first_gpu = i;
    if (devs[i].is_cpu && first_cpu < 0) first_cpu = i;
  }
  if (!req || !*req || !strcmp(req, "any") || !strcmp(req, "default")) {
    *index = first_gpu >= 0 ? first_gpu : first_cpu >= 0 ? first_cpu : (count ? 0 : -1);
  } else if (!strcmp(req, "gpu")) {
    *index = first_gpu;
  } else if (!strcmp(req, "cpu")) {
    *index = first_cpu;
  } else {
    int p, d, used = 0;
    if (sscanf(req, "%d:%d%n", &p, &d, &used) == 2 && req[used] == 0) {
      for (int i = 0; i < count; i++)
        if (devs[i].platform == p && devs[i].device == d) *index = i;
    } else {
      for (int i = 0; i < count && *index < 0; i++)
        if (contains_nocase(devs[i].name, req) || contains_nocase(devs[i].platform_name, req)) *index = i;
    }
  }
  if (*index >= 0) return VX_OK;
  if (errbuf && errlen) {
    size_t o = (size_t)snprintf(errbuf, errlen,
                                "no OpenCL device matches '%s' (expected P:D, gpu, cpu, any or part of a name); ",
                                req && *req ? req : "default");
    if (count == 0 && o < errlen)
      snprintf(errbuf + o, errlen - o, "no OpenCL device was found (is an ICD such as pocl-opencl-icd installed?)");
    else if (o < errlen)
      o += (size_t)snprintf(errbuf + o, errlen - o, "devices found:");
    for (int i = 0; i < count && o < errlen; i++)
      o += (size_t)snprintf(errbuf + o, errlen - o, " [%d:%d %s (%s)]", devs[i].platform, devs[i].device,
                            devs[i].name, devs[i].is_gpu ? "gpu" : devs[i].is_cpu ? "cpu" : "other");
  }
  return VX_ERR_NO_DEVICE;
}

/* Used by context.c: the cl ids of a device picked by index into the list order. */
typedef struct { int pi, di; cl_platform_id p; cl_device_id d; } find_state;
static int find(cl_platform_id p, cl_device_id d, int pi, int di, void *user) {
  find_state *s = user;
  if (pi == s->pi && di == s->di) { s->p = p; s->d = d; return 1; }
  return 0;
}
vx_status vx_device_ids(int platform, int device, cl_platform_id *p, cl_device_id *d);
vx_status vx_device_ids(int platform, int device, cl_platform_id *p, cl_device_id *d) {
  find_state s = {platform, device, NULL, NULL};
  vx_status st = visit_devices(find, &s, NULL, 0);
  if (st != VX_OK) return st;
  if (!s.d) return VX_ERR_NO_DEVICE;
  *p = s.p;
  *d = s.d;
  return VX_OK;
}

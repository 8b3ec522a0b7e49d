/* voxcl devices [--json]: every OpenCL platform and device. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

int vx_cli_devices(int argc, char **argv) {
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else { fprintf(stderr, "voxcl devices: unknown option '%s'\n", argv[i]); return 2; }
  }
  vx_device_info *d = NULL;
  int n = 0;
  char err[1024] = "";
  vx_status st = vx_devices_list(&d, &n, err, sizeof err);
  if (st != VX_OK) return vx_cli_error(st, err);
  int def = -1;
  vx_device_resolve(d, n, NULL, &def, NULL, 0);
  if (json) {
    printf("[");
    for (int i = 0; i < n; i++) {
      printf("%s\n  {\"index\": \"%d:%d\", \"name\": ", i ? "," : "", d[i].platform, d[i].device);
      json_str(d[i].name);
      printf(", \"vendor\": ");
      json_str(d[i].vendor);
      printf(", \"platform\": ");
      json_str(d[i].platform_name);
      printf(", \"driver_version\": ");
      json_str(d[i].driver_version);
      printf(", \"opencl_version\": ");
      json_str(d[i].opencl_version);
      printf(", \"type\": \"%s\", \"compute_units\": %u, \"global_mem_bytes\": %llu, \"local_mem_bytes\": %llu, "
             "\"max_alloc_bytes\": %llu, \"fp16\": %s, \"fp64\": %s, \"default\": %s}",
             d[i].is_gpu ? "gpu" : d[i].is_cpu ? "cpu" : "other", d[i].compute_units,
             (unsigned long long)d[i].global_mem_bytes, (unsigned long long)d[i].local_mem_bytes,
             (unsigned long long)d[i].max_alloc_bytes, d[i].fp16 ? "true" : "false", d[i].fp64 ? "true" : "false",
             i == def ? "true" : "false");
    }
    printf("%s]\n", n ? "\n" : "");
  } else {
    if (n == 0) printf("no OpenCL devices found (install an ICD, e.g. pocl-opencl-icd)\n");
    for (int i = 0; i < n; i++) {
      printf("%s%d:%d  %s\n", i == def ? "* " : "  ", d[i].platform, d[i].device, d[i].name);
      printf("      platform: %s | vendor: %s | type: %s\n", d[i].platform_name, d[i].vendor,
             d[i].is_gpu ? "gpu" : d[i].is_cpu ? "cpu" : "other");
      printf("      driver %s | %s | %u compute units\n", d[i].driver_version, d[i].opencl_version, d[i].compute_units);
      printf("      global memory %.1f GiB (largest buffer %.1f GiB) | local memory %llu KiB | fp16 %s | fp64 %s\n",
             (double)d[i].global_mem_bytes / (1 << 30), (double)d[i].max_alloc_bytes / (1 << 30),
             (unsigned long long)(d[i].local_mem_bytes >> 10), d[i].fp16 ? "yes" : "no", d[i].fp64 ? "yes" : "no");
    }
    if (n) printf("(* = default; choose with --device P:D|gpu|cpu|NAME or VOXCL_DEVICE)\n");
  }
  vx_free(d);
  return 0;
}

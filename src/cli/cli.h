/* The voxcl command-line tool: one file per subcommand; the only place that prints to the
 * user or exits. */
#ifndef VX_CLI_H
#define VX_CLI_H
#include "voxcl.h"

int vx_cli_devices(int argc, char **argv);
int vx_cli_demo(int argc, char **argv);
int vx_cli_bench(int argc, char **argv);
int vx_cli_train(int argc, char **argv);
int vx_cli_predict(int argc, char **argv);
int vx_cli_model(int argc, char **argv);
int vx_cli_tune(int argc, char **argv);
int vx_cli_synth(int argc, char **argv);
int vx_cli_check_dataset(int argc, char **argv);
int vx_cli_evaluate(int argc, char **argv);
int vx_cli_transferability(int argc, char **argv);

/* Returns the value after flag 'name' (e.g. --device X) or NULL; 'i' is advanced past it. */
const char *vx_cli_opt(int argc, char **argv, int *i, const char *name);
/* Prints "voxcl: error: ..." with the status and message, returns the exit code (1). */
int vx_cli_error(vx_status st, const char *msg);
#endif

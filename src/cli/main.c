/* voxcl: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

const char *vx_cli_opt(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') return argv[*i] + n + 1;
  if (strcmp(argv[*i], name)) return NULL;
  if (*i + 1 >= argc) {
    fprintf(stderr, "voxcl: %s needs a value\n", name);
    return NULL;
  }
  return argv[++*i];
}

int vx_cli_error(vx_status st, const char *msg) {
  fprintf(stderr, "voxcl: error (%s): %s\n", vx_status_string(st), msg && *msg ? msg : "(no detail)");
  return 1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: voxcl <command> [options]\n\n"
          "commands:\n"
          "  devices [--json]            list every OpenCL device (index P:D, memory, features)\n"
          "  demo [--out DIR] [--time S] [--device D]\n"
          "                              generate a synthetic 3D dataset, train a 3D U-Net on it,\n"
          "                              segment held-out volumes, write NIfTI + summary.json\n"
          "  train --dataset DIR --out DIR [...]   train a model on an nnU-Net/Decathlon dataset folder\n"
          "  predict --model DIR -i IN -o OUT      segment a NIfTI file or folder with a trained model\n"
          "  model list | info --model NAME [--in-channels C] [--classes K] [--patch D,H,W] [--json]\n"
          "                              the networks; one's layers, output shapes, parameters, memory\n"
          "  tune [--size N] [--seconds S] tune CLBlast's GEMM for the device and save the result\n"
          "  bench ops [--only S] [--json FILE]\n"
          "                              measure the device's peak, then time every op forward and\n"
          "                              backward on the shapes of real networks\n"
          "  bench models [--models a,b] [--sizes 64,96]\n"
          "                              training step, inference and device memory of each network\n"
          "  synth --out DIR [--cases N] [--size D,H,W] [--seed S] [--spacing X,Y,Z] [--force]\n"
          "                              write the synthetic dataset in the nnU-Net layout\n"
          "  check-dataset DIR           list every problem of an nnU-Net or MSD dataset folder\n"
          "  evaluate --pred DIR --ref DIR [--labels 1,2] [--out PREFIX]\n"
          "                              Dice and HD95 per case and class of label maps against\n"
          "                              references; writes PREFIX.csv and PREFIX.json\n"
          "  transferability --dataset DIR --checkpoint A.safetensors [--checkpoint B ...] [--iters N]\n"
          "                              rank pretrained dualnorm-unet checkpoints by AC-Corr\n\n"
          "device choice: --device P:D | gpu | cpu | any | part-of-name, or $VOXCL_DEVICE\n"
          "program cache: $VOXCL_CACHE_DIR (default $XDG_CACHE_HOME/voxcl), 'off' disables it\n");
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("voxcl %s\n", "0.1.0");
    return 0;
  }
  if (!strcmp(argv[1], "devices")) return vx_cli_devices(argc - 1, argv + 1);
  if (!strcmp(argv[1], "demo")) return vx_cli_demo(argc - 1, argv + 1);
  if (!strcmp(argv[1], "bench")) return vx_cli_bench(argc - 1, argv + 1);
  if (!strcmp(argv[1], "train")) return vx_cli_train(argc - 1, argv + 1);
  if (!strcmp(argv[1], "predict")) return vx_cli_predict(argc - 1, argv + 1);
  if (!strcmp(argv[1], "model")) return vx_cli_model(argc - 1, argv + 1);
  if (!strcmp(argv[1], "tune")) return vx_cli_tune(argc - 1, argv + 1);
  if (!strcmp(argv[1], "synth")) return vx_cli_synth(argc - 1, argv + 1);
  if (!strcmp(argv[1], "check-dataset")) return vx_cli_check_dataset(argc - 1, argv + 1);
  if (!strcmp(argv[1], "evaluate")) return vx_cli_evaluate(argc - 1, argv + 1);
  if (!strcmp(argv[1], "transferability")) return vx_cli_transferability(argc - 1, argv + 1);
  fprintf(stderr, "voxcl: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}

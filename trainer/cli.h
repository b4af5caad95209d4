/* cli.h - argument handling shared by the trainer's programs: read a spec
 * file and apply `--set key=value` overrides, reporting one-line errors. */
#ifndef JEPA_CLI_H
#define JEPA_CLI_H
#include "spec.h"

/* Loads `path` over defaults, applies every `--set K=V` in argv[first..argc),
 * validates. Returns 0, or prints "PROG: message" and returns 2. Other
 * arguments are left to the caller: *unused gets their indices (count
 * returned in *nunused). spec_text (optional) receives the file's bytes
 * (caller frees). */
int cli_load_spec(const char *prog, jepa_spec *s, const char *path, int argc, char **argv,
                  int first, char **spec_text, int *unused, int *nunused);

/* The whole file as a NUL-terminated string (caller frees), or NULL (errno). */
char *cli_slurp(const char *path);
#endif

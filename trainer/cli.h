/* cli.h - argument handling shared by the trainer's programs: read a spec
 * file and apply `--set key=value` overrides, reporting one-line errors. */
#ifndef JEPA_CLI_H
#define JEPA_CLI_H
#include "spec.h"

/* Loads `path` over defaults, applies every `--set K=V` in argv[first..argc),
 * validates. Collective under MPI (every rank calls it): 0 on every rank, or
 * 2 on every rank once any rank failed (a spec another node cannot read),
 * the lowest failing rank alone printing "PROG: message" ("PROG: rank N:
 * message" when N > 0). Other
 * arguments are left to the caller: *unused gets their indices (count
 * returned in *nunused). spec_text (optional) receives the file's bytes
 * (caller frees). */
int cli_load_spec(const char *prog, jepa_spec *s, const char *path, int argc, char **argv,
                  int first, char **spec_text, int *unused, int *nunused);

/* The assignment argv[i] starts (`--set K=V`: argv[i + 1]; `--set=K=V`: after
 * the '='), or NULL when argv[i] is neither (or a `--set` with nothing after). */
const char *cli_set_value(int argc, char **argv, int i);

/* Out of memory in the shard library (the data reader's buffers) exits
 * TRAIN_EXIT_NOMEM with one line naming the keys to lower, like jepa_malloc,
 * instead of the library's abort(). Every program of the trainer calls it
 * first thing in main. */
void cli_catch_oom(void);

/* Whether to draw the one-line progress display on stderr: JEPA_PROGRESS=1
 * or 0 decides; unset, stderr a terminal. Under mpirun a rank's stderr is
 * a pipe even when mpirun's is a terminal (Open MPI forwards the "\r"
 * updates as they come), so scripts/quickstart.sh, scripts/world.sh and
 * jepa-launch set JEPA_PROGRESS=1 when theirs is one. */
int cli_progress(void);

#endif

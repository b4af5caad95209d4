/* slurm.c - the sbatch script for a run or a sweep's job array, and its
 * submission. The header comes from the spec's slurm.* and parallel.* keys;
 * the body starts the ranks with `srun --mpi=PLUGIN` and carries the same
 * restart loop as a local run (resume=auto after a failure, logged to the
 * run directory). Every value in the body is single-quoted for bash; values
 * on #SBATCH lines are double-quoted with \ and " escaped (sbatch's own
 * quoting) and must not hold control characters, so nothing a spec says can
 * end a line or run as a command. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"

extern char **environ;

static int has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* #SBATCH --opt="value" */
static int sbatch_opt(FILE *f, const char *opt, const char *v, char *err, size_t errlen) {
    if (has_control(v)) {
        snprintf(err, errlen, "slurm: the value of --%s contains a newline or control character", opt);
        return -1;
    }
    fprintf(f, "#SBATCH --%s=\"", opt);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') fputc('\\', f);
        fputc(*v, f);
    }
    fputs("\"\n", f);
    return 0;
}

/* Phase 1: the #SBATCH lines (the spec's slurm.* keys, then slurm.extra's
 * own lines, each checked to be one option). */
static int sbatch_header(FILE *f, const jepa_spec *s, int n, int parallel, int nodes, int per_node, int cpus,
                         char *err, size_t errlen) {
    const int ranks = s->parallel.ranks;
    fprintf(f, "#!/bin/bash\n# written by jepa-launch: %s; every value below is quoted\n",
            n > 1 ? "a job array, one task per sweep point" : "one run");
    if (sbatch_opt(f, "job-name", s->slurm.job_name, err, errlen)) return -1;
    fprintf(f, "#SBATCH --nodes=%d\n#SBATCH --ntasks=%d\n#SBATCH --ntasks-per-node=%d\n#SBATCH --cpus-per-task=%d\n",
            nodes, ranks, per_node, cpus);
    if (*s->slurm.partition && sbatch_opt(f, "partition", s->slurm.partition, err, errlen)) return -1;
    if (*s->slurm.account && sbatch_opt(f, "account", s->slurm.account, err, errlen)) return -1;
    if (*s->slurm.time && sbatch_opt(f, "time", s->slurm.time, err, errlen)) return -1;
    if (*s->slurm.signal && sbatch_opt(f, "signal", s->slurm.signal, err, errlen)) return -1;
    fprintf(f, "#SBATCH --%s\n", s->slurm.requeue ? "requeue" : "no-requeue");
    /* a requeued job writes the same slurm-ID.out: keep the attempt before */
    fputs("#SBATCH --open-mode=append\n", f);
    if (n > 1) {
        fprintf(f, "#SBATCH --array=0-%d", n - 1);
        if (parallel > 0) fprintf(f, "%%%d", parallel);
        fputc('\n', f);
    }
    /* extra: the user's own sbatch syntax, one option per line */
    for (const char *p = s->slurm.extra; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        if (len) {
            if (*p != '-' || memchr(p, '\r', len) || memchr(p, '\t', len)) {
                snprintf(err, errlen, "slurm.extra: a line is not an sbatch option (must start with '-')");
                return -1;
            }
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
                    snprintf(err, errlen, "slurm.extra: a line holds a control character");
                    return -1;
                }
            fprintf(f, "#SBATCH %.*s\n", (int)len, p);
        }
        p += len + (e ? 1 : 0);
    }

    return 0;
}

/* Phase 2: the script's variables (trainer, MPI plug-in, sizes, the run
 * directories, one per array task) and the environment the ranks need. */
static void script_vars(FILE *f, const jepa_spec *s, const char *trainer, const char *const *run_dirs, int n,
                        int ranks, int cpus) {
    /* slurm.signal's name ([R:|B:]SIG[@N]): the one the script passes on */
    const char *sig = s->slurm.signal, *colon = strchr(sig, ':');
    char fwd[64];
    if (colon && colon < sig + strcspn(sig, "@")) sig = colon + 1;
    snprintf(fwd, sizeof fwd, "%.*s", (int)strcspn(sig, "@"), sig);
    fputs("set -u\nfwd=", f);
    launch_shell_quote(f, fwd);
    fputs("\ntrainer=", f);
    launch_shell_quote(f, trainer);
    fputs("\nmpi=", f);
    launch_shell_quote(f, s->slurm.mpi);
    fprintf(f, "\nranks=%d\ncpus=%d\nmax_restarts=%d\ndirs=(", ranks, cpus, s->max_restarts);
    for (int i = 0; i < n; i++) { /* "$run_dir/..." must reach srun's program as a path */
        char d[LAUNCH_PATH_MAX + 3];
        fputs("\n  ", f);
        launch_shell_quote(f, launch_path_arg(run_dirs[i], d, sizeof d));
    }
    fputs("\n)\nrun_dir=${dirs[${SLURM_ARRAY_TASK_ID:-0}]}\n", f);
    if (strcmp(s->parallel.transport, "auto") != 0)
        fprintf(f, "export OMPI_MCA_btl=%s\n", strcmp(s->parallel.transport, "tcp") == 0 ? "self,tcp" : "self,vader");
    if (s->slurm.requeue) /* the trainer requeues the job after its signal checkpoint */
        fputs("export JEPA_REQUEUE=1\n", f);
    if (geteuid() == 0) /* submitted as root: the ranks run as root too */
        fputs("export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n", f);
}

/* Phase 3: resume detection (a requeue, a restart, a sweep point run
 * again; the allocation's task count), then the attempts: state, srun,
 * the exit status's meaning, restarts. */
static void script_attempts(FILE *f) {
    fputs("note() { printf '%s %s\\n' \"$(date +%Y-%m-%dT%H:%M:%S)\" \"$1\" >>\"$run_dir/launch.log\"; }\n"
          "resume=()\n"
          "# requeued (slurm.requeue), restarted below, or a sweep's unfinished point run\n"
          "# again (its checkpoints are this spec's: jepa-launch checked): continue from them\n"
          "if [ \"${SLURM_RESTART_COUNT:-0}\" -gt 0 ] || [ -e \"$run_dir/latest\" ]; then\n"
          "  resume=(--set resume=auto)\n"
          "  # a requeue may come back with another task count (scontrol update NumTasks);\n"
          "  # SLURM_NTASKS keeps the submitted one, SLURM_TASKS_PER_NODE (\"2(x3),1\") is the\n"
          "  # allocation's. The trainer resumes on any count that divides the global batch.\n"
          "  alloc=0\n"
          "  IFS=, read -ra per <<<\"${SLURM_TASKS_PER_NODE:-}\"\n"
          "  for p in \"${per[@]}\"; do\n"
          "    if [[ $p =~ ^([0-9]+)\\(x([0-9]+)\\)$ ]]; then alloc=$((alloc + BASH_REMATCH[1] * BASH_REMATCH[2]))\n"
          "    elif [[ $p =~ ^[0-9]+$ ]]; then alloc=$((alloc + p)); fi\n"
          "  done\n"
          "  if [ \"$alloc\" -gt 0 ] && [ \"$alloc\" -ne \"$ranks\" ]; then\n"
          "    note \"allocation has $alloc tasks (spec: $ranks): resuming on $alloc ranks\"\n"
          "    ranks=$alloc\n"
          "  fi\n"
          "fi\n"
          "# slurm.signal's signal reaches this shell alone with B: (or scancel --batch,\n"
          "# --full): passed on to the job's steps, where the trainer checkpoints and\n"
          "# stops. srun runs in the background: bash runs a trap only between commands\n"
          "# the job as Slurm names it (an array's task: 16_1; SLURM_JOB_ID is the task's\n"
          "# own id) and its output file, as launch.log names them\n"
          "job=${SLURM_JOB_ID:-?}\n"
          "[ -z \"${SLURM_ARRAY_JOB_ID:-}\" ] || job=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID:-?}\n"
          "# (this shell's stdout: sbatch --output as Slurm expanded it, '%' and all)\n"
          "out=$(readlink \"/proc/$$/fd/1\" 2>/dev/null)\n"
          "[ \"${out#/}\" != \"$out\" ] || out=''\n"
          "trapped=0\n"
          "[ -z \"$fwd\" ] || trap 'trapped=1; scancel --signal=\"$fwd\" \"$SLURM_JOB_ID\"' \"$fwd\"\n"
          "attempt=0\n"
          "while :; do\n"
          "  prev=$(cat \"$run_dir/state\" 2>/dev/null)\n"
          "  mine=\"running job=${SLURM_JOB_ID:-?} attempt=$attempt\"\n"
          "  printf '%s\\n' \"$mine\" >\"$run_dir/state\"\n"
          "  note \"attempt $attempt: srun in job $job${out:+ (output: $out)}${resume[*]:+ with resume=auto}\"\n"
          "  # stderr also to srun.err (the pipe ends with tee: its last line is there); tee\n"
          "  # ignores SIGTERM (scancel's, sent to every process of the job) and outlives\n"
          "  # srun: the trainer's last lines (its checkpoint on that signal) reach both\n"
          "  { [ -z \"$fwd\" ] || trap '' \"$fwd\"\n"
          "    srun --mpi=\"$mpi\" -n \"$ranks\" --cpus-per-task=\"$cpus\" \"$trainer\" "
          "\"$run_dir/spec.resolved.yaml\" \\\n"
          "      --exact-spec \"$run_dir/spec.yaml\" \"${resume[@]}\" 2>&1 >&3 3>&- |\n"
          "      (trap '' TERM; exec tee \"$run_dir/srun.err\" >&2 3>&-)\n"
          "    exit \"${PIPESTATUS[0]}\"; } 3>&1 &\n"
          "  step=$!\n"
          "  wait \"$step\"; rc=$?\n"
          "  # a trap ends wait early (128 + its number): wait again for srun's status\n"
          "  while [ \"$trapped\" = 1 ]; do trapped=0; wait \"$step\"; r=$?; [ \"$r\" -eq 127 ] && break; rc=$r; done\n"
          "  # 4 with the run lock's message: another job holds run_dir (a local run):\n"
          "  # its state is not ours; put back what it said, unless it wrote since\n"
          "  if [ \"$rc\" -eq 4 ] && grep -q 'is in use by' \"$run_dir/srun.err\"; then\n"
          "    if [ \"$(cat \"$run_dir/state\" 2>/dev/null)\" = \"$mine\" ]; then\n"
          "      if [ -n \"$prev\" ]; then printf '%s\\n' \"$prev\" >\"$run_dir/state\"; else rm -f \"$run_dir/state\"; fi\n"
          "    fi\n"
          "    note \"attempt $attempt: refused: another job holds $run_dir/lock (its state kept)\"\n"
          "    rm -f \"$run_dir/srun.err\"\n"
          "    exit 4\n"
          "  fi\n"
          "  rm -f \"$run_dir/srun.err\"\n"
          "  if [ \"$rc\" -eq 0 ]; then echo done >\"$run_dir/state\"; note \"attempt $attempt: finished\"; exit 0; fi\n"
          "  # 75: checkpointed on a signal (the time limit is near; requeued if slurm.requeue)\n"
          "  if [ \"$rc\" -eq 75 ]; then\n"
          "    echo 'stopped status=75' >\"$run_dir/state\"\n"
          "    note \"attempt $attempt: stopped with status 75 (checkpointed on a signal)\"\n"
          "    exit 75\n"
          "  fi\n"
          "  # a restart would repeat these: failed, in a local run's words (launch/run.c)\n"
          "  case \"$rc\" in\n"
          "    2) why='command line or spec rejected' said='jepa-train rejected its command line or spec' ;;\n"
          "    3) why='non-finite loss' said='non-finite loss or gradient' ;;\n"
          "    4) why='inputs refused at setup' said='jepa-train refused its inputs' ;;\n"
          "    5) why='out of memory' said='jepa-train ran out of memory' ;;\n"
          "    *) why='' ;;\n"
          "  esac\n"
          "  if [ -n \"$why\" ]; then\n"
          "    printf 'failed status=%d (%s; not restarted)\\n' \"$rc\" \"$why\" >\"$run_dir/state\"\n"
          "    note \"attempt $attempt: $said (status $rc); a restart would repeat it\"\n"
          "    exit \"$rc\"\n"
          "  fi\n"
          "  if [ \"$attempt\" -ge \"$max_restarts\" ]; then\n"
          "    printf 'failed status=%d restarts=%d\\n' \"$rc\" \"$attempt\" >\"$run_dir/state\"\n"
          "    note \"attempt $attempt: exited with status $rc; no restarts left (max_restarts $max_restarts)\"\n"
          "    exit \"$rc\"\n"
          "  fi\n"
          "  note \"attempt $attempt: exited with status $rc; restart $((attempt + 1))/$max_restarts with resume=auto\"\n"
          "  attempt=$((attempt + 1))\n"
          "  resume=(--set resume=auto)\n"
          "done\n",
          f);
}

int launch_sbatch_script(FILE *f, const jepa_spec *s, const char *trainer, const char *const *run_dirs, int n,
                         int parallel, char *err, size_t errlen) {
    const int ranks = s->parallel.ranks;
    const int nodes = s->slurm.nodes ? s->slurm.nodes : s->parallel.nodes;
    const int per_node = s->slurm.tasks_per_node ? s->slurm.tasks_per_node : (ranks + nodes - 1) / nodes;
    const int cpus = s->slurm.cpus_per_task ? s->slurm.cpus_per_task : s->parallel.threads_per_rank;
    if (n < 1) {
        snprintf(err, errlen, "slurm: no run directory");
        return -1;
    }
    if (sbatch_header(f, s, n, parallel, nodes, per_node, cpus, err, errlen)) return -1;
    script_vars(f, s, trainer, run_dirs, n, ranks, cpus);
    script_attempts(f);
    return ferror(f) ? -1 : 0;
}

/* sbatch's stderr, captured in f (closed here): copied to ours when pass
 * (its warnings), and its last non-blank line into last either way. */
static void stderr_pass(FILE *f, int pass, char *last, size_t n) {
    char line[512];
    *last = 0;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        if (pass) fputs(line, stderr);
        line[strcspn(line, "\r\n")] = 0;
        if (line[strspn(line, " \t")]) snprintf(last, n, "%s", line);
    }
    fclose(f);
}

/* What sbatch's exit (wait status ws) and its stdout (buf, cut to the job
 * id in place) say: 0, or -2 + err (one line) when it failed or printed no
 * job id. errf (may be NULL): its stderr, closed here. */
static int sbatch_verdict(const char *sbatch, int ws, FILE *errf, char *buf, char *err, size_t errlen) {
    char last[512];
    int failed = !WIFEXITED(ws) || WEXITSTATUS(ws) != 0;
    if (errf) stderr_pass(errf, !failed, last, sizeof last);
    /* --parsable: "JOBID" or "JOBID;CLUSTER" */
    buf[strcspn(buf, ";\n")] = 0;
    for (char *c = buf; *c; c++) /* shown in our one line */
        if ((unsigned char)*c < 0x20) *c = ' ';
    if (failed && WIFEXITED(ws))
        return launch_errf(err, errlen, "%s failed (status %d)%s%s", sbatch, WEXITSTATUS(ws),
                           !errf ? "" : *last ? ": " : " (it printed nothing)", errf ? last : ""), -2;
    if (failed) return launch_errf(err, errlen, "%s was killed by signal %d", sbatch, WTERMSIG(ws)), -2;
    if (!*buf || strspn(buf, "0123456789") != strlen(buf))
        return launch_errf(err, errlen, "%s exited 0 but printed no job id (%s%.80s%s)", sbatch,
                           *buf ? "it printed '" : "", *buf ? buf : "it printed nothing", *buf ? "'" : ""), -2;
    return 0;
}

int launch_sbatch_submit(const char *script, const char *output, char *id, size_t idlen, char *err, size_t errlen) {
    const char *sbatch = getenv("JEPA_SBATCH");
    if (!sbatch || !*sbatch) sbatch = "sbatch";
    launch_argv a = {0};
    launch_argv_push(&a, sbatch);
    launch_argv_push(&a, "--parsable");
    launch_argv_pushf(&a, "--output=%s", output);
    launch_argv_push_path(&a, "%s", script);
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        launch_argv_free(&a);
        return -1;
    }
    FILE *errf = tmpfile(); /* sbatch's stderr: passed on, or its last line in err */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (errf) posix_spawn_file_actions_adddup2(&fa, fileno(errf), 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, a.v[0], &fa, NULL, a.v, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s (is Slurm installed? set JEPA_SBATCH)", a.v[0], strerror(rc));
        close(fds[0]);
        if (errf) fclose(errf);
        launch_argv_free(&a);
        return -1;
    }
    char buf[256];
    size_t n = 0;
    ssize_t r;
    while (n + 1 < sizeof buf && (r = read(fds[0], buf + n, sizeof buf - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fds[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    rc = sbatch_verdict(a.v[0], ws, errf, buf, err, errlen);
    launch_argv_free(&a);
    if (rc) return rc;
    snprintf(id, idlen, "%s", buf);
    return 0;
}

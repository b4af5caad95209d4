/* open_regular.h - the one way an input file is opened: regular files only,
 * refused before anything waits on them. A FIFO's blocking open waits for a
 * writer that may never come (and no signal ends it), so the open is
 * O_NONBLOCK, and the flag is cleared once fstat says the file is regular.
 * Header-only (static inline): shard/ and launch/'s spec reader each wrap it
 * with their own message wording (shard_open_regular, spec_open_regular),
 * and the builds that compile their sources directly (the ASan suites, the
 * fuzzers) need only this include path. Plain C11 + POSIX. */
#ifndef JEPA_OPEN_REGULAR_H
#define JEPA_OPEN_REGULAR_H

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* path opened read-only (O_CLOEXEC), blocking reads: the fd, and the file's
 * size in *size (may be NULL). -1 with open's errno when it cannot be opened
 * (ENOENT: no such file); -2 when opened but refused, errno EISDIR (a
 * directory), EINVAL (a device, FIFO or socket) or fstat's/fcntl's. */
static inline int open_regular(const char *path, off_t *size) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : !S_ISREG(st.st_mode) ? EINVAL : 0;
    int fl = e ? 0 : fcntl(fd, F_GETFL);
    if (!e && (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)) e = errno;
    if (e) {
        close(fd);
        errno = e;
        return -2;
    }
    if (size) *size = st.st_size;
    return fd;
}

#endif

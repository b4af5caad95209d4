#!/bin/sh
# with_rss.sh TIME PREFIX CMD...: runs CMD under GNU time, writing its peak RSS
# ("maxrss_kb N") to PREFIX.RANK, RANK from Open MPI's environment (0 outside
# mpirun): one file per rank, since ranks sharing one stderr interleave lines.
t=$1 p=$2
shift 2
exec "$t" -f "maxrss_kb %M" -o "$p.${OMPI_COMM_WORLD_RANK:-0}" "$@"

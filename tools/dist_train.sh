#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py options]
# GPUS processes on this node. Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT, as mmseg's
# script, e.g. on each of 2 nodes: NNODES=2 NODE_RANK=<0|1> MASTER_ADDR=<node 0> tools/dist_train.sh
# CONFIG 8. Without CUDA the processes run on CPUs and talk over gloo (genrep.compat).
#
# Preemption (docs/reliability.md): SIGTERM or SIGUSR1 sent to this script reaches every training
# process as SIGTERM; they finish the iteration in progress, save it and exit, and this script
# exits with 75 (torchrun itself reports any failure of a process as 1).
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
PREEMPTED=75  # genrep.engine.PREEMPTED_EXIT_CODE

# The training processes create this file when they stop for a preemption.
export GENREP_PREEMPTION_MARKER=$(mktemp -u "${TMPDIR:-/tmp}/genrep_preempted.XXXXXX")

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}" &
LAUNCHER=$!

# To the training processes themselves (torchrun's children): torchrun, signalled, would give
# them 30 s before killing them, and it does not handle SIGUSR1 at all.
forward() {
    pkill -TERM -P $LAUNCHER
}
trap forward TERM USR1

# `wait` returns early when a trapped signal arrives; wait again until torchrun has exited.
while true; do
    wait $LAUNCHER
    STATUS=$?
    kill -0 $LAUNCHER 2>/dev/null || break
done

if [ $STATUS -ne 0 ] && [ -e "$GENREP_PREEMPTION_MARKER" ]; then
    rm -f "$GENREP_PREEMPTION_MARKER"
    echo "dist_train.sh: the training processes were preempted; exit $PREEMPTED" >&2
    exit $PREEMPTED
fi
rm -f "$GENREP_PREEMPTION_MARKER"
exit $STATUS

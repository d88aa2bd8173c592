#!/usr/bin/env bash
# Usage: tools/dist_sample.sh CONFIG CHECKPOINT GPUS [sample.py options]
# GPUS processes on this node share the chunks of tools/sample.py (chunk i on process i % GPUS);
# the .npz is the one a single process writes. Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT,
# as tools/dist_train.sh. Without CUDA the processes run on CPUs and talk over gloo (genrep.compat).
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$(dirname "$0")/sample.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"

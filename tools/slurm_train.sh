#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] [MAX_REQUEUES=20] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# One task a GPU, as mmseg's script.
#
# Preemption (docs/reliability.md): slurm sends SIGTERM before it preempts a job, and this script
# asks srun for SIGUSR1 PREEMPT_NOTICE seconds (default 120) before the time limit. On either,
# tools/train.py finishes the iteration in progress, saves it and exits with 75. Then:
# - in a batch job (sbatch, with --requeue allowed by the cluster): `scontrol requeue` puts the job
#   back in the queue; when it starts again (SLURM_RESTART_COUNT > 0) it trains with --resume;
# - run directly (srun allocates): srun is started again with --resume, at most MAX_REQUEUES times.
# Any other exit status is this script's. A node failure that slurm requeues by itself also
# restarts with --resume.
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
PREEMPT_NOTICE=${PREEMPT_NOTICE:-120}
MAX_REQUEUES=${MAX_REQUEUES:-20}
PREEMPTED=75  # genrep.engine.PREEMPTED_EXIT_CODE
PY_ARGS=("${@:4}")

train() {
    PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
    srun --partition=${PARTITION} \
        --job-name=${JOB_NAME} \
        --gres=gpu:${GPUS_PER_NODE} \
        --ntasks=${GPUS} \
        --ntasks-per-node=${GPUS_PER_NODE} \
        --cpus-per-task=${CPUS_PER_TASK} \
        --kill-on-bad-exit=1 \
        --signal=USR1@${PREEMPT_NOTICE} \
        ${SRUN_ARGS} \
        $PYTHON -u "$(dirname "$0")/train.py" ${CONFIG} --launcher="slurm" "$@"
}

RESUME=()
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
    RESUME=(--resume)  # a requeued batch job continues where it stopped
fi
train "${PY_ARGS[@]}" "${RESUME[@]}"
STATUS=$?

if [ $STATUS -eq $PREEMPTED ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    echo "slurm_train.sh: preempted (exit $PREEMPTED); requeueing job $SLURM_JOB_ID" >&2
    scontrol requeue "$SLURM_JOB_ID"
    exit $STATUS
fi
ATTEMPT=0
while [ $STATUS -eq $PREEMPTED ] && [ $ATTEMPT -lt $MAX_REQUEUES ]; do
    ATTEMPT=$((ATTEMPT + 1))
    echo "slurm_train.sh: preempted (exit $PREEMPTED); resuming (attempt $ATTEMPT of" \
         "$MAX_REQUEUES)" >&2
    train "${PY_ARGS[@]}" --resume
    STATUS=$?
done
exit $STATUS

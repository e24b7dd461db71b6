#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU with gloo) training: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py options]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
PORT=${PORT:-29500}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
# Stay in the caller's directory: relative config, --work-dir and data paths mean what they do for train.py.
TOOLS=$(cd "$(dirname "$0")" && pwd)
exec python -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@"

#!/bin/bash
# Run bench_fit.py and bench_sample.py three times each for two gaussdiff binaries (e.g. built before and
# after a change), alternating, with the time and load average before every script.
#   bench/before_after.sh BEFORE_BINARY AFTER_BINARY [--threads N]
set -euo pipefail
before=$1
after=$2
shift 2
cd "$(dirname "$0")/.."
for i in 1 2 3; do
    for v in before after; do
        bin=$before
        [ "$v" = after ] && bin=$after
        for script in bench_fit bench_sample; do
            echo "### run $i $v $script $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
            GAUSSDIFF=$bin python3 "bench/$script.py" "$@"
        done
    done
done

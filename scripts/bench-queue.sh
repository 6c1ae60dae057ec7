#!/usr/bin/env bash
# Queue throughput: jobs per minute with 1 and 2 `hark worker --jobs 1` processes against a
# private redis-server, beside `hark transcribe -j 1` of the same files in the same run, and the
# queue's overhead per job (a worker's wall time beyond its own transcription time).
# Usage: scripts/bench-queue.sh [REPEATS]   (dev-real's 11 recordings, REPEATS times; default 4)
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-4}
cargo build --release -q
hark=target/release/hark
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
redis_pid=$!
workers=()
trap 'kill "${workers[@]}" "$redis_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
url=redis://127.0.0.1:$port
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
files=()
for _ in $(seq "$repeats"); do
    while IFS=$'\t' read -r file _ || [ -n "$file" ]; do files+=("audio-fixtures/dev-real/$file"); done < <(tail -n +2 audio-fixtures/dev-real/manifest.tsv)
done
n=${#files[@]}
now() { date +%s.%N; }
rate() { python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[2]); print(f'{n / s * 60:.1f} jobs/min ({s:.1f} s for {n} jobs)')" "$@"; }

"$hark" transcribe -j 1 "${files[0]}" >/dev/null # the model is installed before anything is timed
t0=$(now); "$hark" transcribe -j 1 "${files[@]}" >/dev/null; t1=$(now)
transcribe_s=$(python3 -c "print($t1 - $t0)")
echo "hark transcribe -j 1:   $(rate "$n" "$transcribe_s")"

for count in 1 2; do
    queue=bench$count
    for i in $(seq "$count"); do
        "$hark" worker --redis "$url" --queue "$queue" --jobs 1 --name "bench-$count-$i" 2>"$dir/worker-$count-$i.log" &
        workers+=($!)
    done
    # Timed from submission to the last result, with the workers' models already loaded.
    until [ "$(grep -l 'SIGTERM finishes' "$dir"/worker-"$count"-*.log 2>/dev/null | wc -l)" -eq "$count" ]; do sleep 0.2; done
    t0=$(now); "$hark" submit --redis "$url" --queue "$queue" --wait "${files[@]}" >/dev/null; t1=$(now)
    queue_s=$(python3 -c "print($t1 - $t0)")
    echo "$count worker(s) --jobs 1: $(rate "$n" "$queue_s")"
    if [ "$count" = 1 ]; then
        busy=$("$hark" queue status --redis "$url" --queue "$queue" --json | python3 -c 'import json, sys; print(sum(w["busy_s"] for w in json.load(sys.stdin)["workers"]))')
        python3 -c "n, q, b, t = $n, $queue_s, $busy, $transcribe_s; print(f'overhead per job: {(q - b) / n * 1000:.0f} ms beyond the worker\'s transcription time; {(q - t) / n * 1000:+.0f} ms against hark transcribe -j 1 (which includes its model load)')"
    fi
    kill -TERM "${workers[@]}"; wait "${workers[@]}" 2>/dev/null || true; workers=()
done

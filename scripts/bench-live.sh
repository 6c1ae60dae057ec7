#!/usr/bin/env bash
# Live-capture latency: a private PulseAudio server with a null sink `virt` whose monitor is the
# default source; `hark bench live` captures it through cpal (ALSA `pulse` PCM) while paplay
# plays each recording into the sink. Usage: scripts/bench-live.sh [MANIFEST]
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=${1:-../shared/speech/dev-real/manifest.tsv}
export XDG_RUNTIME_DIR=$(mktemp -d)
trap 'pulseaudio --kill || true; rm -rf "$XDG_RUNTIME_DIR"' EXIT
pulseaudio --daemonize=yes --exit-idle-time=-1 -n --load="module-null-sink sink_name=virt" --load=module-native-protocol-unix 2>/dev/null
pactl set-default-source virt.monitor
cargo build --release -q
RUST_LOG=${RUST_LOG:-hark=warn} target/release/hark bench live --device pulse --sink virt --manifest "$manifest" 2> >(grep -v -e "^ALSA" -e "[Jj]ack" -e "^Cannot" >&2)

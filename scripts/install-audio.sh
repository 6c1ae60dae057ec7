#!/usr/bin/env bash
# The Debian packages hark needs beyond Rust: ALSA's development files to build cpal (the
# microphone), and for the live-capture tests a PulseAudio server whose null sink's monitor
# becomes a virtual microphone (read through ALSA's pulse plugin). Does nothing when present.
set -euo pipefail
if pkg-config --exists alsa 2>/dev/null && command -v pulseaudio >/dev/null && command -v paplay >/dev/null \
    && ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1; then
    exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libasound2-dev pkg-config pulseaudio pulseaudio-utils libasound2-plugins alsa-utils

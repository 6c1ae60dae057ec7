#!/usr/bin/env bash
# What live capture needs on Debian: ALSA headers to build cpal, and for the tests a PulseAudio
# server whose null sink's monitor becomes a virtual microphone (read through ALSA's pulse plugin).
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libasound2-dev pkg-config pulseaudio pulseaudio-utils libasound2-plugins alsa-utils

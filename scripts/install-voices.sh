#!/bin/sh
# The speech synthesisers and English voices `hark data synth` renders with, and the fortune
# databases it reads sentences from (all Debian main packages); further Debian packages named
# as arguments are installed with them (models/train/make-separator-2spk.sh adds sox and
# vorbis-tools).
set -e
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
    fortunes-min fortunes "$@"

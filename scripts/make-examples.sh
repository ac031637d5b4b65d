#!/usr/bin/env bash
# Regenerates examples/slideshow, the bundled default folder. Needs ffmpeg with libfreetype
# (Debian: apt-get install ffmpeg fonts-dejavu-core). The images are test patterns with a
# caption, each a different size so that tests can tell them apart in a browser.
set -euo pipefail
cd "$(dirname "$0")/../examples/slideshow"
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf

image() { # name size source caption
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "$3=size=$2:rate=1" -frames:v 1 \
    -vf "drawtext=fontfile=$font:text='$4':fontsize=24:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8:x=(w-text_w)/2:y=h-th-20" \
    "$1"
}

image 02-fish-cam.jpg 320x240 testsrc2 'serverpush 2/10 jpeg'
image 04-test-card.gif 360x240 smptebars 'serverpush 4/10 gif'
image 05-color-wheel.png 400x300 rgbtestsrc 'serverpush 5/10 png'
image 07-pattern.jpeg 480x320 testsrc 'serverpush 7/10 jpeg'
image 08-mandelbrot.gif 240x180 mandelbrot 'serverpush 8/10 gif'
image 09-bars.png 440x260 smptehdbars 'serverpush 9/10 png'

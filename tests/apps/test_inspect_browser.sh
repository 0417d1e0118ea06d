#!/usr/bin/env bash
# `pneumo inspect` end to end: the page of the notebook's network at 256x256 on a synthetic X-ray
# (under 10 MB, one section per node, no input file changed); `pneumo train --inspect-every`
# records inspect.csv and `pneumo inspect --run` draws it; then a real browser (Debian's
# chromium, headless) renders both pages: the screenshots must not be blank and the browser must
# report no console message. Without chromium (or python3 for the PNG check) the command-line
# checks still run and the test then exits 77, which CTest shows as skipped, not passed.
# Usage: test_inspect_browser.sh PNEUMO_BINARY WORK_DIR
set -u
pneumo=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"

data=$work/data
"$pneumo" synth --out "$data" --train-images 8 --test-images 1 --image-size 256 --seed 4 > "$work/synth.log" 2>&1
labels=$data/stage_2_train_labels.csv
id=$(awk -F, 'NR > 1 && $6 == 1 { print $1; exit }' "$labels")
[ -n "$id" ] || id=$(awk -F, 'NR == 2 { print $1 }' "$labels")
before=$(md5sum "$labels" "$data/stage_2_train_images/$id.dcm")

page=$work/page/inspect.html
"$pneumo" inspect --data "$data" --patient-id "$id" --preset notebook --out "$page" > "$work/inspect.log" 2>&1
check "inspect writes the page of the notebook network" "[ \$? -eq 0 ] && [ -s $page ]"
size=$(stat -c %s "$page" 2>/dev/null || echo 0)
echo "page size: $size bytes"
check "the page is under 10 MB" "[ $size -gt 100000 ] && [ $size -lt 10000000 ]"
check "the page has one section per node (78 for the notebook network)" "[ \$(grep -o '<section class=\"node\"' $page | wc -l) -eq 78 ]"
check "inspect changed none of its input files" "[ \"\$(md5sum $labels $data/stage_2_train_images/$id.dcm)\" = \"$before\" ]"

small="--data $data --size 64 --channels 4 --blocks 1 --depth 2 --batch 2 --epochs 1 --validation 2 --workers 1 --device cpu"
"$pneumo" train $small --run-dir "$work/run" --inspect-every 2 > "$work/train.log" 2>&1
csv=$work/run/inspect.csv
# 6 training images, batch 2: steps 1..3, recorded at 1 and 2; 1 + 2 * (4 + 7) + 5 = 28 nodes.
check "train --inspect-every 2 records steps 1 and 2, one row per node" "[ -f $csv ] && [ \$(tail -n +2 $csv | wc -l) -eq 56 ] && [ \"\$(cut -d, -f1 $csv | sort -u | tr '\n' ' ')\" = '1 2 step ' ]"
"$pneumo" inspect --run "$work/run" > "$work/run-page.log" 2>&1
check "inspect --run draws the recorded statistics" "[ \$? -eq 0 ] && grep -q '<polyline' $work/run/inspect.html"

# PNEUMO_CHROMIUM overrides the browser; set it empty to see the skipped path.
browser=${PNEUMO_CHROMIUM-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$browser" ] || ! command -v python3 > /dev/null; then
  echo "passed $passed, failed $failed"
  [ $failed -eq 0 ] || exit 1
  echo "SKIPPED test_inspect_browser: no chromium (or python3) on this machine; .ci/install-deps.sh installs Debian's chromium"
  exit 77
fi

# Share of pixels unlike the most common colour, and the number of colours, of an RGB(A) PNG.
png_stats() {
  python3 - "$1" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
at, idat = 8, b''
while at < len(data):
    length, kind = struct.unpack('>I4s', data[at:at + 8])
    body = data[at + 8:at + 8 + length]
    if kind == b'IHDR':
        width, height, depth, color = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    at += 12 + length
assert depth == 8 and color in (2, 6), 'expected 8-bit RGB or RGBA'
bpp = 3 if color == 2 else 4
raw, stride = zlib.decompress(idat), width * bpp
previous, counts = bytearray(stride), {}
for y in range(height):
    start = y * (stride + 1)
    kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = previous[i]
        c = previous[i - bpp] if i >= bpp else 0
        if kind == 1: line[i] = (line[i] + a) & 255
        elif kind == 2: line[i] = (line[i] + b) & 255
        elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 4 == 0:
        for x in range(0, width, 4):
            pixel = bytes(line[x * bpp:x * bpp + 3])
            counts[pixel] = counts.get(pixel, 0) + 1
    previous = line
total = sum(counts.values())
print('%.4f %d' % (1 - max(counts.values()) / total, len(counts)))
EOF
}

render() {  # page, screenshot, log
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2400 \
    --screenshot="$2" --enable-logging=stderr --v=0 "file://$1" > "$3" 2>&1
}
for name in step run; do
  if [ $name = step ]; then target=$page; else target=$work/run/inspect.html; fi
  render "$target" "$work/$name.png" "$work/$name-chromium.log"
  check "chromium renders the $name page to a screenshot" "[ -s $work/$name.png ]"
  read -r share colours <<< "$(png_stats "$work/$name.png" 2>/dev/null || echo '0 0')"
  echo "$name screenshot: $share of the pixels differ from the background, $colours colours"
  check "the $name screenshot is not blank" "awk 'BEGIN { exit !($share > 0.05 && $colours > 50) }'"
  check "the browser reports no console message for the $name page" "! grep -q ':CONSOLE' $work/$name-chromium.log"
done
# The check above would catch a page that logs: make sure it does on a page that does.
printf '<html><body><p>x</p><script>console.error("broken")</script></body></html>' > "$work/broken.html"
render "$work/broken.html" "$work/broken.png" "$work/broken-chromium.log"
check "a console error is caught (self-test of the check)" "grep -q ':CONSOLE' $work/broken-chromium.log"

echo "passed $passed, failed $failed"
[ $failed -eq 0 ]

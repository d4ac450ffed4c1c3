#!/usr/bin/env bash
# deploy/demo.sh: the main job (the README's first command): installs what it needs, builds,
# and shows the node's pieces working on the model zoo.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
if [[ ! -f build/build.ninja ]]; then
    meson setup build -Dbuildtype=release >/dev/null
fi
ninja -C build >/dev/null
B=build
echo "== execution backends"
$B/tools/dds-model backends
echo
echo "== the model zoo (zoo/*.json): vertices, edges, work"
for m in zoo/vgg11.json zoo/resnet34.json zoo/resnet50.json zoo/vit_b_16.json; do
    $B/tools/dds-model info "$m" | sed -n 3p | sed "s|^|$(basename "$m" .json): |"
done
echo
echo "== ResNet50, batch 1, on the CPU engine (seeded weights)"
$B/tools/dds-model run zoo/resnet50.json --repeat 3 --warmup 1 --threads "$(nproc)"

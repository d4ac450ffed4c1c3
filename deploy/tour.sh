#!/usr/bin/env bash
# deploy/tour.sh: a tour of the pieces without a network: the backends, the model zoo, a split per
# model, ResNet50 on the CPU engine, and the DDS game simulated at 5..100 devices (out/sim/).
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
echo
echo "== where each model splits: WiFi uplink (18.88 Mbit/s), a 12 GFLOP/s device, 200 GFLOP/s of server"
for m in vgg11 resnet50 vit_b_16; do
    $B/partitioner/dds-partition --model zoo/$m.json --uplink-mbps 18.88 --device-gflops 12 \
        --r-gflops 200 --json | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
print("%s: %d layers local, uploads %s, total %.1f ms (edge %.1f + transfer %.1f + server %.1f)" % (
    sys.argv[1], len(j["local_layers"]), ",".join(str(t) for t in j["cut_tensors"]) or "nothing",
    j["total"] * 1e3, j["t_edge"] * 1e3, j["t_transfer"] * 1e3, j["t_server"] * 1e3))' "$m"
done
echo
echo "== the DDS game at 5..100 devices (the paper's Fig. 5a, 5b, 6): out/sim/"
mkdir -p out/sim
$B/sim/dds-sim --out out/sim --quiet --json >out/sim/stdout.json
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("equilibrium price %.3f" % j["ne_price"])
for s in j["starts"]:
    print("  %-8s start price %10.2f -> final %.3f, within 1%% after %s iterations" % (
        s["mode"], s["start_price"], s["final_price"], s["iterations_to_converge"]))' out/sim/stdout.json
echo "figures: $(ls out/sim/*.png | tr '\n' ' ')"

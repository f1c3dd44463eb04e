#!/usr/bin/env bash
# Measures vaec against its peers side by side on this machine and prints the tables of
# docs/performance.md (markdown):
#   1. the reference model (samples/mnist.vae, batch 128): ms/step of vaec, JAX, PyTorch and PyTensor
#      (the shared anchors' own scripts, ../shared/anchors), ratios to JAX, compile time, peak memory,
#      and the wall time and peak RSS of a whole `vaec run samples/mnist.vae`;
#   2. scaling: batch 32 / 128 / 512 (hidden 400) and hidden width 400 / 1024 / 2048 (batch 128), vaec
#      against PyTorch and JAX, ms per step, each the median of timed steps (scripts/peers/vae_step.py).
# The peers run when their virtual environment exists (../shared/anchors/setup.sh makes it); without
# it only vaec's columns are filled. Everything is measured in this one run: on a shared machine only
# figures from the same run are comparable.
#
# Usage: scripts/bench_peers.sh [--quick]      env: VENV (default ~/.cache/vaec-anchors),
#        VAEC (a built vaec, default: swift build -c release), ANCHORS (default ../shared/anchors),
#        THREADS (default 2), REPEAT (runs per figure, the median is kept; default 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vaec-anchors}
anchors=${ANCHORS:-$root/../shared/anchors}
threads=${THREADS:-2}
repeat=${REPEAT:-3}
steps=300
[[ "${1:-}" == "--quick" ]] && { repeat=1; steps=100; }
python="$venv/bin/python"
have_peers=0
[[ -x "$python" ]] && "$python" -c "import torch, jax" 2>/dev/null && have_peers=1

if [[ -z "${VAEC:-}" ]]; then
  (cd "$root" && swift build -c release >/dev/null)
  VAEC="$root/.build/release/vaec"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
# Repeats a command printing one number, keeps the median.
repeat_median() { for _ in $(seq "$repeat"); do "$@"; done | median; }

# A copy of samples/mnist.vae with hidden width $1 and absolute data paths.
model() {
  local file="$work/mnist_h$1.vae"
  sed -e "s/linear(\\([xz]\\), 400)/linear(\\1, $1)/" -e "s#\"data/#\"$root/samples/data/#" "$root/samples/mnist.vae" > "$file"
  echo "$file"
}

vaec_ms() {  # model batch -> median ms/step
  "$VAEC" bench "$1" --batch "$2" --threads "$threads" --steps "$steps" | sed -n 's/^\([0-9.]*\) ms\/step.*/\1/p'
}
peer_ms() {  # framework batch hidden -> median ms/step
  BATCH=$2 HIDDEN=$3 THREADS=$threads STEPS=$steps "$python" "$root/scripts/peers/vae_step.py" "$1" 2>/dev/null \
    | sed -n 's/.*median \([0-9.]*\) ms\/step.*/\1/p'
}
anchor() {  # script -> "ms/step peakMiB"
  (cd "$anchors" && /usr/bin/time -f "RSS %M" "$python" "$1" 2>&1) | awk '
    /ms\/step/ { for (i = 1; i <= NF; i++) if ($i == "ms/step") ms = $(i-1) }
    /^RSS/ { rss = $2 / 1024 } END { printf "%s %.0f\n", ms, rss }'
}

echo "# vaec vs peers on $(uname -n), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $threads threads"
echo
mnist="$root/samples/mnist.vae"
bench_line=$("$VAEC" bench "$mnist" --threads "$threads" --steps "$steps")
vaec128=$(repeat_median vaec_ms "$mnist" 128)
compile=$(echo "$bench_line" | sed -n 's/^compile \([0-9.]*\) ms.*/\1/p')
gflops=$(echo "$bench_line" | sed -n 's/.*GFLOP\/step, \([0-9.]*\) GFLOP\/s.*/\1/p')
run_stats=$(for _ in $(seq "$repeat"); do
  /usr/bin/time -f "%e %M" "$VAEC" run "$mnist" --threads "$threads" --out "$work/run" 2>&1 >/dev/null | tail -1
done | sort -g | awk '{w[NR]=$1; r[NR]=$2} END {m=int((NR+1)/2); printf "%s %.1f\n", w[m], r[m]/1024}')

echo "## Reference model (samples/mnist.vae, batch 128)"
echo
echo "| framework | ms/step | × JAX | compile | peak RSS |"
echo "|---|---|---|---|---|"
jax_ms=nan
if (( have_peers )); then
  read -r jax_ms jax_rss < <(anchor jax_vae.py)
  read -r torch_ms torch_rss < <(anchor torch_vae.py)
  read -r pyt_ms pyt_rss < <(anchor pytensor_vae.py)
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "nan" || b == "" || a == "") print "–"; else printf "%.2f", a / b }'; }
echo "| vaec ($threads threads) | $vaec128 | $(ratio "$vaec128" "$jax_ms") | $compile ms | $(echo "$run_stats" | cut -d' ' -f2) MiB (whole run) |"
if (( have_peers )); then
  echo "| JAX jit | $jax_ms | 1.00 | (see anchors) | $jax_rss MiB |"
  echo "| PyTorch eager | $torch_ms | $(ratio "$torch_ms" "$jax_ms") | – | $torch_rss MiB |"
  echo "| PyTensor | $pyt_ms | $(ratio "$pyt_ms" "$jax_ms") | – | $pyt_rss MiB |"
fi
echo
echo "vaec: $(echo "$bench_line" | sed -n 2p)"
echo "vaec: $(echo "$bench_line" | sed -n 4p)"
echo "whole \`vaec run samples/mnist.vae\` (10 epochs with evaluation): $(echo "$run_stats" | cut -d' ' -f1) s wall, peak RSS $(echo "$run_stats" | cut -d' ' -f2) MiB (median of $repeat)"
echo
echo "## Scaling (ms per step, median of $steps timed steps, $threads threads)"
echo
echo "| batch | hidden | vaec | PyTorch | JAX | PyTorch / vaec | JAX / vaec |"
echo "|---|---|---|---|---|---|---|"
for config in "32 400" "128 400" "512 400" "128 1024" "128 2048"; do
  read -r batch hidden <<< "$config"
  file=$(model "$hidden")
  v=$(repeat_median vaec_ms "$file" "$batch")
  t=nan; j=nan
  if (( have_peers )); then
    t=$(repeat_median peer_ms torch "$batch" "$hidden")
    j=$(repeat_median peer_ms jax "$batch" "$hidden")
  fi
  echo "| $batch | $hidden | $v | $t | $j | $(ratio "$t" "$v") | $(ratio "$j" "$v") |"
done

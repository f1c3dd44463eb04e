#!/usr/bin/env bash
# The keras.io convolutional VAE (samples/keras_conv.vae, issue #9) against its peers, PyTorch eager and JAX
# jit (scripts/peers/keras_conv.py: the same model, recipe and init), measured side by side in this one run;
# prints markdown:
#   1. ms per training step at batch 128: each run the median of STEPS timed steps, the median of REPEAT runs
#      kept; the ratio to PyTorch and GFLOP/s (one FLOP count for every row, forward + backward);
#   2. (unless --quick) 10 epochs of the recipe, seed 0: the test −ELBO per image with its BCE and KL, the
#      difference to PyTorch's, ms/step over the whole training and its wall time (one run each).
# Issue #9 asks for vaec's test −ELBO within 2 % of PyTorch's and a step faster than PyTorch's.
# vaec's rows appear when VAEC names a built vaec and `$VAEC bench samples/keras_conv.vae` works; otherwise
# only the peers are measured (conv support in vaec may not exist yet). The peers run when their virtual
# environment exists (../shared/anchors/setup.sh makes it).
#
# Usage: scripts/bench_conv.sh [--quick]      env: VAEC (a built vaec; no default, nothing is built),
#        VENV (default ~/.cache/vaec-anchors), THREADS (default 2), REPEAT (runs per figure; default 3),
#        STEPS (timed steps per run; default 100)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vaec-anchors}
threads=${THREADS:-2}
repeat=${REPEAT:-3}
steps=${STEPS:-100}
quick=0
[[ "${1:-}" == "--quick" ]] && { quick=1; repeat=1; steps=${STEPS:-30}; }
python="$venv/bin/python"
peers="$root/scripts/peers/keras_conv.py"
model="$root/samples/keras_conv.vae"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have_peers=0
[[ -x "$python" ]] && "$python" -c "import torch, jax" 2>/dev/null && have_peers=1
have_vaec=0
vaec_note="VAEC not given"
if [[ -n "${VAEC:-}" ]]; then
  if [[ ! -f "$model" ]]; then
    vaec_note="samples/keras_conv.vae does not exist yet"
  elif "$VAEC" bench "$model" --threads "$threads" --steps 3 --warmup 1 > "$work/probe" 2>&1 \
      && grep -q ' ms/step' "$work/probe"; then
    have_vaec=1
  else
    vaec_note="\`vaec bench samples/keras_conv.vae\` fails: $(grep -m1 . "$work/probe" || echo "no output")"
  fi
fi

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
repeat_median() { for _ in $(seq "$repeat"); do "$@"; done | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "") print "–"; else printf "%.2f", a / b }'; }
gflops() { awk -v f="$1" -v ms="$2" 'BEGIN { if (f == "" || ms == "nan" || ms == "") print "–"; else printf "%.1f", f / ms * 1e3 }'; }

vaec_ms() {
  "$VAEC" bench "$model" --threads "$threads" --steps "$steps" | sed -n 's/^\([0-9.]*\) ms\/step.*/\1/p'
}
peer_ms() {  # backend -> median ms/step of one run
  THREADS=$threads "$python" "$peers" step "$1" --steps "$steps" 2>/dev/null | sed -n 's/.*median \([0-9.]*\) ms\/step.*/\1/p'
}

echo "# keras.io convolutional VAE: vaec vs peers on $(uname -n), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $threads threads"
echo
[[ $have_vaec == 1 ]] || echo "vaec not measured: $vaec_note."
[[ $have_peers == 1 ]] || echo "peers not measured: no torch and jax in $venv (run ../shared/anchors/setup.sh)."
echo

# One FLOP count for every row: the peers' (keras_conv.py), else vaec's own.
gflop=""
if (( have_peers )); then
  gflop=$(THREADS=$threads "$python" "$peers" step torch --steps 1 --warmup 0 2>/dev/null | sed -n 's/.*, \([0-9.]*\) GFLOP\/step.*/\1/p')
elif (( have_vaec )); then
  gflop=$(sed -n 's/.*, \([0-9.]*\) GFLOP\/step.*/\1/p' "$work/probe")
fi

v=nan; t=nan; j=nan
(( have_vaec )) && v=$(repeat_median vaec_ms)
if (( have_peers )); then
  t=$(repeat_median peer_ms torch)
  j=$(repeat_median peer_ms jax)
fi
echo "## Training step (batch 128; median of $steps timed steps, median of $repeat runs; ${gflop:-?} GFLOP/step)"
echo
echo "| framework | ms/step | × PyTorch | GFLOP/s |"
echo "|---|---|---|---|"
(( have_vaec )) && echo "| vaec | $v | $(ratio "$v" "$t") | $(gflops "$gflop" "$v") |"
if (( have_peers )); then
  echo "| PyTorch eager | $t | 1.00 | $(gflops "$gflop" "$t") |"
  echo "| JAX jit | $j | $(ratio "$j" "$t") | $(gflops "$gflop" "$j") |"
fi
(( quick )) && exit 0

# "ms elbo bce kl wall" from a peer's train line.
peer_train() {
  THREADS=$threads "$python" "$peers" train "$1" --seed 0 2>/dev/null | awk '{
    for (i = 1; i <= NF; i++) {
      if ($i == "ms/step") ms = $(i-1)
      if ($i == "-ELBO") elbo = $(i+1)
      if ($i == "(bce") { bce = $(i+1); sub(",", "", bce) }
      if ($i == "kl") { kl = $(i+1); sub(")", "", kl) }
      if ($i ~ /^\([0-9.]+$/) { wall = substr($i, 2) }
    } } END { printf "%s %s %s %s %s\n", ms, elbo, bce, kl, wall }'
}
# "elbo recon kl wall" from `vaec run`: the last epoch's test figures and the "done in X s" line.
vaec_train() {
  "$VAEC" run "$model" --threads "$threads" --out "$work/run" | awk '
    /test -ELBO/ { for (i = 1; i <= NF; i++) if ($i == "-ELBO" && $(i-1) == "test") {
        elbo = $(i+1); rec = $(i+3); sub(",", "", rec); kl = $(i+5); sub(")", "", kl) } }
    /^done in/ { wall = $3 } END { printf "%s %s %s %s\n", elbo, rec, kl, wall }'
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == "nan") print "–"; else printf "%+.2f %%", 100 * (a - b) / b }'; }

echo
echo "## 10 epochs, seed 0 (test −ELBO in nats per image on the 1000 test images, one draw of ε)"
echo
echo "| framework | test −ELBO | BCE | KL | vs PyTorch | ms/step (training) | wall |"
echo "|---|---|---|---|---|---|---|"
te=""
if (( have_peers )); then
  read -r tms te tb tk tw < <(peer_train torch)
  read -r jms je jb jk jw < <(peer_train jax)
fi
if (( have_vaec )); then
  read -r ve vb vk vw < <(vaec_train)
  echo "| vaec | $ve | $vb | $vk | $(pct "$ve" "$te") | – | $vw s |"
fi
if (( have_peers )); then
  echo "| PyTorch eager | $te | $tb | $tk | – | $tms | $tw s |"
  echo "| JAX jit | $je | $jb | $jk | $(pct "$je" "$te") | $jms | $jw s |"
fi
if (( have_vaec && have_peers )); then
  echo
  awk -v v="$ve" -v t="$te" -v vm="$v" -v tm="$t" 'BEGIN {
    d = (v - t) / t; if (d < 0) d = -d
    printf "issue #9: −ELBO within 2 %% of PyTorch: %s (%.2f %%); step faster than PyTorch: %s (%.2f×)\n",
      (d <= 0.02 ? "yes" : "no"), 100 * d, (vm < tm ? "yes" : "no"), tm / vm }'
fi

#!/usr/bin/env bash
# Figure 4 at 500,000 images per point (5,000 steps of batch 100, KL warm-up over the first 20%): a
# PixelVAE and the gated PixelCNN, in pairs of equal depth, one model at a time. The PixelVAE is
# $FIG4_VAE: gated-pixelvae-cond (z in every gate; the default) or gated-pixelvae-rms (the paper's
# upsampling decoder with featureNorm rms-tanh). Resumes where it stopped (the zoo's state is
# runs/zoo-500k); after each model `npm run results` records it in docs/figures/results.json and
# docs/results.md, so a point finished in one sitting survives a checkout without runs/, and is not
# trained again there (the PixelCNN of a depth is shared by both variants).
# Depth 0 is the conv VAE (fig4-conv-vae-l0, shared by both variants); the 0-layer PixelCNN is the
# per-pixel mean of the training images and is not trained.
# FIG4_SEED=2 trains the seed replicates instead (`<id>-seed2`: the same commands with --init-seed 2
# --seed 2), which the results page sets beside the seed-1 runs to show how far a point moves between
# trainings.
#   [FIG4_VAE=gated-pixelvae-rms] [FIG4_SEED=2] bash scripts/fig4-sweep.sh [depth ...]   # default: 0 1 2 4 8 12
set -euo pipefail
cd "$(dirname "$0")/.."
depths=("${@:-0 1 2 4 8 12}")
vae="${FIG4_VAE:-gated-pixelvae-cond}"
case "$vae" in gated-pixelvae-cond|gated-pixelvae-rms) ;; *) echo "fig4-sweep: FIG4_VAE must be gated-pixelvae-cond or gated-pixelvae-rms (got $vae)" >&2; exit 2 ;; esac
case "${FIG4_SEED:-1}" in 1) suffix= ;; 2) suffix=-seed2 ;; *) echo "fig4-sweep: FIG4_SEED must be 1 or 2 (got $FIG4_SEED)" >&2; exit 2 ;; esac
# A run recorded in results.json whose state is gone (a new checkout) is not trained again.
recorded() { node -e "const d = JSON.parse(require('fs').readFileSync('docs/figures/results.json', 'utf8')); process.exit(d.sweep?.[process.argv[1]] ? 0 : 1)" "$1"; }
for l in ${depths[*]}; do
  if [[ "$l" == 0 ]]; then ids=(fig4-conv-vae-l0); else ids=("fig4-$vae-l$l" "fig4-gated-pixelcnn-l$l"); fi
  for id in "${ids[@]/%/$suffix}"; do
    if [[ ! -d "runs/zoo-500k/$id" ]] && recorded "$id"; then
      echo "fig4-sweep: $id is recorded in docs/figures/results.json; not retrained (delete its entry to retrain)" >&2
      continue
    fi
    node scripts/zoo.mjs --images 500000 --warmup 0.2 --state runs/zoo-500k --only "$id"
    node scripts/results.mjs
  done
done

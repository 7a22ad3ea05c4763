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

default-checkpoints: install
	.venv/bin/adamotion train all --config configs/default.json --out checkpoints/default

bench: install
	.venv/bin/adamotion bench

# The README's two commands: `make run` (install what is missing, then the pipeline on synthetic scenes
# with an embedded Ray) and `make test`. Extra CLI arguments: make run ARGS="--profile smoke".
VENV ?= .venv
ARGS ?=
PYTEST_ARGS ?=
export RAY_AUTH_MODE ?= disabled

.PHONY: install run test bench clean image

install:
	bash scripts/install.sh

run: install
	$(VENV)/bin/pix2point run $(ARGS)

test:
	bash scripts/install.sh "[test]"
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: install
	set -e; for script in bench/*.py; do $(VENV)/bin/python $$script; done

# The CPU image (docker/Dockerfile.cpu), then the smoke pipeline inside it; see docs/images.md.
image:
	bash scripts/build_image.sh

clean:
	rm -rf artefacts .pytest_cache

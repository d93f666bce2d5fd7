# The two commands a newcomer needs (see README): `make space` and `make test`.
.PHONY: space test install install-dev

space: install
	.venv/bin/python app.py

test: install-dev
	.venv/bin/python -m pytest

install:
	bash scripts/setup.sh

install-dev:
	bash scripts/setup.sh --dev

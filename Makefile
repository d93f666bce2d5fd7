# The two commands a newcomer needs (see README): `make space` and `make test`.
# `make test` leaves out the end-to-end runs marked `slow` (training scripts, the running Space, the browser);
# `make test-slow` runs those; CI (.ci/run) runs both.
.PHONY: space test test-slow install install-dev

space: install
	.venv/bin/python app.py

test: install-dev
	.venv/bin/python -m pytest -m "not slow"

test-slow: install-dev
	.venv/bin/python -m pytest -m slow

install:
	bash scripts/setup.sh

install-dev:
	bash scripts/setup.sh --dev

# The two commands of the README: `make run` (set up and run the site) and `make test`.
.PHONY: run test setup services lint messages

setup:
	@bash deploy/bootstrap.sh

run: setup
	@bash deploy/run-embedded.sh

test: setup
	@bash deploy/test.sh

services:
	@bash deploy/services.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python manage.py makemigrations --check --dry-run

# After changing user-visible strings: update the Korean catalogue, translate the new entries, compile.
messages: setup
	.venv/bin/python manage.py makemessages -l ko --ignore=.venv --ignore=var --ignore=tests --ignore=benchmarks --no-obsolete
	.venv/bin/python manage.py compilemessages -l ko --ignore=.venv

# ЕЛК identity platform. `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export IDP_VAR_DIR ?= $(CURDIR)/var

.PHONY: install run test test-fast lint proto bench clean browser services-check messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever the pinned dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Compiled message catalogs (*.mo) are build artifacts: rebuilt from the .po files, never
# committed. The pages are in Russian without them; English needs them.
PO := $(wildcard idp/translations/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)
$(MO): %.mo: %.po $(STAMP)
	$(BIN)/pybabel -q compile -i $< -o $@

install: $(STAMP) $(MO)

# Re-extract the pages' messages (Russian msgids) and merge them into every .po; translate
# the new or changed entries (fuzzy ones are not compiled), then `make install`.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -w 100 --add-location=file \
	  --project=elk-identity --copyright-holder="PJSC Rostelecom" \
	  -o idp/translations/messages.pot .
	$(BIN)/pybabel update -i idp/translations/messages.pot -d idp/translations -w 100

browser:
	bash scripts/install-browser.sh

# Generated gRPC code is rebuilt when a .proto changes and never committed. The virtual
# import path makes the generated modules importable as elk_proto.* (e.g.
# elk_proto.linking.v1.linking_pb2), the contract both services import; only the package's
# hand-written __init__.py is kept between builds.
PROTOS := $(shell find protos -name '*.proto')
GEN    := elk_proto/.stamp
$(GEN): $(PROTOS) $(STAMP)
	rm -rf $(filter-out elk_proto/__init__.py,$(wildcard elk_proto/*)) elk_proto/.stamp
	rm -rf linking_service/gen  # where the stubs were generated before elk_proto
	$(BIN)/python -m grpc_tools.protoc -Ielk_proto=protos \
	  --python_out=. --grpc_python_out=. --pyi_out=. \
	  $(patsubst protos/%,elk_proto/%,$(PROTOS))
	touch $(GEN)

proto: $(GEN)

# Both services on the embedded defaults; Ctrl-C stops both.
run: install proto
	$(BIN)/idp db upgrade
	$(BIN)/idp keys ensure
	$(BIN)/idp demo
	$(BIN)/linking-service db upgrade
	$(BIN)/linking-service billing demo
	@echo "IdP at http://127.0.0.1:8000  (discovery: /.well-known/openid-configuration)"
	@echo "linking service (gRPC) at 127.0.0.1:50051"
	@trap 'kill 0' INT TERM EXIT; \
	  $(BIN)/linking-service serve & \
	  (sleep 3; IDP_LINKING_TARGET=127.0.0.1:50051 $(BIN)/idp linking-events) & \
	  IDP_LINKING_TARGET=127.0.0.1:50051 $(BIN)/idp serve --host 127.0.0.1 --port 8000

services-check:
	bash scripts/check-services.sh

# The whole suite, in parallel, against SQLite + the in-process store AND PostgreSQL + Redis.
test: install proto browser services-check
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check idp linking_service elk_common demo_portals tests

bench:
	@echo "benchmarks arrive with the benchmark issue"

clean:
	rm -rf $(VENV) var .pytest_cache $(filter-out elk_proto/__init__.py,$(wildcard elk_proto/*)) elk_proto/.stamp

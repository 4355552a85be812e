# ЕЛК identity platform. `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export IDP_VAR_DIR ?= $(CURDIR)/var
# Where `make run` serves: `make run IDP_PORT=8001 LINKING_LISTEN=127.0.0.1:50052 IDP_VAR_DIR=/tmp/elk`.
IDP_PORT       ?= 8000
LINKING_LISTEN ?= 127.0.0.1:50051
# The demo portals; `idp demo` registers their clients for these two ports.
SHOP_PORT      ?= 8081
TV_PORT        ?= 8082
# The local fakes of the six social providers (social-fakes), one port, a /<name> prefix each.
SOCIAL_FAKES_PORT ?= 8090
SOCIAL_FAKES   := http://127.0.0.1:$(SOCIAL_FAKES_PORT)

.PHONY: install setup run test test-fast lint proto bench bench-compare soak clean browser services-check messages lock

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

# deploy/requirements.lock, what the images install: re-run after changing a pin above.
lock:
	bash scripts/lock-deps.sh

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

# Databases migrated, signing keys and demo data in place (idempotent; the first half of `make run`).
setup run: export IDP_ISSUER = http://127.0.0.1:$(IDP_PORT)
setup run: export LINKING_IDP_ISSUER = http://127.0.0.1:$(IDP_PORT)
setup run: export LINKING_LISTEN := $(LINKING_LISTEN)
setup: install proto
	$(BIN)/idp db upgrade
	$(BIN)/idp keys ensure
	$(BIN)/idp demo --shop-url http://127.0.0.1:$(SHOP_PORT) --tv-url http://127.0.0.1:$(TV_PORT)
	$(BIN)/linking-service db upgrade
	$(BIN)/linking-service billing demo

# In development the IdP's six social buttons go to the local fakes (their test credentials).
# Each line is a default only: a variable set in the environment wins, so pointing a provider
# at the real one is configuration (README, "Social sign-in").
run: export IDP_SOCIAL_VKID_ENABLED ?= true
run: export IDP_SOCIAL_VKID_CLIENT_ID ?= elk-vkid
run: export IDP_SOCIAL_VKID_BASE_URL ?= $(SOCIAL_FAKES)/vkid
run: export IDP_SOCIAL_MAIL_ENABLED ?= true
run: export IDP_SOCIAL_MAIL_CLIENT_ID ?= elk-mail
run: export IDP_SOCIAL_MAIL_CLIENT_SECRET ?= mail-test-secret
run: export IDP_SOCIAL_MAIL_BASE_URL ?= $(SOCIAL_FAKES)/mail
run: export IDP_SOCIAL_OK_ENABLED ?= true
run: export IDP_SOCIAL_OK_CLIENT_ID ?= elk-ok
run: export IDP_SOCIAL_OK_CLIENT_SECRET ?= ok-test-secret
run: export IDP_SOCIAL_OK_APPLICATION_KEY ?= ok-test-public-key
run: export IDP_SOCIAL_OK_CONNECT_URL ?= $(SOCIAL_FAKES)/ok
run: export IDP_SOCIAL_OK_API_URL ?= $(SOCIAL_FAKES)/ok
run: export IDP_SOCIAL_YANDEX_ENABLED ?= true
run: export IDP_SOCIAL_YANDEX_CLIENT_ID ?= elk-yandex
run: export IDP_SOCIAL_YANDEX_CLIENT_SECRET ?= yandex-test-secret
run: export IDP_SOCIAL_YANDEX_OAUTH_URL ?= $(SOCIAL_FAKES)/yandex
run: export IDP_SOCIAL_YANDEX_LOGIN_URL ?= $(SOCIAL_FAKES)/yandex
run: export IDP_SOCIAL_GOOGLE_ENABLED ?= true
run: export IDP_SOCIAL_GOOGLE_CLIENT_ID ?= elk-google
run: export IDP_SOCIAL_GOOGLE_CLIENT_SECRET ?= google-test-secret
run: export IDP_SOCIAL_GOOGLE_DISCOVERY_URL ?= $(SOCIAL_FAKES)/google/.well-known/openid-configuration
run: export IDP_SOCIAL_FACEBOOK_ENABLED ?= true
run: export IDP_SOCIAL_FACEBOOK_CLIENT_ID ?= elk-facebook
run: export IDP_SOCIAL_FACEBOOK_CLIENT_SECRET ?= facebook-test-secret
run: export IDP_SOCIAL_FACEBOOK_WWW_URL ?= $(SOCIAL_FAKES)/facebook
run: export IDP_SOCIAL_FACEBOOK_GRAPH_URL ?= $(SOCIAL_FAKES)/facebook

# Every long-running process under scripts/supervise.py: Ctrl-C or SIGTERM (to make, or to its
# process group) stops each process once; one dying stops the rest. One quoted spec per
# process: NAME [--wait-for HOST:PORT] [VAR=value]... COMMAND. The linking service's drain
# (5 s) fits in the supervisor's 10 s before SIGKILL.
run: setup
	@echo "IdP at $(IDP_ISSUER)  (discovery: /.well-known/openid-configuration)"
	@echo "linking service (gRPC) at $(LINKING_LISTEN)"
	@echo "demo portals: «Интернет-магазин» http://127.0.0.1:$(SHOP_PORT)  «Домашнее ТВ» http://127.0.0.1:$(TV_PORT)"
	@echo "social sign-in fakes (VK ID, Mail, OK, Яндекс ID, Google, Facebook): $(SOCIAL_FAKES)/<name>"
	@exec $(BIN)/python scripts/supervise.py --deadline 10 \
	  'linking-service LINKING_SHUTDOWN_GRACE=5 $(BIN)/linking-service serve' \
	  'linking-events --wait-for $(LINKING_LISTEN) IDP_LINKING_TARGET=$(LINKING_LISTEN) $(BIN)/idp linking-events' \
	  'worker IDP_LINKING_TARGET=$(LINKING_LISTEN) $(BIN)/idp worker' \
	  'idp IDP_LINKING_TARGET=$(LINKING_LISTEN) $(BIN)/idp serve --host 127.0.0.1 --port $(IDP_PORT)' \
	  'shop PORTAL_SHOP_PORT=$(SHOP_PORT) PORTAL_ISSUER=$(IDP_ISSUER) PORTAL_LINKING_TARGET=$(LINKING_LISTEN) $(BIN)/demo-portal shop' \
	  'tv PORTAL_TV_PORT=$(TV_PORT) PORTAL_ISSUER=$(IDP_ISSUER) PORTAL_LINKING_TARGET=$(LINKING_LISTEN) $(BIN)/demo-portal tv' \
	  'social-fakes $(BIN)/social-fakes --port $(SOCIAL_FAKES_PORT) --redirect-uri $(IDP_ISSUER)/login/social/{name}/callback'

services-check:
	bash scripts/check-services.sh

# The whole suite, in parallel, against SQLite + the in-process store AND PostgreSQL + Redis.
test: install proto browser services-check
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check idp linking_service elk_common demo_portals social_fakes tests bench

# The benchmark (README «Performance»): the IdP under deploy/gunicorn.conf.py and the linking
# service on throw-away PostgreSQL databases and a private Redis, loaded over loopback; seconds
# per scenario (split into up to 5 windows, the median reported). JSON in var/bench/.
# `make bench BENCH_SECONDS=3` for a quick look; `make bench-compare A.json B.json`.
BENCH_SECONDS ?= 15
bench: install proto
	@mkdir -p var/bench
	$(BIN)/python -m bench --seconds $(BENCH_SECONDS) \
	  --out var/bench/bench-$$(date -u +%Y%m%dT%H%M%S).json
	@ls -t var/bench/bench-*.json | head -1 | xargs -I{} cp {} var/bench/latest.json

ifeq (bench-compare,$(firstword $(MAKECMDGOALS)))
COMPARE := $(wordlist 2,3,$(MAKECMDGOALS))
$(eval $(COMPARE):;@:)
endif
A ?= $(word 1,$(COMPARE))
B ?= $(word 2,$(COMPARE))
bench-compare: install
	$(BIN)/python -m bench compare $(A) $(B)

# The soak (README «Soak»): the same stack under a mixed workload at SOAK_RATE operations/s
# for SOAK_SECONDS, memory sampled; then checks that nothing was lost (exit 1 if not).
SOAK_SECONDS ?= 600
SOAK_RATE    ?= 40
soak: install proto
	@mkdir -p var/bench
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE) \
	  --out var/bench/soak-$$(date -u +%Y%m%dT%H%M%S).json

clean:
	rm -rf $(VENV) var .pytest_cache $(filter-out elk_proto/__init__.py,$(wildcard elk_proto/*)) elk_proto/.stamp

#!/usr/bin/env bash
# The tests need the real PostgreSQL and Redis (production's storage). Start them if this
# machine has them installed but stopped; fail loudly if they cannot be reached.
set -euo pipefail
PG_HOST=${IDP_TEST_PG_HOST:-127.0.0.1}
REDIS_HOST=${IDP_TEST_REDIS_HOST:-127.0.0.1}

pg_up() { pg_isready -q -h "$PG_HOST" -p 5432 2>/dev/null; }
redis_up() { redis-cli -h "$REDIS_HOST" -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 20); do pg_up && break; sleep 0.5; done
fi
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/redis-ci.log || true
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
fi
pg_up || { echo "check-services: PostgreSQL is not reachable at $PG_HOST:5432" >&2; exit 1; }
redis_up || { echo "check-services: Redis is not reachable at $REDIS_HOST:6379" >&2; exit 1; }
echo "check-services: PostgreSQL and Redis are up"

# Tidings tasks. `pip install -e '.[dev]'` provides `just` (rust-just).

# run the server (SQLite file in the working directory by default)
serve *ARGS:
    tidings serve {{ARGS}}

# the test suite (PostgreSQL tests run when TIDINGS_TEST_DATABASE_URL is set)
test *ARGS:
    python -m pytest {{ARGS}}

# ruff and mypy
lint:
    ruff check .
    mypy

# benchmarks against the real server (not part of the tests)
bench *ARGS:
    python -m bench {{ARGS}}

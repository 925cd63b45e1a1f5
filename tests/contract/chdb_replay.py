"""Replays a ghmetrics ClickHouse transcript on chdb and compares answers.

Each line of the transcript is {"sql", "rows", "answer"} as the server
(clickhouse-server 18.16 in the tests) answered it. Statements about the
server itself (its version, system tables), about its parts (`_part`: names and merges
differ from run to run) and the write lock's bookkeeping are not compared:
their answers differ between any two servers. Every other answer must be equal, as a
list of lines where the statement orders its rows, as a set otherwise.
"""
import json
import sys

from chdb import session

NOT_COMPARED = ("version()", "system.", "_part", "ghmetrics_write_lock", "ghmetrics_stale_lock")


def main(path):
    db = session.Session()
    # The server applied each delete before answering (ghmetrics waits for
    # its mutations); an embedded engine must do the same before the next read.
    db.query("SET mutations_sync = 1")
    compared = skipped = 0
    failures = []
    with open(path) as transcript:
        for number, line in enumerate(transcript, 1):
            exchange = json.loads(line)
            sql, rows, want = exchange["sql"], exchange["rows"], exchange["answer"]
            if any(marker in sql for marker in NOT_COMPARED):
                skipped += 1
                continue
            statement = sql if rows is None else sql + "\n" + rows
            try:
                got = db.query(statement, "TabSeparated")
                got = got.bytes().decode() if hasattr(got, "bytes") else str(got)
            except Exception as error:  # noqa: BLE001 - report every statement
                failures.append((number, sql, want, f"error: {error}"))
                continue
            compared += 1
            ordered = "ORDER BY" in sql.upper()
            same = (got.splitlines() == want.splitlines()) if ordered else (
                sorted(got.splitlines()) == sorted(want.splitlines()))
            if not same:
                failures.append((number, sql, want, got))
    print(f"chdb {db.query('SELECT version()', 'TabSeparated')}".strip())
    print(f"{compared} statements replayed and compared, {skipped} about the server, its parts or the lock skipped")
    for number, sql, want, got in failures:
        print(f"--- line {number}: {' '.join(sql.split())[:300]}")
        print(f"    18.16: {want[:300]!r}")
        print(f"    chdb:  {got[:300]!r}")
    if failures or compared == 0:
        print(f"{len(failures)} differences")
        sys.exit(1)
    print("every answer equal")


if __name__ == "__main__":
    main(sys.argv[1])

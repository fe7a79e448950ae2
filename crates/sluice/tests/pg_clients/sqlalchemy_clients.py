"""Real PostgreSQL client libraries against `sluice serve`: SQLAlchemy 2 over psycopg 3 and over
psycopg2, and pandas. Driven by crates/sluice/tests/pg_clients.rs, which compares what this prints
with `sluice query`.

Usage: sqlalchemy_clients.py HOST PORT. Prints one JSON object: per driver, what it saw. Exit code 3
when a package is missing (the Rust test decides whether that is a skip or a failure).
"""

import json
import sys

try:
    import pandas as pd
    import sqlalchemy as sa
    import psycopg  # noqa: F401 (the dialect imports it; fail early with a clear code)
    import psycopg2  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"missing package: {e}", file=sys.stderr)
    sys.exit(3)


def plain(value):
    """A JSON-friendly value (Decimal, dates, numpy scalars, lists)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        return plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def seen_by(url):
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        out["version"] = conn.execute(sa.text("select version()")).scalar()
        out["server_version_info"] = list(engine.dialect.server_version_info)
        insp = sa.inspect(conn)
        out["schemas"] = insp.get_schema_names()
        out["tables"] = sorted(insp.get_table_names(schema="gold"))
        out["views"] = sorted(insp.get_view_names(schema="gold"))
        out["default_schema"] = insp.default_schema_name
        out["has_table"] = insp.has_table("by_region", schema="gold")
        out["has_missing_table"] = insp.has_table("no_such_table", schema="gold")
        out["columns"] = {
            c["name"]: {
                "type": str(c["type"]),
                "nullable": c["nullable"],
                # ARRAY's element type, TIMESTAMP's time zone flag.
                "item_type": str(getattr(c["type"], "item_type", "")) or None,
                "timezone": getattr(c["type"], "timezone", None),
            }
            for c in insp.get_columns("by_region", schema="gold")
        }
        out["view_columns"] = [c["name"] for c in insp.get_columns("north_sales", schema="gold")]
        out["pk"] = insp.get_pk_constraint("by_region", schema="gold")
        out["foreign_keys"] = insp.get_foreign_keys("by_region", schema="gold")
        out["indexes"] = insp.get_indexes("by_region", schema="gold")
        out["unique"] = insp.get_unique_constraints("by_region", schema="gold")
        out["comment"] = insp.get_table_comment("by_region", schema="gold")

        # SQLAlchemy Core over the reflected table.
        table = sa.Table("by_region", sa.MetaData(), autoload_with=conn, schema="gold")
        query = (
            sa.select(table.c.region, table.c.revenue, table.c.n)
            .where(table.c.n >= 1)
            .order_by(table.c.region)
        )
        out["core_rows"] = [plain(list(r)) for r in conn.execute(query)]
        # A bound parameter of the driver's own kind.
        out["bound_rows"] = [
            plain(list(r))
            for r in conn.execute(
                sa.text("select region, n from gold.by_region where region = :r"), {"r": "north"}
            )
        ]
    # pandas over the engine.
    frame = pd.read_sql(
        "select region, revenue, n from gold.by_region order by region", engine
    )
    out["pandas_columns"] = list(frame.columns)
    out["pandas_dtypes"] = [str(t) for t in frame.dtypes]
    out["pandas_rows"] = [plain(list(r)) for r in frame.itertuples(index=False)]
    frame = pd.read_sql_table("by_region", engine, schema="gold")
    out["pandas_table_columns"] = list(frame.columns)
    out["pandas_table_rows"] = len(frame)
    engine.dispose()
    return out


def main():
    host, port = sys.argv[1], sys.argv[2]
    result = {}
    for driver in ("psycopg", "psycopg2"):
        url = f"postgresql+{driver}://analyst@{host}:{port}/sluice?sslmode=disable"
        result[driver] = seen_by(url)
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

"""ADBC's Flight SQL driver (adbc-driver-flightsql from PyPI) against `sluice serve`. Driven by
crates/sluice/tests/flight_sql.rs, which compares what this prints with `sluice query`.

Usage: adbc_client.py URI (grpc://HOST:PORT). Prints one JSON object with what the driver saw. Exit
code 3 when a package is missing (the Rust test decides whether that is a skip or a failure).
"""

import json
import sys

try:
    import adbc_driver_flightsql.dbapi as flight_sql
    import pyarrow  # noqa: F401 (fetch_arrow_table needs it; fail early with a clear code)
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"missing package: {e}", file=sys.stderr)
    sys.exit(3)


def plain(value):
    """A JSON-friendly value (Decimal, dates, lists)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def rows(table):
    return [[plain(v) for v in row.values()] for row in table.to_pylist()]


def main():
    uri = sys.argv[1]
    seen = {}
    with flight_sql.connect(uri) as conn:
        info = conn.adbc_get_info()
        seen["vendor_name"] = info.get("vendor_name")
        seen["vendor_version"] = info.get("vendor_version")

        # The catalog as ADBC lists it (GetCatalogs, GetDbSchemas, GetTables with their schemas).
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        seen["catalogs"] = [c["catalog_name"] for c in objects]
        tables, columns = [], {}
        for catalog in objects:
            for schema in catalog["catalog_db_schemas"] or []:
                for table in schema["db_schema_tables"] or []:
                    name = f'{schema["db_schema_name"]}.{table["table_name"]}'
                    tables.append([name, table["table_type"]])
                    columns[name] = [c["column_name"] for c in table["table_columns"] or []]
        seen["tables"] = sorted(tables)
        seen["columns"] = columns
        seen["schema_of_by_region"] = [
            [f.name, str(f.type)] for f in conn.adbc_get_table_schema("by_region", db_schema_filter="gold")
        ]

        with conn.cursor() as cur:
            cur.execute("SELECT region, revenue, n FROM gold.by_region ORDER BY region")
            table = cur.fetch_arrow_table()
            seen["by_region"] = rows(table)
            seen["by_region_types"] = [str(f.type) for f in table.schema]

            # Parameters: a prepared statement with one bound row.
            cur.execute(
                "SELECT sale_id, amount FROM gold.north_sales WHERE amount > $1 ORDER BY sale_id",
                parameters=(6,),
            )
            seen["north_over_6"] = rows(cur.fetch_arrow_table())
            # The same statement again with another value.
            cur.execute(
                "SELECT sale_id, amount FROM gold.north_sales WHERE amount > $1 ORDER BY sale_id",
                parameters=(1,),
            )
            seen["north_over_1"] = rows(cur.fetch_arrow_table())

            # Explicitly prepared, then run.
            cur.adbc_prepare("SELECT count(*) AS n FROM bronze.files__sales")
            cur.execute("SELECT count(*) AS n FROM bronze.files__sales")
            seen["sales_count"] = rows(cur.fetch_arrow_table())

            # Time travel, as on the wire.
            cur.execute("SELECT count(*) AS n FROM gold.by_region VERSION AS OF 0")
            seen["by_region_v0"] = rows(cur.fetch_arrow_table())

        # A write is refused and the connection stays usable.
        for sql in ["INSERT INTO gold.by_region (region) VALUES ('x')", "DROP TABLE gold.by_region"]:
            with conn.cursor() as cur:
                try:
                    cur.execute(sql)
                    cur.fetch_arrow_table()
                    seen.setdefault("writes", []).append("accepted")
                except Exception as e:  # noqa: BLE001 - the message is what is checked
                    seen.setdefault("writes", []).append(f"{type(e).__name__}: {e}")
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT * FROM gold.nope")
                cur.fetch_arrow_table()
                seen["missing_table"] = "accepted"
            except Exception as e:  # noqa: BLE001
                seen["missing_table"] = f"{type(e).__name__}: {e}"
            cur.execute("SELECT 1 AS one")
            seen["after_errors"] = rows(cur.fetch_arrow_table())

    print(json.dumps(seen))


if __name__ == "__main__":
    main()

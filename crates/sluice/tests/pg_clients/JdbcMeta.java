// pgJDBC's DatabaseMetaData against `sluice serve`, as DBeaver, Metabase and Tableau's JDBC connector
// call it when they connect and browse. Driven by crates/sluice/tests/pg_clients.rs.
//
// Usage: java -cp postgresql.jar JdbcMeta.java JDBC_URL SCHEMA TABLE
// Prints sections "== name" with one line per row.

import java.sql.*;

public class JdbcMeta {
  public static void main(String[] args) throws Exception {
    String url = args[0], schema = args[1], table = args[2];
    try (Connection c = DriverManager.getConnection(url)) {
      DatabaseMetaData md = c.getMetaData();
      System.out.println("== product");
      System.out.println(md.getDatabaseProductVersion());
      System.out.println("== schemas");
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) System.out.println(rs.getString("TABLE_SCHEM"));
      }
      System.out.println("== tables");
      try (ResultSet rs = md.getTables(null, schema, "%", new String[] {"TABLE", "VIEW"})) {
        while (rs.next()) {
          System.out.println(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + " "
              + rs.getString("TABLE_TYPE"));
        }
      }
      System.out.println("== columns");
      try (ResultSet rs = md.getColumns(null, schema, table, "%")) {
        while (rs.next()) System.out.println(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
      }
      System.out.println("== primary keys");
      try (ResultSet rs = md.getPrimaryKeys(null, schema, table)) {
        while (rs.next()) System.out.println(rs.getString("COLUMN_NAME"));
      }
      System.out.println("== count");
      try (PreparedStatement p =
          c.prepareStatement("select count(*) from " + schema + "." + table + " where length(region) > ?")) {
        p.setInt(1, 0);
        try (ResultSet rs = p.executeQuery()) {
          while (rs.next()) System.out.println(rs.getLong(1));
        }
      }
      System.out.println("== type info");
      try (ResultSet rs = md.getTypeInfo()) {
        while (rs.next()) System.out.println(rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE"));
      }
      // Statement.setQueryTimeout cancels through Statement.cancel(): a CancelRequest on a
      // connection of its own, as DBeaver's and Metabase's query timeouts do.
      System.out.println("== cancel");
      try (Statement st = c.createStatement()) {
        st.setQueryTimeout(2);
        st.executeQuery("select sum(a.v * b.v) from generate_series(1, 200000) as a(v)"
            + " cross join generate_series(1, 200000) as b(v)");
        System.out.println("not cancelled");
      } catch (SQLException e) {
        System.out.println(e.getSQLState());
      }
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("select 1")) {
        while (rs.next()) System.out.println("after cancel " + rs.getInt(1));
      }
      System.out.println("== end");
    }
  }
}

// Package storage owns taillight's ClickHouse SQL, as files embedded in the
// binary:
//
//   - ddl/NNN_name.sql: the migrations that create the tables and views
//     (trace_items and the *_1m views are the public SQL contract), parsed
//     by Migrations and rendered for one server or a cluster by DDLParams;
//     chsink.Migrate applies them; ddl/fragments/NAME.sql: column lists
//     several tables share, included as {{fragment:NAME}};
//   - windows/NAME.sql: each view's rows for a window of minutes, as a
//     subquery that filters before FINAL (Window);
//   - queries/NAME.sql: the saved queries behind the built-in dashboard and
//     the Grafana dashboards, with their header format (Queries,
//     RenderQuery); queries/fragments/NAME.sql: SQL they share, such as
//     their filters, included as {{fragment:NAME}}.
//
// The DDL and the queries live together because they are one contract: the
// queries read the tables and views the DDL creates, and make test-sql
// proves both on chdb from this one directory. Both the ClickHouse sink
// (which migrates, writes the tables, and in its tests runs the saved
// queries over what it wrote) and the dashboard (which runs the queries)
// read them, so they sit below both rather than in either: with the DDL in
// chsink and the queries in internal/dash, each would import the other.
//
// storage imports nothing of taillight's and nothing but the standard
// library; it runs no SQL itself.
package storage

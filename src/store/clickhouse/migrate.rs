//! The ClickHouse schema's migrations (`migrations/clickhouse/`), applied at
//! start like refinery's for SQLite, recorded in `ghmetrics_migrations`. No
//! maintained Rust crate migrates ClickHouse over HTTP (refinery has no
//! ClickHouse driver), and this one needs a file list, a renderer for the
//! cluster placeholders and a table of applied versions, so it stays small.
//! Every statement is `IF NOT EXISTS`, so a migration cut off half-way is
//! simply applied again.

use super::http::{ClickHouseError, Endpoint};
use super::layout::Layout;
use super::text::quote;

/// The embedded migrations: version, name, SQL.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../../../migrations/clickhouse/V1__events.sql"),
    ),
    (
        2,
        "event_ids",
        include_str!("../../../migrations/clickhouse/V2__event_ids.sql"),
    ),
    (
        3,
        "origins",
        include_str!("../../../migrations/clickhouse/V3__origins.sql"),
    ),
    (
        4,
        "archive_coverage",
        include_str!("../../../migrations/clickhouse/V4__archive_coverage.sql"),
    ),
    (
        5,
        "pr_hour_tops",
        include_str!("../../../migrations/clickhouse/V5__pr_hour_tops.sql"),
    ),
    (
        6,
        "settled_hours",
        include_str!("../../../migrations/clickhouse/V6__settled_hours.sql"),
    ),
    (
        7,
        "app_bot_counts",
        include_str!("../../../migrations/clickhouse/V7__app_bot_counts.sql"),
    ),
];

/// Applies the migrations `layout.main` has not recorded.
pub async fn run(layout: &Layout) -> Result<(), ClickHouseError> {
    let applied = prepare(layout).await?;
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let failed = |error| ClickHouseError::Migration(format!("V{version}__{name}: {error}"));
        for statement in statements(sql) {
            for (target, rendered) in render(layout, &statement)? {
                if let Some(rendered) = without_added_column(target, rendered)
                    .await
                    .map_err(failed)?
                {
                    target
                        .run(&rendered, layout.insert_settings(), None)
                        .await
                        .map_err(failed)?;
                }
            }
        }
        let db = &layout.database;
        let record = format!(
            "INSERT INTO {db}.ghmetrics_migrations (version, name, applied_at) VALUES ({version}, {}, now())",
            quote(name)
        );
        layout.main.run(&record, &[], None).await?;
        tracing::info!(migration = %format!("V{version}__{name}"), "applied ClickHouse migration");
    }
    Ok(())
}

/// Makes the database (on every DDL target) and the table of applied
/// migrations; returns the versions applied.
async fn prepare(layout: &Layout) -> Result<Vec<u32>, ClickHouseError> {
    let db = &layout.database;
    let create = format!("CREATE DATABASE IF NOT EXISTS {db}{}", layout.on_cluster());
    for target in layout.ddl_targets() {
        target.run(&create, &[], None).await?;
    }
    let table = format!(
        "CREATE TABLE IF NOT EXISTS {db}.ghmetrics_migrations (
            version UInt32, name String, applied_at DateTime('UTC')
         ) ENGINE = MergeTree ORDER BY version"
    );
    layout.main.run(&table, &[], None).await?;
    let applied = layout
        .main
        .run(
            &format!("SELECT version FROM {db}.ghmetrics_migrations FORMAT TabSeparated"),
            &[],
            None,
        )
        .await?;
    Ok(applied.lines().filter_map(|v| v.parse().ok()).collect())
}

/// `rendered`, to run on `target`; for `ADD COLUMN IF NOT EXISTS`, which
/// 18.16 does not have, the statement without it, or `None` when the
/// column is there already.
async fn without_added_column(
    target: &Endpoint,
    rendered: String,
) -> Result<Option<String>, ClickHouseError> {
    let Some((table, column)) = added_column(&rendered) else {
        return Ok(Some(rendered));
    };
    let (db, table) = table.split_once('.').unwrap_or(("", table));
    let found = target
        .run(
            &format!(
                "SELECT count() FROM system.columns WHERE database = {} AND table = {} AND name = {} FORMAT TabSeparated",
                quote(db),
                quote(table),
                quote(column)
            ),
            &[],
            None,
        )
        .await?;
    Ok((found.trim() == "0")
        .then(|| rendered.replacen(" ADD COLUMN IF NOT EXISTS ", " ADD COLUMN ", 1)))
}

/// `(db.table, column)` of an `ALTER TABLE db.table [ON CLUSTER c] ADD
/// COLUMN IF NOT EXISTS column ...` statement.
fn added_column(statement: &str) -> Option<(&str, &str)> {
    let rest = statement.strip_prefix("ALTER TABLE ")?;
    let (head, tail) = rest.split_once(" ADD COLUMN IF NOT EXISTS ")?;
    let table = head.split_whitespace().next()?;
    let column = tail.split_whitespace().next()?;
    Some((table, column))
}

/// The statements of a migration file: `;`-terminated, comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `statement` with every `{<tag> X}` replaced by `name(X)`.
fn substitute(
    statement: &str,
    tag: &str,
    name: impl Fn(&str) -> String,
) -> Result<String, ClickHouseError> {
    let open = format!("{{{tag} ");
    let mut rendered = String::with_capacity(statement.len());
    let mut rest = statement;
    while let Some(start) = rest.find(&open) {
        let Some(end) = rest[start..].find('}') else {
            return Err(ClickHouseError::Migration(format!(
                "bad placeholder in {statement}"
            )));
        };
        rendered.push_str(&rest[..start]);
        rendered.push_str(&name(&rest[start + open.len()..start + end]));
        rest = &rest[start + end + 1..];
    }
    rendered.push_str(rest);
    Ok(rendered)
}

/// A statement with its placeholders filled in, and where to run it:
/// `{table X}` becomes `db.X` (on a cluster `db.X_local`, on every shard);
/// `{distribute X BY key}` becomes, on a cluster only, the Distributed table
/// `db.X` over the shards' `X_local`, created wherever it is queried from;
/// `INSERT INTO {all X} ... {all Y}` runs once on the main server, `{all X}`
/// being `db.X` as queried; a statement naming `{distributed X}` runs only
/// on a cluster, on its Distributed table `db.X`.
fn render<'a>(
    layout: &'a Layout,
    statement: &str,
) -> Result<Vec<(&'a Endpoint, String)>, ClickHouseError> {
    let db = &layout.database;
    // A backfill runs once, from the main server, through the tables as
    // queried (Distributed ones on a cluster spread the rows by their key).
    if statement.starts_with("INSERT INTO ") {
        let sql = substitute(statement, "all", |table| layout.table(table))?;
        return Ok(vec![(&layout.main, sql)]);
    }
    if let Some(spec) = statement
        .strip_prefix("{distribute ")
        .and_then(|s| s.strip_suffix('}'))
    {
        let Some((table, key)) = spec.split_once(" BY ") else {
            return Err(ClickHouseError::Migration(format!(
                "bad placeholder {statement}"
            )));
        };
        let Some(cluster) = &layout.cluster else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {db}.{table}{on} AS {db}.{table}_local
             ENGINE = Distributed({cluster}, {db}, {table}_local, {key})",
            on = layout.on_cluster()
        );
        return Ok(layout.ddl_targets().map(|t| (t, sql.clone())).collect());
    }
    if statement.contains("{distributed ") {
        if layout.cluster.is_none() {
            return Ok(Vec::new());
        }
        let on = layout.on_cluster();
        let sql = substitute(statement, "distributed", |table| {
            format!("{db}.{table}{on}")
        })?;
        return Ok(layout.ddl_targets().map(|t| (t, sql.clone())).collect());
    }
    let local = |table: &str| match &layout.cluster {
        Some(_) => format!("{db}.{table}_local"),
        None => format!("{db}.{table}"),
    };
    // `{local X}`: the table holding X's rows; `{table X}`: the same, created
    // (on a cluster, `ON CLUSTER` unless each shard is named).
    let statement = substitute(statement, "local", local)?;
    let rendered = substitute(&statement, "table", |table| {
        format!("{}{}", local(table), layout.on_cluster())
    })?;
    Ok(layout
        .ddl_targets()
        .map(|t| (t, rendered.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreLocation;

    fn layout(cluster: Option<&str>, shards: usize) -> Layout {
        let Ok(StoreLocation::ClickHouse(settings)) =
            StoreLocation::parse("clickhouse://127.0.0.1:1/db", None)
        else {
            panic!("not a ClickHouse URL");
        };
        let endpoint = || Endpoint::new(&settings, settings.endpoint.clone());
        Layout {
            main: endpoint(),
            shards: (0..shards).map(|_| endpoint()).collect(),
            database: "db".to_owned(),
            cluster: cluster.map(str::to_owned),
        }
    }

    fn rendered(layout: &Layout, statement: &str) -> Vec<String> {
        render(layout, statement)
            .unwrap()
            .into_iter()
            .map(|(_, sql)| sql.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn placeholders_name_plain_local_and_distributed_tables() {
        let view = "CREATE MATERIALIZED VIEW IF NOT EXISTS {table v} TO {local r} AS SELECT 1 FROM {local e}";
        let distribute = "{distribute e BY intHash64(id)}";
        let single = layout(None, 0);
        assert_eq!(
            rendered(&single, view),
            ["CREATE MATERIALIZED VIEW IF NOT EXISTS db.v TO db.r AS SELECT 1 FROM db.e"]
        );
        assert!(rendered(&single, distribute).is_empty());
        let keeper = layout(Some("c"), 0);
        assert_eq!(
            rendered(&keeper, view),
            [
                "CREATE MATERIALIZED VIEW IF NOT EXISTS db.v_local ON CLUSTER c TO db.r_local AS SELECT 1 FROM db.e_local"
            ]
        );
        assert_eq!(
            rendered(&keeper, distribute),
            [
                "CREATE TABLE IF NOT EXISTS db.e ON CLUSTER c AS db.e_local ENGINE = Distributed(c, db, e_local, intHash64(id))"
            ]
        );
        // Named shards: the same statement on each, without ON CLUSTER.
        let named = layout(Some("c"), 2);
        assert_eq!(
            rendered(&named, distribute),
            ["CREATE TABLE IF NOT EXISTS db.e AS db.e_local ENGINE = Distributed(c, db, e_local, intHash64(id))";
                2]
        );
        // An ALTER of the Distributed table: on a cluster only.
        let alter = "ALTER TABLE {distributed e} ADD COLUMN IF NOT EXISTS o UInt8";
        assert!(rendered(&single, alter).is_empty());
        assert_eq!(
            rendered(&keeper, alter),
            ["ALTER TABLE db.e ON CLUSTER c ADD COLUMN IF NOT EXISTS o UInt8"]
        );
        assert_eq!(
            rendered(&named, alter),
            ["ALTER TABLE db.e ADD COLUMN IF NOT EXISTS o UInt8"; 2]
        );
        assert_eq!(
            added_column("ALTER TABLE db.e ON CLUSTER c ADD COLUMN IF NOT EXISTS o UInt8"),
            Some(("db.e", "o"))
        );
        assert_eq!(added_column("CREATE TABLE db.e (o UInt8)"), None);
        assert!(render(&single, "CREATE TABLE {table e").is_err());
        let backfill = "INSERT INTO {all i} SELECT id FROM {all e}";
        for layout in [&single, &keeper, &named] {
            assert_eq!(
                rendered(layout, backfill),
                ["INSERT INTO db.i SELECT id FROM db.e"]
            );
        }
    }

    #[test]
    fn every_statement_is_idempotent_and_placeholders_are_known() {
        for &(_, name, sql) in MIGRATIONS {
            for statement in statements(sql) {
                let alter = statement.starts_with("ALTER TABLE {table ")
                    || statement.starts_with("ALTER TABLE {distributed ");
                assert!(
                    !alter || statement.contains(" ADD COLUMN IF NOT EXISTS "),
                    "{name}: {statement}"
                );
                let known = statement.starts_with("CREATE TABLE IF NOT EXISTS {table ")
                    || alter
                    || statement.starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS {table ")
                    || statement.starts_with("{distribute ")
                    || statement.starts_with("INSERT INTO {all ");
                assert!(known, "{name}: {statement}");
            }
        }
    }
}

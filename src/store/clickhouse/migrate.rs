//! The ClickHouse schema's migrations (`migrations/clickhouse/`), applied at
//! start like refinery's for SQLite, recorded in `ghmetrics_migrations`. No
//! maintained Rust crate migrates ClickHouse over HTTP (refinery has no
//! ClickHouse driver), and this one needs a file list, a renderer for the
//! cluster placeholders and a table of applied versions, so it stays small.
//! Every statement is `IF NOT EXISTS`, so a migration cut off half-way is
//! simply applied again.

use super::Layout;
use super::http::{ClickHouseError, Endpoint, quote};

/// The embedded migrations: version, name, SQL.
const MIGRATIONS: &[(u32, &str, &str)] = &[(
    1,
    "events",
    include_str!("../../../migrations/clickhouse/V1__events.sql"),
)];

/// Applies the migrations `layout.main` has not recorded.
pub async fn run(layout: &Layout) -> Result<(), ClickHouseError> {
    let db = &layout.database;
    for target in layout.ddl_targets() {
        target
            .run(
                &format!("CREATE DATABASE IF NOT EXISTS {db}{}", layout.on_cluster()),
                &[],
                None,
            )
            .await?;
    }
    layout
        .main
        .run(
            &format!(
                "CREATE TABLE IF NOT EXISTS {db}.ghmetrics_migrations (
                    version UInt32, name String, applied_at DateTime('UTC')
                 ) ENGINE = MergeTree ORDER BY version"
            ),
            &[],
            None,
        )
        .await?;
    let applied = layout
        .main
        .run(
            &format!("SELECT version FROM {db}.ghmetrics_migrations FORMAT TabSeparated"),
            &[],
            None,
        )
        .await?;
    let applied: Vec<u32> = applied.lines().filter_map(|v| v.parse().ok()).collect();
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        for statement in statements(sql) {
            for (target, rendered) in render(layout, &statement)? {
                target.run(&rendered, &[], None).await.map_err(|error| {
                    ClickHouseError::Migration(format!("V{version}__{name}: {error}"))
                })?;
            }
        }
        layout
            .main
            .run(
                &format!(
                    "INSERT INTO {db}.ghmetrics_migrations (version, name, applied_at) VALUES ({version}, {}, now())",
                    quote(name)
                ),
                &[],
                None,
            )
            .await?;
        tracing::info!(migration = %format!("V{version}__{name}"), "applied ClickHouse migration");
    }
    Ok(())
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

/// `{local X}` as the table holding X's rows: `db.X`, on a cluster `db.X_local`.
fn render_locals(layout: &Layout, statement: &str) -> Result<String, ClickHouseError> {
    let db = &layout.database;
    let mut rendered = String::with_capacity(statement.len());
    let mut rest = statement;
    while let Some(start) = rest.find("{local ") {
        let Some(end) = rest[start..].find('}') else {
            return Err(ClickHouseError::Migration(format!(
                "bad placeholder in {statement}"
            )));
        };
        let table = &rest[start + "{local ".len()..start + end];
        rendered.push_str(&rest[..start]);
        match &layout.cluster {
            Some(_) => rendered.push_str(&format!("{db}.{table}_local")),
            None => rendered.push_str(&format!("{db}.{table}")),
        }
        rest = &rest[start + end + 1..];
    }
    rendered.push_str(rest);
    Ok(rendered)
}

/// A statement with its placeholders filled in, and where to run it:
/// `{table X}` becomes `db.X` (on a cluster `db.X_local`, on every shard);
/// `{distribute X BY key}` becomes, on a cluster only, the Distributed table
/// `db.X` over the shards' `X_local`, created wherever it is queried from.
fn render<'a>(
    layout: &'a Layout,
    statement: &str,
) -> Result<Vec<(&'a Endpoint, String)>, ClickHouseError> {
    let db = &layout.database;
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
    let statement = render_locals(layout, statement)?;
    let mut rendered = String::with_capacity(statement.len());
    let mut rest = statement.as_str();
    while let Some(start) = rest.find("{table ") {
        let Some(end) = rest[start..].find('}') else {
            return Err(ClickHouseError::Migration(format!(
                "bad placeholder in {statement}"
            )));
        };
        let table = &rest[start + "{table ".len()..start + end];
        rendered.push_str(&rest[..start]);
        match &layout.cluster {
            Some(_) => rendered.push_str(&format!("{db}.{table}_local{}", layout.on_cluster())),
            None => rendered.push_str(&format!("{db}.{table}")),
        }
        rest = &rest[start + end + 1..];
    }
    rendered.push_str(rest);
    Ok(layout
        .ddl_targets()
        .map(|t| (t, rendered.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_idempotent_and_placeholders_are_known() {
        for &(_, name, sql) in MIGRATIONS {
            for statement in statements(sql) {
                let known = statement.starts_with("CREATE TABLE IF NOT EXISTS {table ")
                    || statement.starts_with("CREATE MATERIALIZED VIEW IF NOT EXISTS {table ")
                    || statement.starts_with("{distribute ");
                assert!(known, "{name}: {statement}");
            }
        }
    }
}

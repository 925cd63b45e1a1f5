//! Where the store's tables are and whom to ask: one server, or a cluster
//! (its `Distributed` tables over each shard's `X_local`, DDL either
//! `ON CLUSTER` or sent to every shard named).

use super::http::Endpoint;

/// Where the tables are and whom to ask.
pub struct Layout {
    /// The server every query and insert goes to.
    pub(super) main: Endpoint,
    /// With a cluster without distributed DDL: every shard, for DDL.
    pub(super) shards: Vec<Endpoint>,
    pub(super) database: String,
    pub(super) cluster: Option<String>,
}

impl Layout {
    /// Where a DDL statement runs: every shard when they were listed,
    /// otherwise the main server (with `ON CLUSTER` on a cluster).
    pub(super) fn ddl_targets(&self) -> impl Iterator<Item = &Endpoint> {
        let shards = if self.cluster.is_some() && !self.shards.is_empty() {
            &self.shards[..]
        } else {
            std::slice::from_ref(&self.main)
        };
        shards.iter()
    }

    /// ` ON CLUSTER name` where DDL goes through the cluster's own queue.
    pub(super) fn on_cluster(&self) -> String {
        match &self.cluster {
            Some(cluster) if self.shards.is_empty() => format!(" ON CLUSTER {cluster}"),
            _ => String::new(),
        }
    }

    /// A table as queried: the plain table, or the Distributed one.
    pub(super) fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.database)
    }

    /// The tables that hold rows (for DDL and mutations): `X` or `X_local`.
    pub(super) fn local_table(&self, name: &str) -> String {
        match &self.cluster {
            Some(_) => format!("{}.{name}_local{}", self.database, self.on_cluster()),
            None => format!("{}.{name}", self.database),
        }
    }

    /// A system table (`parts`, `mutations`) as seen over every shard.
    pub(super) fn system_table(&self, name: &str) -> String {
        match &self.cluster {
            Some(cluster) => format!("cluster({cluster}, system, {name})"),
            None => format!("system.{name}"),
        }
    }

    /// The name, as system tables list it, of the table holding `name`'s
    /// rows: `X`, or `X_local` on a cluster.
    pub(super) fn rows_table_name(&self, name: &str) -> String {
        match &self.cluster {
            Some(_) => format!("{name}_local"),
            None => name.to_owned(),
        }
    }

    /// Per-request settings: inserts into a Distributed table wait until
    /// every shard has its rows, so the next read sees them.
    pub(super) fn insert_settings(&self) -> &'static [(&'static str, &'static str)] {
        match self.cluster {
            Some(_) => &[("insert_distributed_sync", "1")],
            None => &[],
        }
    }
}

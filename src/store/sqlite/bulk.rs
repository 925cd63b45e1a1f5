//! SQLite's bulk load: one transaction per batch on one connection with a
//! large page cache, driven by [`drive_bulk_load`].

use std::sync::mpsc::Receiver;

use super::{Sqlite, SqliteError, write};
use crate::core::event::Event;
use crate::store::{
    BulkWriter, FileRecord, InsertStats, Load, Origin, Settling, SourceId, StoreError,
    drive_bulk_load,
};

/// Page cache of the bulk loader's connection, in KiB. Inserts land all over
/// the repository index; with SQLite's default 2 MiB cache most of them would
/// re-read pages from disk. The connection goes back to the default afterwards.
const BULK_WRITE_CACHE_KIB: i64 = 64 * 1024;
/// SQLite's default cache size (negative: KiB).
const DEFAULT_CACHE_SIZE: i64 = -2000;

impl Sqlite {
    /// One transaction per batch on one connection with a large page cache.
    pub(crate) fn bulk_load(
        &self,
        loads: Receiver<Load>,
        settling: Settling,
    ) -> Result<InsertStats, StoreError> {
        let mut conn = self.get()?;
        conn.pragma_update(None, "cache_size", -BULK_WRITE_CACHE_KIB)
            .map_err(SqliteError::from)?;
        let result = drive_bulk_load(&mut BulkConnection(&mut conn), loads, &settling);
        conn.pragma_update(None, "cache_size", DEFAULT_CACHE_SIZE)
            .map_err(SqliteError::from)?;
        result
    }
}

/// The bulk loader's connection: one transaction per batch.
struct BulkConnection<'a>(&'a mut rusqlite::Connection);

impl BulkWriter for BulkConnection<'_> {
    fn insert(
        &mut self,
        events: &[Event],
        archive: Option<SourceId>,
    ) -> Result<InsertStats, StoreError> {
        Ok(
            write::insert_events(self.0, events, Origin::Import, archive)
                .map_err(SqliteError::from)?,
        )
    }

    fn record_file(&mut self, record: &FileRecord, now: i64) -> Result<(), StoreError> {
        Ok(write::record_file(self.0, record, now).map_err(SqliteError::from)?)
    }

    fn files(&mut self, first: i64, last: i64) -> Result<Vec<FileRecord>, StoreError> {
        Ok(write::archive_files(self.0, first, last).map_err(SqliteError::from)?)
    }

    fn settle(&mut self, hours: &[i64], now: i64) -> Result<(), StoreError> {
        Ok(write::settle(self.0, hours, now).map_err(SqliteError::from)?)
    }
}

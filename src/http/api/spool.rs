//! [`Spool`]: an answer written to memory while it is small, then to an
//! anonymous temporary file, so that memory stays flat however large the
//! answer (the whole pr-counts ranking) and however slowly the client reads.

use axum::body::Bytes;

use crate::http::error::AppError;

/// Answers up to this size are built in memory and sent with a
/// Content-Length; larger ones go through a temporary file.
const IN_MEMORY_ANSWER_BYTES: usize = 256 * 1024;

/// Where an answer is written: memory while it is small, then an anonymous
/// temporary file (deleted when closed), so memory stays flat however large
/// the answer and however slowly the client reads it.
#[derive(Default)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    length: u64,
}

/// A finished answer.
pub enum Spooled {
    Memory(Bytes),
    /// The file, rewound, and its length.
    File(std::fs::File, u64),
}

impl std::io::Write for Spool {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.length += bytes.len() as u64;
        if self.file.is_none() && self.memory.len() + bytes.len() > IN_MEMORY_ANSWER_BYTES {
            let mut file = std::io::BufWriter::with_capacity(64 * 1024, tempfile::tempfile()?);
            std::io::Write::write_all(&mut file, &std::mem::take(&mut self.memory))?;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(bytes)?,
            None => self.memory.extend_from_slice(bytes),
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), std::io::Write::flush)
    }
}

impl Spool {
    pub fn finish(self) -> Result<Spooled, AppError> {
        use std::io::Seek;
        let Some(file) = self.file else {
            return Ok(Spooled::Memory(Bytes::from(self.memory)));
        };
        let spool_failed = |error: std::io::Error| {
            tracing::error!(%error, "cannot write the answer to a temporary file");
            AppError::Internal("cannot buffer the answer")
        };
        let mut file = file
            .into_inner()
            .map_err(|e| spool_failed(e.into_error()))?;
        file.rewind().map_err(spool_failed)?;
        Ok(Spooled::File(file, self.length))
    }
}

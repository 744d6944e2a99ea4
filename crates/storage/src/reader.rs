//! Streaming reads of a blob: [`BlobReader`], and the local-file chunk stream with one chunk of read-ahead.

use std::fs::File;
use std::future::Future;
use std::io::Read;
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::{Result, StorageError};

/// An opened blob (or byte range of it): a stream of `Bytes` plus the sizes a response needs up front.
/// Implements `Stream`, so it can become an HTTP body directly.
pub struct BlobReader {
    size: u64,
    range: Range<u64>,
    stream: BoxStream<'static, Result<Bytes>>,
}

impl BlobReader {
    pub(crate) fn new(
        size: u64,
        range: Range<u64>,
        stream: BoxStream<'static, Result<Bytes>>,
    ) -> BlobReader {
        BlobReader { size, range, stream }
    }

    pub(crate) fn empty() -> BlobReader {
        BlobReader::new(0, 0..0, futures::stream::empty().boxed())
    }

    /// Size of the whole blob (for `Content-Range: bytes a-b/size`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The byte range this reader yields, end-exclusive.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// Number of bytes this reader yields (for `Content-Length`).
    pub fn content_length(&self) -> u64 {
        self.range.end - self.range.start
    }

    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        self.stream
    }
}

impl Stream for BlobReader {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader").field("size", &self.size).field("range", &self.range).finish()
    }
}

/// Reads a local file in large chunks on the blocking pool, starting the read of chunk N+1 as soon as chunk N is
/// handed out, so disk (or page-cache copy) and socket writes overlap. Holds no thread between chunks, so many
/// slow downloads do not pin blocking threads. Each chunk is a fresh allocation handed to the consumer as
/// `Bytes` without copying.
pub(crate) struct FileChunks {
    path: PathBuf,
    chunk_size: usize,
    /// Bytes still to read after the read in flight.
    remaining: u64,
    in_flight: Option<JoinHandle<(File, std::io::Result<Bytes>)>>,
}

impl FileChunks {
    /// `file` must already be positioned at the start of the range.
    pub(crate) fn new(file: File, path: PathBuf, length: u64, chunk_size: usize) -> FileChunks {
        let mut chunks = FileChunks { path, chunk_size, remaining: length, in_flight: None };
        chunks.start_read(file);
        chunks
    }

    fn start_read(&mut self, file: File) {
        if self.remaining == 0 {
            return;
        }
        let length = self.remaining.min(self.chunk_size as u64);
        self.remaining -= length;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let result = read_chunk(&file, length);
            (file, result)
        }));
    }
}

fn read_chunk(file: &File, length: u64) -> std::io::Result<Bytes> {
    // `read_to_end` fills spare capacity without zeroing it first; `take` stops it at the chunk boundary.
    let mut buffer = Vec::with_capacity(length as usize);
    file.take(length).read_to_end(&mut buffer)?;
    if (buffer.len() as u64) < length {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "blob file shorter than its size",
        ));
    }
    Ok(Bytes::from(buffer))
}

impl Stream for FileChunks {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(in_flight) = self.in_flight.as_mut() else {
            return Poll::Ready(None);
        };
        let joined = ready!(Pin::new(in_flight).poll(cx));
        self.in_flight = None;
        let (file, result) = match joined {
            Ok(pair) => pair,
            Err(join_error) => return Poll::Ready(Some(Err(StorageError::TaskFailed(join_error)))),
        };
        match result {
            Ok(chunk) => {
                self.start_read(file);
                Poll::Ready(Some(Ok(chunk)))
            }
            Err(source) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(StorageError::Io {
                    operation: "reading",
                    path: self.path.clone(),
                    source,
                })))
            }
        }
    }
}

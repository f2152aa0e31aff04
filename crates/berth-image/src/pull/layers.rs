//! The layers of a pull: [`PARALLEL_DOWNLOADS`] at a time (std scoped threads; after the first
//! failure no new layer starts), each downloaded into the blob store and, with a sink,
//! unpacked on the way. Unpacked layers are committed in layer order by whichever thread
//! completes the next one, so a layer is never visible before its parent.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;

use super::{PullError, Puller, PARALLEL_DOWNLOADS};
use crate::client::{ClientError, ConsumerError};
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::progress::{self, LayerEvent};
use crate::sink::{LayerInfo, LayerSink, PendingLayer, SinkError};

/// A layer done with its download, waiting for its turn to be committed.
enum Ready<'s> {
    /// Nothing to commit (no sink, or the layer was unpacked already).
    Nothing,
    Commit(Box<dyn PendingLayer + 's>),
}

/// Commits layers in order as they become ready.
struct Committer<'s> {
    state: Mutex<CommitState<'s>>,
}

struct CommitState<'s> {
    /// The lowest layer not committed yet.
    next: usize,
    ready: BTreeMap<usize, Ready<'s>>,
    /// A commit failed: nothing above it may be committed.
    broken: bool,
}

impl<'s> Puller<'s> {
    pub(super) fn fetch_layers(
        &self,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        chain_ids: &[Digest],
    ) -> Result<(), PullError> {
        let jobs: Vec<LayerInfo> = (0..layers.len())
            .map(|index| LayerInfo {
                index,
                descriptor: &layers[index],
                diff_id: &diff_ids[index],
                chain_id: &chain_ids[index],
                parent: index.checked_sub(1).map(|parent| &chain_ids[parent]),
            })
            .collect();
        let committer = Committer {
            state: Mutex::new(CommitState {
                next: 0,
                ready: BTreeMap::new(),
                broken: false,
            }),
        };
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error = Mutex::new(None);
        let worker = || {
            while !failed.load(Ordering::SeqCst) {
                let Some(job) = jobs.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let result = match self.layer(job) {
                    Ok(ready) => committer.ready(self, &jobs, job.index, ready),
                    Err(e) => {
                        self.layer_failed(job, &e);
                        Err(e)
                    }
                };
                if let Err(e) = result {
                    failed.store(true, Ordering::SeqCst);
                    lock(&first_error).get_or_insert(e);
                }
            }
        };
        let panicked = thread::scope(|scope| {
            let handles: Vec<_> = (0..PARALLEL_DOWNLOADS.min(jobs.len()))
                .map(|_| scope.spawn(worker))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join())
                .filter(Result::is_err)
                .count()
                > 0
        });
        if let Some(error) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(error);
        }
        if panicked {
            return Err(PullError::WorkerPanicked {
                reference: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Brings one layer as far as it can go before its commit.
    fn layer(&self, job: &LayerInfo) -> Result<Ready<'s>, PullError> {
        let have_blob = self.store.contains(&job.descriptor.digest);
        let Some(sink) = self.sink else {
            if have_blob {
                self.event(job, LayerEvent::AlreadyExists);
            } else {
                self.download(job, |_| Ok(()))?;
                self.event(job, LayerEvent::Complete);
            }
            return Ok(Ready::Nothing);
        };
        let unpacked = sink
            .contains(job.chain_id)
            .map_err(|e| self.layer_err(job, e))?;
        let pending = match (have_blob, unpacked) {
            (true, true) => {
                self.event(job, LayerEvent::AlreadyExists);
                return Ok(Ready::Nothing);
            }
            // Unpacked, but the blob is gone (a crash between the two): push and save need it.
            (false, true) => {
                self.download(job, |_| Ok(()))?;
                self.event(job, LayerEvent::Complete);
                return Ok(Ready::Nothing);
            }
            (true, false) => self.extract(sink, job)?,
            (false, false) => self.download(job, |blob| sink.unpack(job, blob))?,
        };
        self.event(job, LayerEvent::Verifying);
        Ok(Ready::Commit(pending))
    }

    /// Downloads the layer's blob into the store, `consume` reading it on the way.
    fn download<T>(
        &self,
        job: &LayerInfo,
        consume: impl FnMut(&mut dyn Read) -> Result<T, ConsumerError>,
    ) -> Result<T, PullError> {
        let total = job.descriptor.size;
        self.event(job, LayerEvent::Downloading { done: 0, total });
        let report = self.throttled(job, |done| LayerEvent::Downloading { done, total });
        self.client
            .fetch_blob_with(
                self.reference.repository(),
                job.descriptor,
                self.store,
                &report,
                consume,
            )
            .map(|(_, value)| value)
            .map_err(|e| match e {
                ClientError::Consumer { source, .. } => self.layer_err(job, source),
                other => self.registry_err(other),
            })
    }

    /// Unpacks the layer from its blob, already in the store.
    fn extract(
        &self,
        sink: &'s dyn LayerSink,
        job: &LayerInfo,
    ) -> Result<Box<dyn PendingLayer + 's>, PullError> {
        let total = job.descriptor.size;
        self.event(job, LayerEvent::Extracting { done: 0, total });
        let file = self
            .store
            .open_blob(&job.descriptor.digest)
            .map_err(|e| self.store_err(e))?;
        let report = self.throttled(job, |done| LayerEvent::Extracting { done, total });
        let mut reader = Reporting {
            inner: file,
            done: 0,
            report: &report,
        };
        sink.unpack(job, &mut reader)
            .map_err(|e| self.layer_err(job, e))
    }

    /// A byte-count callback sending `event(done)` at most every [`progress::step`] bytes,
    /// at the end, and when the count goes back (a retried download).
    fn throttled<'p>(
        &'p self,
        job: &'p LayerInfo,
        event: impl Fn(u64) -> LayerEvent + 'p,
    ) -> impl Fn(u64) + 'p {
        let total = job.descriptor.size;
        let step = progress::step(total);
        let last = Cell::new(0);
        move |done| {
            if done < last.get() || done >= last.get() + step || done == total {
                last.set(done);
                self.event(job, event(done));
            }
        }
    }

    fn event(&self, job: &LayerInfo, event: LayerEvent) {
        self.progress.layer(job.index, job.descriptor, event);
    }

    fn layer_failed(&self, job: &LayerInfo, error: &PullError) {
        self.event(
            job,
            LayerEvent::Failed {
                error: error.to_string(),
            },
        );
    }

    fn layer_err(&self, job: &LayerInfo, source: SinkError) -> PullError {
        PullError::Layer {
            reference: self.name.clone(),
            digest: job.descriptor.digest.clone(),
            source,
        }
    }
}

impl<'s> Committer<'s> {
    /// Records layer `index` as ready and commits every layer whose turn has come.
    fn ready(
        &self,
        puller: &Puller<'s>,
        jobs: &[LayerInfo],
        index: usize,
        ready: Ready<'s>,
    ) -> Result<(), PullError> {
        let mut state = lock(&self.state);
        if state.broken {
            return Ok(()); // dropping `ready` discards it
        }
        state.ready.insert(index, ready);
        loop {
            let next = state.next;
            let Some(ready) = state.ready.remove(&next) else {
                return Ok(());
            };
            state.next += 1;
            let Ready::Commit(pending) = ready else {
                continue;
            };
            let job = &jobs[next];
            if let Err(e) = pending.commit() {
                state.broken = true;
                let error = puller.layer_err(job, e);
                puller.layer_failed(job, &error);
                return Err(error);
            }
            puller.event(job, LayerEvent::Complete);
        }
    }
}

/// Counts the bytes read through it for progress events.
struct Reporting<'a, R> {
    inner: R,
    done: u64,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for Reporting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(self.done);
        Ok(n)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

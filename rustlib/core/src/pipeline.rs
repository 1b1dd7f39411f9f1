//! The worker threads of the core's crypto, in one place:
//!
//! * [`run_ordered`], a stream run: one producer thread, N worker threads,
//!   and an in-order consumer on the calling thread (stream v2, snapshots);
//! * [`for_each_split`], a batch already in memory split over scoped
//!   threads (packs sealing or opening one call's segments).
//!
//! A stream run:
//!
//! ```text
//!            buffers (pool of `in_flight`)           results (any order)
//!  pool ──► producer ──jobs──► worker × N ──────────────► consumer ──► pool
//!            (reads)  (bounded)  (seal/open)   reorder by sequence  (writes)
//! ```
//!
//! Memory is bounded by the pool: the producer cannot read a segment until
//! the consumer has written one and handed its buffer back, whatever the size
//! of the input. Results are consumed strictly in sequence; a failure (from
//! the producer or a worker) is reported at its position in the sequence, so
//! the error a run returns is always the first one in stream order, and
//! nothing after it is written.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::error::{Error, Result};

/// Cancellation and progress shared with whoever started a run.
#[derive(Debug, Default)]
pub struct Control {
    cancelled: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
}

impl Control {
    pub fn new() -> Self {
        Self::default()
    }
    /// Ask the run to stop; it returns `Error::Cancelled` soon after.
    pub fn cancel(&self) {
        self.cancelled.store(true, Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Relaxed)
    }
    /// Input bytes consumed so far.
    pub fn done(&self) -> u64 {
        self.done.load(Relaxed)
    }
    /// Input size if known (0 = unknown).
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Relaxed);
    }
    pub fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Relaxed);
    }
    pub fn set_done(&self, n: u64) {
        self.done.store(n, Relaxed);
    }
}

/// What the producer uses to get buffers and hand out jobs.
pub struct Feeder<'a, J> {
    pool: &'a Receiver<Vec<u8>>,
    jobs: &'a Sender<(u64, J)>,
    seq: u64,
    control: &'a Control,
}

fn stopped() -> Error {
    Error::Internal("pipeline stopped".into())
}

impl<J> Feeder<'_, J> {
    /// A free buffer; blocks until the consumer returns one.
    pub fn buffer(&mut self) -> Result<Vec<u8>> {
        if self.control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        self.pool.recv().map_err(|_| stopped())
    }

    pub fn emit(&mut self, job: J) -> Result<()> {
        self.jobs.send((self.seq, job)).map_err(|_| stopped())?;
        self.seq += 1;
        Ok(())
    }
}

enum Msg<O> {
    Done(O),
    Failed(Error),
    End,
}

/// Run `produce` on its own thread, `work` on `workers` threads and
/// `consume` here, in sequence order. `consume` hands each buffer back.
pub fn run_ordered<J, O, P, W, C>(
    workers: usize,
    in_flight: usize,
    make_buffer: impl Fn() -> Vec<u8>,
    control: &Control,
    produce: P,
    work: W,
    mut consume: C,
) -> Result<()>
where
    J: Send,
    O: Send,
    P: FnOnce(&mut Feeder<'_, J>) -> Result<()> + Send,
    W: Fn(J, &mut Vec<u8>) -> Result<O> + Sync,
    C: FnMut(O) -> Result<Vec<u8>>,
{
    let workers = workers.max(1);
    let in_flight = in_flight.max(2);
    std::thread::scope(|s| {
        let (pool_tx, pool_rx) = bounded::<Vec<u8>>(in_flight);
        for _ in 0..in_flight {
            pool_tx.send(make_buffer()).expect("pool has room");
        }
        let (job_tx, job_rx) = bounded::<(u64, J)>(in_flight);
        let (res_tx, res_rx) = unbounded::<(u64, Msg<O>)>();

        let res_p = res_tx.clone();
        s.spawn(move || {
            let mut feeder = Feeder {
                pool: &pool_rx,
                jobs: &job_tx,
                seq: 0,
                control,
            };
            let outcome = produce(&mut feeder);
            let msg = match outcome {
                Ok(()) => Msg::End,
                Err(e) => Msg::Failed(e),
            };
            let _ = res_p.send((feeder.seq, msg));
        });
        let work = &work;
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let res_tx = res_tx.clone();
            s.spawn(move || {
                let mut scratch = Vec::new();
                for (seq, job) in job_rx {
                    let msg = match work(job, &mut scratch) {
                        Ok(o) => Msg::Done(o),
                        Err(e) => Msg::Failed(e),
                    };
                    if res_tx.send((seq, msg)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(job_rx);
        drop(res_tx);

        let mut next = 0u64;
        let mut waiting: BTreeMap<u64, Msg<O>> = BTreeMap::new();
        let result = loop {
            let msg = match waiting.remove(&next) {
                Some(m) => m,
                None => match res_rx.recv() {
                    Ok((seq, m)) if seq == next => m,
                    Ok((seq, m)) => {
                        waiting.insert(seq, m);
                        continue;
                    }
                    Err(_) => break Err(Error::Internal("a pipeline thread died".into())),
                },
            };
            match msg {
                Msg::Done(o) => match consume(o) {
                    Ok(buf) => {
                        let _ = pool_tx.send(buf);
                        next += 1;
                    }
                    Err(e) => break Err(e),
                },
                Msg::Failed(e) => break Err(e),
                Msg::End => break Ok(()),
            }
        };
        // Unblock the producer (waiting for a buffer) and the workers.
        drop(pool_tx);
        drop(res_rx);
        result
    })
}

/// Run `f` on every item, split over `threads` threads (the calling thread
/// being one of them): contiguous shares, one per thread. Returns the first
/// error in item order. One thread, or fewer than two items, spawns nothing.
pub fn for_each_split<T: Send>(
    threads: usize,
    items: &mut [T],
    f: impl Fn(&mut T) -> Result<()> + Sync,
) -> Result<()> {
    if threads <= 1 || items.len() < 2 {
        return items.iter_mut().try_for_each(&f);
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let mut chunks = items.chunks_mut(chunk);
        let mine = chunks.next().expect("at least one item");
        let others: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter_mut().try_for_each(f)))
            .collect();
        let mut result = mine.iter_mut().try_for_each(f);
        for h in others {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("a sealing thread panicked".into())));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preserves_order_and_bounds_memory() {
        let control = Control::new();
        let mut out = Vec::new();
        let made = AtomicU64::new(0);
        run_ordered(
            4,
            3,
            || {
                made.fetch_add(1, Relaxed);
                vec![0u8; 8]
            },
            &control,
            |f| {
                for i in 0..1000u64 {
                    let mut b = f.buffer()?;
                    b[0] = (i % 251) as u8;
                    f.emit((i, b))?;
                }
                Ok(())
            },
            |(i, b), _| {
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
                Ok((i, b))
            },
            |(i, b)| {
                out.push(i);
                assert_eq!(b[0], (i % 251) as u8);
                Ok(b)
            },
        )
        .unwrap();
        assert_eq!(out, (0..1000).collect::<Vec<_>>());
        assert_eq!(made.load(Relaxed), 3);
    }

    #[test]
    fn first_error_in_sequence_wins_and_stops_everything() {
        let control = Control::new();
        let mut seen = Vec::new();
        let r = run_ordered(
            3,
            4,
            || vec![0u8; 1],
            &control,
            |f| {
                for i in 0..u64::MAX {
                    let b = f.buffer()?;
                    f.emit((i, b))?;
                }
                Ok(())
            },
            |(i, b), _| {
                if i == 50 || i == 60 {
                    Err(Error::SegmentAuthFailed { index: i })
                } else {
                    Ok((i, b))
                }
            },
            |(i, b)| {
                seen.push(i);
                Ok(b)
            },
        );
        assert!(matches!(r, Err(Error::SegmentAuthFailed { index: 50 })));
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn producer_error_comes_after_earlier_items() {
        let control = Control::new();
        let mut seen = 0;
        let r = run_ordered(
            2,
            4,
            || vec![0u8; 1],
            &control,
            |f| {
                for i in 0..10u64 {
                    let b = f.buffer()?;
                    f.emit((i, b))?;
                }
                Err(Error::TrailingData)
            },
            |j, _| Ok(j),
            |(_, b)| {
                seen += 1;
                Ok(b)
            },
        );
        assert!(matches!(r, Err(Error::TrailingData)));
        assert_eq!(seen, 10);
    }

    #[test]
    fn for_each_split_covers_every_item_and_returns_the_first_error() {
        for threads in [1, 2, 3, 8] {
            let mut items: Vec<u64> = (0..10).collect();
            for_each_split(threads, &mut items, |x| {
                *x *= 2;
                Ok(())
            })
            .unwrap();
            assert_eq!(items, (0..10).map(|x| x * 2).collect::<Vec<_>>());
            let r = for_each_split(threads, &mut items, |x| match *x {
                8 | 16 => Err(Error::SegmentAuthFailed { index: *x }),
                _ => Ok(()),
            });
            assert!(
                matches!(r, Err(Error::SegmentAuthFailed { index: 8 })),
                "{threads}"
            );
        }
    }

    #[test]
    fn cancel_stops_the_run() {
        let control = Control::new();
        control.cancel();
        let r = run_ordered(
            2,
            2,
            || vec![0u8; 1],
            &control,
            |f| loop {
                let b = f.buffer()?;
                f.emit(b)?;
            },
            |j, _| Ok(j),
            Ok,
        );
        assert!(matches!(r, Err(Error::Cancelled)));
    }
}

//! The peers written in Rust: rayon called directly, and the floor of any fork-join
//! on two cores, a cache line bounced between them.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::measure::{median, Cond, FnSubject, Subject};

/// The 2-iteration loop through rayon: each iteration records the pool index of the
/// thread that ran it; returns 1 when the two differ.
fn rayon_forkjoin2(pool: &ThreadPool, who: &[AtomicUsize; 2]) -> u32 {
    pool.install(|| {
        (0..2usize).into_par_iter().with_max_len(1).for_each(|i| {
            who[i].store(
                rayon::current_thread_index().unwrap_or(usize::MAX),
                Ordering::Relaxed,
            );
        })
    });
    u32::from(who[0].load(Ordering::Relaxed) != who[1].load(Ordering::Relaxed))
}

/// A pool of `threads` rayon workers, entered with `install` from the calling
/// (non-pool) thread: the caller blocks while the workers run the loop, which is what
/// a C ABI built naively on rayon does.
pub fn rayon_install(label: &str, pool: &'static ThreadPool) -> Box<dyn Subject> {
    let who: &'static [AtomicUsize; 2] =
        Box::leak(Box::new([AtomicUsize::new(0), AtomicUsize::new(0)]));
    Box::new(
        FnSubject::new(
            label,
            move || rayon_forkjoin2(pool, who),
            move || {
                rayon_forkjoin2(pool, who);
                Ok(())
            },
        )
        .counting_spread(),
    )
}

/// A rayon pool built with `use_current_thread` on a thread of its own, which then
/// runs the loop as a pool member (no hand-off to another thread to start it). Only
/// the building thread gets this, so the subject sends each batch to that thread.
pub struct CurrentThreadPool {
    label: String,
    requests: mpsc::Sender<Option<(Cond, usize)>>,
    replies: mpsc::Receiver<(f64, u64, u64)>,
    thread: Option<JoinHandle<()>>,
    spread: (u64, u64),
}

impl CurrentThreadPool {
    pub fn new(label: &str, threads: usize) -> Result<Self, String> {
        let (req_tx, req_rx) = mpsc::channel::<Option<(Cond, usize)>>();
        let (rep_tx, rep_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rayon-current".into())
            .spawn(move || {
                let pool = match rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .use_current_thread()
                    .build()
                {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let who = [AtomicUsize::new(0), AtomicUsize::new(0)];
                while let Ok(Some((cond, calls))) = req_rx.recv() {
                    rayon_forkjoin2(&pool, &who);
                    let mut two = 0u64;
                    let figure = match cond {
                        Cond::BackToBack => {
                            let start = Instant::now();
                            for _ in 0..calls {
                                two += u64::from(rayon_forkjoin2(&pool, &who));
                            }
                            start.elapsed().as_secs_f64() / calls as f64
                        }
                        Cond::AfterIdle(idle) => {
                            let mut times = Vec::with_capacity(calls);
                            for _ in 0..calls {
                                std::thread::sleep(idle);
                                let start = Instant::now();
                                two += u64::from(rayon_forkjoin2(&pool, &who));
                                times.push(start.elapsed().as_secs_f64());
                            }
                            median(&mut times)
                        }
                    };
                    if rep_tx.send((figure, two, calls as u64)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        ready_rx
            .recv()
            .map_err(|_| "the rayon pool thread died".to_string())??;
        Ok(CurrentThreadPool {
            label: label.to_string(),
            requests: req_tx,
            replies: rep_rx,
            thread: Some(thread),
            spread: (0, 0),
        })
    }
}

impl Subject for CurrentThreadPool {
    fn labels(&self) -> Vec<String> {
        vec![self.label.clone()]
    }

    fn verify(&mut self) -> Result<(), String> {
        self.batch(Cond::BackToBack, 1);
        Ok(())
    }

    fn batch(&mut self, cond: Cond, calls: usize) -> Vec<f64> {
        self.requests
            .send(Some((cond, calls)))
            .expect("the rayon pool thread is alive");
        let (figure, two, all) = self.replies.recv().expect("the rayon pool thread replies");
        self.spread.0 += two;
        self.spread.1 += all;
        vec![figure]
    }

    fn spread(&self) -> Option<(u64, u64)> {
        Some(self.spread)
    }
}

impl Drop for CurrentThreadPool {
    fn drop(&mut self) {
        let _ = self.requests.send(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The value that tells a floor partner to exit.
const STOP: u32 = u32::MAX;

/// The floor of a fork-join: one round trip of a cache line between two threads
/// (the caller writes a request, the partner answers). With `futex`, the partner
/// sleeps in the kernel between requests and each request wakes it with a system
/// call, as a parked worker must be woken; without, it spins and sees the request as
/// soon as the line arrives.
pub struct Floor {
    label: String,
    futex: bool,
}

impl Floor {
    pub fn new(label: &str, futex: bool) -> Self {
        Floor {
            label: label.to_string(),
            futex,
        }
    }
}

impl Subject for Floor {
    fn labels(&self) -> Vec<String> {
        vec![self.label.clone()]
    }

    fn verify(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn batch(&mut self, cond: Cond, calls: usize) -> Vec<f64> {
        let request = AtomicU32::new(0);
        let answer = AtomicU32::new(0);
        let futex = self.futex;
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut seen = 0;
                loop {
                    let r = request.load(Ordering::Acquire);
                    if r == seen {
                        if futex {
                            atomic_wait::wait(&request, seen);
                        } else {
                            std::hint::spin_loop();
                        }
                        continue;
                    }
                    if r == STOP {
                        return;
                    }
                    answer.store(r, Ordering::Release);
                    seen = r;
                }
            });
            let mut seq = 0u32;
            let mut round_trip = || {
                seq += 1;
                request.store(seq, Ordering::Release);
                if futex {
                    atomic_wait::wake_one(&request);
                }
                while answer.load(Ordering::Acquire) != seq {
                    std::hint::spin_loop();
                }
            };
            round_trip();
            let figure = match cond {
                Cond::BackToBack => {
                    let start = Instant::now();
                    for _ in 0..calls {
                        round_trip();
                    }
                    start.elapsed().as_secs_f64() / calls as f64
                }
                Cond::AfterIdle(idle) => {
                    let mut times = Vec::with_capacity(calls);
                    for _ in 0..calls {
                        std::thread::sleep(idle);
                        let start = Instant::now();
                        round_trip();
                        times.push(start.elapsed().as_secs_f64());
                    }
                    median(&mut times)
                }
            };
            request.store(STOP, Ordering::Release);
            atomic_wait::wake_one(&request);
            vec![figure]
        })
    }
}

/// SUM of doubles with rayon's parallel iterator inside `pool.install`: what a Rust
/// user writes (`par_iter().sum()`), for reference beside the C runtimes.
pub fn rayon_sum(
    label: &str,
    pool: &'static ThreadPool,
    x: &'static [f64],
    verify: impl FnMut(f64) -> Result<(), String> + Send + 'static,
) -> Box<dyn Subject> {
    let mut verify = verify;
    Box::new(FnSubject::new(
        label,
        move || {
            std::hint::black_box(pool.install(|| x.par_iter().sum::<f64>()));
            0
        },
        move || verify(pool.install(|| x.par_iter().sum::<f64>())),
    ))
}

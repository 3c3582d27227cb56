use super::*;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

#[test]
fn every_part_runs_once_with_its_index() {
    for k in [1, 2, 3, 4, 7] {
        let seen = Mutex::new(Vec::new());
        fork_join(k, usize::MAX, &|tid, team| {
            assert_eq!(team, k);
            assert_eq!(thread_index(), tid);
            seen.lock().unwrap().push(tid);
        })
        .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..k).collect::<Vec<_>>());
        assert_eq!(thread_index(), 0);
    }
}

#[test]
fn nested_calls_run_inline() {
    let inner_sizes = Mutex::new(Vec::new());
    fork_join(3, usize::MAX, &|_, _| {
        let count = AtomicUsize::new(0);
        fork_join(4, usize::MAX, &|tid, team| {
            assert_eq!((tid, team), (0, 1));
            count.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        inner_sizes
            .lock()
            .unwrap()
            .push(count.load(Ordering::Relaxed));
        assert_eq!(num_threads(), 1);
    })
    .unwrap();
    assert_eq!(inner_sizes.into_inner().unwrap(), vec![1, 1, 1]);
}

#[test]
fn max_useful_caps_the_team() {
    assert_eq!(team_size(8, 3), 3);
    assert_eq!(team_size(8, 0), 1);
    assert_eq!(team_size(2, 100), 2);
}

#[test]
fn worker_panic_reaches_the_caller_and_team_survives() {
    let r = std::panic::catch_unwind(|| {
        fork_join(2, usize::MAX, &|tid, _| {
            if tid == 1 {
                panic!("boom in part 1");
            }
        })
    });
    assert!(r.is_err());
    let count = AtomicUsize::new(0);
    fork_join(2, usize::MAX, &|_, _| {
        count.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 2);
}

#[test]
fn panics_in_every_part_leave_nothing_for_the_next_call() {
    // The leader's part and the workers' parts all panic: one panic reaches the
    // caller, and none is kept over to be raised by the next, healthy call.
    for _ in 0..50 {
        let r = std::panic::catch_unwind(|| {
            fork_join(3, usize::MAX, &|tid, _| panic!("boom in part {tid}"))
        });
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(|| {
            fork_join(3, usize::MAX, &|_, _| {
                count.fetch_add(1, Ordering::Relaxed);
            })
        });
        assert!(r.is_ok(), "a panic of the previous call was raised again");
        assert_eq!(count.load(Ordering::Relaxed), 3);
    }
}

#[test]
fn concurrent_callers_all_complete() {
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..200 {
                    let count = AtomicUsize::new(0);
                    fork_join(3, usize::MAX, &|_, _| {
                        count.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                    assert_eq!(count.load(Ordering::Relaxed), 3);
                }
            });
        }
    });
}

#[test]
fn post_word_round_trips() {
    use team::Post;
    use team::Unwind::{CatchPanics, PassForced};
    for (team, stride, unwind, posted) in [
        (2, 2, CatchPanics, 0),
        (MAX_THREADS, MAX_THREADS, PassForced, u32::MAX),
        (MAX_THREADS, MAX_THREADS, CatchPanics, u32::MAX),
        (3, 1, PassForced, 12345),
        (7, 4, CatchPanics, 1 << 31),
    ] {
        let p = Post {
            team,
            stride,
            unwind,
            posted,
        };
        assert_eq!(Post::unpack(p.pack()), p);
    }
}

/// Runs a copied job that captures `words` (and two more words) on a team of `k`,
/// each part recording its index and the sum of `words`.
fn run_summing_job<const N: usize>(k: usize, words: [u64; N], seen: &Mutex<Vec<(usize, u64)>>) {
    fork_join_copy(k, usize::MAX, move |tid, team| {
        assert_eq!(team, k);
        assert_eq!(thread_index(), tid);
        seen.lock().unwrap().push((tid, words.iter().sum()));
    })
    .unwrap();
}

#[test]
fn copied_jobs_run_every_part_once_and_see_their_data() {
    // A job that fits the signal's line (40 bytes), one that needs the payload's
    // second line (96 bytes), and one too large for the mailbox (144 bytes, which
    // takes the pointer path): each runs each part once, with the captured values.
    let seen = Mutex::new(Vec::new());
    for k in [1, 2, 3, 5] {
        run_summing_job(k, [11, 22, 33], &seen);
        run_summing_job(k, [3; 10], &seen);
        run_summing_job(k, [7; 16], &seen);
        let mut got = std::mem::take(&mut *seen.lock().unwrap());
        got.sort();
        let mut want: Vec<_> = (0..k).flat_map(|t| [(t, 66), (t, 30), (t, 112)]).collect();
        want.sort();
        assert_eq!(got, want, "team of {k}");
    }
}

#[test]
fn copied_jobs_alternate_with_pointer_jobs() {
    // The mailbox holds either kind of job; switching between them call after call
    // must never run one with the other's payload.
    for i in 0..if cfg!(miri) { 40 } else { 2000usize } {
        let hits = AtomicUsize::new(0);
        let hits_ref = &hits;
        if i % 2 == 0 {
            fork_join_copy(2, usize::MAX, move |tid, _| {
                hits_ref.fetch_add(tid + 1 + i, Ordering::Relaxed);
            })
            .unwrap();
        } else {
            fork_join(2, usize::MAX, &|tid, _| {
                hits.fetch_add(tid + 1 + i, Ordering::Relaxed);
            })
            .unwrap();
        }
        assert_eq!(hits.load(Ordering::Relaxed), 3 + 2 * i);
    }
}

#[test]
fn copied_job_panic_reaches_the_caller() {
    let r = std::panic::catch_unwind(|| {
        fork_join_copy(2, usize::MAX, |tid, _| {
            if tid == 1 {
                panic!("boom in copied part 1");
            }
        })
    });
    assert!(r.is_err());
    let count = AtomicUsize::new(0);
    let count_ref = &count;
    fork_join_copy(2, usize::MAX, move |_, _| {
        count_ref.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 2);
}

#[test]
fn lateness_counts_from_when_the_worker_began_to_wait() {
    use placement::lateness;
    // Waiting before the post: late since the post.
    assert_eq!(lateness(10_000, 9_000, 5_000), 1_000);
    // A thread that began to wait after the post (its start-up): late since then.
    assert_eq!(lateness(10_000, 1_000, 9_990), 10);
    // Posts carry the low 32 bits of the tick count.
    let now = (7u64 << 32) + 500;
    assert_eq!(lateness(now, u32::MAX - 99, 0), 600);
}

#[test]
fn lateness_saturates_under_negative_skew() {
    use placement::lateness;
    // The leader's TSC ahead of the worker's: the post seems to come 500 ticks after
    // the worker's reading. Not late at all (it read as 2^32 - 500, or as the whole
    // wait since `waiting_since`, before).
    let now = 5_000_000_000u64;
    assert_eq!(lateness(now, (now + 500) as u32, 0), 0);
    assert_eq!(lateness(now, (now + 500) as u32, now - 10), 0);
    // A worker that began to wait "after" now (its own reading on another CPU).
    assert_eq!(lateness(now, now as u32, now + 7), 0);
}

#[test]
fn workers_skipped_by_many_calls_still_get_the_next_post() {
    // Post counters are 8 bits in unit tests (`team::Seq`): 1000 calls of 2 parts,
    // each skipping the team's second worker, include gaps of exact multiples of
    // 2^8; with a team-wide counter the next 3-part call saw that worker "done"
    // already and dropped its part.
    let opts_parts = |k: usize| {
        let seen = Mutex::new(Vec::new());
        fork_join(k, usize::MAX, &|tid, _| seen.lock().unwrap().push(tid)).unwrap();
        let mut v = seen.into_inner().unwrap();
        v.sort();
        v
    };
    assert_eq!(opts_parts(3), vec![0, 1, 2]);
    // Under Miri two rounds (gaps of 2^8 and 2^8 + 1 calls): each round is 256
    // fork-joins, half a minute of Miri's time for all four.
    let rounds = if cfg!(miri) { 2 } else { 4 };
    for round in 0..rounds {
        for _ in 0..256 + round {
            assert_eq!(opts_parts(2), vec![0, 1]);
        }
        assert_eq!(opts_parts(3), vec![0, 1, 2], "round {round}");
    }
}

use super::*;
use std::sync::Mutex;

/// Runs a chunker with `team` real threads and returns how often each item was seen.
fn coverage(n: usize, team: usize, schedule: Schedule, chunk: usize) -> Vec<u32> {
    let chunker = Chunker::for_team(n, schedule, chunk, team);
    let seen = Mutex::new(vec![0u32; n]);
    std::thread::scope(|s| {
        for tid in 0..team {
            let (chunker, seen) = (&chunker, &seen);
            s.spawn(move || {
                chunker.for_each(tid, team, |r| {
                    assert!(!r.is_empty());
                    let mut seen = seen.lock().unwrap();
                    for i in r {
                        seen[i] += 1;
                    }
                    true
                })
            });
        }
    });
    seen.into_inner().unwrap()
}

#[test]
fn every_item_exactly_once() {
    for schedule in [
        Schedule::Auto,
        Schedule::Static,
        Schedule::Dynamic,
        Schedule::Guided,
    ] {
        // Under Miri (tests/miri.sh), which spawns each thread at great cost, the
        // corners only: empty, one item, fewer items than threads, several chunks.
        let (ns, teams, chunks): (&[usize], &[usize], &[usize]) = if cfg!(miri) {
            (&[0, 1, 7, 100], &[1, 2, 3], &[0, 1, 64])
        } else {
            (
                &[0, 1, 2, 7, 100, 1001],
                &[1, 2, 3, 4, 7],
                &[0, 1, 3, 64, 5000],
            )
        };
        for &n in ns {
            for &team in teams {
                for &chunk in chunks {
                    let seen = coverage(n, team, schedule, chunk);
                    assert!(
                        seen.iter().all(|&c| c == 1),
                        "{schedule:?} n={n} team={team} chunk={chunk}"
                    );
                }
            }
        }
    }
}

#[test]
fn static_blocks_match_openmp() {
    assert_eq!(static_block(10, 3, 0), 0..4);
    assert_eq!(static_block(10, 3, 1), 4..7);
    assert_eq!(static_block(10, 3, 2), 7..10);
    assert_eq!(static_block(2, 4, 3), 2..2);
}

#[test]
fn stopping_early_stops() {
    let chunker = Chunker::new(100, Schedule::Dynamic, 10);
    let mut calls = 0;
    chunker.for_each(0, 1, |_| {
        calls += 1;
        calls < 3
    });
    assert_eq!(calls, 3);
}

#[test]
fn a_team_other_than_planned_still_covers_everything() {
    // Planned for 4, run by 1 (a call that had to run inline): shared counter path.
    let chunker = Chunker::for_team(1000, Schedule::Dynamic, 7, 4);
    let mut seen = vec![0u32; 1000];
    chunker.for_each(0, 1, |r| {
        r.for_each(|i| seen[i] += 1);
        true
    });
    assert!(seen.iter().all(|&c| c == 1));
}

#[test]
fn dynamic_shares_are_stolen_from_a_stalled_thread() {
    // Thread 0 stalls inside its first item (if it gets one) until the others have
    // returned: they must have taken the rest of its share, each item still run
    // exactly once, and thread 0 must find nothing left when it resumes.
    use std::sync::atomic::AtomicUsize;
    let n = 400;
    let team = 3;
    let chunker = Chunker::for_team(n, Schedule::Dynamic, 1, team);
    let seen = Mutex::new(vec![0u32; n]);
    let by_thread = Mutex::new(vec![0usize; team]);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for tid in 0..team {
            let (chunker, seen, by_thread, finished) = (&chunker, &seen, &by_thread, &finished);
            s.spawn(move || {
                chunker.for_each(tid, team, |r| {
                    while tid == 0 && finished.load(Ordering::SeqCst) < team - 1 {
                        std::thread::yield_now();
                    }
                    by_thread.lock().unwrap()[tid] += r.len();
                    for i in r {
                        seen.lock().unwrap()[i] += 1;
                    }
                    true
                });
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
    // One item if thread 0 started before the others had taken its whole share,
    // none if it started after.
    assert!(by_thread.into_inner().unwrap()[0] <= 1);
}

#[test]
fn shares_split_from_the_back() {
    let s = Share::default();
    s.set(10, 15);
    assert_eq!(s.take_back_half(), Some((12, 15)));
    assert_eq!(s.take_front(), Some(10));
    assert_eq!(s.take_front(), Some(11));
    assert_eq!(s.take_front(), None);
    assert_eq!(s.take_back_half(), None);
    s.set(3, 4);
    assert_eq!(s.take_back_half(), Some((3, 4)));
    assert_eq!(s.left(), 0);
}

#[test]
fn copied_loop_bodies_cover_the_range_and_report_failures() {
    use crate::parallel_for::parallel_for_copy;
    use std::sync::atomic::AtomicU32;
    let n = 1000;
    let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
    let hits_ref = &hits;
    for threads in [1, 2, 3] {
        for schedule in [Schedule::Auto, Schedule::Static, Schedule::Dynamic] {
            let opts = Options::new(threads, schedule, 0).unwrap();
            parallel_for_copy(5..n, &opts, move |r| {
                for i in r {
                    hits_ref[i].fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), ()>(())
            })
            .unwrap();
        }
    }
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(
            h.load(Ordering::Relaxed),
            if i < 5 { 0 } else { 9 },
            "index {i}"
        );
    }
    // A failing range comes back with its bounds and cause.
    let opts = Options::new(2, Schedule::Static, 0).unwrap();
    let err = parallel_for_copy(0..10, &opts, |r| if r.start == 5 { Err(7) } else { Ok(()) })
        .unwrap_err();
    match err {
        crate::Error::Cancelled { range, cause } => assert_eq!((range, cause), (5..10, 7)),
        other => panic!("unexpected {other:?}"),
    }
    let (hi, lo) = (3, 1);
    assert!(parallel_for_copy(hi..lo, &opts, |_| Ok::<(), ()>(())).is_err());
    assert!(parallel_for_copy(3..3, &opts, |_| Err::<(), ()>(())).is_ok());
}

use super::*;
use std::sync::Mutex;

/// Runs a chunker with `team` real threads and returns how often each item was seen.
fn coverage(n: usize, team: usize, schedule: Schedule, chunk: usize) -> Vec<u32> {
    let chunker = Chunker::new(n, schedule, chunk);
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
        for n in [0, 1, 2, 7, 100, 1001] {
            for team in [1, 2, 3, 4, 7] {
                for chunk in [0, 1, 3, 64, 5000] {
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

use super::*;

#[test]
fn block_len_depends_only_on_len_and_size() {
    // Small inputs are one block.
    assert_eq!(block_len(0, 8), 1);
    assert_eq!(block_len(1000, 8), 1000);
    assert_eq!(
        block_len(ONE_BLOCK_BYTES / 8 - 1, 8),
        ONE_BLOCK_BYTES / 8 - 1
    );
    assert_eq!(block_len(ONE_BLOCK_BYTES / 8, 8), MIN_BLOCK_BYTES / 8);
    assert_eq!(block_len(100_000_000, 8), MAX_BLOCK_BYTES / 8);
    assert_eq!(block_len(usize::MAX, 8), MAX_BLOCK_BYTES / 8);
    for len in [ONE_BLOCK_BYTES / 4, 123_456, 1 << 20] {
        let b = block_len(len, 4);
        assert!(b.is_power_of_two() && b * 4 >= MIN_BLOCK_BYTES && b * 4 <= MAX_BLOCK_BYTES);
    }
}

#[test]
fn tree_is_level_by_level() {
    let mut parts: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut idx: Vec<usize> = (0..parts.len()).collect();
    let r = tree_combine(&mut idx, |a, b| {
        parts.push(format!("({}{})", parts[a], parts[b]));
        parts.len() - 1
    })
    .unwrap();
    assert_eq!(parts[r], "(((ab)(cd))e)");
    assert_eq!(tree_combine::<u8>(&mut [], |a, _| a), None);
}

#[test]
fn reduce_with_is_independent_of_team_size() {
    // A non-commutative combine (string concatenation) must still come out in order.
    let run = |threads| {
        let opts = Options::with_threads(threads).unwrap();
        reduce_with(
            0..300,
            &opts,
            String::new,
            |r, acc: &mut String| {
                for i in r {
                    acc.push(char::from(b'a' + (i % 26) as u8));
                }
                Ok::<(), ()>(())
            },
            |acc, other| acc.push_str(&other),
        )
        .unwrap()
    };
    let expect: String = (0..300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for t in [1, 2, 3, 4, 7] {
        assert_eq!(run(t), expect);
    }
}

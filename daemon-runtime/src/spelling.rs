//! How far a word is from another: for the "did you mean" of a mistyped action or sink.

/// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// adjacent characters (`stauts` for `status`) count 1 each.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
#[test]
fn a_swap_is_one_edit() {
    assert_eq!(edit_distance("stauts", "status"), 1);
    assert_eq!(edit_distance("jurnal", "journal"), 1);
    assert_eq!(edit_distance("", "stop"), 4);
}

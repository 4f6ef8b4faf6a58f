//! A table-driven check of the range limits of a settings struct.

/// One numeric settings key: its name, how to set it on `S`, and the least and the greatest
/// value its validation accepts.
pub type Bound<S> = (&'static str, fn(&mut S, u64), u64, u64);

/// Checks every row of `table` on a copy of `valid` (which must itself pass `validate`): the
/// key is accepted at its minimum and at its maximum, and refused one below the minimum and
/// one above the maximum (where those exist) with one line naming the key and its range.
#[track_caller]
pub fn assert_bounds<S: Clone>(
    valid: &S,
    validate: impl Fn(&S) -> Result<(), String>,
    table: &[Bound<S>],
) {
    assert_eq!(validate(valid), Ok(()), "the starting point must be valid");
    let with = |set: fn(&mut S, u64), value: u64| {
        let mut settings = valid.clone();
        set(&mut settings, value);
        validate(&settings)
    };
    for &(key, set, min, max) in table {
        assert!(min <= max, "{key}: empty range {min}..={max}");
        assert_eq!(with(set, min), Ok(()), "{key} = {min} (its minimum)");
        assert_eq!(with(set, max), Ok(()), "{key} = {max} (its maximum)");
        let outside = [min.checked_sub(1), max.checked_add(1)];
        for value in outside.into_iter().flatten() {
            let error = with(set, value)
                .err()
                .unwrap_or_else(|| panic!("{key} = {value} was accepted"));
            assert!(
                error.contains(key) && error.contains(&format!("{min}..={max}")),
                "{key} = {value}: the error must name the key and its range: {error}"
            );
            assert!(!error.contains('\n'), "{key}: one line: {error}");
        }
    }
}

//! Lists of names that stay one readable line however large the fleet: a warning, an error
//! or `/readyz` naming "every target that ..." would otherwise name 10,000 of them.

use std::fmt::{Display, Write};

/// How many names a list shows before "and N more".
pub const SHOWN: usize = 10;

/// `items` joined with ", ", the first [`SHOWN`] of them and then "and N more".
pub fn list<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    let mut more = 0usize;
    for (i, item) in items.into_iter().enumerate() {
        if i >= SHOWN {
            more += 1;
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{item}");
    }
    if more > 0 {
        let _ = write!(out, " and {more} more");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_list_is_joined_whole() {
        assert_eq!(list(["leaf1", "leaf2"]), "leaf1, leaf2");
        assert_eq!(list(Vec::<String>::new()), "");
        let ten: Vec<String> = (1..=SHOWN).map(|i| format!("leaf{i}")).collect();
        assert_eq!(list(&ten), ten.join(", "));
    }

    #[test]
    fn a_long_list_names_the_first_and_counts_the_rest() {
        let names: Vec<String> = (1..=10_000).map(|i| format!("leaf{i}")).collect();
        let shown = list(&names);
        assert_eq!(shown, format!("{} and 9990 more", names[..SHOWN].join(", ")));
        assert!(!shown.contains("leaf11,"), "{shown}");
    }
}

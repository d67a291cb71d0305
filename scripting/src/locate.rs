//! Where in a config file a problem is: byte offsets to line:col, and the place an option is
//! written. Evaluation loses positions (a map is built at run time, a data file is parsed into
//! values), so an option is found again in the text: the first `key:` after the `app(` call
//! in a script, the `key` nearest to the app's name in a data file.

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..floor(source, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The byte offset of a 1-based line and column (clamped to the text).
pub fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let start: usize = source
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    floor(source, start + column.saturating_sub(1))
}

fn floor(source: &str, mut offset: usize) -> usize {
    offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every offset where `key` is written as an option name: a whole word, maybe quoted,
/// followed by `:` or `=`.
fn key_sites<'a>(source: &'a str, key: &'a str) -> impl Iterator<Item = usize> + 'a {
    source.match_indices(key).filter_map(move |(at, _)| {
        let before = source[..at].chars().next_back();
        let after = source[at + key.len()..].trim_start_matches(['"', '\'']);
        let after = after.trim_start_matches([' ', '\t']);
        let whole = before.is_none_or(|c| !is_word(c)) && !after.starts_with(is_word);
        (whole && (after.starts_with(':') || after.starts_with('='))).then_some(at)
    })
}

/// The first place `key` is written at or after `from`.
pub fn key_after(source: &str, from: usize, key: &str) -> Option<usize> {
    key_sites(source, key).find(|&at| at >= from)
}

/// The place `key` is written nearest to `anchor`.
pub fn key_near(source: &str, anchor: usize, key: &str) -> Option<usize> {
    key_sites(source, key).min_by_key(|&at| at.abs_diff(anchor))
}

/// Where a value (an app's name) is written, quoted or not.
pub fn value_site(source: &str, value: &str) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    source.match_indices(value).find_map(|(at, _)| {
        let before = source[..at].chars().next_back();
        let after = source[at + value.len()..].chars().next();
        let bounded = before.is_none_or(|c| !is_word(c) && c != '-')
            && after.is_none_or(|c| !is_word(c) && c != '-');
        bounded.then_some(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_lines_agree() {
        let text = "ab\ncdé\n\nx";
        for (offset, expected) in [
            (0, (1, 1)),
            (3, (2, 1)),
            (5, (2, 3)),
            (8, (3, 1)),
            (9, (4, 1)),
        ] {
            assert_eq!(line_col(text, offset), expected);
            assert_eq!(offset_of(text, expected.0, expected.1), offset);
        }
        assert_eq!(line_col(text, 999), (4, 2));
    }

    #[test]
    fn keys_are_found_as_option_names_only() {
        let text =
            "app(#{ name: \"instances\", max_instances: 2, instances: 4 })\n{\"instances\" : 1}";
        let first = key_after(text, 0, "instances").unwrap();
        assert_eq!(&text[first - 2..first], ", ");
        assert_eq!(
            key_near(text, text.len(), "instances"),
            Some(text.rfind("instances").unwrap())
        );
        assert_eq!(key_after(text, 0, "cron_restart"), None);
        assert_eq!(value_site("name: api-2\nname: api", "api"), Some(18));
    }
}

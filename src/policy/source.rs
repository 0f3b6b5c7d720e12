//! Splitting a Cedar file into statements with their line numbers.
//!
//! Each policy is then parsed on its own: errors can name the file and line of
//! the policy, and memory stays low (parsing one big string costs several times
//! more per policy than parsing policies one by one).

/// One statement of a policy file.
pub struct Statement<'a> {
    /// 1-based line where the statement starts.
    pub line: usize,
    pub text: &'a str,
}

/// Splits Cedar source at top-level `;`, skipping `//` comments and string
/// literals (the only places a `;` can appear inside a statement).
pub fn statements(src: &str) -> Vec<Statement<'_>> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut lines = LineCursor::default();
    let (mut i, mut start) = (0, 0);
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    // Cedar ends a comment at `\n` or `\r`.
                    while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                        i += 1;
                    }
                    continue;
                }
                b';' => {
                    push(src, start, i + 1, &mut lines, &mut out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    push(src, start, src.len(), &mut lines, &mut out);
    out
}

/// Line numbers of increasing offsets, each newline counted once (counting
/// from the file's start for every statement made loading quadratic: 70% of a
/// 3.4 s start-up at 10,000 policies).
#[derive(Default)]
struct LineCursor {
    offset: usize,
    /// 0-based line of `offset`.
    line: usize,
}

impl LineCursor {
    /// 1-based line of `offset` (not before the previous one asked).
    fn line_at(&mut self, src: &str, offset: usize) -> usize {
        let to = offset.max(self.offset).min(src.len());
        self.line += src
            .as_bytes()
            .get(self.offset..to)
            .unwrap_or_default()
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.offset = to;
        self.line + 1
    }
}

fn push<'a>(
    src: &'a str,
    start: usize,
    end: usize,
    lines: &mut LineCursor,
    out: &mut Vec<Statement<'a>>,
) {
    let Some(text) = src.get(start..end) else {
        return;
    };
    // Skip leading blank lines and comments so `line` points at the policy itself.
    let mut offset = 0;
    for l in text.split_inclusive(['\n', '\r']) {
        let t = l.trim();
        if t.is_empty() || t.starts_with("//") {
            offset += l.len();
        } else {
            break;
        }
    }
    let Some(body) = text.get(offset..) else {
        return;
    };
    if body.trim().is_empty() {
        return;
    }
    let line = lines.line_at(src, start + offset);
    out.push(Statement { line, text: body });
}

/// Where `src` has a carriage return not followed by a line feed: Cedar
/// ends a comment there, editors and line counts may not. Policy files must
/// use LF or CRLF line ends (1-based line of the first one).
pub fn lone_carriage_return(src: &str) -> Option<usize> {
    let b = src.as_bytes();
    let at = b
        .iter()
        .enumerate()
        .position(|(i, c)| *c == b'\r' && b.get(i + 1) != Some(&b'\n'))?;
    Some(line_of(src, at))
}

/// 1-based line number of a byte offset.
pub fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_semicolons_outside_strings_and_comments() {
        let src = "// a; comment\npermit(principal, action, resource)\nwhen { \"x;y\" == \"x;y\" };\n\n@id(\"b\")\nforbid(principal, action, resource);\n// trailing";
        let st = statements(src);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].line, 2);
        assert!(st[0].text.starts_with("permit"));
        assert_eq!(st[1].line, 5);
        assert!(st[1].text.ends_with(';'));
    }

    #[test]
    fn lines_of_many_statements_match_a_full_count() {
        let src: String = (0..500)
            .map(|i| format!("// c{i}\n@id(\"p{i}\")\npermit(principal, action, resource);\n\n"))
            .collect();
        let st = statements(&src);
        assert_eq!(st.len(), 500);
        for s in &st {
            let offset = s.text.as_ptr() as usize - src.as_ptr() as usize;
            assert_eq!(s.line, line_of(&src, offset));
        }
        assert_eq!(st[499].line, 499 * 4 + 2);
    }

    #[test]
    fn unterminated_trailing_text_is_kept_so_the_parser_reports_it() {
        let st = statements("permit(principal, action, resource)");
        assert_eq!(st.len(), 1);
    }
}

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
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b';' => {
                    push(src, start, i + 1, &mut out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    push(src, start, src.len(), &mut out);
    out
}

fn push<'a>(src: &'a str, start: usize, end: usize, out: &mut Vec<Statement<'a>>) {
    let Some(text) = src.get(start..end) else {
        return;
    };
    // Skip leading blank lines and comments so `line` points at the policy itself.
    let mut offset = 0;
    for l in text.split_inclusive('\n') {
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
    let line = line_of(src, start + offset);
    out.push(Statement { line, text: body });
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
    fn unterminated_trailing_text_is_kept_so_the_parser_reports_it() {
        let st = statements("permit(principal, action, resource)");
        assert_eq!(st.len(), 1);
    }
}

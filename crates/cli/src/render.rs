//! Text output for people: aligned tables, and [`outln`], the `println!` of isol.

/// `println!` that returns the error instead of panicking (`isol ps > /dev/full`, a
/// closed stdout): isol reports it like any other failure, with its exit status 125.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
            .map_err(|e| anyhow::anyhow!("write to standard output: {e}"))
    }};
}
pub(crate) use outln;

/// Prints rows with columns padded to the widest cell; the last column is not padded.
pub fn print_table<const N: usize>(rows: &[[String; N]]) -> anyhow::Result<()> {
    print_rows(rows, 0)
}

/// [`print_table`] without its first `skip` rows, which still count for the widths (a
/// header printed once, above rows that come later).
pub fn print_rows<const N: usize>(rows: &[[String; N]], skip: usize) -> anyhow::Result<()> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows.iter().skip(skip) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        outln!("{}", line.trim_end())?;
    }
    Ok(())
}

/// A command line as a shell would read it back, on one line: a word with a space, a
/// quote or another character the shell treats specially goes in single quotes, one
/// with a control character (a newline in `sh -c` scripts) in `$'…'` with escapes. So a
/// box stays one row of `isol ps`, and the line can be pasted into a shell.
pub fn command_line(argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|w| shell_word(w)).collect();
    words.join(" ")
}

fn shell_word(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        return w.to_string();
    }
    if !w.chars().any(char::is_control) {
        return format!("'{}'", w.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in w.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\r' => out.push_str(r"\r"),
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!(r"\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!(r"\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A cgroup's limits on one line, the fields set as `--json` names them, sizes with
/// units: `memory.max=64M pids.max=64 cpu.weight=50`.
pub fn limits_line(r: &isol_ns_core::Resources) -> String {
    fn flatten(path: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    flatten(&p, v, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    flatten(&format!("{path}[{i}]"), v, out);
                }
            }
            serde_json::Value::Number(n) if path.starts_with("memory.") => {
                let size = n.as_u64().map(isol_ns_core::units::format_size);
                out.push(format!("{path}={}", size.unwrap_or_else(|| n.to_string())));
            }
            serde_json::Value::String(s) => out.push(format!("{path}={s}")),
            other => out.push(format!("{path}={other}")),
        }
    }
    let mut parts = Vec::new();
    if let Ok(v) = serde_json::to_value(r) {
        flatten("", &v, &mut parts);
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_read_back_as_the_same_words() {
        let argv = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        for (words, line) in [
            (&["/bin/true"][..], "/bin/true"),
            (&["sleep", "30"], "sleep 30"),
            (
                &["sh", "-c", "sleep 30\necho x"],
                r"sh -c $'sleep 30\necho x'",
            ),
            (&["echo", "it's", ""], r"echo 'it'\''s' ''"),
            (&["env", "A=b c", "x;y", "*"], "env 'A=b c' 'x;y' '*'"),
            (&["printf", "\t\\\x01é"], r"printf $'\t\\\x01é'"),
        ] {
            assert_eq!(command_line(&argv(words)), line);
        }
        // A shell gives back the words: each line is one argument per line of output.
        let cases = [
            vec![
                "a b",
                "it's",
                "",
                "sleep 30\necho x",
                "\t\\\x01é",
                "$HOME",
                "!x",
            ],
            vec!["*", "~", "a\"b", "#c", "\u{7f}"],
        ];
        for words in cases {
            let line = command_line(&argv(&words));
            let out = std::process::Command::new("bash")
                .args([
                    "-c",
                    &format!("for w in {line}; do printf '%s\\0' \"$w\"; done"),
                ])
                .output()
                .unwrap();
            let back: Vec<&str> = std::str::from_utf8(&out.stdout)
                .unwrap()
                .split_terminator('\0')
                .collect();
            assert_eq!(back, words, "{line}");
        }
    }
}

//! The Markdown `summary.md` and `comparison.md` are written in, as HTML: headings, paragraphs,
//! bullet lists, pipe tables with their column alignment, and `*emphasis*`, every text escaped.
//! Only what this workbench writes, not Markdown at large.

use std::fmt::Write;

/// `text` with HTML's special characters escaped, for text and attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped `text` with `*emphasis*` as `<em>`.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut parts = escape(text)
        .split('*')
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter();
    out.extend(parts.next());
    // Asterisks pair up; an unpaired one stays as it was.
    while let Some(inside) = parts.next() {
        match parts.next() {
            Some(after) if !inside.is_empty() => write!(out, "<em>{inside}</em>{after}").unwrap(),
            Some(after) => write!(out, "**{after}").unwrap(),
            None => write!(out, "*{inside}").unwrap(),
        }
    }
    out
}

/// `markdown` as HTML, its `#` headings as `<h{top}>`, `##` as `<h{top + 1}>` and so on.
pub fn to_html(markdown: &str, top: usize) -> String {
    let mut out = String::new();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes > 0 && line[hashes..].starts_with(' ') {
            let level = (top + hashes - 1).min(6);
            writeln!(out, "<h{level}>{}</h{level}>", inline(line[hashes..].trim())).unwrap();
        } else if line.starts_with('|') {
            let mut rows = vec![line];
            while let Some(next) = lines.next_if(|l| l.starts_with('|')) {
                rows.push(next.trim_end());
            }
            table(&mut out, &rows);
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push_str("<ul>\n");
            writeln!(out, "<li>{}</li>", inline(item)).unwrap();
            while let Some(next) = lines.next_if(|l| l.starts_with("- ")) {
                writeln!(out, "<li>{}</li>", inline(&next[2..])).unwrap();
            }
            out.push_str("</ul>\n");
        } else {
            let mut text = line.to_owned();
            while let Some(next) = lines.next_if(|l| !l.trim().is_empty() && !starts_block(l)) {
                text.push(' ');
                text.push_str(next.trim());
            }
            writeln!(out, "<p>{}</p>", inline(&text)).unwrap();
        }
    }
    out
}

fn starts_block(line: &str) -> bool {
    line.starts_with('#') || line.starts_with('|') || line.starts_with("- ")
}

/// The cells of a table row `| a | b |`.
fn cells(row: &str) -> Vec<&str> {
    let row = row.trim().trim_start_matches('|');
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(str::trim).collect()
}

/// A pipe table: header, alignment row (`---:` right-aligned), body. References' rows (an
/// emphasised first cell) get the class `reference`.
fn table(out: &mut String, rows: &[&str]) {
    let header = cells(rows[0]);
    let aligned = rows.get(1).filter(|r| {
        cells(r)
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|c| "-:".contains(c)))
    });
    let right: Vec<bool> = match aligned {
        Some(row) => cells(row).iter().map(|c| c.ends_with(':')).collect(),
        None => vec![false; header.len()],
    };
    let class = |i: usize| {
        if right.get(i) == Some(&true) {
            " class=\"num\""
        } else {
            ""
        }
    };
    out.push_str("<div class=\"table\"><table>\n<thead><tr>");
    for (i, cell) in header.iter().enumerate() {
        write!(out, "<th{}>{}</th>", class(i), inline(cell)).unwrap();
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &rows[1 + usize::from(aligned.is_some())..] {
        let cells = cells(row);
        let reference = cells.first().is_some_and(|c| c.starts_with('*'));
        out.push_str(if reference { "<tr class=\"reference\">" } else { "<tr>" });
        for (i, cell) in cells.iter().enumerate() {
            let tag = if i == 0 { "th scope=\"row\"" } else { "td" };
            let end = if i == 0 { "th" } else { "td" };
            write!(out, "<{tag}{}>{}</{end}>", class(i), inline(cell)).unwrap();
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_keep_their_alignment_and_mark_the_references() {
        let html = to_html(
            "# t\n\nSome *text* <b>\non two lines.\n\n| agent | IQM |\n|---|---:|\n| *myopic* (reference) | 1.0 |\n| a&b | 2.0 |\n\n## More\n\n- x < y\n- z\n",
            2,
        );
        assert_eq!(
            html,
            "<h2>t</h2>\n<p>Some <em>text</em> &lt;b&gt; on two lines.</p>\n\
             <div class=\"table\"><table>\n<thead><tr><th>agent</th><th class=\"num\">IQM</th></tr></thead>\n<tbody>\n\
             <tr class=\"reference\"><th scope=\"row\"><em>myopic</em> (reference)</th><td class=\"num\">1.0</td></tr>\n\
             <tr><th scope=\"row\">a&amp;b</th><td class=\"num\">2.0</td></tr>\n</tbody>\n</table></div>\n\
             <h3>More</h3>\n<ul>\n<li>x &lt; y</li>\n<li>z</li>\n</ul>\n"
        );
    }

    #[test]
    fn a_lone_asterisk_is_text() {
        assert_eq!(inline("a * b"), "a * b");
        assert_eq!(inline("P(a > b)"), "P(a &gt; b)");
    }
}

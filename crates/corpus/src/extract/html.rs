//! HTML → text that keeps math as LaTeX, in the manner of OpenWebMath (Paster et al. 2023, §3).
//!
//! The page is parsed with html5ever (through `scraper`), then one depth-first walk writes text
//! lines. Each math renderer's markup is turned back into TeX where it appears:
//!
//! | markup | result |
//! |---|---|
//! | MathJax `<script type="math/tex">` / `; mode=display` | `$tex$` / `$$tex$$` |
//! | MathJax rendered output (`.MathJax*`, `mjx-container` without MathML) | dropped (its script follows) |
//! | `.math-container` (Stack Exchange) and raw `$..$`, `\(..\)`, `\[..\]` text | kept as written |
//! | KaTeX `.katex` | the `annotation encoding="application/x-tex"`, rendered HTML dropped |
//! | MathML `<math>` | TeX annotation, else `alttext`, else linearised ([`super::math`]) |
//! | `<img>` from LaTeX renderers (codecogs, `latex.php`, `mimetex.cgi`, ...) | `$tex$` from alt / URL |
//! | `<script type="math/asciimath">`, backtick AsciiMath text | kept as AsciiMath |
//! | forum BBCode `[tex]..[/tex]`, `[itex]..[/itex]` | `$$..$$`, `$..$` |
//! | `<pre>`, `<code>` | kept verbatim |
//!
//! Display math is written on its own line. Boilerplate is removed per element and per line by
//! [`super::boilerplate`]; math and code lines are never removed.
use super::boilerplate::{filter_lines, is_boilerplate_element, Line};
use super::math::{bbcode_math_to_tex, clean_tex, mathml_to_tex, tex_from_img};
use ego_tree::NodeRef;
use scraper::{Html, Node};

/// What came out of one page.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    /// The text, lines separated by `\n`, paragraphs by a blank line.
    pub text: String,
    /// The `<title>`, if any.
    pub title: Option<String>,
    /// Math fragments recovered from markup (scripts, KaTeX, MathML, images).
    pub math_from_markup: usize,
    /// Lines removed as boilerplate.
    pub lines_removed: usize,
}

/// Extraction switches.
#[derive(Debug, Clone, Copy)]
pub struct HtmlOptions {
    /// Remove boilerplate elements and lines (on by default; off to debug what was dropped).
    pub remove_boilerplate: bool,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions { remove_boilerplate: true }
    }
}

/// Extract the text of an HTML page.
pub fn extract_html(html: &str, opts: &HtmlOptions) -> Extracted {
    let doc = Html::parse_document(html);
    let mut w = Writer::default();
    let root = doc.tree.root();
    let title = root
        .descendants()
        .find(|n| n.value().as_element().is_some_and(|e| e.name().eq_ignore_ascii_case("title")))
        .map(|t| collapse_ws(&text_of(t)))
        .filter(|t| !t.is_empty());
    let ctx = Ctx { opts: *opts, ..Default::default() };
    for c in root.children() {
        w.walk(c, ctx);
    }
    w.end_line();
    let total = w.lines.len();
    let lines = if opts.remove_boilerplate { filter_lines(w.lines).0 } else { w.lines };
    let lines_removed = total - lines.len();
    Extracted { text: join_lines(&lines), title, math_from_markup: w.math_count, lines_removed }
}

fn join_lines(lines: &[Line]) -> String {
    let mut out = String::new();
    let mut blank_pending = false;
    for l in lines {
        if l.blank {
            blank_pending = !out.is_empty();
            continue;
        }
        let text = if l.code {
            l.text.trim_end().to_string()
        } else {
            bbcode_math_to_tex(l.text.trim()).into_owned()
        };
        if text.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_pending {
                out.push('\n');
            }
        }
        blank_pending = false;
        out.push_str(&text);
    }
    out
}

fn text_of(n: NodeRef<'_, Node>) -> String {
    let mut s = String::new();
    for d in n.descendants() {
        if let Node::Text(t) = d.value() {
            s.push_str(t);
        }
    }
    s
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    opts: HtmlOptions,
    in_link: bool,
    in_pre: bool,
    in_code: bool,
    in_article: bool,
    display: bool,
}

#[derive(Default)]
struct Writer {
    lines: Vec<Line>,
    cur: Line,
    space: bool,
    math_count: usize,
}

const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "body",
    "center",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hgroup",
    "html",
    "li",
    "main",
    "ol",
    "p",
    "section",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
    "caption",
    "header",
    "legend",
];
const PARA_TAGS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "table",
    "ul",
    "ol",
    "pre",
    "section",
    "article",
];
const SKIP_TAGS: &[&str] = &[
    "head", "style", "noscript", "template", "iframe", "object", "embed", "canvas", "svg", "audio",
    "video", "map", "link", "meta", "title",
];

fn has_class(class: Option<&str>, name: &str) -> bool {
    class.is_some_and(|c| c.split_whitespace().any(|t| t == name))
}

fn class_contains(class: Option<&str>, part: &str) -> bool {
    class.is_some_and(|c| c.split_whitespace().any(|t| t.contains(part)))
}

/// Whether a subtree holds math markup (so boilerplate rules must not drop it).
fn contains_math(n: NodeRef<'_, Node>) -> bool {
    n.descendants().any(|d| match d.value() {
        Node::Element(e) => {
            let name = e.name();
            name.eq_ignore_ascii_case("math")
                || (name.eq_ignore_ascii_case("script")
                    && e.attr("type").is_some_and(|t| t.to_ascii_lowercase().starts_with("math/")))
                || has_class(e.attr("class"), "katex")
                || has_class(e.attr("class"), "math-container")
        }
        Node::Text(t) => {
            let s: &str = t;
            s.contains('$') || s.contains("\\(") || s.contains("\\[")
        }
        _ => false,
    })
}

impl Writer {
    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.cur);
        if !line.text.trim().is_empty() {
            self.lines.push(line);
        }
        self.space = false;
    }

    fn para(&mut self) {
        self.end_line();
        if !self.lines.last().is_some_and(|l| l.blank) {
            self.lines.push(Line { blank: true, ..Default::default() });
        }
    }

    fn push_text(&mut self, t: &str, ctx: Ctx) {
        if ctx.in_pre {
            let mut first = true;
            for part in t.split('\n') {
                if !first {
                    self.end_line();
                }
                first = false;
                self.cur.text.push_str(&part.replace('\r', ""));
                self.cur.code = true;
            }
            return;
        }
        if t.is_empty() {
            return;
        }
        let starts_ws = t.starts_with(char::is_whitespace);
        let ends_ws = t.ends_with(char::is_whitespace);
        let mut words = t.split_whitespace().peekable();
        if words.peek().is_none() {
            self.space = true;
            return;
        }
        if starts_ws {
            self.space = true;
        }
        for (i, word) in words.enumerate() {
            if i > 0 {
                self.space = true;
            }
            self.push_word(word, ctx);
        }
        if ends_ws {
            self.space = true;
        }
    }

    fn push_word(&mut self, word: &str, ctx: Ctx) {
        if self.space && !self.cur.text.is_empty() && !self.cur.text.ends_with(' ') {
            self.cur.text.push(' ');
            if ctx.in_link {
                self.cur.link_chars += 1;
            }
        }
        self.space = false;
        self.cur.text.push_str(word);
        if ctx.in_link {
            self.cur.link_chars += word.chars().count();
        }
        if ctx.in_code {
            self.cur.code = true;
        }
    }

    fn push_math(&mut self, tex: &str, display: bool, ctx: Ctx) {
        let tex = tex.trim();
        if tex.is_empty() {
            return;
        }
        self.math_count += 1;
        if display {
            self.end_line();
            self.cur.text = format!("$${tex}$$");
            self.cur.math = true;
            self.end_line();
        } else {
            let s = format!("${tex}$");
            self.push_word(&s, Ctx { in_link: false, ..ctx });
            self.cur.math = true;
        }
    }

    fn walk(&mut self, n: NodeRef<'_, Node>, ctx: Ctx) {
        match n.value() {
            Node::Text(t) => self.push_text(t, ctx),
            Node::Element(e) => {
                let tag = e.name().to_ascii_lowercase();
                let class = e.attr("class");
                self.element(n, &tag, class, e, ctx);
            }
            Node::Document | Node::Fragment => {
                for c in n.children() {
                    self.walk(c, ctx);
                }
            }
            _ => {}
        }
    }

    fn element(
        &mut self,
        n: NodeRef<'_, Node>,
        tag: &str,
        class: Option<&str>,
        e: &scraper::node::Element,
        mut ctx: Ctx,
    ) {
        // Math first: these rules win over every skip rule.
        match tag {
            "script" => {
                let ty = e.attr("type").unwrap_or("").to_ascii_lowercase();
                if ty.starts_with("math/tex") {
                    self.push_math(&text_of(n), ty.contains("mode=display") || ctx.display, ctx);
                } else if ty.starts_with("math/asciimath") {
                    let t = collapse_ws(&text_of(n));
                    if !t.is_empty() {
                        self.math_count += 1;
                        self.push_word(&format!("`{t}`"), ctx);
                        self.cur.math = true;
                    }
                } else if ty.starts_with("math/mml") {
                    let frag = Html::parse_fragment(&text_of(n));
                    if let Some(m) = frag.tree.root().descendants().find(|d| {
                        d.value()
                            .as_element()
                            .is_some_and(|x| x.name().eq_ignore_ascii_case("math"))
                    }) {
                        let display =
                            m.value().as_element().and_then(|x| x.attr("display")) == Some("block");
                        self.push_math(&mathml_to_tex(m), display || ctx.display, ctx);
                    }
                }
                return;
            }
            "math" => {
                let display = e.attr("display") == Some("block")
                    || e.attr("mode") == Some("display")
                    || ctx.display;
                self.push_math(&mathml_to_tex(n), display, ctx);
                return;
            }
            "img" => {
                if let Some(src) = e.attr("src").or_else(|| e.attr("data-src")) {
                    if let Some(tex) = tex_from_img(src, e.attr("alt"), class) {
                        self.push_math(&tex, ctx.display, ctx);
                    }
                }
                return;
            }
            "mjx-container" => {
                if let Some(m) = n.descendants().find(|d| {
                    d.value().as_element().is_some_and(|x| x.name().eq_ignore_ascii_case("math"))
                }) {
                    let display = e.attr("display") == Some("true") || ctx.display;
                    self.push_math(&mathml_to_tex(m), display, ctx);
                }
                return;
            }
            _ => {}
        }
        if has_class(class, "katex") || has_class(class, "katex-mathml") {
            let display = ctx.display
                || n.ancestors().any(|a| {
                    a.value()
                        .as_element()
                        .is_some_and(|x| has_class(x.attr("class"), "katex-display"))
                });
            let annotation = n.descendants().find(|d| {
                d.value().as_element().is_some_and(|x| {
                    x.name().eq_ignore_ascii_case("annotation")
                        && x.attr("encoding")
                            .is_some_and(|enc| enc.eq_ignore_ascii_case("application/x-tex"))
                })
            });
            if let Some(a) = annotation {
                self.push_math(&clean_tex(&text_of(a)), display, ctx);
            } else if let Some(m) = n.descendants().find(|d| {
                d.value().as_element().is_some_and(|x| x.name().eq_ignore_ascii_case("math"))
            }) {
                self.push_math(&mathml_to_tex(m), display, ctx);
            }
            return;
        }
        if has_class(class, "katex-display") {
            ctx.display = true;
        }
        if class_contains(class, "MathJax") || class_contains(class, "MJX") {
            // Rendered MathJax output (v2); the source script is a sibling. An assistive MathML
            // copy is used only when no script is present.
            let sibling_script = n.next_siblings().take(3).any(|s| {
                s.value().as_element().is_some_and(|x| {
                    x.name().eq_ignore_ascii_case("script")
                        && x.attr("type").is_some_and(|t| t.starts_with("math/"))
                })
            });
            if !sibling_script {
                if let Some(m) = n.descendants().find(|d| {
                    d.value().as_element().is_some_and(|x| x.name().eq_ignore_ascii_case("math"))
                }) {
                    self.push_math(
                        &mathml_to_tex(m),
                        class_contains(class, "Display") || ctx.display,
                        ctx,
                    );
                }
            }
            return;
        }
        if has_class(class, "mwe-math-element") {
            // Wikipedia: hidden MathML with TeX annotation plus a fallback <img> with the same TeX.
            if let Some(m) = n.descendants().find(|d| {
                d.value().as_element().is_some_and(|x| x.name().eq_ignore_ascii_case("math"))
            }) {
                let display =
                    m.value().as_element().and_then(|x| x.attr("display")) == Some("block");
                self.push_math(&mathml_to_tex(m), display, ctx);
            } else if let Some(img) = n.descendants().find_map(|d| {
                d.value().as_element().filter(|x| x.name().eq_ignore_ascii_case("img"))
            }) {
                if let Some(alt) = img.attr("alt") {
                    self.push_math(&clean_tex(alt), false, ctx);
                }
            }
            return;
        }
        if SKIP_TAGS.contains(&tag) {
            return;
        }
        if ctx.opts.remove_boilerplate {
            let hidden = e.attr("hidden").is_some()
                || e.attr("aria-hidden") == Some("true")
                || e.attr("style").is_some_and(|s| {
                    let s = s.replace(' ', "").to_ascii_lowercase();
                    s.contains("display:none") || s.contains("visibility:hidden")
                });
            let header_chrome = tag == "header" && !ctx.in_article;
            if (hidden
                || header_chrome
                || is_boilerplate_element(tag, class, e.attr("id"), e.attr("role")))
                && !contains_math(n)
            {
                return;
            }
        }
        match tag {
            "br" => {
                self.end_line();
                return;
            }
            "hr" => {
                self.para();
                return;
            }
            "a" => ctx.in_link = true,
            "pre" | "listing" | "xmp" | "plaintext" => {
                self.para();
                ctx.in_pre = true;
                for c in n.children() {
                    self.walk(c, ctx);
                }
                self.para();
                return;
            }
            "code" | "kbd" | "samp" | "tt" => ctx.in_code = true,
            "article" | "main" => ctx.in_article = true,
            "td" | "th" => {
                self.space = true;
                for c in n.children() {
                    self.walk(c, ctx);
                }
                self.space = true;
                return;
            }
            _ => {}
        }
        let block = BLOCK_TAGS.contains(&tag);
        let para = PARA_TAGS.contains(&tag);
        if para {
            self.para();
        } else if block {
            self.end_line();
        }
        for c in n.children() {
            self.walk(c, ctx);
        }
        if para {
            self.para();
        } else if block {
            self.end_line();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(html: &str) -> String {
        extract_html(html, &HtmlOptions::default()).text
    }

    #[test]
    fn mathjax_scripts_and_rendered_output() {
        let t = ex(
            r#"<p>Let <span class="MathJax">x 2</span><script type="math/tex">x^2</script> be
            given.</p><div class="MathJax_Display">junk</div><script type="math/tex; mode=display">\int_0^1 f</script>"#,
        );
        assert_eq!(t, "Let $x^2$ be given.\n\n$$\\int_0^1 f$$");
    }

    #[test]
    fn katex_keeps_annotation_only() {
        let t = ex(
            r#"<p>So <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>a</mi></mrow>
            <annotation encoding="application/x-tex">a+b</annotation></semantics></math></span>
            <span class="katex-html" aria-hidden="true">a+b rendered</span></span> holds.</p>"#,
        );
        assert_eq!(t, "So $a+b$ holds.");
    }

    #[test]
    fn code_kept_and_nav_removed() {
        let t = ex("<nav><a href=/>Home</a></nav><p>Text here.</p><pre>fn main() {\n    x\n}</pre><footer>© 2024</footer>");
        assert_eq!(t, "Text here.\n\nfn main() {\n    x\n}");
    }
}

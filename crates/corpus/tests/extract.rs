//! Math-preserving extraction on our fixtures (`testdata/extract_*.html`: MathJax, KaTeX, MathML,
//! math images, AsciiMath, BBCode, a Chinese page) and on the real pages of
//! `MATHFORGE_SHARED_DATA/web/html_pages` (Stack Exchange, MathOverflow, Wikipedia MathML, forums
//! with math images, ...): the math must come out as LaTeX and the boilerplate must be gone.
use mathforge_corpus::extract::math::count_tex_fragments;
use mathforge_corpus::extract::stage::{run, ExtractJob};
use mathforge_corpus::extract::{extract_html, ExtractConfig, HtmlOptions};
use mathforge_corpus::formats::read_documents;
use mathforge_io::shard::Shard;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn extract_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let decoded = mathforge_corpus::extract::charset::decode_html(&bytes, None);
    extract_html(&decoded.text, &HtmlOptions::default()).text
}

fn has_all(text: &str, what: &[&str]) {
    for w in what {
        assert!(text.contains(w), "missing {w:?} in:\n{text}");
    }
}

fn has_none(text: &str, what: &[&str]) {
    for w in what {
        assert!(!text.contains(w), "boilerplate {w:?} kept in:\n{text}");
    }
}

#[test]
fn mathjax_page() {
    let t = extract_file(&fixture("extract_mathjax.html"));
    has_all(
        &t,
        &[
            "The quadratic formula",
            "For $a \\neq 0$, the roots of $ax^2+bx+c=0$ are",
            "\n$$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$$\n",
            "\\(\\Delta = b^2 - 4ac\\)",
            "$$\\Delta \\ge 0$$",
            "def roots(a, b, c):\n    d = (b * b - 4 * a * c) ** 0.5\n",
            "See also Vieta's formulas for the sum of the roots.",
        ],
    );
    has_none(
        &t,
        &[
            "rendered junk",
            "a≠0",
            "cookies",
            "Accept all",
            "Home",
            "Log in",
            "Completing the square",
            "Share on",
            "All rights reserved",
            "Privacy Policy",
            "algebra\n",
        ],
    );
}

#[test]
fn katex_page() {
    let t = extract_file(&fixture("extract_katex.html"));
    assert_eq!(
        t,
        "Euler's identity $e^{i\\pi} + 1 = 0$ is famous.\n\n$$\\sum_{n=1}^\\infty \\frac{1}{n^2} = \\frac{\\pi^2}{6}$$\n\nThat was the Basel problem."
    );
}

#[test]
fn mathml_page() {
    let t = extract_file(&fixture("extract_mathml.html"));
    has_all(
        &t,
        &[
            "With annotation: $\\sigma^{2}$.",
            "With alttext only: $\\operatorname{Var}(X)$.",
            "$$x=\\frac{-b\\pm \\sqrt{b^2-4ac}}{2a}$$",
            "Wikipedia style: $\\mu =\\operatorname {E} [X]$ is the mean.",
        ],
    );
    assert_eq!(
        t.matches("\\operatorname {E}").count(),
        1,
        "Wikipedia fallback image duplicated:\n{t}"
    );
}

#[test]
fn images_asciimath_bbcode_page() {
    let t = extract_file(&fixture("extract_img_ascii.html"));
    has_all(
        &t,
        &[
            "Codecogs: $\\int_0^1 x^2\\,dx$ equals one third.",
            "WordPress: $a^2+b^2=c^2$ is Pythagoras.",
            "mimeTeX: $\\Re(z)>0$ on the right half plane.",
            "A photo that is not math: stays out.",
            "`x=(-b +- sqrt(b^2 - 4ac))/(2a)`",
            "`sum_(i=1)^n i^3`",
            "Forum BBCode: $e^x$ and $$\\int e^x dx = e^x + C$$.",
        ],
    );
    has_none(&t, &["A cat"]);
}

#[test]
fn chinese_page() {
    let t = extract_file(&fixture("extract_zh.html"));
    has_all(
        &t,
        &[
            "一元二次方程的解法",
            "例题：解方程 $x^2-5x+6=0$。",
            "\\((x-2)(x-3)=0\\)",
            "$\\Delta=b^2-4ac$",
            "判别式",
        ],
    );
    has_none(&t, &["首页", "登录", "版权所有"]);
}

#[test]
fn stage_over_html_files_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("pages.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"p1\", \"url\": \"https://x.test/1\", \"html\": \"<p>Let <script type='math/tex'>n!</script> be.</p>\"}\n{\"id\": \"p2\"}\nnot json\n",
    )
    .unwrap();
    let inputs = vec![fixture("extract_katex.html"), fixture("extract_zh.html"), jsonl];
    let job = ExtractJob {
        inputs,
        output: dir.path().join("out/docs.jsonl.zst"),
        shard: Shard::default(),
        config: ExtractConfig::default(),
    };
    let report = run(&job, &mut |_| {}).unwrap();
    let docs: Vec<_> = read_documents(&report.output).map(|d| d.unwrap()).collect();
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["extract_katex.html", "extract_zh.html", "p1"]);
    assert_eq!(docs[2].text, "Let $n!$ be.");
    assert_eq!(docs[1].metadata["title"], "一元二次方程的解法 - 数学学习网");
    assert_eq!(report.stats.rejects["missing_html_field"], 1);
    assert_eq!(report.stats.rejects["bad_json_line"], 1);
}

#[test]
fn config_file_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("extract.toml");
    std::fs::write(&p, "max_bytes = 1000\nremove_boilerplate = false\n").unwrap();
    let c = ExtractConfig::from_toml_file(&p).unwrap();
    assert_eq!((c.max_bytes, c.remove_boilerplate), (1000, false));
    std::fs::write(&p, "max_byte = 1000\n").unwrap();
    let e = ExtractConfig::from_toml_file(&p).unwrap_err().to_string();
    assert!(e.contains("extract.toml") && e.contains("max_byte"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Real pages (MATHFORGE_SHARED_DATA/web/html_pages)

fn real(test: &str, file: &str) -> Option<String> {
    let p = mathforge_io::shared::shared_data_file(test, &format!("web/html_pages/{file}"))?;
    Some(extract_file(&p))
}

#[test]
fn real_math_pages_keep_their_latex() {
    let cases: &[(&str, &[&str])] = &[
        (
            "math_img_3.html",
            &["$f(z)=\\exp(z)-1$", "$\\alpha(f(x) ) = \\alpha(x)+1$", "$\\Re(z)<0$"],
        ),
        ("math_mathhelpforum_2.html", &["$\\lim_{n\\rightarrow\\infty}{x^n} =0$"]),
        ("math_mathjax_asciimath_1.html", &["`x=(-b +- sqrt(b^2 - 4ac))/(2a)`", "`1/2 bh`"]),
        ("math_mathjax_latex_2.html", &["\\begin{equation}"]),
    ];
    for (file, expect) in cases {
        let Some(t) = real("real_math_pages_keep_their_latex", file) else {
            return;
        };
        for e in *expect {
            assert!(t.contains(e), "{file}: missing {e:?}");
        }
        assert!(count_tex_fragments(&t) > 0 || file.contains("ascii"), "{file}: no TeX fragments");
    }
}

#[test]
fn real_wikipedia_mathml_page() {
    let Some(t) = real("real_wikipedia_mathml_page", "math_none_mathml_1.html") else {
        return;
    };
    // 214 MathML formulas with TeX annotations; every one should become a $..$ fragment.
    let n = count_tex_fragments(&t);
    assert!(n >= 200, "only {n} TeX fragments");
    assert!(t.contains("\\operatorname {Var} (X)"), "Var(X) formula missing");
    assert!(!t.contains("{\\displaystyle"), "displaystyle wrapper left in");
}

//! Garbage in, errors out: no input may panic or overflow the stack (the
//! server parses files it did not write).

use super::super::parse;
use super::valid_sample;

const GARBAGE: &[&str] = &[
    "",
    "\0",
    "\u{feff}",
    ":",
    "- - -",
    "{",
    "}",
    "[[[",
    "]]]",
    "&a *a",
    "*a",
    "a: *b",
    "? ? ?",
    "!!binary AAAA",
    "%YAML 1.2\n---\n",
    "%TAG ! tag:x,2000:\n--- !foo 1",
    "services: !!map {web: !!int abc}",
    "services:\n  web:\n    image: !!float x\n",
    "services:\n\tweb: {}",
    "services: {web: {image: nginx, ports: [\"\", \":\", \"::\", \"/\", \"[\", \"]:1\", \"[]:1:1\"]}}",
    "services: {web: {image: nginx, ports: [{target: -1}, {target: 1, published: \"\"}]}}",
    "services: {web: {image: nginx, deploy: {resources: {limits: {memory: \".\", cpus: \".\"}}}}}",
    "services: {web: {image: nginx, deploy: {placement: {constraints: [\"==\", \"!=\", \"node.labels.==\", \"é == é\"]}}}}",
    "services: {web: {x-atoll: {component: a, timeout: \"µs\"}}}",
    "services: {web: {x-atoll: {component: a, timeout: \"1.ms\"}}}",
    "services: {é: {image: ü}}",
    "services: {web: {image: nginx, environment: {<<: {<<: {<<: {A: 1}}}}}}}",
    "a: &a [*a]",
    "---\n---\n---\n",
    "...",
    "'unterminated",
    "\"\\u{zz}\"",
    "key: value\n  bad indent: 1",
    "services:\n  web:\n    image: nginx\n    ports:\n      - 1\n      -\n",
];

#[test]
fn garbage_strings_give_errors_not_panics() {
    for text in GARBAGE {
        // Either way is fine; it must return.
        let _ = parse(text, "demo");
        let _ = parse(text, "");
        let _ = parse(text, "\u{0}é");
    }
    let deep = "- ".repeat(100_000) + "x";
    assert!(parse(&deep, "demo").is_err());
    let deep = "{a: ".repeat(1_000);
    assert!(parse(&deep, "demo").is_err());
    let long = format!("services: {{{}: {{image: x}}}}", "w".repeat(100_000));
    assert!(parse(&long, "demo").is_ok());
}

/// A tiny xorshift generator: the mutations are random-looking but the
/// same on every run, so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as usize
    }
}

#[test]
fn mutated_valid_files_never_panic() {
    const PIECES: &[&str] = &[
        ":", "-", " ", "\n", "[", "]", "{", "}", "&a", "*a", "<<", "!", "'", "\"", "#", "?", "0",
        "-1", "1.5", "x-", "==", "/udp", "é", "\t", "  ", ",", "|", ">", "~", "null",
    ];
    let base: Vec<char> = valid_sample().chars().collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000 {
        let mut text = base.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = rng.next() % (text.len() + 1);
            match rng.next() % 3 {
                0 if at < text.len() => {
                    text.remove(at);
                }
                1 if at < text.len() => {
                    let len = (rng.next() % 8).min(text.len() - at);
                    text.drain(at..at + len);
                }
                _ => {
                    let piece = PIECES[rng.next() % PIECES.len()];
                    for (i, c) in piece.chars().enumerate() {
                        text.insert(at + i, c);
                    }
                }
            }
        }
        let text: String = text.into_iter().collect();
        let _ = parse(&text, "demo");
    }
}

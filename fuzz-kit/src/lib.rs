//! A small mutation fuzzer that runs on the stable toolchain, inside `cargo test`.
//!
//! Coverage-guided fuzzers (cargo-fuzz, AFL) need a nightly compiler or an instrumenting
//! toolchain, which CI does not have. This one starts from a corpus of real inputs (the
//! vendors' captured answers, our example files), stacks random mutations on them — byte edits,
//! tokens from a dictionary, and for JSON, whole values replaced by ones of another kind — and
//! feeds millions of them to a target, catching panics. Structure-aware mutation of real
//! answers reaches deep into typed decoders; what it lacks against a coverage-guided fuzzer is
//! the feedback loop, so the corpus should hold every shape of input the target knows.
//!
//! Each test reads `FUZZ_CASES` (default: the test's own small count, for CI) and `FUZZ_SEED`:
//!
//! ```text
//! FUZZ_CASES=10000000 cargo test --release -p k3cloud-sdk fuzz_ -- --nocapture
//! ```
#![deny(missing_docs)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use serde_json::Value;

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Inputs fed to the target.
    pub cases: u64,
    /// Inputs the target took as valid (it returned `true`).
    pub accepted: u64,
}

/// A fuzz run over one target.
#[derive(Debug)]
pub struct Fuzz {
    name: String,
    cases: u64,
    seed: u64,
    corpus: Vec<Vec<u8>>,
    dictionary: Vec<Vec<u8>>,
}

/// Tokens that break parsers and decoders in every format we read.
const TOKENS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "-0",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775809",
    "0.1",
    "NaN",
    "\"\"",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "=",
    "'",
    "''",
    "(",
    ")",
    " and ",
    " or ",
    "\n",
    "\u{0}",
    "\u{feff}",
    "中文",
    "é",
    "😀",
    "2024-13-45",
    "2024-02-30T25:61:61",
    "9999-12-31 23:59:59",
    "0000-00-00",
    "%Y",
    "{name}",
    "$",
    "..",
    ".",
    "[[",
    "]]",
    "\"\"\"",
];

impl Fuzz {
    /// A run named `name` (printed with its figures), of `FUZZ_CASES` inputs or `default_cases`.
    #[must_use]
    pub fn new(name: &str, default_cases: u64) -> Self {
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Self {
            name: name.to_owned(),
            cases: env("FUZZ_CASES").unwrap_or(default_cases),
            seed: env("FUZZ_SEED").unwrap_or(0x5EED_F0A4),
            corpus: Vec::new(),
            dictionary: TOKENS.iter().map(|t| t.as_bytes().to_vec()).collect(),
        }
    }

    /// Adds real inputs to start from.
    #[must_use]
    pub fn corpus<I, T>(mut self, inputs: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.corpus
            .extend(inputs.into_iter().map(|t| t.as_ref().to_vec()));
        self
    }

    /// Adds tokens the target's format gives meaning to (keys, keywords, operators).
    #[must_use]
    pub fn dictionary<I, T>(mut self, tokens: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.dictionary
            .extend(tokens.into_iter().map(|t| t.as_ref().to_vec()));
        self
    }

    /// Feeds the corpus, then mutants of it, to `target` (which returns whether it accepted
    /// the input). A panic fails the run with the input that caused it.
    ///
    /// # Panics
    /// When the target panics: the message holds the case number, the seed and the input.
    pub fn run(self, target: impl Fn(&[u8]) -> bool) -> Stats {
        assert!(
            !self.corpus.is_empty(),
            "fuzz {}: an empty corpus",
            self.name
        );
        let started = Instant::now();
        let previous_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut rng = Rng(self.seed);
        let mut stats = Stats {
            cases: 0,
            accepted: 0,
        };
        let mut failure = None;
        for case in 0..self.cases {
            let input = if let Some(original) =
                self.corpus.get(usize::try_from(case).unwrap_or(usize::MAX))
            {
                original.clone()
            } else {
                self.mutant(&mut rng)
            };
            match catch_unwind(AssertUnwindSafe(|| target(&input))) {
                Ok(accepted) => stats.accepted += u64::from(accepted),
                Err(panic) => {
                    failure = Some((case, input, panic_message(&*panic)));
                    break;
                }
            }
            stats.cases += 1;
        }
        std::panic::set_hook(previous_hook);
        if let Some((case, input, message)) = failure {
            let text = String::from_utf8_lossy(&input);
            let shown: String = text.chars().take(4000).collect();
            panic!(
                "fuzz {}: case {case} (FUZZ_SEED={}) panicked: {message}\ninput ({} bytes): {shown:?}",
                self.name,
                self.seed,
                input.len()
            );
        }
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        #[allow(clippy::cast_precision_loss)]
        let rate = stats.cases as f64 / secs;
        println!(
            "fuzz {}: {} inputs ({} accepted), 0 panics, {:.1} s, {rate:.0}/s, seed {}",
            self.name, stats.cases, stats.accepted, secs, self.seed
        );
        stats
    }

    /// One to four mutations stacked on a corpus entry.
    fn mutant(&self, rng: &mut Rng) -> Vec<u8> {
        let mut input = self.corpus[rng.below(self.corpus.len())].clone();
        for _ in 0..=rng.below(4) {
            input = if rng.below(3) == 0 {
                self.mutate_json(rng, &input)
                    .unwrap_or_else(|| self.mutate_bytes(rng, input))
            } else {
                self.mutate_bytes(rng, input)
            };
        }
        input
    }

    fn token<'a>(&'a self, rng: &mut Rng) -> &'a [u8] {
        &self.dictionary[rng.below(self.dictionary.len())]
    }

    fn mutate_bytes(&self, rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
        let at = rng.below(b.len() + 1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] = u8::try_from(rng.below(256)).unwrap_or(0);
            }
            2 | 3 => {
                let t = self.token(rng).to_vec();
                b.splice(at..at, t);
            }
            4 if at < b.len() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            5 if at < b.len() => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
            6 => b.truncate(at),
            _ => {
                // Splice: the start of this input with the end of another.
                let other = &self.corpus[rng.below(self.corpus.len())];
                let from = rng.below(other.len() + 1);
                b.truncate(at);
                b.extend_from_slice(&other[from..]);
            }
        }
        b
    }

    /// Replaces one value of a JSON document by a value of another kind, or drops a key.
    fn mutate_json(&self, rng: &mut Rng, b: &[u8]) -> Option<Vec<u8>> {
        let mut doc: Value = serde_json::from_slice(b).ok()?;
        let nodes = count(&doc);
        let target = rng.below(nodes);
        let replacement = self.value(rng);
        let drop_key = rng.below(4) == 0;
        let mut seen = 0;
        visit(&mut doc, target, &mut seen, &mut |v: &mut Value| {
            if drop_key
                && let Value::Object(m) = v
                && !m.is_empty()
            {
                let key = m.keys().next().cloned().unwrap_or_default();
                m.remove(&key);
            } else {
                *v = replacement.clone();
            }
        });
        serde_json::to_vec(&doc).ok()
    }

    fn value(&self, rng: &mut Rng) -> Value {
        match rng.below(10) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => Value::from(i64::MIN + i64::try_from(rng.below(3)).unwrap_or(0)),
            3 => Value::from(u64::MAX - rng.below(3) as u64),
            4 => Value::from(-1.5e300),
            5 => Value::from(String::from_utf8_lossy(self.token(rng)).into_owned()),
            6 => Value::Array(Vec::new()),
            7 => Value::Object(serde_json::Map::new()),
            8 => {
                let mut v = Value::Null;
                for _ in 0..rng.below(200) {
                    v = Value::Array(vec![v]);
                }
                v
            }
            _ => Value::String(String::new()),
        }
    }
}

/// Every JSON object and array in the `.json` files of `dir` and its folders (whole answers,
/// payloads and their parts), and every string in them that holds a JSON answer as text (or a
/// K3Cloud `response_error:` body): a corpus from captured answers.
///
/// # Panics
/// When `dir` cannot be read.
#[must_use]
pub fn json_parts(dir: &std::path::Path) -> Vec<Vec<u8>> {
    fn collect(v: &Value, out: &mut Vec<Vec<u8>>) {
        match v {
            Value::Object(m) => {
                out.push(serde_json::to_vec(v).unwrap_or_default());
                for x in m.values() {
                    collect(x, out);
                }
            }
            Value::Array(a) => {
                out.push(serde_json::to_vec(v).unwrap_or_default());
                for x in a {
                    collect(x, out);
                }
            }
            Value::String(s) if s.starts_with(['{', '[']) || s.starts_with("response_error:") => {
                out.push(s.clone().into_bytes());
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            out.extend(json_parts(&path));
        } else if path.extension().is_some_and(|x| x == "json")
            && let Ok(doc) = std::fs::read(&path)
                .map_err(|_| ())
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ()))
        {
            collect(&doc, &mut out);
        }
    }
    out
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

fn visit(v: &mut Value, target: usize, seen: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *seen == target {
        f(v);
        return true;
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| visit(x, target, seen, f)),
        Value::Object(m) => m.values_mut().any(|x| visit(x, target, seen, f)),
        _ => false,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// SplitMix64: reproducible from the seed, no dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_target_fails_the_run_with_its_input() {
        let result = catch_unwind(|| {
            Fuzz::new("demo", 10_000)
                .corpus([r#"{"a":[1,2,3]}"#])
                .run(|b| {
                    assert!(!b.contains(&b'x'), "an x");
                    true
                })
        });
        let message = panic_message(&*result.unwrap_err());
        assert!(message.starts_with("fuzz demo: case "), "{message}");
        assert!(message.contains("panicked: an x"), "{message}");
    }

    #[test]
    fn the_corpus_comes_first_then_as_many_mutants_as_asked() {
        let stats = Fuzz::new("count", 500)
            .corpus(["{}", "[]"])
            .run(|b| b == b"{}");
        assert_eq!(stats.cases, 500);
        assert!(stats.accepted >= 1);
    }
}

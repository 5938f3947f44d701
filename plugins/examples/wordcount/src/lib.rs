//! `wordcount`: text statistics of a document.
//!
//! Input: `{"text": "...", "top": 10}` (`top` optional, at most 1000).
//! Output: byte, character, word, line and sentence counts, the number of distinct
//! words, and the `top` most frequent words (case-folded; ties in alphabetical order).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use wasmq_plugin::Error;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    text: String,
    #[serde(default = "default_top")]
    top: usize,
}

fn default_top() -> usize {
    10
}

#[derive(Serialize)]
struct Output {
    bytes: usize,
    chars: usize,
    words: usize,
    lines: usize,
    sentences: usize,
    distinct_words: usize,
    top_words: Vec<WordCount>,
}

#[derive(Serialize)]
struct WordCount {
    word: String,
    count: usize,
}

fn run(input: Input) -> Result<Output, Error> {
    if input.top > 1000 {
        return Err(Error::new("top must be at most 1000"));
    }
    let text = &input.text;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut words = 0;
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let word = word.trim_matches('\'');
        if word.is_empty() {
            continue;
        }
        words += 1;
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    let distinct_words = ranked.len();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(input.top);
    Ok(Output {
        bytes: text.len(),
        chars: text.chars().count(),
        words,
        lines: text.lines().count(),
        sentences: count_sentences(text),
        distinct_words,
        top_words: ranked.into_iter().map(|(word, count)| WordCount { word, count }).collect(),
    })
}

/// A sentence ends at a run of `.`, `!` or `?` that follows some word character.
fn count_sentences(text: &str) -> usize {
    let mut sentences = 0;
    let mut in_sentence = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            in_sentence = true;
        } else if matches!(c, '.' | '!' | '?') && in_sentence {
            sentences += 1;
            in_sentence = false;
        }
    }
    sentences + usize::from(in_sentence)
}

wasmq_plugin::plugin!(run);

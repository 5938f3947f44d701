//! `primes`: counts the primes up to `limit` with a segmented sieve. CPU-bound,
//! with the amount of work set by the payload; reports progress every 10%.
//!
//! Input: `{"limit": 1000000}` (2..=10^11). Output: `{"limit", "count", "largest"}`.

use serde::{Deserialize, Serialize};
use wasmq_plugin::{Error, progress};

const MAX_LIMIT: u64 = 100_000_000_000;
const SEGMENT: u64 = 1 << 15;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    limit: u64,
}

#[derive(Serialize)]
struct Output {
    limit: u64,
    count: u64,
    largest: Option<u64>,
}

fn run(input: Input) -> Result<Output, Error> {
    let limit = input.limit;
    if !(2..=MAX_LIMIT).contains(&limit) {
        return Err(Error::new(format!("limit must be between 2 and {MAX_LIMIT}")));
    }
    let base = small_primes(limit.isqrt());
    let mut count = 0;
    let mut largest = None;
    let mut reported = 0;
    let mut sieve = vec![true; SEGMENT as usize];
    let mut low = 2;
    while low <= limit {
        let high = (low + SEGMENT - 1).min(limit);
        sieve.iter_mut().for_each(|b| *b = true);
        for &p in &base {
            if p * p > high {
                break;
            }
            let mut multiple = (low.div_ceil(p) * p).max(p * p);
            while multiple <= high {
                sieve[(multiple - low) as usize] = false;
                multiple += p;
            }
        }
        for n in low..=high {
            if sieve[(n - low) as usize] {
                count += 1;
                largest = Some(n);
            }
        }
        let percent = (high * 100 / limit) as u8;
        if percent / 10 > reported / 10 {
            reported = percent;
            progress(percent, format!("sieved up to {high}"));
        }
        low = high + 1;
    }
    Ok(Output { limit, count, largest })
}

/// The primes up to `n` by a plain sieve (n is at most ~316,000 here).
fn small_primes(n: u64) -> Vec<u64> {
    let n = n as usize;
    let mut is_prime = vec![true; n + 1];
    let mut primes = Vec::new();
    for i in 2..=n {
        if is_prime[i] {
            primes.push(i as u64);
            let mut j = i * i;
            while j <= n {
                is_prime[j] = false;
                j += i;
            }
        }
    }
    primes
}

wasmq_plugin::plugin!(run);

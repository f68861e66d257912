//! How punctual a mixer thread is: for the last minute of ticks, how late each tick started
//! after its deadline and how long its work took. Operators read it through the Admin API's
//! `stats` request; a late tick is a late packet for every listener of its rooms.

use crate::locks::OrderedMutex;
use serde_json::{Value, json};
use std::time::Duration;

/// Ticks remembered: one minute at 50 ticks a second.
const WINDOW: usize = 3000;

#[derive(Default)]
struct Samples {
    lateness_us: Vec<u32>,
    work_us: Vec<u32>,
    next: usize,
    ticks: u64,
}

pub struct ThreadTiming {
    samples: OrderedMutex<Samples>,
}

impl Default for ThreadTiming {
    fn default() -> Self {
        ThreadTiming {
            samples: OrderedMutex::leaf_default("mixer timing"),
        }
    }
}

impl ThreadTiming {
    pub fn record(&self, lateness: Duration, work: Duration) {
        let clamp = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
        let mut s = self.samples.lock();
        let (lateness, work) = (clamp(lateness), clamp(work));
        if s.lateness_us.len() < WINDOW {
            s.lateness_us.push(lateness);
            s.work_us.push(work);
        } else {
            let at = s.next;
            s.lateness_us[at] = lateness;
            s.work_us[at] = work;
        }
        s.next = (s.next + 1) % WINDOW;
        s.ticks += 1;
    }

    /// `{"ticks", "lateness_us": {"p50","p99","max"}, "work_us": {...}}` over the window.
    pub fn describe(&self) -> Value {
        let s = self.samples.lock();
        json!({
            "ticks": s.ticks,
            "lateness_us": percentiles(&s.lateness_us),
            "work_us": percentiles(&s.work_us),
        })
    }
}

fn percentiles(values: &[u32]) -> Value {
    if values.is_empty() {
        return json!({"p50": null, "p99": null, "max": null});
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    json!({"p50": at(0.5), "p99": at(0.99), "max": sorted[sorted.len() - 1]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_cover_the_last_minute_only() {
        let stats = ThreadTiming::default();
        for i in 0..WINDOW as u64 {
            stats.record(Duration::from_micros(10_000), Duration::from_micros(i));
        }
        for i in 0..100u64 {
            stats.record(Duration::from_micros(i), Duration::from_micros(5));
        }
        let v = stats.describe();
        assert_eq!(v["ticks"], WINDOW as u64 + 100);
        assert_eq!(v["lateness_us"]["p50"], 10_000);
        assert_eq!(v["lateness_us"]["max"], 10_000);
        assert_eq!(v["work_us"]["max"], WINDOW as u64 - 1);
        assert_eq!(
            ThreadTiming::default().describe()["lateness_us"]["p99"],
            Value::Null
        );
    }
}

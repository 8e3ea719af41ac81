//! A per-target ring of the last N probe outcomes (dpinger style): loss ratio, mean RTT and
//! jitter are computed when the window is read. Pure data, no timing decisions.

use std::collections::VecDeque;
use std::time::Duration;

/// One judged probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sample {
    Reply(Duration),
    /// No reply before the loss deadline, an ICMP error or a failed send. A reply arriving after
    /// the deadline leaves the sample lost: the decision already counted it.
    Lost,
}

#[derive(Debug, Clone)]
pub(crate) struct Window {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl Window {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub(crate) fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub(crate) fn clear(&mut self) {
        self.samples.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    fn replies(&self) -> impl Iterator<Item = Duration> + '_ {
        self.samples.iter().filter_map(|s| match s {
            Sample::Reply(rtt) => Some(*rtt),
            Sample::Lost => None,
        })
    }

    /// Lost / judged, `None` while empty.
    pub(crate) fn loss_ratio(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let lost = self.samples.iter().filter(|s| **s == Sample::Lost).count();
        Some(lost as f64 / self.samples.len() as f64)
    }

    pub(crate) fn mean_rtt(&self) -> Option<Duration> {
        let (sum, n) = self.replies().fold((Duration::ZERO, 0u32), |(s, n), r| {
            (s.saturating_add(r), n.saturating_add(1))
        });
        (n > 0).then(|| sum / n)
    }

    pub(crate) fn max_rtt(&self) -> Option<Duration> {
        self.replies().max()
    }

    /// Mean absolute difference between successive replies' RTTs (RFC 3550's idea, unsmoothed).
    pub(crate) fn jitter(&self) -> Option<Duration> {
        let mut prev: Option<Duration> = None;
        let (mut sum, mut n) = (Duration::ZERO, 0u32);
        for rtt in self.replies() {
            if let Some(p) = prev {
                sum = sum.saturating_add(rtt.abs_diff(p));
                n = n.saturating_add(1);
            }
            prev = Some(rtt);
        }
        (n > 0).then(|| sum / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn statistics_over_the_ring() {
        // (samples pushed, capacity, loss, mean, jitter)
        type Row = (
            &'static [Option<u64>],
            usize,
            Option<f64>,
            Option<u64>,
            Option<u64>,
        );
        let table: &[Row] = &[
            (&[], 4, None, None, None),
            (&[None, None], 4, Some(1.0), None, None),
            (
                &[Some(10), None, Some(30)],
                4,
                Some(1.0 / 3.0),
                Some(20),
                Some(20),
            ),
            (
                &[Some(10), Some(20), Some(10), Some(20)],
                4,
                Some(0.0),
                Some(15),
                Some(10),
            ),
            // the oldest falls out: [None, Some(10), Some(10), Some(10)] -> [10,10,10,40]
            (
                &[None, Some(10), Some(10), Some(10), Some(40)],
                4,
                Some(0.0),
                Some(17),
                Some(10),
            ),
        ];
        for (pushed, cap, loss, mean, jitter) in table {
            let mut w = Window::new(*cap);
            for s in *pushed {
                w.push(s.map_or(Sample::Lost, |v| Sample::Reply(ms(v))));
            }
            assert_eq!(w.loss_ratio(), *loss, "{pushed:?}");
            assert_eq!(
                w.mean_rtt().map(|d| d.as_millis() as u64),
                *mean,
                "{pushed:?}"
            );
            assert_eq!(
                w.jitter().map(|d| d.as_millis() as u64),
                *jitter,
                "{pushed:?}"
            );
            assert!(w.len() <= *cap);
        }
    }
}

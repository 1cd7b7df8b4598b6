//! The skip-path floor watch: a run whose loss settles at `E[c_skip]` ([`crate::edm::skip_floor`]) returns
//! the clean image but passes the noise through EDM's skip path; its samples keep the noise (on MNIST
//! about 0.5 per pixel). The trainer warns once, in one line, when that happens.

use std::collections::VecDeque;

/// Relative distance to the floor that counts as "at the floor".
pub const BAND: f64 = 0.05;
/// Largest change between the two halves of the window (relative to the floor) that counts as "sitting".
pub const FLAT: f64 = 0.02;

/// Feeds on per-step losses; fires once when the mean of the last `window` steps is within [`BAND`] of the
/// floor and has moved by less than [`FLAT`] since the `window` steps before (checked every `window`
/// steps). A loss passing through the floor on its way down moves by more than that and is not flagged.
#[derive(Clone, Debug)]
pub struct FloorWatch {
    floor: f64,
    window: usize,
    recent: VecDeque<f32>,
    seen: usize,
    warned: bool,
}

impl FloorWatch {
    /// A watch for a floor value and a window of `window` steps (at least 1).
    pub fn new(floor: f64, window: usize) -> Self {
        let window = window.max(1);
        Self { floor, window, recent: VecDeque::with_capacity(2 * window), seen: 0, warned: false }
    }

    /// Record the loss of step `step`; returns the warning line the first time the run sits at the floor.
    pub fn push(&mut self, step: usize, loss: f32) -> Option<String> {
        if self.recent.len() == 2 * self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(loss);
        self.seen += 1;
        if self.warned || self.recent.len() < 2 * self.window || !self.seen.is_multiple_of(self.window) {
            return None;
        }
        let mean = |it: &mut dyn Iterator<Item = &f32>| it.map(|&v| v as f64).sum::<f64>() / self.window as f64;
        let before = mean(&mut self.recent.iter().take(self.window));
        let last = mean(&mut self.recent.iter().skip(self.window));
        if (last / self.floor - 1.0).abs() < BAND && (last - before).abs() / self.floor < FLAT {
            self.warned = true;
            return Some(format!(
                "warning: the loss sits at the skip-path floor (mean {last:.4} over steps {}-{step}, floor E[c_skip] = {:.4}): \
                 the network passes the noise through EDM's skip path instead of removing it (see docs/trainer.md)",
                step + 1 - self.window,
                self.floor
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_when_flat_at_the_floor_only() {
        let floor = 0.634;
        // Flat at the floor (the plain MLP on MNIST: 0.648 -> 0.639): fires once, after two windows.
        let mut w = FloorWatch::new(floor, 100);
        let fired: Vec<usize> =
            (1..=1000).filter_map(|t| w.push(t, 0.64 + 0.01 * ((t % 7) as f32 - 3.0) / 3.0).map(|_| t)).collect();
        assert_eq!(fired, vec![200]);
        // Passing through the floor on the way down (2.0 -> 0.3 over 1,000 steps): never.
        let mut w = FloorWatch::new(floor, 100);
        assert!((1..=1000).all(|t| w.push(t, 2.0 - 1.7 * t as f32 / 1000.0).is_none()));
        // Well below the floor, flat: never.
        let mut w = FloorWatch::new(floor, 100);
        assert!((1..=1000).all(|t| w.push(t, 0.40).is_none()));
    }
}

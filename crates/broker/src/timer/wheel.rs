//! A timing wheel with an overflow level: the work of a tick is the entries it expires (and the
//! far-future entries that move into the ring at that tick, each once), never the number pending.
//!
//! The ring holds `slots` ticks of `tick_ms` each; a due time beyond the ring waits in an ordered
//! overflow map keyed by tick and enters the ring when the ring reaches it.

use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Wheel<T> {
    tick_ms: i64,
    ring: Vec<Vec<(i64, T)>>,
    /// The first tick not expired yet.
    cursor: i64,
    overflow: BTreeMap<i64, Vec<(i64, T)>>,
    len: usize,
}

impl<T> Wheel<T> {
    /// A wheel whose first tick holds `now_ms`.
    pub fn new(tick_ms: i64, slots: usize, now_ms: i64) -> Self {
        let tick_ms = tick_ms.max(1);
        Wheel {
            tick_ms,
            ring: (0..slots.max(1)).map(|_| Vec::new()).collect(),
            cursor: now_ms.div_euclid(tick_ms),
            overflow: BTreeMap::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn span(&self) -> i64 {
        self.ring.len() as i64
    }

    /// Adds `item` due at `due_ms`; a time already past expires at the next advance.
    pub fn insert(&mut self, due_ms: i64, item: T) {
        let tick = due_ms.div_euclid(self.tick_ms).max(self.cursor);
        self.len += 1;
        if tick < self.cursor + self.span() {
            let slot = tick.rem_euclid(self.span()) as usize;
            self.ring[slot].push((due_ms, item));
        } else {
            self.overflow.entry(tick).or_default().push((due_ms, item));
        }
    }

    /// Expires every tick up to the one holding `now_ms`, appending the items due by `now_ms`
    /// to `out` (items of the current tick that are due later stay).
    pub fn advance(&mut self, now_ms: i64, out: &mut Vec<T>) {
        let now_tick = now_ms.div_euclid(self.tick_ms);
        while self.cursor <= now_tick {
            let slot = self.cursor.rem_euclid(self.span()) as usize;
            if self.cursor < now_tick {
                self.len -= self.ring[slot].len();
                out.extend(self.ring[slot].drain(..).map(|(_, t)| t));
            } else {
                // The current tick: only what is due by now; the rest waits for the next call.
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ring[slot])
                    .into_iter()
                    .partition(|(d, _)| *d <= now_ms);
                self.len -= due.len();
                out.extend(due.into_iter().map(|(_, t)| t));
                self.ring[slot] = later;
                return;
            }
            self.cursor += 1;
            // The tick `cursor + span - 1` just came into the ring.
            let entering = self.cursor + self.span() - 1;
            if let Some(items) = self.overflow.remove(&entering) {
                let slot = entering.rem_euclid(self.span()) as usize;
                self.ring[slot].extend(items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_due_order_by_tick() {
        let mut w = Wheel::new(100, 8, 1_000);
        w.insert(1_050, "a");
        w.insert(1_250, "b");
        w.insert(900, "late");
        w.insert(5_000, "far");
        assert_eq!(w.len(), 4);
        let mut out = Vec::new();
        w.advance(1_049, &mut out);
        assert_eq!(out, vec!["late"]);
        out.clear();
        w.advance(1_260, &mut out);
        assert_eq!(out, vec!["a", "b"]);
        out.clear();
        w.advance(4_999, &mut out);
        assert!(out.is_empty());
        w.advance(5_000, &mut out);
        assert_eq!(out, vec!["far"]);
        assert!(w.is_empty());
    }

    #[test]
    fn overflow_entries_enter_the_ring_once() {
        let mut w = Wheel::new(10, 4, 0);
        for i in 0..1_000 {
            w.insert(i * 7, i);
        }
        let mut out = Vec::new();
        let mut now = 0;
        while !w.is_empty() {
            now += 3;
            let before = out.len();
            w.advance(now, &mut out);
            for &i in &out[before..] {
                assert!(i * 7 <= now, "{i} expired early at {now}");
                assert!(i * 7 > now - 13, "{i} expired late at {now}");
            }
        }
        out.sort_unstable();
        assert_eq!(out, (0..1_000).collect::<Vec<_>>());
    }
}

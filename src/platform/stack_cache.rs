//! What one worker opened inside each stack (sockets, a jail's agent),
//! remembered per stack with the stack's generation: a stack removed and
//! made again under the same id is another stack, and whatever was opened
//! in the old one is dropped (closed) instead of used. Both executors keep
//! theirs in one of these; nothing here allocates after `new`.

use crate::world::StackId;

pub struct StackCache<T> {
    slots: Vec<Option<(u32, T)>>,
}

impl<T> StackCache<T> {
    /// Room for `stacks` stacks, all empty.
    pub fn new(stacks: usize) -> StackCache<T> {
        StackCache {
            slots: (0..stacks).map(|_| None).collect(),
        }
    }

    /// Stack `s`'s entry at `generation`: the cached one, or (when there is
    /// none, or it belongs to an older generation, which is dropped first)
    /// whatever `open` makes. An `open` that fails leaves the slot empty.
    pub fn get_or_open<E>(
        &mut self,
        s: StackId,
        generation: u32,
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<&mut T, E> {
        let slot = &mut self.slots[s as usize];
        if slot.as_ref().is_none_or(|(g, _)| *g != generation) {
            *slot = None;
            *slot = Some((generation, open()?));
        }
        Ok(&mut slot.as_mut().expect("just filled").1)
    }

    /// Drop stack `s`'s entry (the stack is going away).
    pub fn forget(&mut self, s: StackId) {
        self.slots[s as usize] = None;
    }

    /// Drop every entry (the worker is done).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }

    /// Drop every entry whose stack has moved on to another generation.
    pub fn sweep(&mut self, current: impl Fn(StackId) -> u32) {
        for (s, slot) in self.slots.iter_mut().enumerate() {
            if slot
                .as_ref()
                .is_some_and(|(g, _)| *g != current(s as StackId))
            {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn an_entry_is_opened_once_per_generation_and_an_old_one_is_dropped() {
        let mut c: StackCache<Rc<u32>> = StackCache::new(3);
        let mut opened = 0;
        let mut open = |v: u32| {
            opened += 1;
            Ok::<_, i32>(Rc::new(v))
        };
        let first = c.get_or_open(1, 0, || open(10)).unwrap().clone();
        assert_eq!(*c.get_or_open(1, 0, || open(11)).unwrap().clone(), 10);
        // A new generation: the old entry goes (its last owner is `first`).
        assert_eq!(*c.get_or_open(1, 1, || open(12)).unwrap().clone(), 12);
        assert_eq!(Rc::strong_count(&first), 1);
        assert_eq!(opened, 2);
        // A failed open leaves the slot empty; the error is the caller's.
        assert_eq!(
            c.get_or_open(2, 0, || Err::<Rc<u32>, i32>(5)).err(),
            Some(5)
        );
        assert_eq!(
            *c.get_or_open(2, 0, || Ok::<_, i32>(Rc::new(7)))
                .unwrap()
                .clone(),
            7
        );
    }

    #[test]
    fn sweep_drops_exactly_the_entries_of_stacks_that_moved_on() {
        let mut c: StackCache<Rc<u32>> = StackCache::new(3);
        let keep = Rc::new(0);
        let stale = Rc::new(1);
        c.get_or_open(0, 4, || Ok::<_, ()>(keep.clone())).unwrap();
        c.get_or_open(2, 4, || Ok::<_, ()>(stale.clone())).unwrap();
        c.sweep(|s| if s == 2 { 5 } else { 4 });
        assert_eq!(Rc::strong_count(&keep), 2);
        assert_eq!(Rc::strong_count(&stale), 1);
    }
}

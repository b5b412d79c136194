//! A deterministic work budget. Graders that rely on wall-clock timeouts (signals, threads) give
//! answers that depend on machine load and are not thread-safe; counting steps instead makes a
//! verdict a pure function of its inputs. Every loop over input and every arithmetic operation
//! that can grow (big-number powers) charges this budget; recursion depth is capped separately so
//! that a deeply nested answer cannot overflow the stack.
use std::cell::Cell;

/// Maximum nesting depth of parsing and evaluation.
pub const MAX_DEPTH: usize = 120;

/// Largest big-number size (bits) an exact computation may produce before giving up on
/// exactness.
pub const MAX_BITS: u64 = 20_000;

/// Work left; shared by reference within one comparison (single-threaded by construction).
#[derive(Debug)]
pub struct Budget {
    left: Cell<u64>,
}

/// The budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl Budget {
    /// A budget of `steps` units.
    pub fn new(steps: u64) -> Self {
        Self { left: Cell::new(steps) }
    }

    /// Charge `n` units.
    pub fn charge(&self, n: u64) -> Result<(), Exhausted> {
        let l = self.left.get();
        if l < n {
            self.left.set(0);
            Err(Exhausted)
        } else {
            self.left.set(l - n);
            Ok(())
        }
    }

    /// Whether the budget is spent.
    pub fn spent(&self) -> bool {
        self.left.get() == 0
    }
}

//! Simulated crashes, for the process managers' exactly-once tests: a worker told to crash
//! after a step stops with an error right after it, as if the process had died there (what
//! it wrote stays written, nothing after it happens); a new worker on the same database
//! then plays the restart.

/// The step after which a worker stops; none by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashPoint(Option<&'static str>);

impl CrashPoint {
    /// Crash right after `step`.
    #[must_use]
    pub fn after(step: &'static str) -> Self {
        Self(Some(step))
    }

    /// Called by a worker once `step` is done.
    ///
    /// # Errors
    /// The simulated crash, when this is the step.
    pub fn passed(self, step: &str) -> anyhow::Result<()> {
        match self.0 {
            Some(crash) if crash == step => anyhow::bail!("simulated crash right after {step}"),
            _ => Ok(()),
        }
    }
}

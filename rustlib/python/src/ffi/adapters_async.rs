//! Background runs: `spawn_*` start the work on a Rust OS thread and return a
//! `Job` to poll, wait on (GIL released) or cancel. `fusefs.aio` turns a Job
//! into a trio awaitable.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crypto_core::prelude as core;
use pyo3::prelude::*;

use super::errors::{BindingError, BindingResult};
use super::params::{parallelism, EncryptParams, Key, ParallelismProfile};
use super::types::TelemetrySnapshot;

/// A finished run's outcome; the error is shared so that every `wait()`
/// raises it (core errors are not `Clone`: they hold an `io::Error`).
type Outcome = Option<Result<core::TelemetrySnapshot, Arc<core::Error>>>;

struct Shared {
    control: core::Control,
    outcome: Mutex<Outcome>,
    finished: Condvar,
}

/// A run in progress on its own thread.
#[pyclass(module = "fusefs._native", name = "Job", frozen)]
pub struct Job {
    shared: Arc<Shared>,
}

impl Job {
    fn spawn<F>(work: F) -> BindingResult<Job>
    where
        F: FnOnce(&core::Control) -> Result<core::TelemetrySnapshot, core::Error> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            control: core::Control::new(),
            outcome: Mutex::new(None),
            finished: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("fusefs-job".into())
            .spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&s.control)))
                    .unwrap_or_else(|_| Err(core::Error::Internal("the job panicked".into())))
                    .map_err(Arc::new);
                *s.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                s.finished.notify_all();
            })
            .map_err(BindingError::Thread)?;
        Ok(Job { shared })
    }
}

#[pymethods]
impl Job {
    /// True once the run has ended (successfully or not).
    fn done(&self) -> bool {
        self.shared
            .outcome
            .lock()
            .map(|o| o.is_some())
            .unwrap_or(true)
    }

    /// (input bytes done, input bytes in total or 0 when unknown).
    fn progress(&self) -> (u64, u64) {
        (self.shared.control.done(), self.shared.control.total())
    }

    /// Ask the run to stop; `wait` then raises CancelledError.
    fn cancel(&self) {
        self.shared.control.cancel();
    }

    /// Wait (GIL released) up to `timeout` seconds; None if still running.
    #[pyo3(signature = (timeout=None))]
    fn wait(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> BindingResult<Option<TelemetrySnapshot>> {
        let shared = Arc::clone(&self.shared);
        py.detach(move || {
            let guard = shared.outcome.lock().unwrap_or_else(|p| p.into_inner());
            match timeout {
                None => drop(shared.finished.wait_while(guard, |o| o.is_none())),
                Some(t) => {
                    let t = Duration::from_secs_f64(t.max(0.0));
                    drop(
                        shared
                            .finished
                            .wait_timeout_while(guard, t, |o| o.is_none()),
                    );
                }
            }
        });
        let guard = self
            .shared
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t.clone().into())),
            Some(Err(e)) => Err(BindingError::Shared(Arc::clone(e))),
        }
    }
}

/// Start `encrypt_path` in the background.
#[pyfunction]
#[pyo3(signature = (src, dst, key, params=None, parallelism=None, resume=false))]
fn spawn_encrypt_path(
    src: PathBuf,
    dst: PathBuf,
    key: PyRef<'_, Key>,
    params: Option<PyRef<'_, EncryptParams>>,
    parallelism: Option<ParallelismProfile>,
    resume: bool,
) -> BindingResult<Job> {
    let key = key.inner.clone();
    let params = params.map(|p| p.inner.clone()).unwrap_or_default();
    let par = self::parallelism(parallelism);
    Job::spawn(move |control| core::encrypt_file(&src, &dst, &key, &params, par, resume, control))
}

/// Start `decrypt_path` in the background.
#[pyfunction]
#[pyo3(signature = (src, dst, key, parallelism=None, resume=false, checkpoint_bytes=crypto_core::constants::DEFAULT_CHECKPOINT_BYTES))]
fn spawn_decrypt_path(
    src: PathBuf,
    dst: PathBuf,
    key: PyRef<'_, Key>,
    parallelism: Option<ParallelismProfile>,
    resume: bool,
    checkpoint_bytes: u64,
) -> BindingResult<Job> {
    let key = key.inner.clone();
    let par = self::parallelism(parallelism);
    Job::spawn(move |control| {
        core::decrypt_file(&src, &dst, &key, par, resume, checkpoint_bytes, control)
    })
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Job>()?;
    m.add_function(wrap_pyfunction!(spawn_encrypt_path, m)?)?;
    m.add_function(wrap_pyfunction!(spawn_decrypt_path, m)?)?;
    Ok(())
}

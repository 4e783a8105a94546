//! Argon2 work, bounded: recovery codes are hashed and checked with argon2id (8 MiB each). On tokio's blocking
//! pool, 32 parallel regenerations (ten hashes each) ran on up to 512 threads and drove the server from 218 MiB to
//! 3.3 GiB RSS, which it kept. A semaphore alone is not enough: the blocking pool still moves jobs across many
//! threads, and the allocator keeps a heap per thread that ran one (glibc serves 8 MiB blocks from the thread's
//! arena once its mmap threshold has risen), so memory grows with the threads touched, not the jobs running.
//! Here a fixed pool of `workers` threads (default one per core: more cannot hash faster) runs every argon2 job,
//! and the rest wait in its queue: the memory argon2 can hold is bounded by the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use super::ServiceError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Counts of the running jobs, shared with the workers.
#[derive(Debug, Default)]
struct Load {
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// The argon2 worker pool (for the handlers), and how many jobs ran at once at most (for tests and operators).
#[derive(Debug)]
pub struct HashWork {
    jobs: Mutex<mpsc::Sender<Job>>,
    workers: usize,
    load: Arc<Load>,
}

impl HashWork {
    /// A pool of `workers` threads (at least one). Its threads end when it is dropped.
    #[must_use]
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let load = Arc::new(Load::default());
        for index in 0..workers {
            let (receiver, load) = (receiver.clone(), load.clone());
            let spawned =
                std::thread::Builder::new().name(format!("stepup-argon2-{index}")).spawn(move || {
                    loop {
                        // The lock is held only to take a job, never while one runs.
                        let job = match receiver.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let now = load.running.fetch_add(1, Ordering::AcqRel) + 1;
                        load.peak.fetch_max(now, Ordering::AcqRel);
                        // A job that panics (a bug) fails its caller, not the worker: the pool keeps its size.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        load.running.fetch_sub(1, Ordering::AcqRel);
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start an argon2 worker thread");
            }
        }
        Self { jobs: Mutex::new(sender), workers, load }
    }

    /// One worker per core, as the OS reports them.
    #[must_use]
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
    }

    /// How many jobs may run at once.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The most jobs that ran at once so far.
    #[must_use]
    pub fn peak(&self) -> usize {
        self.load.peak.load(Ordering::Acquire)
    }

    /// Runs `job` on the pool once a worker is free, and waits for its result.
    ///
    /// # Errors
    /// [`ServiceError::Internal`] if the pool has no worker left or the job panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may be gone by the time a worker is free (its request timed out, its client left):
            // its hashes would be work for no one, and under load would only push later callers past theirs.
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(job());
        });
        let failed = |_| ServiceError::Internal { what: "the argon2 pool" };
        self.jobs
            .lock()
            .map_err(|_| ServiceError::Internal { what: "the argon2 pool" })?
            .send(job)
            .map_err(failed)?;
        result.await.map_err(|_| ServiceError::Internal { what: "the argon2 pool" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_workers() {
        let work = Arc::new(HashWork::new(2));
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..12 {
            let work = work.clone();
            jobs.spawn(async move {
                work.run(move || {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    i
                })
                .await
            });
        }
        let mut results: Vec<i32> = jobs.join_all().await.into_iter().map(Result::unwrap).collect();
        results.sort_unstable();
        assert_eq!(results, (0..12).collect::<Vec<_>>());
        assert_eq!(work.peak(), 2);
        assert_eq!(HashWork::new(0).workers(), 1);
    }

    #[tokio::test]
    #[allow(clippy::panic)]
    async fn a_panicking_job_is_an_internal_error_and_the_pool_goes_on() {
        let work = HashWork::new(1);
        assert!(work.run(|| panic!("argon2 broke")).await.is_err());
        assert_eq!(work.run(|| 1).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_abandoned_job_is_skipped() {
        let pool = Arc::new(HashWork::new(1));
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Hold the only worker, queue a job, then drop its caller before the worker is free.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let holder = Arc::clone(&pool);
        let busy = tokio::spawn(async move { holder.run(move || wait.recv().is_ok()).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let flag = ran.clone();
        let caller = Arc::clone(&pool);
        let abandoned =
            tokio::spawn(async move { caller.run(move || flag.store(true, Ordering::SeqCst)).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        abandoned.abort();
        let _ = abandoned.await;
        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        // A job queued after the abandoned one runs, so the worker has passed it.
        assert!(pool.run(|| true).await.unwrap());
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job did not run");
    }
}

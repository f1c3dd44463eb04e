import Dispatch
import Foundation
import Synchronization

/// Persistent worker threads for the kernels of a step.
///
/// A training step has a dozen places where both cores can work (the big products, the long fused
/// kernels, the Adam update), each only 20–500 µs long. Waking a thread through the OS costs about as
/// much as the smaller of those, so a worker spins on an atomic counter for a while after each job and
/// only then parks on a semaphore (Dispatch); during training it is therefore awake when the next job
/// is posted, and the hand-over costs about a microsecond.
///
/// "A while" is a time, `spinTime`, not a number of polls. It used to be 40,000 polls, ~15–20 µs here,
/// less than the 24 µs a worker waits at the end of the mnist step's x·W₁ᵀ for the other thread's
/// larger piece: it parked there, and the next stage (the two heads) started it 17 µs late at the
/// median, 39 µs at the 90th percentile, so both heads often ran on one thread (stage mean 45–50 µs
/// against 27–29 for either task; the same after the dy·W₄ ‖ Σdy⊗h pair). Spinning ten times longer took
/// those stages' means to 32 and 37 µs. A millisecond also covers the serial gaps of a step in
/// `vaec run` (the NaN guard before the update), and costs an idle core at most that before it parks.
///
/// A job is a fixed list of tasks claimed through an atomic counter by the thread that holds the pool
/// and by every worker; `run` returns when all are done. A worker that is late (or parked) just takes
/// fewer tasks. Tasks must write disjoint memory; which thread runs a task never changes its result.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Tasks of one parallel section; reused from step to step (only the counters are reset).
    final class Job: @unchecked Sendable {
        let count: Int
        let body: (_ task: Int, _ thread: Int) -> Void
        fileprivate let next = Atomic<Int>(0)
        fileprivate let done = Atomic<Int>(0)

        init(count: Int, body: @escaping (_ task: Int, _ thread: Int) -> Void) {
            self.count = count
            self.body = body
        }

        /// Claims and runs one task; false when none is left.
        fileprivate func runOne(thread: Int) -> Bool {
            let task = next.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
            if task >= count { return false }
            body(task, thread)
            done.wrappingAdd(1, ordering: .releasing)
            return true
        }

        fileprivate func reset() {
            // `done` before `next`: a worker still finishing its last (failed) claim on this job from the
            // previous step may claim a task of this run once `next` is 0, and its `done` must count.
            done.store(0, ordering: .releasing)
            next.store(0, ordering: .releasing)
        }

        fileprivate func wait() {
            // On a shared machine a worker can be preempted holding a task: after a short spin, yield
            // the core so it (or whoever preempted it) can run.
            var spins = 0
            while done.load(ordering: .acquiring) < count {
                spins += 1
                if spins > 2_000 { sched_yield() }
            }
        }
    }

    private final class Worker: @unchecked Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    /// How long a worker polls for work after its last job before it parks.
    private static let spinTime: UInt64 = 1_000_000   // ns

    /// Bumped for every job: what idle workers watch.
    private let generation = Atomic<Int>(0)
    private let held = Atomic<Bool>(false)
    private let lock = NSLock()
    private var workers: [Worker] = []
    /// The latest job (published before the generation is bumped).
    private var current: Job?
    /// Workers 1..<threads take part (set by the holder).
    private var threads = 1

    /// Takes the pool for the calling thread with `threads` threads in all (itself included); false if
    /// another thread holds it (then run everything on the calling thread).
    func acquire(threads: Int) -> Bool {
        guard threads > 1, held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        ensureWorkers(threads - 1)
        lock.lock(); self.threads = threads; lock.unlock()
        return true
    }

    func release() { held.store(false, ordering: .releasing) }

    /// Runs every task of `job` on the holder (thread 0) and the workers; returns when all are done.
    func run(_ job: Job) {
        job.reset()
        lock.lock(); current = job; lock.unlock()
        publish()
        while job.runOne(thread: 0) {}
        job.wait()
    }

    /// Runs a job on up to `threads` threads if the pool is free, else on the calling thread.
    static func run(_ job: Job, threads: Int) {
        if job.count > 1, shared.acquire(threads: threads) {
            shared.run(job)
            shared.release()
        } else {
            for task in 0..<job.count { job.body(task, 0) }
        }
    }

    private func publish() {
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        for w in workers where w.sleeping.exchange(false, ordering: .sequentiallyConsistent) { w.wake.signal() }
    }

    private func ensureWorkers(_ count: Int) {
        lock.lock(); defer { lock.unlock() }
        while workers.count < count {
            let worker = Worker()
            let index = workers.count + 1
            workers.append(worker)
            let seen = generation.load(ordering: .sequentiallyConsistent)
            let thread = Thread { [unowned self] in self.loop(worker, thread: index, seen: seen) }
            thread.name = "vaec-worker-\(index)"
            thread.start()
        }
    }

    private func loop(_ worker: Worker, thread: Int, seen start: Int) {
        var seen = start
        var spins = 0
        var idleSince = DispatchTime.now().uptimeNanoseconds
        while true {
            let now = generation.load(ordering: .acquiring)
            if now != seen {
                seen = now
                lock.lock(); let job = current, limit = threads; lock.unlock()
                if thread < limit, let job { while job.runOne(thread: thread) {} }
                spins = 0
                idleSince = DispatchTime.now().uptimeNanoseconds
                continue
            }
            // The clock only every 1,024 polls (a poll is one atomic load).
            spins += 1
            if spins & 1023 != 0 || DispatchTime.now().uptimeNanoseconds - idleSince < Self.spinTime { continue }
            spins = 0
            worker.sleeping.store(true, ordering: .sequentiallyConsistent)
            if generation.load(ordering: .sequentiallyConsistent) == seen {
                worker.wake.wait()
            } else if !worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                worker.wake.wait()   // the poster saw us asleep and signals: take that signal
            }
        }
    }
}

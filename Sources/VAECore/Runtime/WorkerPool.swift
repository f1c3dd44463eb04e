import Dispatch
import Foundation
import Synchronization

/// Persistent worker threads for the kernels of a step.
///
/// A training step has a dozen places where both cores can work (the big products, the long fused
/// kernels, the Adam update), each only 20–500 µs long. Waking a thread through the OS costs about as
/// much as the smaller of those, so a worker spins on an atomic counter for a while after each job and
/// only then parks on a semaphore (Dispatch); during training it is therefore always awake when the
/// next job is posted, and the hand-over costs about a microsecond.
///
/// A job is a fixed list of tasks claimed through an atomic counter by the posting thread and every
/// worker, so a worker that is late (or parked) just takes fewer tasks. Tasks must write disjoint
/// memory; which thread runs a task never changes its result.
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

        /// Claims and runs tasks until none are left.
        fileprivate func participate(thread: Int) {
            while true {
                let task = next.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
                if task >= count { return }
                body(task, thread)
                done.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    private final class Worker: @unchecked Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    /// Iterations a worker polls for the next job before it parks (tens of microseconds).
    private static let spinLimit = Int(ProcessInfo.processInfo.environment["VAEC_SPIN"] ?? "") ?? 40_000

    private let generation = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let lock = NSLock()
    private var workers: [Worker] = []
    /// The job of the current generation (published before the generation is incremented).
    private var current: Job?
    /// Workers 1..<currentThreads take part in the current job.
    private var currentThreads = 1

    /// Runs every task of `job` on the calling thread (thread 0) and up to `threads − 1` workers; returns
    /// when all are done. If another thread is using the pool, the tasks simply run here.
    func run(_ job: Job, threads: Int) {
        if threads <= 1 || job.count <= 1 || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for task in 0..<job.count { job.body(task, 0) }
            return
        }
        ensureWorkers(threads - 1)
        // `done` before `next`: a worker still finishing its last (failed) claim on this job from the
        // previous step may already claim a task of this run once `next` is 0, and its `done` must count.
        job.done.store(0, ordering: .releasing)
        job.next.store(0, ordering: .releasing)
        lock.lock(); current = job; currentThreads = threads; lock.unlock()
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        for w in workers where w.sleeping.exchange(false, ordering: .sequentiallyConsistent) { w.wake.signal() }
        job.participate(thread: 0)
        // Wait for tasks claimed by workers. On a shared machine a worker can be preempted holding a task;
        // after a short spin, yield the core so it (or whoever preempted it) can run.
        var spins = 0
        while job.done.load(ordering: .acquiring) < job.count {
            spins += 1
            if spins > 2_000 { sched_yield() }
        }
        busy.store(false, ordering: .releasing)
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
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinLimit { continue }
                spins = 0
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) == seen {
                    worker.wake.wait()
                } else if !worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                    worker.wake.wait()   // the poster saw us asleep and signals: take that signal
                }
            }
            seen = generation.load(ordering: .acquiring)
            lock.lock(); let job = current, limit = currentThreads; lock.unlock()
            if thread < limit { job?.participate(thread: thread) }
        }
    }
}

import Foundation
import Synchronization
import XCTest
@testable import VAECore

/// A seeded mutational fuzzer over every reader of user files (`FuzzTarget`), run in-process: a crash
/// kills the test process, so a pass means no input crashed; a hang is caught by a watchdog. The seeds
/// are the repository's files (samples, diagnostic fixtures, the damaged corpus, Fixtures/fuzz-corpus)
/// and good files made by this vaec. Fixtures/fuzz-corpus/<target>/ also holds every input a fuzzing
/// run ever found a problem with; each is replayed first.
///
/// Bounded by default (about 2500 inputs or 10 s); `VAEC_FUZZ_SECONDS=600` runs longer (use a release
/// build: `swift test -c release --filter FuzzTests`), `VAEC_FUZZ_SEED` changes the sequence.
final class FuzzTests: XCTestCase {
    static let corpus = TestPaths.fixtures.appendingPathComponent("fuzz-corpus")

    func testMutatedInputsNeverCrashOrHangTheReaders() throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["VAEC_FUZZ_SECONDS"].flatMap(Double.init)
        let budget = seconds ?? 10
        let maximumInputs = seconds == nil ? 2500 : Int.max
        let seed = environment["VAEC_FUZZ_SEED"].flatMap(UInt64.init) ?? 1

        var seeds = try Self.seeds()
        for target in FuzzTarget.allCases { XCTAssertFalse(seeds[target, default: []].isEmpty, "no seeds for \(target)") }
        CrashRecorder.install(saveTo: FileManager.default.temporaryDirectory.appendingPathComponent("vaec-fuzz-crash").path)
        defer { CrashRecorder.stop() }

        // Replay every seed (the regressions in fuzz-corpus among them) before mutating.
        var executions: [FuzzTarget: Int] = [:]
        for (target, inputs) in seeds { for input in inputs { CrashRecorder.run(target, input); executions[target, default: 0] += 1 } }

        // Model text gets the most inputs: the front end is the largest surface.
        let schedule: [FuzzTarget] = [.model, .model, .model, .model, .idx, .npy, .csv, .safetensors, .checkpoint,
                                      .trainingState, .program, .programBody, .programBody]
        var mutator = Mutator(seed: seed)
        var slowest: (seconds: Double, target: FuzzTarget, input: [UInt8])?
        let start = Date()
        var count = 0
        while count < maximumInputs && Date().timeIntervalSince(start) < budget {
            let target = schedule[count % schedule.count]
            let pool = seeds[target]!
            let input = mutator.mutate(pool[mutator.random.nextIndex(below: pool.count)], corpus: pool)
            let began = Date()
            CrashRecorder.run(target, input)
            let took = Date().timeIntervalSince(began)
            if took > (slowest?.seconds ?? 0) { slowest = (took, target, input) }
            // Keep some mutants as parents, so mutations stack over generations (bounded pool).
            if mutator.random.nextIndex(below: 8) == 0 {
                if pool.count < 400 { seeds[target]!.append(input) } else { seeds[target]![mutator.random.nextIndex(below: pool.count)] = input }
            }
            executions[target, default: 0] += 1
            count += 1
        }
        let elapsed = Date().timeIntervalSince(start)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let summary = FuzzTarget.allCases.map { "\($0.rawValue) \(executions[$0, default: 0])" }.joined(separator: ", ")
        print(String(format: "fuzz: %d mutated inputs in %.1f s (%.0f/s), seed %llu; per target (with seeds): %@; slowest input %.3f s (%@); peak RSS %d MiB; no crash, no hang",
                     count, elapsed, Double(count) / max(elapsed, 1e-9), seed, summary, slowest?.seconds ?? 0,
                     slowest?.target.rawValue ?? "-", usage.ru_maxrss / 1024))
        XCTAssertGreaterThan(count, 200, "the fuzzer ran too few inputs to mean anything")
        // Every reader works in time linear in its input (at most 64 KiB here): seconds per input is a hang.
        if let slowest, slowest.seconds > 5 {
            let saved = Self.corpus.appendingPathComponent("\(slowest.target.rawValue)/slow-\(CRC32.checksum(slowest.input))")
            XCTFail(String(format: "an input took %.1f s in %@; it is saved as %@", slowest.seconds, slowest.target.rawValue, saved.path))
            try? FileManager.default.createDirectory(at: saved.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? Data(slowest.input).write(to: saved)
        }
    }

    /// The mutator is deterministic: the same seed gives the same inputs (findings are reproducible).
    func testTheMutatorIsDeterministicAndMutates() {
        let input = Array("model m\ninput x: [784]\n".utf8)
        var a = Mutator(seed: 9), b = Mutator(seed: 9)
        var changed = 0
        for _ in 0..<200 {
            let x = a.mutate(input, corpus: [input]), y = b.mutate(input, corpus: [input])
            XCTAssertEqual(x, y)
            if x != input { changed += 1 }
        }
        XCTAssertGreaterThan(changed, 150)
        XCTAssertEqual(Array(Mutator.tokens(input).joined()), input, "tokens join back to the input")
    }

    /// Seeds by target: files by extension from the repository, plus good files made here.
    static func seeds() throws -> [FuzzTarget: [[UInt8]]] {
        var files: [URL] = []
        for folder in [corpus, TestPaths.fixtures.appendingPathComponent("damaged"), TestPaths.diagnosticFixtures, TestPaths.samples] {
            guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where !url.hasDirectoryPath { files.append(url) }
        }
        var seeds: [FuzzTarget: [[UInt8]]] = [:]
        for url in files.sorted(by: { $0.path < $1.path }) {
            // Regressions live in fuzz-corpus/<target>/ whatever their name; others go by extension.
            let folderTarget = FuzzTarget(rawValue: url.deletingLastPathComponent().lastPathComponent)
            let targets = folderTarget.map { [$0] } ?? FuzzTarget.allCases.filter { t in t.extensions.contains { url.lastPathComponent.hasSuffix("." + $0) || url.lastPathComponent.hasSuffix("-" + $0) } }
            guard !targets.isEmpty, let data = FileManager.default.contents(atPath: url.path), data.count <= 1 << 16 else { continue }
            for t in targets { seeds[t, default: []].append([UInt8](data)) }
        }
        // Good files of the current formats.
        let trainer = FuzzContext.shared.trainer
        let program = try trainer.program.encoded()
        seeds[.program, default: []].append(program)
        seeds[.programBody, default: []].append(program)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vaec-fuzz-seeds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try TrainingState.save(trainer, to: folder.path)
        for name in [Checkpoint.fileName, TrainingState.fileName] {
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
            for t in [FuzzTarget.safetensors, .checkpoint, .trainingState] { seeds[t, default: []].append(bytes) }
        }
        let values = (0..<24).map { Float($0 % 2) }
        seeds[.npy, default: []].append(try NPYFile.encode(float32: values, dims: [3, 8]))
        seeds[.idx, default: []].append(try IDXFile.encode(uint8: values.map { UInt8($0) }, dims: [3, 8]))
        seeds[.csv, default: []].append(Array("0,1,0,1\n1,0,1,0\n0.5,1e-3,-2,3\n".utf8))
        return seeds
    }
}

/// Saves the input being run when the process dies of a signal (a Swift trap is SIGILL or SIGTRAP), so
/// a crash found by the fuzzer can be replayed: the handler only uses `open`, `write`, `close`,
/// `signal` and `raise`, all async-signal-safe, on memory prepared beforehand. The file holds the
/// target's index in one byte, then the input (the format of scripts/fuzz.sh's libFuzzer harness).
/// A watchdog thread aborts the same way when one input runs longer than a minute (a hang).
enum CrashRecorder {
    nonisolated(unsafe) static var buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 << 17)
    nonisolated(unsafe) static var length = 0
    nonisolated(unsafe) static var path: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var message: UnsafeMutablePointer<CChar>?
    static let started = Atomic<Int>(0)   // uptime in ms when the current input started; 0 between inputs
    static let running = Atomic<Bool>(false)
    static let signals: [Int32] = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE]

    static func install(saveTo file: String) {
        path = strdup(file)
        message = strdup("fuzz: crashed or hung; the input is saved in \(file)\n")
        for s in signals {
            signal(s) { sig in
                CrashRecorder.save()
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
        running.store(true, ordering: .sequentiallyConsistent)
        Thread.detachNewThread {
            while CrashRecorder.running.load(ordering: .sequentiallyConsistent) {
                sleep(1)
                let began = CrashRecorder.started.load(ordering: .sequentiallyConsistent)
                if began > 0 && milliseconds() - began > 60_000 { CrashRecorder.save(); abort() }
            }
        }
    }

    static func save() {
        guard let path else { return }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd >= 0 { _ = write(fd, buffer.baseAddress, length); _ = close(fd) }
        if let message { _ = write(2, message, strlen(message)) }
    }

    static func stop() {
        running.store(false, ordering: .sequentiallyConsistent)
        for s in signals { signal(s, SIG_DFL) }
    }

    static func milliseconds() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1000 + t.tv_nsec / 1_000_000
    }

    /// Runs one input with it recorded as the current one.
    static func run(_ target: FuzzTarget, _ input: [UInt8]) {
        let n = min(input.count, buffer.count - 1)
        buffer[0] = UInt8(FuzzTarget.allCases.firstIndex(of: target)!)
        for i in 0..<n { buffer[i + 1] = input[i] }
        length = n + 1
        started.store(milliseconds(), ordering: .sequentiallyConsistent)
        target.run(input)
        started.store(0, ordering: .sequentiallyConsistent)
    }
}
